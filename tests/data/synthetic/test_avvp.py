"""Tests of the built-in synthetic AVVP dataset (NumPy only, small sizes)."""

import dataclasses

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from avjax.data import classes
from avjax.data import schema
from avjax.data.synthetic import avvp as synthetic

C = len(classes.LLP_CLASSES)
SMALL = synthetic.SyntheticConfig(num_train=12, num_val=8, num_test=8)
# Default generative parameters, fewer clips.
DEFAULT = synthetic.SyntheticConfig(num_train=40, num_val=40, num_test=100)


def _clips(cfg, split):
  return list(synthetic.generate_split(cfg, split))


class DeterminismTest(absltest.TestCase):

  def test_same_config_same_arrays(self):
    first = _clips(SMALL, "val")
    synthetic._prototypes.cache_clear()  # Prototypes are rebuilt, not reused.
    second = _clips(SMALL, "val")
    self.assertLen(first, 8)
    for a, b in zip(first, second):
      self.assertEqual(sorted(a), sorted(b))
      for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)

  def test_clip_independent_of_how_many_are_generated(self):
    many = dataclasses.replace(SMALL, num_val=30)
    ref = _clips(SMALL, "val")
    part = list(synthetic.generate_split(many, "val", start=5, stop=8))
    for i, clip in zip(range(5, 8), part):
      for k in clip:
        np.testing.assert_array_equal(clip[k], ref[i][k], err_msg=k)
      np.testing.assert_array_equal(
          synthetic.make_clip(many, "val", i)["visual"], ref[i]["visual"])

  def test_seed_and_split_change_the_clips(self):
    a = synthetic.make_clip(SMALL, "val", 0)
    b = synthetic.make_clip(dataclasses.replace(SMALL, seed=1), "val", 0)
    c = synthetic.make_clip(SMALL, "test", 0)
    self.assertFalse(np.array_equal(a["audio"], b["audio"]))
    self.assertFalse(np.array_equal(a["audio"], c["audio"]))
    self.assertNotEqual(a["id"], c["id"])


class SchemaTest(parameterized.TestCase):

  def _check_clip(self, clip, split, t_range):
    t = clip["audio"].shape[0]
    self.assertBetween(t, *t_range)
    self.assertIsInstance(clip["id"], str)
    for spec in schema.LLP_FEATURES:
      x = clip[spec.name]
      self.assertEqual(x.shape, (t * spec.frames_per_segment,) + spec.shape)
      self.assertEqual(x.dtype, np.float32, spec.name)
      self.assertTrue(np.isfinite(x).all(), spec.name)
    for k in schema.LABEL_KEYS:
      self.assertEqual(clip[k].shape, (C,))
      self.assertEqual(clip[k].dtype, np.float32)
      self.assertTrue(np.isin(clip[k], (0, 1)).all())
    if split == "train":
      for k in schema.DENSE_KEYS:
        self.assertNotIn(k, clip)
    else:
      for k in schema.DENSE_KEYS:
        self.assertEqual(clip[k].shape, (t, C))
        self.assertEqual(clip[k].dtype, np.uint8)
    return t

  @parameterized.parameters("train", "val", "test")
  def test_shapes_dtypes_and_keys(self, split):
    clips = _clips(SMALL, split)
    self.assertLen(clips, SMALL.num_clips(split))
    for clip in clips:
      self._check_clip(clip, split, (10, 10))
    self.assertLen({c["id"] for c in clips}, len(clips))

  def test_variable_number_of_segments(self):
    cfg = dataclasses.replace(SMALL, min_segments=1, max_segments=12,
                              num_val=40)
    lengths = {self._check_clip(c, "val", (1, 12)) for c in _clips(cfg, "val")}
    self.assertGreater(len(lengths), 5)

  def test_visual_and_motion_look_like_relu_features(self):
    clip = synthetic.make_clip(DEFAULT, "val", 0)
    for k in ("visual", "motion"):
      self.assertGreaterEqual(clip[k].min(), 0.0)
      self.assertBetween(float((clip[k] > 0).mean()), 0.1, 0.9)
    frames = clip["visual"].reshape(10, 8, -1)
    self.assertGreater(float(frames.std(1).mean()), 0.05)  # Varies per frame.

  def test_config_validation_and_lists(self):
    with self.assertRaises(ValueError):
      synthetic.SyntheticConfig(min_segments=5, max_segments=4)
    with self.assertRaises(ValueError):
      synthetic.SyntheticConfig(num_classes=26)
    cfg = synthetic.SyntheticConfig(event_type_probs=[1, 0, 0], num_val=3)
    hash(cfg)  # Lists (e.g. from a JSON config) become tuples.
    for clip in _clips(cfg, "val"):
      self.assertFalse(clip["seg_visual"].any())
      self.assertTrue(clip["seg_audio"].any())


class LabelTest(absltest.TestCase):

  def test_weak_labels_are_unions_of_dense_labels(self):
    for clip in _clips(DEFAULT, "val"):
      a, v = clip["seg_audio"], clip["seg_visual"]
      np.testing.assert_array_equal(clip["audio_labels"], a.any(0))
      np.testing.assert_array_equal(clip["visual_labels"], v.any(0))
      np.testing.assert_array_equal(clip["labels"], (a | v).any(0))
      self.assertBetween(int(clip["labels"].sum()), 1, 3)

  def test_train_weak_labels_are_consistent(self):
    for clip in _clips(DEFAULT, "train"):
      np.testing.assert_array_equal(
          clip["labels"], np.maximum(clip["audio_labels"],
                                     clip["visual_labels"]))
      self.assertGreaterEqual(clip["labels"].sum(), 1)

  def test_av_events_have_different_onsets_per_modality(self):
    both, differ = 0, 0
    for clip in _clips(DEFAULT, "test"):
      a, v = clip["seg_audio"], clip["seg_visual"]
      for c in np.flatnonzero(a.any(0) & v.any(0)):
        both += 1
        differ += int(np.argmax(a[:, c]) != np.argmax(v[:, c]))
    self.assertGreater(both, 20)
    self.assertBetween(differ / both, 0.3, 0.9)

  def test_describe(self):
    stats = synthetic.describe(DEFAULT, "train")
    self.assertEqual(stats["num_clips"], 40)
    fracs = [stats[f"frac_{k}"] for k in ("audio_only", "visual_only",
                                         "audio_visual")]
    self.assertAlmostEqual(sum(fracs), 1.0)
    self.assertBetween(stats["events_per_clip"], 1.0, 3.0)
    self.assertBetween(stats["mean_event_length"], 1.0, 10.0)
    self.assertGreater(stats["frac_av_async"], 0.0)
    self.assertNotIn("oracle_gated_seg_type", stats)


class OracleTest(absltest.TestCase):
  """The features carry the ground truth, but not trivially."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.stats = synthetic.describe(DEFAULT, "test")

  def test_nearest_prototype_between_chance_and_perfect(self):
    s = self.stats
    for k in ("seg_a", "seg_v", "seg_type"):
      self.assertBetween(s[f"oracle_gated_{k}"], 50.0, 95.0, k)
    self.assertBetween(s["oracle_ungated_seg_type"], 40.0, 90.0)
    self.assertLess(s["oracle_ungated_seg_type"], s["oracle_gated_seg_type"])

  def test_localising_per_modality_beats_ignoring_modality(self):
    s = self.stats
    for k in ("seg_a", "seg_v", "seg_type"):
      self.assertGreater(s[f"oracle_gated_crossmodal_{k}"],
                         s[f"ignore_modality_{k}"] + 5.0, k)
    self.assertGreater(s["oracle_gated_crossmodal_seg_type"],
                       s["ignore_modality_seg_type"] + 15.0)

  def test_cross_modal_context_helps(self):
    s = self.stats
    self.assertGreater(s["oracle_gated_crossmodal_seg_av"],
                       s["oracle_gated_seg_av"] + 5.0)
    self.assertGreater(s["oracle_gated_crossmodal_seg_type"],
                       s["oracle_gated_seg_type"])

  def test_oracle_predictions_shapes(self):
    clip = synthetic.make_clip(DEFAULT, "test", 0)
    pred = synthetic.oracle_predictions(clip, DEFAULT)
    for k in schema.DENSE_KEYS:
      self.assertEqual(pred[k].shape, clip[k].shape)
      self.assertEqual(pred[k].dtype, np.uint8)
      self.assertFalse((pred[k] & (clip["labels"] == 0)).any())  # Gated.


if __name__ == "__main__":
  absltest.main()

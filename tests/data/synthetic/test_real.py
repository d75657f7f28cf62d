"""Tests of the synthetic dataset's feature_stats="real" variant (NumPy only)."""

import dataclasses
import hashlib

from absl.testing import absltest
import numpy as np

from avjax.data.synthetic import avvp as synthetic

TINY = synthetic.SyntheticConfig(num_train=6, num_val=4, num_test=4)
UNIT = synthetic.SyntheticConfig(num_train=20, num_val=20, num_test=40)
REAL = dataclasses.replace(UNIT, feature_stats="real")
# sha256 of `_clip_hash(make_clip(TINY, split, 0))`, computed with the
# generator before feature_stats existed (commit 5c478a6): "unit" must stay
# byte-identical (the data cache is keyed by the config dataclass).
UNIT_HASHES = {
    "train": "660dc22a2d634a353e9952302c133b839a322bc17ef454686a8c23212cdc3440",
    "val": "6129f25d5a73a88d281dd84d7ebd9b67fcc19a81bcf86650a790f336f1488ebf",
}
LABEL_KEYS = ("id", "labels", "audio_labels", "visual_labels", "seg_audio",
              "seg_visual")


def _clip_hash(clip):
  h = hashlib.sha256()
  for k in sorted(clip):
    v = clip[k]
    h.update(k.encode())
    if isinstance(v, str):
      h.update(v.encode())
    else:
      h.update(str(v.dtype).encode())
      h.update(str(v.shape).encode())
      h.update(np.ascontiguousarray(v).tobytes())
  return h.hexdigest()


def _pooled(clips, key):
  return np.concatenate([c[key] for c in clips]).astype(np.float64)


class UnitUnchangedTest(absltest.TestCase):

  def test_default_is_unit(self):
    self.assertEqual(synthetic.SyntheticConfig().feature_stats, "unit")
    self.assertEqual(TINY, dataclasses.replace(TINY, feature_stats="unit"))

  def test_unit_clips_are_byte_identical_to_before(self):
    for split, want in UNIT_HASHES.items():
      self.assertEqual(_clip_hash(synthetic.make_clip(TINY, split, 0)), want,
                       split)

  def test_unknown_feature_stats_rejected(self):
    with self.assertRaisesRegex(ValueError, "feature_stats"):
      synthetic.SyntheticConfig(feature_stats="imagenet")


class RealStatsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.clips = list(synthetic.generate_split(REAL, "test"))

  def test_audio_is_quantised_pca(self):
    a = _pooled(self.clips, "audio")
    self.assertEqual(self.clips[0]["audio"].dtype, np.float32)
    np.testing.assert_array_equal(a, np.rint(a))
    self.assertGreaterEqual(a.min(), 0.0)
    self.assertLessEqual(a.max(), 255.0)
    self.assertBetween(a.mean(), 115.0, 145.0)
    mean, std = a.mean(0), a.std(0)
    self.assertBetween(mean.min(), 90.0, 135.0)
    self.assertBetween(mean.max(), 125.0, 170.0)
    self.assertBetween(std[:4].mean(), 35.0, 75.0)  # First PCA components.
    self.assertBetween(std[-16:].mean(), 6.0, 16.0)  # Last ones.
    self.assertLess(float(np.mean((a == 0) | (a == 255))), 0.01)  # Clipped.
    corr = np.corrcoef(a.T)[~np.eye(a.shape[1], dtype=bool)]
    self.assertLess(np.abs(corr).mean(), 0.06)  # PCA: decorrelated dims.

  def test_visual_and_motion_are_heavy_tailed_pools(self):
    for key, mean_range in (("visual", (0.35, 0.6)), ("motion", (0.45, 0.9))):
      with self.subTest(key):
        x = _pooled(self.clips, key)
        self.assertEqual(self.clips[0][key].dtype, np.float32)
        self.assertGreaterEqual(x.min(), 0.0)
        self.assertBetween(x.mean(), *mean_range)
        self.assertGreater(np.percentile(x, 99.9), 8 * x.mean())
        self.assertGreater(x.max(), 10.0)
        self.assertBetween(float(np.mean(x < 0.05)), 0.1, 0.5)  # Near zero.
        self.assertBetween(np.median(x), 0.05, 0.4)
        unit_means = x.mean(0)
        self.assertGreater(unit_means.max(), 4 * np.median(unit_means))

  def test_unit_stats_differ(self):
    a = _pooled(synthetic.generate_split(UNIT, "test", stop=5), "audio")
    self.assertLess(np.abs(a).mean(), 5.0)


class RealClipsTest(absltest.TestCase):

  def test_deterministic(self):
    first = synthetic.make_clip(REAL, "val", 3)
    synthetic._prototypes.cache_clear()  # Maps are rebuilt, not reused.
    synthetic._real_maps.cache_clear()
    second = synthetic.make_clip(REAL, "val", 3)
    self.assertEqual(sorted(first), sorted(second))
    for k in first:
      np.testing.assert_array_equal(first[k], second[k], err_msg=k)
    part = next(synthetic.generate_split(REAL, "val", start=3))
    np.testing.assert_array_equal(part["visual"], first["visual"])

  def test_same_labels_and_truth_as_unit(self):
    for split in ("train", "val"):
      for i in range(REAL.num_clips(split)):
        unit = synthetic.make_clip(UNIT, split, i)
        real = synthetic.make_clip(REAL, split, i)
        self.assertEqual(sorted(unit), sorted(real))
        for k in LABEL_KEYS:
          if k in unit:
            np.testing.assert_array_equal(unit[k], real[k], err_msg=k)
        for k in ("audio", "visual", "motion"):
          self.assertEqual(unit[k].shape, real[k].shape)
          self.assertFalse(np.array_equal(unit[k], real[k]), k)

  def test_seed_changes_the_maps(self):
    a = synthetic._real_maps(REAL)
    b = synthetic._real_maps(dataclasses.replace(REAL, seed=1))
    self.assertFalse(np.array_equal(a.audio_offset, b.audio_offset))
    self.assertFalse(np.array_equal(a.visual.scale, b.visual.scale))


class RealOracleTest(absltest.TestCase):
  """The class evidence survives the real-statistics maps."""

  def test_oracle_as_good_as_on_unit(self):
    unit = synthetic.describe(UNIT, "test")
    real = synthetic.describe(REAL, "test")
    for k in ("seg_a", "seg_v", "seg_type"):
      for name in ("oracle_gated", "oracle_gated_crossmodal"):
        self.assertLess(abs(real[f"{name}_{k}"] - unit[f"{name}_{k}"]), 5.0,
                        (name, k))
    self.assertGreater(real["oracle_gated_crossmodal_seg_type"],
                       real["ignore_modality_seg_type"] + 10.0)


if __name__ == "__main__":
  absltest.main()

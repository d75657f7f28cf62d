"""The event-type synthetic dataset: determinism, labels, onsets, caching."""

from absl.testing import absltest
import ml_collections
import numpy as np

from avjax.data import datasets
from avjax.data import pipeline
from avjax.data.synthetic import events as se
from avjax.data import tfrecord
from tests import testing_utils as tu

TINY = dict(num_train=16, num_val=8, num_test=8, classes_per_type=1,
            min_segments=4, max_segments=7)


class SyntheticEventsTest(absltest.TestCase):

  def test_clips_deterministic_labels_and_types(self):
    cfg = se.SyntheticEventsConfig(**TINY)
    p = se.prototypes(cfg)
    a, b = se.make_clip(cfg, "test", 3, p), se.make_clip(cfg, "test", 3, p)
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
    self.assertEqual(se.class_types(cfg), se.TYPES)
    for i in range(8):
      tr, te = se.make_clip(cfg, "train", i, p), se.make_clip(cfg, "test", i, p)
      self.assertEqual(tr["labels"].sum(), 1)
      self.assertTrue(np.all(te["labels"] >= te["primary_labels"]))
      self.assertBetween(len(te["audio"]), 4, 7)
      self.assertEqual(te["onsets"].shape, (len(te["audio"]), 1))

  def test_rhythmic_class_has_onsets_where_its_events_are(self):
    cfg = se.SyntheticEventsConfig(**dict(
        TINY, extra_events_probs=(1.0,), burst_prob=0.0, audio_bursts=0,
        min_segments=10, max_segments=10))
    p = se.prototypes(cfg)
    hits = {"onset": [], "continuous": []}
    for i in range(60):
      c = se.make_clip(cfg, "train", i, p)
      kind = se.class_types(cfg)[int(c["labels"].argmax())]
      if kind in hits:
        hits[kind].append(c["onsets"].sum())
    self.assertGreaterEqual(np.mean(hits["onset"]), 3.0)  # period 2-3, T=10
    self.assertLess(np.mean(hits["continuous"]), 0.5)  # a steady sound

  def test_unimodal_events_carry_class_confusing_other_modality(self):
    # Noise-free clips with no extra events: a visual (audio) primary's
    # audio (visual) track holds exactly the off-screen sounds (unrelated
    # views) of `offscreen_types` (`unrelated_view_types`) classes, labelled
    # in test, absent from the primary's own modality.
    cfg = se.SyntheticEventsConfig(**dict(
        TINY, classes_per_type=2, extra_events_probs=(1.0,), burst_prob=0.0,
        audio_bursts=0, noise=0.0, background_scale=0.0))
    p, types = se.prototypes(cfg), np.array(se.class_types(cfg))
    seen = {"visual": 0, "audio": 0}
    for i in range(80):
      clip = se.make_clip(cfg, "test", i, p)
      kind = types[int(clip["primary_labels"].argmax())]
      if kind not in seen:
        continue
      seen[kind] += 1
      own, other = (("visual", "audio") if kind == "visual"
                    else ("audio", "visual"))
      allowed = (cfg.offscreen_types if kind == "visual"
                 else cfg.unrelated_view_types)
      partners = np.flatnonzero(clip["labels"] - clip["primary_labels"])
      self.assertTrue(np.all(np.isin(types[partners], allowed)), partners)
      n = np.arange(len(cfg.irrelevant_counts_probs))
      self.assertIn(len(partners), n[np.asarray(cfg.irrelevant_counts_probs)
                                     > 0])
      self.assertFalse(np.any(clip[own] - clip[own][:1]))  # steady, primary
      coef = np.linalg.lstsq(p[other].T, clip[other].mean(0), rcond=None)[0]
      np.testing.assert_allclose(np.flatnonzero(np.abs(coef) > 1e-6),
                                 partners)
    self.assertGreater(min(seen.values()), 3)

  def test_event_counts_vary_widely_in_test(self):
    cfg = se.SyntheticEventsConfig(**TINY)
    p = se.prototypes(cfg)
    counts = [se.make_clip(cfg, "test", i, p)["labels"].sum()
              for i in range(60)]
    self.assertLessEqual(min(counts), 1)
    self.assertGreaterEqual(max(counts), 4)

  def test_resolve_writes_once_with_event_types(self):
    root = tu.make_tempdir(self)
    data = ml_collections.ConfigDict({
        "name": "synthetic_events", "cache_dir": root, "num_shards": 2,
        "synthetic": dict(TINY, onsets="features")})
    d = datasets.resolve(data)
    self.assertEqual(datasets.resolve(data), d)
    info = tfrecord.read_info(d)
    self.assertEqual(info["extra"]["event_types"], list(se.TYPES))
    self.assertEqual(info["splits"]["test"]["label_keys"],
                     ["labels", "primary_labels"])
    src = pipeline.Source(d, "test", ("audio", "visual", "onsets"))
    batch = next(pipeline.eval_batches(src, 8))
    self.assertEqual(batch["primary_labels"].shape, (8, 5))
    self.assertEqual(batch["onsets"].shape, (8, 7, 1))


if __name__ == "__main__":
  absltest.main()

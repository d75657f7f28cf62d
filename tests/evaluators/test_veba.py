"""VEBA evaluator: heads, decisions, scores and syncing spans (NumPy)."""

from absl.testing import absltest
import numpy as np

from avjax.evaluators import veba
from avjax.metrics import avvp
from avjax.metrics import tagging


def predictions(n=12, t=4, c=3, seed=0):
  rng = np.random.default_rng(seed)
  seg_a = (rng.random((n, t, c)) < 0.4).astype(np.uint8)
  seg_v = seg_a * (rng.random((n, t, c)) < 0.6)
  att = rng.random((n, t, 2, c))
  return {"ids": np.array([f"c{i}" for i in range(n)]),
          "frame_prob": rng.random((n, t, 2, c)),
          "modality_att": att / att.sum(2, keepdims=True),
          "global_prob": rng.random((n, c)),
          "audio_prob": rng.random((n, c)), "visual_prob": rng.random((n, c)),
          "segment_mask": np.ones((n, t), np.float32),
          "seg_audio": seg_a, "seg_visual": seg_v,
          "audio_labels": seg_a.max(1).astype(np.float32),
          "visual_labels": seg_v.max(1).astype(np.float32)}


def evaluator(heads, gating):
  return veba.Evaluator(None, None, 8, None, heads=heads, gating=gating)


class VebaEvaluatorTest(absltest.TestCase):

  def test_modality_heads(self):
    p = predictions()
    r = evaluator("modality", "modality").score(p)
    ta, tv = p["seg_audio"].max(1), p["seg_visual"].max(1)
    self.assertAlmostEqual(r["map_a"], tagging.mean_average_precision(
        p["audio_prob"], ta))
    self.assertAlmostEqual(r["map_v"], tagging.mean_average_precision(
        p["visual_prob"], tv))
    self.assertAlmostEqual(r["map_av"], tagging.mean_average_precision(
        p["global_prob"], ta * tv))
    self.assertAlmostEqual(r["map_vav"], (r["map_v"] + r["map_av"]) / 2)
    a = (p["frame_prob"][:, :, 0] > 0.5) & (p["audio_prob"] > 0.5)[:, None]
    v = (p["frame_prob"][:, :, 1] > 0.5) & (p["visual_prob"] > 0.5)[:, None]
    want = avvp.avvp_scores(a, v, p["seg_audio"] > 0, p["seg_visual"] > 0)
    for k in veba.DETECTION_KEYS:
      self.assertAlmostEqual(r[k], want[k], msg=k)

  def test_shared_heads_use_one_output(self):
    p = predictions()
    ev = evaluator("shared", "global")
    a, v = ev.decisions(p)
    np.testing.assert_array_equal(a, v)
    fused = (p["frame_prob"] * p["modality_att"]).sum(2)
    np.testing.assert_array_equal(
        a, (fused > 0.5) & (p["global_prob"] > 0.5)[:, None])
    r = ev.score(p)
    ta = p["seg_audio"].max(1)
    self.assertAlmostEqual(r["map_a"], tagging.mean_average_precision(
        p["global_prob"], ta))
    # Video labels are a subset of audio labels: V and AV targets coincide.
    self.assertAlmostEqual(r["map_v"], r["map_av"])

  def test_weak_split_scores_tagging_only(self):
    p = predictions()
    del p["seg_audio"], p["seg_visual"]
    r = evaluator("modality", "modality").score(p)
    self.assertEqual(sorted(r), ["map_a", "map_av", "map_v", "map_vav",
                                 "num_clips"])
    with self.assertRaisesRegex(ValueError, "heads='x'"):
      evaluator("x", "global")

  def test_sync_spans(self):
    a = np.zeros((2, 6, 2), bool)
    v = np.zeros((2, 6, 2), bool)
    a[0, 0:5, 1] = True
    v[0, 2:6, 1] = True   # both: 2..4
    a[0, 0:2, 0] = v[0, 0:2, 0] = True
    a[0, 3:6, 0] = v[0, 3:6, 0] = True  # two spans of class 0
    a[1, :, 0] = True     # heard, never seen: no span
    prob = np.full((2, 6, 2), 0.5)
    got = veba.sync_spans(a, v, ["x", "y"], ["Speech", "Dog"], prob)
    self.assertEqual(got["y"], [])
    self.assertEqual(got["x"], [
        {"event": "Speech", "onset": 0, "offset": 2, "score": 0.5},
        {"event": "Dog", "onset": 2, "offset": 5, "score": 0.5},
        {"event": "Speech", "onset": 3, "offset": 6, "score": 0.5}])


if __name__ == "__main__":
  absltest.main()

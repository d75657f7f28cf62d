"""Synthetic AVE-like dataset: shapes, determinism, labels, cached writing."""

import os

from absl.testing import absltest
import numpy as np

from avjax import prepare
from avjax.data import datasets
from avjax.data.synthetic import ave as synthetic_ave
from avjax.data import tfrecord
from configs import ave as ave_config
from tests import testing_utils

TINY = {"num_train": 8, "num_background": 2, "num_val": 3, "num_test": 3}


class SyntheticAVETest(absltest.TestCase):

  def test_clip_shapes_labels_and_determinism(self):
    cfg = synthetic_ave.SyntheticAVEConfig()
    clip, lay = synthetic_ave.make_clip(cfg, "train", 5)
    again, _ = synthetic_ave.make_clip(cfg, "train", 5)
    np.testing.assert_array_equal(clip["visual_map"], again["visual_map"])
    self.assertEqual(clip["audio"].shape, (10, 128))
    self.assertEqual(clip["visual_map"].shape, (10, 7, 7, 512))
    self.assertGreaterEqual(clip["visual_map"].min(), 0.0)
    np.testing.assert_allclose(clip["visual_vec"],
                               clip["visual_map"].mean((1, 2)), rtol=1e-5)
    seg = clip["seg_audio"]
    self.assertEqual(seg.shape, (10, 29))
    np.testing.assert_array_equal(seg.sum(1), 1)
    np.testing.assert_array_equal(seg.argmax(1) == lay["class"], lay["event"])
    np.testing.assert_array_equal(clip["labels"], seg.any(0))
    self.assertTrue(lay["event"].any())
    self.assertFalse((lay["event"] & ~lay["audible"]).any())
    noisy, nlay = synthetic_ave.make_clip(cfg, "train_noisy", 0)
    self.assertFalse(nlay["event"].any())
    np.testing.assert_array_equal(noisy["labels"], np.eye(29)[28])

  def test_av_lag_shifts_the_audio_track_only(self):
    # Without noise the audio is zero exactly where nothing is audible: with
    # av_lag its segment t is audible iff segment t + lag is (inside the clip).
    quiet = dict(audio_noise=0.0, ambient=0.0)
    lags = set()
    for i in range(30):
      clip, lay = synthetic_ave.make_clip(
          synthetic_ave.SyntheticAVEConfig(av_lag=2, **quiet), "train", i)
      lags.add(lay["lag"])
      src = np.arange(10) + lay["lag"]
      inside = (src >= 0) & (src < 10)
      want = inside & lay["audible"][np.clip(src, 0, 9)]
      np.testing.assert_array_equal(np.abs(clip["audio"]).sum(1) > 0, want)
      seg = clip["seg_audio"]  # labels follow the unshifted event
      np.testing.assert_array_equal(seg.argmax(1) == lay["class"],
                                    lay["event"])
    self.assertEqual(lags, {-2, -1, 0, 1, 2})
    clip, lay = synthetic_ave.make_clip(
        synthetic_ave.SyntheticAVEConfig(**quiet), "train", 3)
    self.assertEqual(lay["lag"], 0)
    np.testing.assert_array_equal(np.abs(clip["audio"]).sum(1) > 0,
                                  lay["audible"])
    with self.assertRaisesRegex(ValueError, "av_lag"):
      synthetic_ave.SyntheticAVEConfig(av_lag=10)

  def test_sounding_object_stands_out_where_visible(self):
    cfg = synthetic_ave.SyntheticAVEConfig()
    p = synthetic_ave.prototypes(cfg)
    gains = []
    for i in range(20):
      clip, lay = synthetic_ave.make_clip(cfg, "test", i)
      lat = clip["visual_map"].reshape(10, 49, 512)[:, lay["object"].ravel()]
      # Correlate the object's regions with its class's visual look.
      look = np.maximum(p["visual"][lay["class"]] @ p["proj"] + p["bias"], 0)
      score = (lat.mean(1) @ look)
      gains.append(score[lay["visible"]].mean() - score[~lay["visible"]].mean()
                   if (~lay["visible"]).any() else np.nan)
    self.assertGreater(np.nanmean(gains), 0.0)

  def test_box_sides_follow_the_config(self):
    cfg = synthetic_ave.SyntheticAVEConfig(min_box=2, max_box=4,
                                           distractor_box=2)
    sides = lambda m: (m.any(1).sum(), m.any(0).sum())
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
      lay = synthetic_ave.layout(rng, cfg, False)
      seen.update(sides(lay["object"]))
      for _, m in lay["distractors"]:
        self.assertLessEqual(max(sides(m)), 2)
    self.assertEqual(seen, {2, 3, 4})
    for bad in ({"min_box": 4, "max_box": 3}, {"distractor_box": 0},
                {"sync_fn": "cube"}):
      with self.assertRaises(ValueError):
        synthetic_ave.SyntheticAVEConfig(**bad)

  def test_abs_sync_has_no_linear_correlation(self):
    z = np.random.default_rng(0).standard_normal((200_000, 2))
    np.testing.assert_array_equal(synthetic_ave.sync_view(z, "linear"), z)
    h = synthetic_ave.sync_view(z, "abs")
    np.testing.assert_allclose(h.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(h.std(0), 1.0, atol=0.02)
    self.assertLess(abs(np.corrcoef(z[:, 0], h[:, 0])[0, 1]), 0.01)
    # ... but it is a function of z: |z| predicts it exactly.
    self.assertGreater(np.corrcoef(np.abs(z[:, 0]), h[:, 0])[0, 1], 0.999)

  def test_resolve_writes_once(self):
    cache = testing_utils.make_tempdir(self)
    c = ave_config.get_config("runlocal")
    c.data.cache_dir, c.data.num_shards = cache, 2
    c.data.synthetic = TINY
    d = datasets.resolve(c.data)
    self.assertEqual(datasets.resolve(c.data), d)
    self.assertLen(os.listdir(cache), 1)
    clips = list(prepare.read_clips(d, "train_noisy"))
    self.assertLen(clips, 2)
    self.assertEqual(clips[0]["visual_map"].shape, (10, 7, 7, 512))
    info = tfrecord.read_info(d)
    self.assertEqual(info["classes"][-1], "background")
    self.assertEqual(info["extra"]["synthetic_ave_config"]["num_train"], 8)


if __name__ == "__main__":
  absltest.main()

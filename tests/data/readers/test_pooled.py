"""Pre-pooled frames: `prepare --pool_frames=visual` stores segment means."""

import os

from absl.testing import absltest
import numpy as np

from avjax import prepare
from avjax.data.readers import llp
from avjax.data import make_llp_fixture
from avjax.data.readers import pooled
from avjax.data import tfrecord
from tests import testing_utils


class PoolFramesTest(absltest.TestCase):

  def test_segment_means(self):
    x = np.arange(2 * 4 * 3, dtype=np.float32).reshape(8, 3)
    np.testing.assert_allclose(pooled.pool_frames(x, 4),
                               [x[:4].mean(0), x[4:].mean(0)])
    with self.assertRaisesRegex(ValueError, r"clip 'c'.*7 frames is not a "
                                r"multiple of 4"):
      pooled.pool_frames(x[:7], 4, "clip 'c'")

  def test_llp_conversion_stores_the_mean_of_each_segment(self):
    root = testing_utils.make_tempdir(self)
    out = testing_utils.make_tempdir(self)
    names = make_llp_fixture.write_fixture(root, train=2, val=1, test=2)
    with self.assertRaisesRegex(ValueError, r"unknown stream\(s\) \['rgb'\]"):
      pooled.PooledFrames(llp.LLPDataset(root), ["rgb"])
    with self.assertRaisesRegex(ValueError, r"\['audio'\] already have one"):
      pooled.PooledFrames(llp.LLPDataset(root), ["audio"])
    self.assertEqual(prepare.main(["llp", f"--root={root}", f"--out={out}",
                                   "--workers=1", "--quiet",
                                   "--pool_frames=visual"]), 0)
    info = tfrecord.read_info(out)
    specs = {s.name: s for s in info["feature_specs"]}
    self.assertEqual(specs["visual"].frames_per_segment, 1)
    self.assertEqual(specs["motion"].frames_per_segment, 1)
    self.assertEqual(info["extra"]["pooled_frames"], {"visual": 8})
    clips = {c["id"]: c for c in prepare.read_clips(out, "test")}
    self.assertCountEqual(clips, names["test"])
    for name in names["test"]:
      frames = np.load(os.path.join(root, "feats", "res152",
                                    name[:11] + ".npy"))
      self.assertEqual(clips[name]["visual"].shape, (10, 2048))
      np.testing.assert_allclose(clips[name]["visual"],
                                 frames.reshape(10, 8, 2048).mean(1),
                                 rtol=1e-6, atol=1e-6)
      np.testing.assert_array_equal(
          clips[name]["audio"],
          np.load(os.path.join(root, "feats", "vggish", name[:11] + ".npy")))


if __name__ == "__main__":
  absltest.main()

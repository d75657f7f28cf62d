"""TFDS builders (manual_dir = the published layout) build offline."""

import os
import shutil
import tempfile

from absl.testing import absltest
import numpy as np
import tensorflow_datasets as tfds

from avjax.data.readers import llp
from avjax.data.readers import llp_annotations
from avjax.data import make_llp_fixture
from avjax.data import tfds_builders  # pylint: disable=unused-import
from tests.data.readers import test_ave


def build(name, manual_dir, data_dir):
  builder = tfds.builder(name, data_dir=data_dir)
  builder.download_and_prepare(
      download_dir=os.path.join(data_dir, "downloads"),
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


class TfdsBuildersTest(absltest.TestCase):

  def tmp(self) -> str:
    d = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, d, ignore_errors=True)
    return d

  def test_llp_builds_offline_and_yields_the_clip(self):
    root = self.tmp()
    names = make_llp_fixture.write_fixture(root, train=2, val=2, test=1)
    os.remove(os.path.join(root, "feats/res152", names["train"][1][:11] +
                           ".npy"))
    builder = build("avjax_llp", root, self.tmp())
    self.assertEqual({s: builder.info.splits[s].num_examples
                      for s in ("train", "val", "test")},
                     {"train": 1, "val": 2, "test": 1})
    clips = {ex["clip_id"].decode(): ex for ex in
             builder.as_dataset(split="val").as_numpy_iterator()}
    _, gt_a, gt_v, _ = llp_annotations.read_dense(root, "val")
    filename = names["val"][1]
    ex = clips[filename]
    for stream, s in llp.STREAMS.items():
      np.testing.assert_array_equal(ex[stream], np.load(os.path.join(
          root, s.folder, filename[:11] + ".npy")))
    np.testing.assert_array_equal(ex["seg_audio"], gt_a[1])
    np.testing.assert_array_equal(ex["seg_visual"], gt_v[1])
    np.testing.assert_array_equal(ex["visual_labels"], gt_v[1].any(0))
    self.assertTrue(ex["has_dense"])
    train = next(builder.as_dataset(split="train").as_numpy_iterator())
    self.assertFalse(train["has_dense"])
    self.assertEqual(train["seg_audio"].sum(), 0)

  def test_ave_builds_offline_and_yields_the_clip(self):
    root = self.tmp()
    arrays = test_ave.write_ave_fixture(root, noisy=0)
    builder = build("avjax_ave/maps_vec", root, self.tmp())
    self.assertEqual(builder.info.splits["test"].num_examples, 2)
    ex = {e["clip_id"].decode(): e for e in
          builder.as_dataset(split="test").as_numpy_iterator()}["vidGGGGGGGG"]
    for k in ("audio", "visual_map", "visual_vec"):
      np.testing.assert_array_equal(ex[k], arrays[k][7])
    np.testing.assert_array_equal(ex["seg_audio"], test_ave.expected_dense()[7])


if __name__ == "__main__":
  absltest.main()

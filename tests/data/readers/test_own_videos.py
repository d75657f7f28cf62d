"""Own clips (.npz folder + optional labels csv) -> TFRecords."""

import os

from absl.testing import absltest
import numpy as np

from avjax import prepare
from avjax.data import classes as classes_lib
from avjax.data.readers import own_videos
from tests import testing_utils


def write_npz(root, name, t, f=4, da=6, dv=5, motion=True, seed=0):
  rng = np.random.default_rng(seed)
  arrays = {"audio": rng.standard_normal((t, da), np.float32),
            "visual": rng.standard_normal((t * f, dv), np.float32)}
  if motion:
    arrays["motion"] = rng.standard_normal((t, 3), np.float32)
  np.savez(os.path.join(root, name + ".npz"), **arrays)
  return arrays


class OwnVideosTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root, self.out = testing_utils.make_tempdir(self), testing_utils.make_tempdir(self)
    self.arrays = {n: write_npz(self.root, n, t, seed=i) for i, (n, t) in
                   enumerate([("a_clip", 3), ("b_clip", 7), ("c_clip", 5)])}
    self.csv = os.path.join(self.root, "labels.csv")

  def test_round_trip_variable_length(self):
    with open(self.csv, "w") as f:
      f.write("id,labels,split\na_clip,dog;cat,train\nb_clip,,\n"
              "c_clip,cat,train\nmissing,dog,train\n")
    ds = own_videos.OwnVideosDataset(self.root, self.csv)
    self.assertEqual(ds.classes, ("cat", "dog"))
    self.assertEqual([(f.name, f.frames_per_segment, f.shape)
                      for f in ds.features],
                     [("audio", 1, (6,)), ("visual", 4, (5,)),
                      ("motion", 1, (3,))])
    report = prepare.convert(ds, self.out, num_shards=2, progress=False)
    self.assertEqual(report["written"], {"train": 2, "test": 1})
    self.assertEqual(report["skipped"]["train"]["by_reason"],
                     {"missing_file": 1})
    got = {c["id"]: c for s in ("train", "test")
           for c in prepare.read_clips(self.out, s)}
    for name, arrays in self.arrays.items():
      for k, v in arrays.items():
        np.testing.assert_array_equal(got[name][k], v)
    np.testing.assert_array_equal(got["a_clip"]["labels"], [1, 1])
    np.testing.assert_array_equal(got["b_clip"]["labels"], [0, 0])
    np.testing.assert_array_equal(got["c_clip"]["labels"], [1, 0])
    self.assertEqual(report["annotations"]["unlabeled_clips"]["count"], 0)

  def test_no_csv_llp_classes_and_mismatched_clip(self):
    write_npz(self.root, "d_clip", 4, dv=9)
    ds = own_videos.OwnVideosDataset(self.root, classes="llp", split="all")
    self.assertEqual(ds.classes, classes_lib.LLP_CLASSES)
    self.assertEqual(ds.report["unlabeled_clips"]["count"], 4)
    report = prepare.convert(ds, self.out, progress=False)
    self.assertEqual(report["written"], {"all": 3})
    skipped = report["skipped"]["all"]["clips"]
    self.assertEqual([(c["id"], c["reason"]) for c in skipped],
                     [("d_clip", "wrong_shape")])
    self.assertIn("d_clip.npz: feature 'visual' has shape [16, 9]",
                  skipped[0]["error"])

  def test_needs_classes(self):
    with self.assertRaisesRegex(ValueError, "--classes"):
      own_videos.OwnVideosDataset(self.root)


if __name__ == "__main__":
  absltest.main()

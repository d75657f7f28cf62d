"""LLP in its published layout -> TFRecords: round trips, skips, real files."""

import json
import os
import shutil

from absl.testing import absltest
import numpy as np

from avjax import prepare
from avjax.data.readers import llp
from avjax.data.readers import llp_annotations
from avjax.data import make_llp_fixture
from tests import testing_utils

FEATS = {"audio": "vggish", "visual": "res152", "motion": "r2plus1d_18"}


def shared_llp_dir() -> str:
  return testing_utils.shared_data_dir("llp")


def npy(root, stream, filename):
  return np.load(os.path.join(root, "feats", FEATS[stream],
                              filename[:11] + ".npy"))


class LLPFixtureTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = testing_utils.make_tempdir(self)
    self.out = testing_utils.make_tempdir(self)
    self.names = make_llp_fixture.write_fixture(self.root, train=6, val=3,
                                                test=3)

  def test_round_trip_and_skips(self):
    train, val, test = (self.names[s] for s in ("train", "val", "test"))
    os.remove(os.path.join(self.root, "feats/r2plus1d_18",
                           train[0][:11] + ".npy"))
    np.save(os.path.join(self.root, "feats/res152", val[1][:11] + ".npy"),
            np.zeros((79, 2048), np.float32))
    bad = npy(self.root, "audio", test[2])
    bad[3, 5] = np.nan
    np.save(os.path.join(self.root, "feats/vggish", test[2][:11] + ".npy"),
            bad)
    ds = llp.LLPDataset(self.root)
    report = prepare.convert(ds, self.out, num_shards=2, progress=False)
    self.assertEqual(report["written"], {"train": 5, "val": 2, "test": 2})
    reasons = {s: v["by_reason"] for s, v in report["skipped"].items()}
    self.assertEqual(reasons, {"train": {"missing_file": 1},
                               "val": {"wrong_shape": 1},
                               "test": {"non_finite": 1}})
    self.assertIn("feats/res152", report["skipped"]["val"]["clips"][0]["error"])
    with open(os.path.join(self.out, prepare.REPORT_FILE)) as f:
      self.assertEqual(json.load(f)["skipped"]["test"]["clips"][0]["id"],
                       test[2])
    _, gt_a, gt_v, _ = llp_annotations.read_dense(self.root, "val")
    weak = dict(llp_annotations.read_weak(
        os.path.join(self.root, "AVVP_val_pd.csv")))
    clips = {c["id"]: c for c in prepare.read_clips(self.out, "val", 2)}
    self.assertEqual(sorted(clips), sorted([val[0], val[2]]))
    for i in (0, 2):
      c = clips[val[i]]
      for stream in FEATS:
        np.testing.assert_array_equal(c[stream], npy(self.root, stream, val[i]))
      np.testing.assert_array_equal(c["seg_audio"], gt_a[i])
      np.testing.assert_array_equal(c["seg_visual"], gt_v[i])
      np.testing.assert_array_equal(c["audio_labels"], gt_a[i].any(0))
      np.testing.assert_array_equal(c["visual_labels"], gt_v[i].any(0))
      self.assertEqual({ds.classes[k] for k in np.flatnonzero(c["labels"])},
                       set(weak[val[i]]))
    train_clips = list(prepare.read_clips(self.out, "train"))
    self.assertEqual(sorted(c["id"] for c in train_clips), sorted(train[1:]))
    self.assertEqual(set(train_clips[0]), {"id", "audio", "visual", "motion",
                                           "labels"})

  def test_strict_names_file_and_field(self):
    val = self.names["val"]
    np.save(os.path.join(self.root, "feats/res152", val[1][:11] + ".npy"),
            np.zeros((80, 2047), np.float32))
    with self.assertRaisesRegex(prepare.StrictError,
                                rf"{val[1]}.*res152/{val[1][:11]}\.npy: "
                                r"feature 'visual' has shape \[80, 2047\]"):
      prepare.convert(llp.LLPDataset(self.root), self.out, strict=True,
                      progress=False)

  def test_older_eval_file_names_and_separate_annotations(self):
    adir = testing_utils.make_tempdir(self)
    for n in os.listdir(self.root):
      if n.endswith(".csv") or n.endswith(".txt"):
        shutil.move(os.path.join(self.root, n), adir)
    os.rename(os.path.join(adir, "AVVP_eval_audio.csv"),
              os.path.join(adir, "AVVP_eval_audio_v1.csv"))
    ds = llp.LLPDataset(self.root, adir, eval_audio="AVVP_eval_audio_v1.csv",
                        features=("audio",), splits=("test",))
    self.assertEqual(list(ds.splits), ["test"])
    clip = ds.load("test", 0)
    self.assertEqual(set(clip) - {"id"}, {"audio"} | set(llp.DENSE_KEYS))


class LLPRealAnnotationsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.adir = shared_llp_dir()
    if not os.path.isdir(self.adir):
      self.skipTest(f"shared LLP annotations not found at {self.adir}")

  def test_counts_and_known_irregularities(self):
    ds = llp.LLPDataset(testing_utils.make_tempdir(self), self.adir)
    self.assertEqual({s: len(k) for s, k in ds.splits.items()},
                     {"train": 10000, "val": 649, "test": 1200})
    s = ds.report["summary"]
    self.assertEqual(s["unmatched_rows"], {"count": 25, "by_file": {
        "audio": 14, "visual": 11}})
    self.assertEqual(s["empty_interval_rows"],
                     {"count": 6, "by_file": {"audio": 6}})
    self.assertEqual(s["clips_without_visual_rows"]["test"], 121)
    self.assertEqual(s["weak_dense_mismatch"]["total_if_empty_rows_kept"], 81)
    self.assertEqual(s["weak_dense_mismatch"]["total"], 84)
    self.assertEqual(s["clipped_rows"]["count"], 0)
    self.assertEqual(s["ids_in_several_splits"], 0)
    self.assertEqual(s["clips_sharing_feature_files"], 0)
    for e in ds.report["test"]["empty_interval_rows"]["examples"]:
      self.assertLessEqual(e["offset"], e["onset"])
    for e in ds.report["val"]["unmatched_rows"]["examples"]:
      self.assertNotIn(e["filename"], ds.ids["val"] + ds.ids["test"])

  def test_convert_with_a_few_feature_files(self):
    root, out = testing_utils.make_tempdir(self), testing_utils.make_tempdir(self)
    ds = llp.LLPDataset(root, self.adir)
    make_llp_fixture.write_features(
        root, [ds.ids[s][i] for s in ("train", "val", "test") for i in (0, 1)])
    report = prepare.convert(ds, out, num_shards=4, progress=False)
    self.assertEqual(report["written"], {"train": 2, "val": 2, "test": 2})
    self.assertEqual(report["skipped"]["train"]["by_reason"],
                     {"missing_file": 9998})
    self.assertEqual(report["skipped"]["test"]["count"], 1198)
    self.assertEqual(report["annotations"]["summary"]["unmatched_rows"][
        "count"], 25)
    clip = next(c for c in prepare.read_clips(out, "test")
                if c["id"] == ds.ids["test"][1])
    _, gt_a, gt_v, _ = llp_annotations.read_dense(self.adir, "test")
    np.testing.assert_array_equal(clip["seg_audio"], gt_a[1])
    np.testing.assert_array_equal(clip["seg_visual"], gt_v[1])


if __name__ == "__main__":
  absltest.main()

"""AVE in its published layout -> TFRecords: round trips, policy, real files."""

import os

from absl.testing import absltest
import h5py
import numpy as np

from avjax import prepare
from avjax.data.readers import ave
from avjax.trainers import ave_supervised
from avjax.trainers import loop
from configs import ave as ave_config
from tests import testing_utils

CATEGORIES = [f"Class {k}, kind" if k % 3 == 0 else f"Class{k}"
              for k in range(28)]
# (category index, video id, start, end, split)
ROWS = [(0, "vidAAAAAAAA", 0, 10, "train"), (1, "vidBBBBBBBB", 2, 5, "train"),
        (2, "vidCCCCCCCC", 0, 0, "train"), (3, "vidDDDDDDDD", 3, 10, "val"),
        (4, "vidDDDDDDDD", 3, 10, "test"), (0, "vidEEEEEEEE", 7, 9, "train"),
        (5, "vidFFFFFFFF", 0, 10, "val"), (1, "vidGGGGGGGG", 1, 4, "test")]
ORDER = {"train": [5, 0, 1, 2], "val": [3, 6], "test": [7, 4]}


def shared_ave_dir() -> str:
  return testing_utils.shared_data_dir("ave")


def expected_dense() -> np.ndarray:
  y = np.zeros((len(ROWS), 10, 29), np.uint8)
  y[:, :, 28] = 1
  for i, (c, _, start, end, _) in enumerate(ROWS):
    y[i, start:end] = 0
    y[i, start:end, c] = 1
  return y


def _h5(path, array, key="avadataset"):
  with h5py.File(path, "w") as f:
    f.create_dataset(key, data=array)


def write_ave_fixture(root, h5_sub="h5", newline="\n", bom="",
                      order_files=True, vec=True, noisy=3):
  """Writes the published AVE layout; returns the feature arrays."""
  h5_dir = os.path.join(root, h5_sub)
  os.makedirs(h5_dir, exist_ok=True)
  line = lambda r: f"{CATEGORIES[r[0]]}&{r[1]}&good&{r[2]}&{r[3]}"
  with open(os.path.join(root, "AVE_Annotations.txt"), "w", newline="") as f:
    f.write(bom + newline.join(
        ["Category&VideoID&Quality&StartTime&EndTime"] +
        [line(r) for r in ROWS]) + newline)
  with open(os.path.join(root, "AVE_categories.txt"), "w") as f:
    f.write("\n".join(CATEGORIES) + "\n")
  for split, idx in ORDER.items():
    with open(os.path.join(root, f"AVE_{split}Set.txt"), "w",
              newline="") as f:
      f.write("".join(line(ROWS[i]) + newline for i in idx))
    if order_files:
      _h5(os.path.join(h5_dir, f"{split}_order.h5"), np.array(idx), "order")
  rng = np.random.default_rng(0)
  n = len(ROWS)
  arrays = {"audio": rng.standard_normal((n, 10, 128), np.float32),
            "visual_map": rng.standard_normal((n, 10, 7, 7, 512), np.float32),
            "visual_vec": rng.standard_normal((n, 10, 512), np.float32)}
  names = {"audio": "audio_feature", "visual_map": "visual_feature",
           "visual_vec": "visual_feature_vec"}
  for k, a in arrays.items():
    if k != "visual_vec" or vec:
      _h5(os.path.join(h5_dir, names[k] + ".h5"), a)
  _h5(os.path.join(h5_dir, "labels.h5"), expected_dense().astype(np.float32))
  if noisy:
    for k in ("audio", "visual_map"):
      arrays[k + "_noisy"] = rng.standard_normal(
          (noisy,) + arrays[k].shape[1:], np.float32)
      _h5(os.path.join(h5_dir, names[k] + "_noisy.h5"), arrays[k + "_noisy"])
    _h5(os.path.join(h5_dir, "labels_noisy.h5"), np.eye(29)[[28] * noisy])
  return arrays


class AVEFixtureTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root, self.out = testing_utils.make_tempdir(self), testing_utils.make_tempdir(self)

  def test_round_trip(self):
    arrays = write_ave_fixture(self.root)
    with h5py.File(os.path.join(self.root, "h5/audio_feature.h5"), "r+") as f:
      f["avadataset"][1, 4, 7] = np.nan
    ds = ave.AVEDataset(self.root)
    self.assertEqual(ds.classes, tuple(CATEGORIES) + ("background",))
    self.assertTrue(ds.report["noisy"]["included"])  # vec pooled from maps
    report = prepare.convert(ds, self.out, num_shards=2, progress=False)
    self.assertEqual(report["written"], {"train": 3, "val": 2, "test": 2,
                                         "train_noisy": 3})
    self.assertEqual(report["skipped"]["train"]["by_reason"],
                     {"non_finite": 1})
    self.assertIn("audio_feature.h5 row 1",
                  report["skipped"]["train"]["clips"][0]["error"])
    dense = expected_dense()
    for split, idx in ORDER.items():
      clips = {c["id"]: c for c in prepare.read_clips(self.out, split)}
      for i in idx:
        vid = ROWS[i][1]
        cid = f"{vid}#{i}" if vid == "vidDDDDDDDD" else vid
        if i == 1:
          self.assertNotIn(cid, clips)
          continue
        c = clips[cid]
        for k in ("audio", "visual_map", "visual_vec"):
          np.testing.assert_array_equal(c[k], arrays[k][i])
        np.testing.assert_array_equal(c["seg_audio"], dense[i])
        np.testing.assert_array_equal(c["seg_visual"], dense[i])
        # video labels: the event class only (the reference's mil_labels)
        event = np.eye(29)[ROWS[i][0] if ROWS[i][3] > ROWS[i][2] else 28]
        np.testing.assert_array_equal(c["labels"], event)
    s = ds.report["summary"]
    self.assertEqual((s["empty_event_rows"], s["duplicate_video_ids"],
                      s["videos_in_several_splits"], s["labels_h5_mismatch"]),
                     (1, 1, 1, 0))

  def test_crlf_bom_txt_splits_noisy_and_event_labels(self):
    arrays = write_ave_fixture(self.root, "data", "\r\n", "\ufeff",
                               order_files=False, vec=False)
    ds = ave.AVEDataset(self.root, video_labels="event")
    self.assertEqual(ds.splits["train"], ORDER["train"])
    self.assertEqual([f.name for f in ds.features], ["audio", "visual_map"])
    self.assertTrue(ds.report["noisy"]["included"])
    clip = ds.load("train", 1)
    self.assertEqual(np.flatnonzero(clip["labels"]).tolist(), [1])
    self.assertEqual(np.flatnonzero(ds.load("train", 2)["labels"]).tolist(),
                     [28])  # the empty event: background only
    prepare.convert(ds, self.out, progress=False)
    noisy = list(prepare.read_clips(self.out, "train_noisy"))
    self.assertEqual([c["id"] for c in noisy],
                     ["noisy_000", "noisy_001", "noisy_002"])
    np.testing.assert_array_equal(noisy[1]["audio"], arrays["audio_noisy"][1])
    np.testing.assert_array_equal(noisy[2]["seg_audio"][:, 28], 1)
    np.testing.assert_array_equal(noisy[2]["labels"], np.eye(29)[28])

  def test_video_labels_default_to_the_event_class(self):
    # Row 1: class 1 on [2, 5); "union" (the old default) adds background.
    write_ave_fixture(self.root)
    self.assertEqual(
        np.flatnonzero(ave.AVEDataset(self.root).load("train", 1)["labels"])
        .tolist(), [1])
    union = ave.AVEDataset(self.root, video_labels="union")
    self.assertEqual(np.flatnonzero(union.load("train", 1)["labels"])
                     .tolist(), [1, 28])
    self.assertEqual(union.extra["video_labels"], "union")

  def test_background_only_clips_of_the_published_layout(self):
    # The release: audio_/visual_feature_noisy.h5 + labels_noisy.h5, and no
    # visual_feature_vec_noisy.h5 (the fixture writes exactly these).
    arrays = write_ave_fixture(self.root, noisy=4)
    self.assertFalse(os.path.exists(
        os.path.join(self.root, "h5", "visual_feature_vec_noisy.h5")))
    ds = ave.AVEDataset(self.root)
    self.assertEqual([f.name for f in ds.features],
                     ["audio", "visual_map", "visual_vec"])
    self.assertEqual(ds.report["summary"]["background_only_clips"], 4)
    self.assertIn("mean over the 7x7", ds.report["noisy"]["visual_vec"])
    report = prepare.convert(ds, self.out, num_shards=1, progress=False)
    self.assertEqual(report["written"]["train_noisy"], 4)
    self.assertIn("background_only_clips", "\n".join(
        prepare.summary_lines(report, self.out)))
    clips = list(prepare.read_clips(self.out, "train_noisy"))
    self.assertLen(clips, 4)
    np.testing.assert_allclose(clips[2]["visual_vec"],
                               arrays["visual_map_noisy"][2].mean((1, 2)),
                               rtol=1e-6)
    np.testing.assert_array_equal(clips[2]["visual_map"],
                                  arrays["visual_map_noisy"][2])
    np.testing.assert_array_equal(clips[0]["labels"], np.eye(29)[28])

  def test_missing_background_only_clips_are_never_silent(self):
    write_ave_fixture(self.root, noisy=0)
    ds = ave.AVEDataset(self.root)
    self.assertNotIn("train_noisy", ds.splits)
    self.assertEqual(ds.report["summary"]["background_only_clips"], 0)
    self.assertRegex(" ".join(ds.report["warnings"]),
                     r"audio_feature_noisy.h5.*NOT written")
    with self.assertRaisesRegex(FileNotFoundError,
                                r"audio_feature_noisy.h5.*--noisy=yes"):
      ave.AVEDataset(self.root, noisy="yes")
    self.assertEqual(ave.AVEDataset(self.root, noisy="no").report["noisy"]
                     ["reason"], "--noisy=no")
    # The weak trainer refuses the converted set rather than skip the split.
    prepare.convert(ds, self.out, num_shards=1, progress=False)
    c = ave_config.get_config("runlocal,weak,variant=v_att")
    c.data.name, c.data.data_dir = "ave", self.out
    with self.assertRaisesRegex(ValueError, r"no split \['train_noisy'\].*"
                                r"audio_feature_noisy.h5"):
      loop.setup(c, trainer=ave_supervised.TRAINER)

  def test_labels_h5_disagreement_reported(self):
    write_ave_fixture(self.root)
    with h5py.File(os.path.join(self.root, "h5/labels.h5"), "r+") as f:
      f["avadataset"][6, 0] = np.eye(29)[28]
    ds = ave.AVEDataset(self.root, labels_source="h5")
    self.assertEqual(ds.report["labels_h5_mismatch"]["count"], 1)
    self.assertEqual(ds.report["labels_h5_mismatch"]["examples"][0]["row"], 6)
    self.assertEqual(ds.load("val", 6)["seg_audio"][0].argmax(), 28)
    ds = ave.AVEDataset(self.root, labels_source="annotations")
    self.assertEqual(ds.load("val", 6)["seg_audio"][0].argmax(), 5)

  def test_feature_rows_must_match_annotations(self):
    write_ave_fixture(self.root)
    _h5(os.path.join(self.root, "h5/audio_feature.h5"),
        np.zeros((7, 10, 128), np.float32))
    with self.assertRaisesRegex(ValueError, r"audio_feature.h5.*\[7, 10, 128\]"
                                r".*expected \[8, 10, 128\]"):
      ave.AVEDataset(self.root)


class AVERealAnnotationsTest(absltest.TestCase):

  def test_counts(self):
    root = shared_ave_dir()
    if not os.path.isdir(root):
      self.skipTest(f"shared AVE annotations not found at {root}")
    rows, classes, splits, ids, dense, report = ave.read_annotations(root)
    self.assertLen(rows, 4143)
    self.assertLen(classes, 29)
    self.assertEqual(classes[-1], "background")
    self.assertEqual({s: len(v) for s, v in splits.items()},
                     {"train": 3339, "val": 402, "test": 402})
    self.assertLen(set(ids), 4143)
    self.assertEqual(dense.shape, (4143, 10, 29))
    np.testing.assert_array_equal(dense.sum(2), 1)
    counts = {k: v["count"] for k, v in report.items()
              if isinstance(v, dict) and "count" in v}
    self.assertEqual(counts, {
        "empty_event_rows": 1, "clipped_event_rows": 0,
        "duplicate_video_ids": 45, "videos_in_several_splits": 18,
        "rows_in_no_split": 0, "rows_in_several_splits": 0,
        "split_rows_not_in_annotations": 0, "split_order_mismatch": 0,
        "labels_h5_mismatch": 0, "bad_rows": 0})
    self.assertEqual(report["empty_event_rows"]["examples"][0]["video_id"],
                     "VWi2ENBuTbw")


if __name__ == "__main__":
  absltest.main()

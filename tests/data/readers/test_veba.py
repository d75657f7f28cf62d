"""VEBA layout: writer -> reader -> TFRecords round trip, policy report."""

import csv
import os

from absl.testing import absltest
import numpy as np

from avjax import errors
from avjax import prepare
from avjax.data import schema
from avjax.data.readers import single_label
from avjax.data.readers import veba
from tests import testing_utils

CLASSES = ["Speech", "Male speech, man speaking", "Vehicle", "Music"] + [
    f"Event{k}" for k in range(372)]
STREAMS = (single_label.Stream(schema.FeatureSpec("audio", 1, (16,)),
                               "feats/lcdur"),
           single_label.Stream(schema.FeatureSpec("visual", 8, (12,)),
                               "feats/effnet"))


def make_clip(i, split, audible, visible, events=(), t=10):
  rng = np.random.default_rng(i)
  return veba.VebaClip(
      f"Yx{i:09d}_30.000_40.000", split, audible, visible,
      {"audio": rng.standard_normal((t, 16), np.float32),
       "visual": rng.standard_normal((8 * t, 12), np.float32)}, events)


def clips():
  return [
      make_clip(0, "train", ["Speech", "Vehicle"], ["Vehicle"]),
      make_clip(1, "train", ["Male speech, man speaking"], []),
      make_clip(2, "val", ["Music"], ["Music"]),
      make_clip(3, "test", ["Speech", "Vehicle"], ["Vehicle"], [
          ("Speech", "a", 0, 4), ("Vehicle", "a", 2, 10),
          ("Vehicle", "v", 5, 9)]),
      make_clip(4, "test", ["Music"], [], [("Music", "a", 6, 12)], t=8),
  ]


class VebaTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root, self.out = testing_utils.make_tempdir(self), testing_utils.make_tempdir(self)
    self.clips = clips()
    veba.write_veba(self.root, CLASSES, self.clips, STREAMS)

  def test_round_trip(self):
    ds = veba.VebaDataset(self.root)
    self.assertLen(ds.classes, 376)
    self.assertEqual(ds.report["summary"], {k: 0 for k in veba.ISSUES})
    report = prepare.convert(ds, self.out, num_shards=2, progress=False)
    self.assertEqual(report["written"], {"train": 2, "val": 1, "test": 2})
    idx = {c: i for i, c in enumerate(CLASSES)}
    for split in ("train", "val", "test"):
      got = {c["id"]: c for c in prepare.read_clips(self.out, split)}
      for clip in (c for c in self.clips if c.split == split):
        g = got[clip.clip_id]
        np.testing.assert_array_equal(g["audio"], clip.features["audio"])
        np.testing.assert_array_equal(g["visual"], clip.features["visual"])
        np.testing.assert_array_equal(np.flatnonzero(g["audio_labels"]),
                                      sorted(idx[n] for n in clip.audible))
        np.testing.assert_array_equal(np.flatnonzero(g["visual_labels"]),
                                      sorted(idx[n] for n in clip.visible))
        np.testing.assert_array_equal(g["labels"], g["audio_labels"])
        self.assertEqual("seg_audio" in g, split == "test")
    test = {c["id"]: c for c in prepare.read_clips(self.out, "test")}
    g = test[self.clips[3].clip_id]
    np.testing.assert_array_equal(g["seg_audio"][:, idx["Speech"]],
                                  np.arange(10) < 4)
    np.testing.assert_array_equal(g["seg_audio"][:, idx["Vehicle"]],
                                  np.arange(10) >= 2)
    np.testing.assert_array_equal(g["seg_visual"][:, idx["Vehicle"]],
                                  (np.arange(10) >= 5) & (np.arange(10) < 9))
    self.assertEqual(g["seg_visual"].sum(), 4)
    g = test[self.clips[4].clip_id]  # T = 8: the event is clipped to [6, 8)
    self.assertEqual(g["seg_audio"].shape, (8, 376))
    np.testing.assert_array_equal(g["seg_audio"][:, idx["Music"]],
                                  np.arange(8) >= 6)

  def test_irregularities_reported(self):
    with open(os.path.join(self.root, "clips.csv"), "a", newline="") as f:
      w = csv.writer(f)
      w.writerow(["Yx000000009_0_10", "train", "Speech", "Vehicle"])
      w.writerow([self.clips[0].clip_id, "val", "Music", ""])
    with open(os.path.join(self.root, "events.csv"), "a", newline="") as f:
      w = csv.writer(f)
      w.writerow(["nope", "Speech", "a", 0, 1])
      w.writerow([self.clips[0].clip_id, "Speech", "a", 0, 1])
      w.writerow([self.clips[3].clip_id, "Music", "v", 3, 3])
      w.writerow([self.clips[3].clip_id, "Music", "v", 3, 5])
    ds = veba.VebaDataset(self.root)
    self.assertEqual(ds.report["summary"], {
        "visible_not_audible": 1, "events_unknown_clip": 1,
        "events_not_dense_split": 1, "empty_events": 1,
        "events_not_in_weak": 1, "duplicate_clips": 1, "bad_rows": 0})
    clip = ds.load("test", self.clips[3].clip_id)
    self.assertEqual(clip["seg_visual"][:, 3].tolist(), [0] * 3 + [1] * 2 +
                     [0] * 5)

  def test_unknown_class_names_line(self):
    with open(os.path.join(self.root, "clips.csv"), "a") as f:
      f.write("Yx1,train,Barking,\n")
    ds = veba.VebaDataset(self.root)  # default: the clip is skipped
    self.assertEqual(ds.report["summary"]["bad_rows"], 1)
    with self.assertRaisesRegex(errors.AnnotationError,
                                r"clips.csv:7: unknown class 'Barking'"):
      ds.load("train", "Yx1")
    with self.assertRaisesRegex(ValueError, r"clips.csv:7: unknown class "
                                "'Barking'.*--strict"):
      veba.VebaDataset(self.root, strict=True)

  def test_default_streams_are_llp_layout(self):
    os.remove(os.path.join(self.root, "features.json"))
    ds = veba.VebaDataset(self.root)
    self.assertEqual([s.folder for s in ds.streams],
                     ["feats/vggish", "feats/res152", "feats/r2plus1d_18"])
    with self.assertRaisesRegex(FileNotFoundError, "vggish"):
      ds.load("train", self.clips[0].clip_id)


if __name__ == "__main__":
  absltest.main()

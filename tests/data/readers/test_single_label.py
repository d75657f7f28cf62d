"""Single-label layout (VGGSound-style) -> TFRecords with one-hot labels."""

import os

from absl.testing import absltest
import numpy as np

from avjax import prepare
from avjax.data import schema
from avjax.data.readers import single_label
from tests import testing_utils

STREAMS = (single_label.Stream(schema.FeatureSpec("audio", 1, (6,)),
                               "feats/audio"),
           single_label.Stream(schema.FeatureSpec("visual_map", 1, (2, 2, 3)),
                               "feats/maps"))
CLASSES = ["playing cello", "dog barking", "car, passing by"]


def make_clips():
  rng = np.random.default_rng(0)
  out = []
  for i, (label, split, t) in enumerate([
      (2, "train", 10), (0, "train", 5), (1, "train", 10), (1, "test", 10),
      (2, "test", 3)]):
    out.append({"id": f"clip-{i}_000030", "label": CLASSES[label],
                "split": split,
                "audio": rng.standard_normal((t, 6), np.float32),
                "visual_map": rng.standard_normal((t, 2, 2, 3), np.float32)})
  return out


class SingleLabelTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root, self.out = testing_utils.make_tempdir(self), testing_utils.make_tempdir(self)
    self.clips = make_clips()
    single_label.write_single_label(self.root, CLASSES, self.clips, STREAMS)

  def test_round_trip_one_hot(self):
    ds = single_label.SingleLabelDataset(self.root)
    self.assertEqual(ds.classes, tuple(CLASSES))
    report = prepare.convert(ds, self.out, num_shards=2, progress=False)
    self.assertEqual(report["written"], {"train": 3, "test": 2})
    for split in ("train", "test"):
      got = {c["id"]: c for c in prepare.read_clips(self.out, split)}
      for clip in (c for c in self.clips if c["split"] == split):
        g = got[clip["id"]]
        np.testing.assert_array_equal(g["audio"], clip["audio"])
        np.testing.assert_array_equal(g["visual_map"], clip["visual_map"])
        np.testing.assert_array_equal(
            g["labels"], np.eye(3)[CLASSES.index(clip["label"])])

  def test_inferred_classes_duplicates_and_missing_files(self):
    os.remove(os.path.join(self.root, "classes.txt"))
    with open(os.path.join(self.root, "clips.csv"), "a") as f:
      f.write('clip-0_000030,"car, passing by",train\n')
      f.write("clip-0_000030,playing cello,val\n")
    os.remove(os.path.join(self.root, "feats/maps/clip-2_000030.npy"))
    ds = single_label.SingleLabelDataset(self.root, name="vggsound")
    self.assertEqual(ds.classes, tuple(sorted(CLASSES)))
    self.assertEqual(ds.report["duplicate_rows"]["count"], 1)
    self.assertEqual(ds.report["ids_in_several_splits"]["count"], 1)
    report = prepare.convert(ds, self.out, progress=False)
    self.assertEqual(report["skipped"]["train"]["by_reason"],
                     {"missing_file": 1})
    self.assertEqual(report["written"], {"train": 2, "test": 2, "val": 1})

  def test_stream_spec_parsing(self):
    streams = single_label.parse_streams(
        "audio=feats/vggish:1:128, visual_map=maps:1:7x7x512")
    self.assertEqual(streams[1].spec, schema.FeatureSpec("visual_map", 1,
                                                         (7, 7, 512)))
    self.assertEqual(streams[1].folder, "maps")
    with self.assertRaisesRegex(ValueError, "name=folder:F:shape"):
      single_label.parse_streams("audio=feats/vggish:128")

  def test_load_npy_checks(self):
    spec = schema.FeatureSpec("visual", 8, (4,))
    path = os.path.join(self.root, "x.npy")
    np.save(path, np.zeros((12, 4), np.float64))
    with self.assertRaisesRegex(ValueError, r"x.npy: feature 'visual' has "
                                r"shape \[12, 4\], expected \[T\*8, 4\]"):
      single_label.load_npy(path, spec)
    np.save(path, np.zeros((16, 4), np.float64))
    self.assertEqual(single_label.load_npy(path, spec).dtype, np.float32)
    with self.assertRaisesRegex(ValueError, r"expected \[80, 4\]"):
      single_label.load_npy(path, spec, num_segments=10)
    with open(path, "wb") as f:
      f.write(b"garbage")
    with self.assertRaisesRegex(ValueError, "unreadable"):
      single_label.load_npy(path, spec)


if __name__ == "__main__":
  absltest.main()

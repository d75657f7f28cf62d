"""Round trips and validation errors of the TFRecord clip contract."""

import os
import tempfile

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from avjax.data import pipeline
from avjax.data import tfrecord
from tests import testing_utils as tu


class TFRecordTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()

  def _read_all(self, split, feats=("audio", "visual", "motion")):
    info = tfrecord.read_info(self.dir)
    files = tfrecord.split_files(self.dir, info, split)
    ds = tf.data.TFRecordDataset(files).batch(100).map(
        lambda s: tfrecord.parse_batch(s, info, split, feats))
    return next(iter(ds.as_numpy_iterator()))

  def test_exact_round_trip_variable_length(self):
    tu.write_fake_dataset(self.dir, {"val": 6}, num_shards=1, lengths=(3, 5))
    b = self._read_all("val")
    for i in range(6):
      clip = tu.fake_clip(i, (3, 5)[i % 2])
      self.assertEqual(b["clip_id"][i].decode(), clip["id"])
      t = (3, 5)[i % 2]
      np.testing.assert_array_equal(b["segment_mask"][i],
                                    np.arange(5) < t)
      np.testing.assert_array_equal(b["audio"][i, :t], clip["audio"])
      np.testing.assert_array_equal(b["audio"][i, t:], 0)
      np.testing.assert_array_equal(b["visual"][i, :2 * t], clip["visual"])
      np.testing.assert_array_equal(b["seg_visual"][i, :t], clip["seg_visual"])
      np.testing.assert_array_equal(b["labels"][i], clip["labels"])

  def test_wrong_shape_rejected_at_write(self):
    clip = tu.fake_clip(0)
    clip["visual"] = clip["visual"][:, :7]
    w = tfrecord.DatasetWriter(self.dir, "x", tu.CLASSES, tu.FEATURES)
    with self.assertRaisesRegex(ValueError, r"clip 'clip0000'.*'visual'.*"
                                r"shape \(10, 7\), expected \[T\*2, 8\]"):
      w.write_split("val", [clip], ("labels",))

  def test_nan_rejected_at_write(self):
    clip = tu.fake_clip(0)
    clip["motion"][2, 1] = np.nan
    w = tfrecord.DatasetWriter(self.dir, "x", tu.CLASSES, tu.FEATURES)
    with self.assertRaisesRegex(ValueError, r"clip 'clip0000'.*'motion'.*"
                                r"non-finite.*\(2, 1\)"):
      w.write_split("val", [clip], ("labels",))

  def test_nan_in_file_names_clip(self):
    tu.write_fake_dataset(self.dir, {"val": 3}, num_shards=1)
    info = tfrecord.read_info(self.dir)
    clip = tu.fake_clip(7)
    clip["id"] = "poisoned"
    clip["audio"][1, 1] = np.inf  # bypasses the writer's validation
    path = tfrecord.split_files(self.dir, info, "val")[0]
    with tf.io.TFRecordWriter(path) as w:
      w.write(tfrecord.encode_clip(clip, tu.FEATURES, ("labels",) * 0 + (
          "labels", "audio_labels", "visual_labels", "seg_audio",
          "seg_visual")))
    src = pipeline.Source(self.dir, "val", ("audio",))
    with self.assertRaisesRegex(pipeline.DataError,
                                r"non-finite.*'audio'.*poisoned"):
      list(pipeline.eval_batches(src, 4))

  def test_size_mismatch_in_file_names_clip(self):
    tu.write_fake_dataset(self.dir, {"val": 2}, num_shards=1)
    info = tfrecord.read_info(self.dir)
    info["features"][0]["shape"] = [7]  # the file holds 6-d audio
    with open(os.path.join(self.dir, tfrecord.INFO_FILE), "w") as f:
      import json  # pylint: disable=g-import-not-at-top
      json.dump({k: v for k, v in info.items() if k != "feature_specs"}, f)
    src = pipeline.Source(self.dir, "val", ("audio",))
    with self.assertRaisesRegex(pipeline.DataError,
                                r"size mismatch for 'audio'.*clip0000"):
      list(pipeline.eval_batches(src, 4))

  def test_corrupt_file_named(self):
    tu.write_fake_dataset(self.dir, {"train": 16}, num_shards=2)
    info = tfrecord.read_info(self.dir)
    path = tfrecord.split_files(self.dir, info, "train")[1]
    data = bytearray(open(path, "rb").read())
    data[40:60] = b"\x00" * 20
    open(path, "wb").write(bytes(data))
    src = pipeline.Source(self.dir, "train", ("audio",))
    with self.assertRaisesRegex(pipeline.DataError,
                                r"corrupt TFRecord.*train-00001-of-00002"):
      list(pipeline.train_batches(src, 4, seed=0, num_steps=4))

  def test_corrupt_record_data_named_in_permuted_order(self):
    tu.write_fake_dataset(self.dir, {"train": 16}, num_shards=2)
    info = tfrecord.read_info(self.dir)
    path = tfrecord.split_files(self.dir, info, "train")[0]
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # one flipped bit inside a record's data
    open(path, "wb").write(bytes(data))
    src = pipeline.Source(self.dir, "train", ("audio",))
    with self.assertRaisesRegex(pipeline.DataError,
                                r"corrupt TFRecord.*train-00000-of-00002"):
      list(pipeline.train_batches(src, 4, seed=0, num_steps=4))

  def test_flipped_data_bit_names_the_clip(self):
    tu.write_fake_dataset(self.dir, {"train": 16}, num_shards=2)
    info = tfrecord.read_info(self.dir)
    path = tfrecord.split_files(self.dir, info, "train")[0]
    offsets = pipeline.record_offsets(path)
    data = bytearray(open(path, "rb").read())
    data[offsets[2] + 20] ^= 0x01  # inside clip 3's data
    open(path, "wb").write(bytes(data))
    src = pipeline.Source(self.dir, "train", ("audio",))
    with self.assertRaisesRegex(
        pipeline.DataError, rf"train-00000-of-00002.tfrecord \(clip 3 of the "
        rf"file, at byte {offsets[2]}: "):
      list(pipeline.train_batches(src, 4, seed=0, num_steps=4))

  def test_file_changed_after_the_check_is_refused(self):
    tu.write_fake_dataset(self.dir, {"train": 16}, num_shards=2)
    info = tfrecord.read_info(self.dir)
    path = tfrecord.split_files(self.dir, info, "train")[0]
    src = pipeline.Source(self.dir, "train", ("audio",))
    batches = pipeline.train_batches(src, 4, seed=0, num_steps=8)
    next(batches)
    with open(path, "ab") as f:  # e.g. a prepare run rewriting the shard
      f.write(b"\0" * 16)
    with self.assertRaisesRegex(pipeline.DataError,
                                "train-00000-of-00002.*changed"):
      list(batches)

  def test_missing_info_explains(self):
    with self.assertRaisesRegex(FileNotFoundError, "dataset_info.json"):
      tfrecord.read_info(self.dir)


if __name__ == "__main__":
  absltest.main()

"""Synthetic VEBA-like data: structure, determinism, TFRecords (NumPy only)."""

import dataclasses

from absl.testing import absltest
import numpy as np

from avjax.data.synthetic import veba as sv
from avjax.data import tfrecord
from tests import testing_utils

SMALL = sv.VebaSyntheticConfig(num_train=16, num_val=8, num_test=8)


class SyntheticVebaTest(absltest.TestCase):

  def test_video_labels_are_a_subset_and_test_is_dense(self):
    for split in sv.SPLITS:
      for i in range(8):
        c = sv.make_clip(SMALL, split, i)
        self.assertEqual(c["audio"].shape, (10, 128))
        self.assertEqual(c["visual"].shape, (10, 128))
        self.assertEqual(c["labels"].shape, (376,))
        self.assertTrue(np.all(c["visual_labels"] <= c["audio_labels"]))
        np.testing.assert_array_equal(c["labels"], c["audio_labels"])
        self.assertEqual("seg_audio" in c, split == "test")
        if split == "test":  # weak = "somewhere in the clip"
          np.testing.assert_array_equal(c["seg_audio"].max(0),
                                        c["audio_labels"])
          np.testing.assert_array_equal(c["seg_visual"].max(0),
                                        c["visual_labels"])

  def test_deterministic(self):
    a = sv.make_clip(SMALL, "test", 3)
    b = sv.make_clip(dataclasses.replace(SMALL, num_test=50), "test", 3)
    for k in a:
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    c = sv.make_clip(dataclasses.replace(SMALL, seed=1), "test", 3)
    self.assertFalse(np.array_equal(a["audio"], c["audio"]))

  def test_mismatch_and_long_tail_statistics(self):
    s = sv.describe(sv.VebaSyntheticConfig(), "train", 1000)
    self.assertBetween(s["audio_labels_per_clip"], 1.7, 2.1)  # VEBA ~2.0
    self.assertBetween(s["video_labels_per_clip"], 0.7, 1.1)  # VEBA ~1.0
    self.assertBetween(s["frac_heard_not_seen"], 0.4, 0.65)  # voice-over
    self.assertBetween(s["frac_seen_partly_synchronous"], 0.3, 0.6)
    self.assertGreater(s["top_class_share"], 0.03)  # head ~20x the mean
    self.assertGreater(s["classes_with_le5_clips"], 100)
    st = sv.class_stats(sv.VebaSyntheticConfig())
    self.assertEqual(list(st["vis"][:2]), [0.2, 0.2])  # Speech, Music

  def test_materialize_writes_a_cached_dataset(self):
    root = testing_utils.make_tempdir(self)
    out = sv.materialize(SMALL, root, num_shards=2)
    self.assertEqual(sv.materialize(SMALL, root, num_shards=2), out)
    info = tfrecord.read_info(out)
    self.assertLen(info["classes"], 376)
    self.assertEqual(info["classes"][:2], ["Speech", "Music"])
    self.assertIn("seg_audio", info["splits"]["test"]["label_keys"])
    self.assertNotIn("seg_audio", info["splits"]["val"]["label_keys"])


if __name__ == "__main__":
  absltest.main()

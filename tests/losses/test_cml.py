"""Cross-modality localization training pairs (AVDLN / DCCA)."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from avjax.data import pipeline
from avjax.data import schema
from avjax.losses import cml
from configs import ave_cml
from tests import testing_utils as tu


class PairMasksTest(absltest.TestCase):

  def test_pair_masks(self):
    y = np.eye(3)[[[2, 0, 0, 2]]]  # background = last class
    pos, neg = cml.pair_masks(jnp.asarray(y), jnp.ones((1, 4)))
    np.testing.assert_array_equal(pos, [[0, 1, 1, 0]])
    self.assertEqual(float(neg[0, 0, 0]), 0.0)  # diagonal
    self.assertEqual(float(neg[0, 0, 3]), 0.0)  # background x background
    self.assertEqual(float(neg[0, 0, 1]), 1.0)



class ReferenceProtocolTest(absltest.TestCase):
  """AVDLN's reference protocol (cmm_train.py): same-time pairs, y = 1 on
  event segments and 0 on background, plain mean, 8 pairs a batch, the
  final model; the default with data=ave."""

  def test_config_forms(self):
    ref = ave_cml.get_config("data=ave")
    self.assertEqual((ref.loss.pairs, ref.data.batch_unit,
                      ref.eval.checkpoint, ref.batch_size),
                     ("same_time", "segment_split", "final", 8))
    for old in (ave_cml.get_config("data=ave,form=avjax"),
                ave_cml.get_config()):
      self.assertEqual((old.loss.pairs, old.data.batch_unit,
                        old.eval.checkpoint), ("shifted", "clip", "best"))
    self.assertEqual(ave_cml.get_config("form=reference").loss.pairs,
                     "same_time")
    with self.assertRaisesRegex(ValueError, "form='x'"):
      ave_cml.get_config("form=x")

  def test_same_time_loss(self):
    rng = np.random.default_rng(0)
    ea, ev = rng.normal(size=(2, 2, 3, 4)).astype(np.float32)
    y = np.eye(3)[[[0, 2, 2], [1, 1, 2]]]  # background = 2
    mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    d = np.linalg.norm(ea[:, :, None] - ev[:, None], axis=-1)
    out = {"audio_emb": jnp.asarray(ea), "visual_emb": jnp.asarray(ev),
           "dist": jnp.asarray(d)}
    cfg = ave_cml.get_config("data=ave")
    loss = cml.loss_fn(out, {"seg_audio": jnp.asarray(y),
                             "segment_mask": jnp.asarray(mask)}, config=cfg)
    diag = np.diagonal(d, axis1=1, axis2=2)
    same = (y.argmax(-1) < 2).astype(np.float32)
    per = same * diag**2 + (1 - same) * np.maximum(0, 2.0 - diag)**2
    want = (per * mask).sum() / mask.sum()  # no negatives across time/clips
    np.testing.assert_allclose(float(loss["loss"]), want, rtol=1e-5)
    self.assertEqual(set(loss), {"loss"})
    # The other form differs on the same batch (shifted/cross-clip terms).
    cfg.loss.pairs = "shifted"
    self.assertNotAlmostEqual(float(cml.loss_fn(
        out, {"seg_audio": jnp.asarray(y), "segment_mask": jnp.asarray(mask)},
        config=cfg)["loss"]), want, places=3)

  def test_segment_batches(self):
    info = {"max_segments": 3, "feature_specs": [
        schema.FeatureSpec("audio", 1, (2,)),
        schema.FeatureSpec("visual_vec", 1, (2,))]}
    def clips(n_batches, b=2):
      for k in range(n_batches):
        ids = np.array([f"c{k}{i}" for i in range(b)])
        seg = np.arange(b * 3, dtype=np.float32).reshape(b, 3) + 10 * k
        yield {"clip_id": ids, "audio": seg[..., None].repeat(2, -1),
               "visual_vec": -seg[..., None].repeat(2, -1),
               "segment_mask": np.ones((b, 3), np.float32),
               "seg_audio": np.eye(4)[np.zeros((b, 3), int)],
               "labels": np.ones((b, 4))}
    out = list(pipeline.segment_batches(clips(2), info,
                                        ("audio", "visual_vec"), seed=0))
    self.assertLen(out, 6)  # 3 batches of 2 pairs per batch of 2 clips
    for x in out:
      self.assertEqual(x["audio"].shape, (2, 1, 2))
      self.assertEqual(x["segment_mask"].shape, (2, 1))
      self.assertEqual(x["seg_audio"].shape, (2, 1, 4))
      self.assertEqual(x["labels"].shape, (2, 4))
      np.testing.assert_array_equal(x["audio"], -x["visual_vec"])  # same t
    seen = sorted(float(v) for x in out[:3] for v in x["audio"][:, 0, 0])
    self.assertEqual(seen, [0, 1, 2, 3, 4, 5])  # every pair once
    # Resumed at step 4: the caller passes the clip batches from start_step // T = 1 on)
    resumed = list(pipeline.segment_batches(
        (b for i, b in enumerate(clips(2)) if i >= 1), info,
        ("audio", "visual_vec"), seed=0, start_step=4))
    self.assertLen(resumed, 2)
    for a, b in zip(resumed, out[4:]):
      np.testing.assert_array_equal(a["audio"], b["audio"])

  def split_fixture(self, num_train: int, num_shards: int):
    """(train Source, {clip id: clip}) of a fake split of 3-segment clips."""
    data = tu.make_tempdir(self)
    tu.write_fake_dataset(data, {"train": num_train, "val": 2, "test": 2},
                          num_shards=num_shards, lengths=(3,))
    return pipeline.Source(data, "train", ("audio",)), {
        c["id"]: c for c in pipeline.read_clips(data, "train")}

  def test_split_segment_batches_permute_every_pair_of_the_split(self):
    src, clips = self.split_fixture(16, 2)
    b, t = 4, 3
    spe = src.steps_per_epoch(b) * t  # 12 steps of 4 pairs = all 48 rows
    out = list(pipeline.split_segment_batches(src, b, seed=0,
                                              num_steps=2 * spe))
    self.assertLen(out, 2 * spe)
    for epoch in (out[:spe], out[spe:]):
      rows = []
      for x in epoch:
        self.assertEqual(x["audio"].shape, (b, 1, 6))
        self.assertEqual(x["segment_mask"].shape, (b, 1))
        for cid, a in zip(x["clip_id"], x["audio"][:, 0]):
          seg = [k for k in range(t) if np.array_equal(
              clips[cid.decode()]["audio"][k], a)]
          self.assertLen(seg, 1)  # a real segment of that clip
          rows.append((cid.decode(), seg[0]))
      self.assertLen(set(rows), 16 * t)  # every pair exactly once
    # Split-wide: the first T steps mix more than the B clips a group has.
    first = {c for x in out[:t] for c in x["clip_id"]}
    self.assertGreater(len(first), b)
    self.assertNotEqual([x["clip_id"].tolist() for x in out[:spe]],
                        [x["clip_id"].tolist() for x in out[spe:]])
    # A pure function of (seed, step): resuming at step 7 continues exactly.
    resumed = list(pipeline.split_segment_batches(src, b, seed=0,
                                                  start_step=7,
                                                  num_steps=2 * spe))
    self.assertLen(resumed, 2 * spe - 7)
    for a, x in zip(resumed, out[7:]):
      np.testing.assert_array_equal(a["audio"], x["audio"])
      np.testing.assert_array_equal(a["clip_id"], x["clip_id"])

  def test_split_segment_batches_fixed_order(self):
    # order="fixed" (Keras fit(shuffle=False)): every epoch the clips in
    # their written order, each clip's segments in time order.
    src, clips = self.split_fixture(10, 3)
    spe = src.steps_per_epoch(4) * 3  # 2 clip batches -> 6 steps, 24 rows
    out = list(pipeline.split_segment_batches(src, 4, seed=0,
                                              num_steps=2 * spe,
                                              order="fixed"))
    want = [(f"clip{i:04d}", k) for i in range(8) for k in range(3)]
    for epoch in (out[:spe], out[spe:]):
      rows = []
      for x in epoch:
        for cid, a in zip(x["clip_id"], x["audio"][:, 0]):
          rows += [(cid.decode(), k) for k in range(3) if np.array_equal(
              clips[cid.decode()]["audio"][k], a)]
      self.assertEqual(rows, want)
    resumed = list(pipeline.split_segment_batches(
        src, 4, seed=0, start_step=5, num_steps=2 * spe, order="fixed"))
    for a, x in zip(resumed, out[5:]):
      np.testing.assert_array_equal(a["clip_id"], x["clip_id"])

  def test_split_segment_batches_refuse_a_split_over_the_memory_limit(self):
    data = tu.make_tempdir(self)
    tu.write_fake_dataset(data, {"train": 8, "val": 2, "test": 2},
                          num_shards=1, lengths=(3,))
    src = pipeline.Source(data, "train", ("audio", "visual"))
    self.assertEqual(pipeline.split_segment_bytes(src),
                     8 * 3 * (6 + 2 * 8) * 4)
    old = pipeline.SPLIT_ROWS_MAX_BYTES
    pipeline.SPLIT_ROWS_MAX_BYTES = 100
    self.addCleanup(setattr, pipeline, "SPLIT_ROWS_MAX_BYTES", old)
    with self.assertRaisesRegex(ValueError, r"batch_unit=segment \(pairs"):
      next(pipeline.split_segment_batches(src, 4, seed=0))


if __name__ == "__main__":
  absltest.main()

"""MA: partner pairing, refinement rule, loss dispatch, 3-stage pipeline."""

import csv
import os
import tempfile
import types

from absl.testing import absltest
import pytest
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from avjax.data import schema
from avjax.data import tfrecord
from avjax.losses import avvp as avvp_losses
from avjax.projects.ma import pipeline as ma_pipeline
from avjax.projects.ma import refine as ma_refine
from configs import avvp_ma
from tests import testing_utils as tu


def tiny_config(data_dir, variant="cr"):
  c = avvp_ma.get_config(f"runlocal,variant={variant}")
  c.data.name, c.data.data_dir = "fake", data_dir
  c.model.d_model = c.model.d_ff = 16
  c.batch_size = c.eval_batch_size = 8
  c.num_epochs, c.log_every_steps = 1, 4
  c.ma.batch_size = 16
  return c


class PairingTest(absltest.TestCase):

  def test_partners_are_disjoint_valid_and_never_self(self):
    rng = np.random.default_rng(0)
    labels = (rng.random((64, 6)) < 0.3).astype(np.float32)
    labels[np.arange(64), rng.integers(0, 6, 64)] = 1.0  # none empty
    labels[3] = 1.0  # overlaps every clip with a label: no partner
    valid = np.ones(64, np.float32)
    valid[60:] = 0
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    sh = NamedSharding(mesh, P("data"))
    fn = jax.jit(ma_refine.pick_partners)
    for seed in range(3):
      partner, ok = jax.device_get(fn(jax.device_put(labels, sh),
                                      jax.random.PRNGKey(seed),
                                      jax.device_put(valid, sh)))
      overlap = (labels @ labels.T)[np.arange(64), partner]
      self.assertTrue(np.all(overlap[ok] == 0))
      self.assertTrue(np.all(partner[ok] != np.arange(64)[ok]))
      self.assertTrue(np.all(valid[partner[ok]] == 1))
      exists = [any((labels[i] @ labels[j] == 0) and j != i and valid[j]
                    for j in range(64)) for i in range(64)]
      np.testing.assert_array_equal(ok, exists)
      self.assertFalse(ok[3])
    again = fn(labels, jax.random.PRNGKey(1), valid)[0]
    other = fn(labels, jax.random.PRNGKey(2), valid)[0]
    self.assertGreater(int(jnp.sum(again != other)), 10)

  def test_draw_partners_uniform_over_the_whole_split(self):
    # Reference (step2 dataloader): redraw a uniform clip of the whole split
    # until the label sets are disjoint. Clip 0's only disjoint clips lie
    # far outside any refinement batch of its neighbours.
    n = 300
    labels = np.zeros((n, 4), np.float32)
    labels[:, 0] = 1
    labels[:, 1] = np.arange(n) % 2
    free = [130, 280, 299]
    labels[free] = [0, 0, 1, 0]
    labels[7] = [1, 1, 1, 1]  # overlaps every clip: no partner
    counts = np.zeros(n)
    for seed in range(600):
      partner, ok = ma_refine.draw_partners(labels,
                                            np.random.default_rng(seed))
      overlap = (labels * labels[partner]).sum(1)
      self.assertTrue(np.all(overlap[ok] == 0))
      self.assertFalse(ok[7])
      self.assertEqual(int(ok.sum()), n - 1)
      counts[partner[0]] += 1
    self.assertEqual(set(np.flatnonzero(counts)), set(free))
    np.testing.assert_allclose(counts[free] / 600, 1 / 3, atol=0.07)
    # Each clip draws its own partner (not one per label set).
    partner, _ = ma_refine.draw_partners(labels, np.random.default_rng(0))
    self.assertGreater(len(set(partner[free])), 1)

  def test_pair_batches_carry_each_clips_partner(self):
    d = tu.make_tempdir(self)
    tu.write_fake_dataset(d, {"train": 11, "val": 2, "test": 2},
                          num_shards=3, lengths=(5, 3))
    reader = ma_refine.SplitReader(d, "train")
    ids, labels = reader.labels(chunk=4)
    clips = list(ma_refine.read_clips(d, "train"))  # file order
    self.assertEqual(list(ids), [c["id"].encode() for c in clips])
    np.testing.assert_array_equal(labels, [c["labels"] for c in clips])
    partner = (np.arange(11) * 5 + 3) % 11
    ok = np.arange(11) != 4
    feats = ("audio", "visual", "motion")
    seen = []
    nbatches = []
    for h in range(2):
      batches = list(ma_refine.pair_batches(reader, feats, partner, ok, 4,
                                            h, 2))
      nbatches.append(len(batches))
      for b in batches:
        for r in np.flatnonzero(b["_mask"]):
          i = [c["id"] for c in clips].index(b["clip_id"][r].decode())
          j = partner[i]
          seen.append(i)
          t = len(clips[j]["audio"])
          np.testing.assert_array_equal(b["partner_audio"][r, :t],
                                        clips[j]["audio"])
          np.testing.assert_array_equal(b["partner_visual"][r, :2 * t],
                                        clips[j]["visual"])
          self.assertEqual(b["partner_segment_mask"][r].sum(), t)
          self.assertEqual(
              bytes(b["partner_id_bytes"][r]).rstrip(b"\0").decode(),
              clips[j]["id"])
          self.assertEqual(b["ok"][r], float(ok[i]))
    self.assertEqual(nbatches, [2, 2])  # the same count on every host
    self.assertCountEqual(seen, range(11))

  def test_pair_predict_swaps_whole_tracks(self):
    # A fake model whose audio/visual heads echo their input streams shows
    # which clip's track each variant saw.
    def apply_fn(variables, b, train):
      del variables
      assert not train
      m = b["segment_mask"][:, :, None]
      return {"audio_prob": (b["audio"] * m).sum(1),
              "visual_prob": (b["motion"] * m).sum(1)}
    state = types.SimpleNamespace(apply_fn=apply_fn, params={},
                                  variables=lambda: {"params": {}})
    own = {"audio": jnp.full((2, 3, 1), 1.0),
           "motion": jnp.full((2, 3, 1), 2.0), "visual": jnp.zeros((2, 6, 1)),
           "segment_mask": jnp.array([[1, 1, 1], [1, 1, 0]], jnp.float32)}
    batch = dict(own, labels=jnp.ones((2, 1)), _mask=jnp.ones(2),
                 clip_id_bytes=jnp.zeros((2, 4), jnp.uint8),
                 ok=jnp.array([1.0, 0.0]),
                 partner_id_bytes=jnp.ones((2, 4), jnp.uint8),
                 partner_audio=jnp.full((2, 3, 1), 10.0),
                 partner_motion=jnp.full((2, 3, 1), 20.0),
                 partner_visual=jnp.zeros((2, 6, 1)),
                 partner_segment_mask=jnp.array([[1, 1, 0], [1, 1, 1]],
                                                jnp.float32))
    res = jax.jit(lambda b: ma_refine.pair_predict(state, b))(batch)
    # Steps valid in both: clip 0 -> 2, clip 1 -> 2 (3 unswapped: 3 and 2).
    np.testing.assert_allclose(res["audio_prob"][:, :, 0],
                               [[3, 2, 20], [2, 2, 20]])
    np.testing.assert_allclose(res["visual_prob"][:, :, 0],
                               [[6, 40, 4], [4, 40, 4]])
    np.testing.assert_array_equal(res["ok"], [True, False])
    np.testing.assert_array_equal(res["partner_id_bytes"],
                                  batch["partner_id_bytes"])

  def test_assemble_swaps_only_named_streams(self):
    x = {"audio": jnp.arange(3.0)[:, None], "visual": 10 + jnp.arange(3.0),
         "segment_mask": jnp.array([[1, 1], [1, 0], [1, 1]], jnp.float32)}
    y = ma_refine.assemble(x, jnp.array([1, 2, 0]), ma_refine.VISUAL_KEYS)
    np.testing.assert_array_equal(y["audio"], x["audio"])
    np.testing.assert_array_equal(y["visual"], [11.0, 12.0, 10.0])
    np.testing.assert_array_equal(y["segment_mask"], [[1, 0], [1, 0], [1, 1]])


class RuleTest(absltest.TestCase):

  def test_error_rates_normalised_by_max(self):
    prob = np.array([[0.9, 0.1], [0.2, 0.8]])
    labels = np.array([[1, 1], [0, 1]])
    np.testing.assert_allclose(ma_refine.error_rates(prob, labels), [0, 1])

  def test_decide_follows_eqs_6_7(self):
    c = 3
    pred = {"labels": np.array([[1, 1, 0], [1, 1, 1]], np.float32),
            "ok": np.array([True, False]),
            "audio_prob": np.full((2, 3, c), 0.9),
            "visual_prob": np.full((2, 3, c), 0.9)}
    # Clip 0, class 0: (A_j, V_i) weak in both heads -> visual dropped.
    pred["audio_prob"][0, ma_refine.SWAP_AUDIO, 0] = 0.1
    pred["visual_prob"][0, ma_refine.SWAP_AUDIO, 0] = 0.2
    # Class 1: (A_i, V_j) weak in both heads, but E^a = 0.25 lifts 0.2 to 0.8.
    pred["audio_prob"][0, ma_refine.SWAP_VISUAL, 1] = 0.2
    pred["visual_prob"][0, ma_refine.SWAP_VISUAL, 1] = 0.1
    pred["audio_prob"][1] = pred["visual_prob"][1] = 0.0  # no partner: kept
    e = np.ones(c)
    ka, kv = ma_refine.decide(pred, np.array([1, 0.25, 1]), e)
    np.testing.assert_array_equal(kv, [[0, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(ka, [[1, 1, 0], [1, 1, 1]])
    ka, _ = ma_refine.decide(pred, e, e)
    np.testing.assert_array_equal(ka, [[1, 0, 0], [1, 1, 1]])
    ka, kv = ma_refine.decide(pred, e, e, "audio")
    np.testing.assert_array_equal(kv, pred["labels"])
    with self.assertRaisesRegex(ValueError, "modalities"):
      ma_refine.decide(pred, e, e, "av")

  def test_zero_error_class_is_never_dropped(self):
    # Reference: p / E with E = 0 is inf (or nan for p = 0), never < 0.5;
    # avjax used to divide by max(E, 1e-12) and dropped p = 0.
    pred = {"labels": np.ones((2, 2), np.float32), "ok": np.ones(2, bool),
            "audio_prob": np.zeros((2, 3, 2)), "visual_prob": np.zeros((2, 3, 2))}
    e = np.array([0.0, 1.0])
    ka, kv = ma_refine.decide(pred, e, e)
    np.testing.assert_array_equal(ka, [[1, 0], [1, 0]])
    np.testing.assert_array_equal(kv, [[1, 0], [1, 0]])

  def test_decide_matches_reference_values(self):
    # Hand-made swapped probabilities; expected drops as the reference's
    # estimate_label gives them (p / E < 0.5 in both heads, E = err / max).
    labels = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]],
                      np.float32)
    orig = np.array([[.9, .2, .1], [.8, .6, .9], [.6, .9, .7], [.9, .9, .2]])
    e = ma_refine.error_rates(orig, labels)  # errs 1/4, 2/4, 1/4 -> .5 1 .5
    np.testing.assert_allclose(e, [0.5, 1.0, 0.5])
    a = np.stack([orig, np.full((4, 3), .9), np.full((4, 3), .9)], 1)
    v = a.copy()
    a[:, ma_refine.SWAP_AUDIO] = [[.2, .45, .9], [.24, .9, .1], [.9, .3, .26],
                                  [.1, .1, .1]]
    v[:, ma_refine.SWAP_AUDIO] = [[.1, .2, .9], [.1, .9, .1], [.9, .49, .1],
                                  [.3, .1, .1]]
    a[3, ma_refine.SWAP_VISUAL] = [.1, .4, .2]
    v[3, ma_refine.SWAP_VISUAL] = [.2, .3, .3]
    pred = {"labels": labels, "ok": np.ones(4, bool), "audio_prob": a,
            "visual_prob": v}
    ka, kv = ma_refine.decide(pred, e, e)
    # Dropped where both heads give p / E < .5: p < .25 for classes 0 and 2,
    # p < .5 for class 1 (the official estimate_label on these values gives
    # the same keeps).
    np.testing.assert_array_equal(kv, [[0, 0, 0], [0, 0, 0], [0, 0, 1],
                                       [1, 0, 0]])
    np.testing.assert_array_equal(ka, [[1, 1, 0], [1, 0, 1], [0, 1, 1],
                                       [0, 0, 1]])

  def test_error_rates_round_as_the_reference(self):
    # The reference's E_c is (1 - acc_c) / max(1 - acc), acc = the float32
    # mean of [p > 0.5] == y: 1 - fl(1999/2000) is not 1/2000 (~2e-5
    # relative), so E = 1/3 exactly would keep a label the reference drops.
    n = 2000
    labels = np.zeros((n, 2), np.float32)
    labels[:, 0] = 1
    orig = np.tile(np.float32([0.9, 0.1]), (n, 1))
    orig[0, 0] = 0.2  # class 0: 1 error
    orig[1:4, 1] = 0.8  # class 1: 3 errors
    acc = np.float32([1999, 1997]) / np.float32(n)
    ref = (np.float32(1) - acc) / (np.float32(1) - acc).max()
    e = ma_refine.error_rates(orig, labels)
    self.assertEqual(e.dtype, np.float32)
    np.testing.assert_array_equal(e, ref)
    self.assertNotEqual(e[0], np.float32(1 / 3))
    # p = 0.16667: p / E_0 = 0.49999 (reference: dropped), p * 3 = 0.50001.
    a = np.tile(orig[:, None], (1, 3, 1))
    a[0, ma_refine.SWAP_AUDIO, 0] = 0.16667
    pred = {"labels": labels, "ok": np.ones(n, bool), "audio_prob": a,
            "visual_prob": a.copy()}
    _, kv = ma_refine.decide(pred, e, e)
    self.assertFalse(kv[0, 0])
    self.assertEqual(int((labels > 0).sum() - kv.sum()), 1)

  def test_error_rates_without_errors(self):
    prob = np.array([[0.9, 0.1]])
    e = ma_refine.error_rates(prob, np.array([[1, 0]]))
    np.testing.assert_array_equal(e, [0, 0])  # reference: nan, never drops
    pred = {"labels": np.ones((1, 2)), "ok": np.ones(1, bool),
            "audio_prob": np.zeros((1, 3, 2)), "visual_prob": np.zeros((1, 3, 2))}
    ka, kv = ma_refine.decide(pred, e, e)
    self.assertTrue(ka.all() and kv.all())

  def test_drop_quality(self):
    y = np.array([[1, 1, 1, 0]])
    truth = np.array([[1, 0, 0, 0]])
    kept = np.array([[0, 0, 1, 0]], bool)
    q = ma_refine.drop_quality(y, kept, truth)
    self.assertEqual((q["dropped"], q["truly_absent"]), (2, 2))
    self.assertAlmostEqual(q["precision"], 0.5)
    self.assertAlmostEqual(q["recall"], 0.5)
    self.assertAlmostEqual(q["label_accuracy_before"], 1 / 3)
    self.assertAlmostEqual(q["label_accuracy_after"], 1 / 3)


class RefinedDatasetTest(absltest.TestCase):

  def test_adds_modality_labels_to_a_weak_only_split(self):
    src, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    w = tfrecord.DatasetWriter(src, "fake", tu.CLASSES, tu.FEATURES)
    w.write_split("train", (tu.fake_clip(i, 3 + i % 2, dense=False)
                            for i in range(6)), ("labels",), num_shards=2)
    w.write_split("test", (tu.fake_clip(100 + i) for i in range(3)),
                  ("labels",) + schema.DENSE_KEYS, num_shards=1)
    w.finish()
    ids = [f"clip{i:04d}" for i in range(6)]
    refined = {c: (np.eye(4, dtype=np.float32)[i % 4],
                   np.zeros(4, np.float32)) for i, c in enumerate(ids)}
    info = ma_refine.write_refined_dataset(src, os.path.join(out, "d"),
                                           "train", refined)
    self.assertEqual(info["splits"]["train"]["label_keys"],
                     ["labels", "audio_labels", "visual_labels"])
    self.assertEqual(info["splits"]["test"]["num_clips"], 3)
    clips = {c["id"]: c for c in ma_refine.read_clips(
        os.path.join(out, "d"), "train")}
    self.assertCountEqual(clips, ids)
    for i, c in enumerate(ids):
      np.testing.assert_array_equal(clips[c]["audio_labels"], refined[c][0])
      self.assertLen(clips[c]["audio"], 3 + i % 2)
    test = list(ma_refine.read_clips(os.path.join(out, "d"), "test"))
    self.assertEqual(test[0]["seg_audio"].shape, (5, 4))

  def test_keeps_the_layout_so_stage3_replays_stage1_order(self):
    """The official step 3 draws the same rows in the same order as step 1
    (same seed); the refined copy must keep every clip's file and position
    so that avjax's stage 3 reads them in its stage 1's order too."""
    from avjax.data import pipeline  # pylint: disable=g-import-not-at-top
    src, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    w = tfrecord.DatasetWriter(src, "fake", tu.CLASSES, tu.FEATURES)
    w.write_split("train", (tu.fake_clip(i, 3, dense=False)
                            for i in range(23)), ("labels",), num_shards=4)
    w.finish()
    refined = {f"clip{i:04d}": (np.ones(4, np.float32),
                                np.zeros(4, np.float32)) for i in range(23)}
    dst = os.path.join(out, "d")
    ma_refine.write_refined_dataset(src, dst, "train", refined)
    a, b = (tfrecord.read_info(d)["splits"]["train"] for d in (src, dst))
    self.assertEqual(a["files"], b["files"])
    self.assertEqual(a["file_counts"], b["file_counts"])

    def ids(data_dir, order):
      s = pipeline.Source(data_dir, "train", ["audio"])
      return [x.decode() for batch in pipeline.train_batches(
          s, 4, seed=3, num_steps=10, order=order)
              for x in batch["clip_id"]]
    for order in ("shuffle", "fixed"):
      self.assertEqual(ids(src, order), ids(dst, order))
    got = list(ma_refine.read_clips(dst, "train"))
    self.assertEqual([c["id"] for c in got],
                     [c["id"] for c in ma_refine.read_clips(src, "train")])
    np.testing.assert_array_equal(got[5]["visual_labels"], np.zeros(4))

  def test_explicit_shards_are_checked(self):
    w = tfrecord.DatasetWriter(tempfile.mkdtemp(), "fake", tu.CLASSES,
                               tu.FEATURES)
    with self.assertRaisesRegex(ValueError, r"clip 2 \('clip0002'\) has no "
                                r"shard in 0..1"):
      w.write_split("train", (tu.fake_clip(i, 3, dense=False)
                              for i in range(3)), ("labels",), num_shards=2,
                    shards=[1, 0])


class LossDispatchTest(absltest.TestCase):

  def test_han_nce_and_modality_labels(self):
    rng = np.random.default_rng(0)
    out = {k: jnp.asarray(rng.uniform(0.1, 0.9, (2, 3)))
           for k in ("global_prob", "audio_prob", "visual_prob")}
    out["audio_emb"] = jnp.asarray(rng.normal(size=(2, 4, 5)))
    out["visual_in"] = jnp.asarray(rng.normal(size=(2, 4, 5)))
    batch = {"labels": jnp.ones((2, 3)), "audio_labels": jnp.zeros((2, 3)),
             "visual_labels": jnp.ones((2, 3)),
             "segment_mask": jnp.ones((2, 4))}
    c = tiny_config("unused", "baseline")
    cfg = c.loss
    base = avvp_losses.loss_fn(out, batch, config=c)
    self.assertNotIn("loss_nce", base)
    cfg.type, cfg.nce_weight = "han_nce", 0.5
    with_nce = avvp_losses.loss_fn(out, batch, config=c)
    np.testing.assert_allclose(
        with_nce["loss"], base["loss"] + 0.5 * with_nce["loss_nce"], rtol=1e-6)
    cfg.use_modality_labels = True
    refined = avvp_losses.loss_fn(out, batch, config=c)
    p = np.asarray(out["audio_prob"])
    np.testing.assert_allclose(refined["loss_audio"],  # audio targets now 0
                               -np.log1p(-p).mean(), rtol=1e-5)
    np.testing.assert_allclose(refined["loss_visual"],
                               with_nce["loss_visual"])


class Stage3TargetTest(absltest.TestCase):

  def test_stage3_targets_follow_reference(self):
    # Reference step3_retrain: pv[c] = 0 and pa[c] = 0 for dropped labels
    # (absent classes keep 0.05 / 0), and pa is the video label array
    # itself, so an audio drop also zeroes the global target.
    c = tiny_config("unused", "r")
    _, c3 = ma_pipeline.stage_configs(c, "unused")
    self.assertEqual(c3.loss.dropped_target, "zero")
    p = np.array([[0.6, 0.3, 0.2, 0.7]])
    out = {k: jnp.asarray(p)
           for k in ("global_prob", "audio_prob", "visual_prob")}
    batch = {"labels": jnp.array([[1.0, 1.0, 0.0, 1.0]]),
             "audio_labels": jnp.array([[1.0, 0.0, 0.0, 1.0]]),
             "visual_labels": jnp.array([[0.0, 1.0, 0.0, 1.0]])}
    t = avvp_losses.loss_fn(out, batch, config=c3)
    bce = lambda y: float(np.mean(-(y * np.log(p) + (1 - y) * np.log1p(-p))))
    np.testing.assert_allclose(t["loss_visual"], bce(
        np.array([[0.0, 0.95, 0.05, 0.95]])), rtol=1e-5)
    np.testing.assert_allclose(t["loss_audio"], bce(
        np.array([[1.0, 0.0, 0.0, 1.0]])), rtol=1e-5)
    np.testing.assert_allclose(t["loss_global"], bce(
        np.array([[1.0, 0.0, 0.0, 1.0]])), rtol=1e-5)
    # The former behaviour, by name.
    c.ma.dropped_target, c.ma.global_drops_with_audio = "negative", False
    _, c3 = ma_pipeline.stage_configs(c, "unused")
    t = avvp_losses.loss_fn(out, batch, config=c3)
    np.testing.assert_allclose(t["loss_visual"], bce(
        np.array([[0.05, 0.95, 0.05, 0.95]])), rtol=1e-5)
    np.testing.assert_allclose(t["loss_global"], bce(
        np.array([[1.0, 1.0, 0.0, 1.0]])), rtol=1e-5)
    # Stage 1 trains on the weak labels.
    c1, _ = ma_pipeline.stage_configs(c, "unused")
    self.assertFalse(c1.loss.use_modality_labels)

  def test_options_validated(self):
    c = tiny_config("unused")
    self.assertEqual((c.ma.checkpoint, c.ma.partners), ("final", "global"))
    ma_pipeline.validate(c)
    c.ma.checkpoint = "latest"  # the former name of "final"
    ma_pipeline.validate(c)
    for key, bad in (("checkpoint", "last"), ("partners", "pool"),
                     ("dropped_target", "0.05")):
      c = tiny_config("unused")
      c.ma[key] = bad
      with self.assertRaisesRegex(ValueError, f"ma.{key}"):
        ma_pipeline.validate(c)

  def test_report_picks_the_configured_checkpoint(self):
    summary = {"results": {"test": 1}, "results_final": {"test": 1},
               "results_best": {"test": 2}, "step": 8, "step_final": 8,
               "step_best": 4, "checkpoint": "final"}
    c = tiny_config("unused")
    self.assertEqual(ma_pipeline.report(c, "unused", summary, write=False),
                     summary)
    c.ma.checkpoint = "best"
    r = ma_pipeline.report(c, "unused", summary, write=False)
    self.assertEqual((r["results"], r["step"], r["checkpoint"]),
                     ({"test": 2}, 4, "best"))


@pytest.mark.slow  # all three MA stages end to end
class PipelineTest(absltest.TestCase):
  """Tiny model on the fake dataset: all three stages, then a resume."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The stages compile the same programs again: the session's persistent
    # compilation cache (tests/conftest.py) makes the repeats cheap.
    cls.data = tu.trainer_dataset(val=16, test=16)
    cls.workdir = tempfile.mkdtemp()
    cls.summary = ma_pipeline.train_and_evaluate(tiny_config(cls.data),
                                                 cls.workdir)

  def test_all_stages_ran_and_final_is_stage3(self):
    s = self.summary
    self.assertEqual(s["final_stage"], "stage3")
    self.assertEqual(s["results"]["test"]["num_clips"], 16)
    for f in ("stage1/results.json", "refine/summary.json",
              "refine/refined_labels.csv", "stage3/results.json",
              "results.md"):
      self.assertTrue(os.path.exists(os.path.join(self.workdir, f)), f)
    ref = s["stages"]["refine"]
    self.assertEqual(ref["num_clips"], 64)
    for m in ("audio", "visual"):
      self.assertBetween(ref[f"quality_{m}"]["precision"], 0.0, 1.0)

  def test_final_checkpoint_refines_and_is_reported(self):
    # Reference: step 1 saves its last epoch, step 2 refines with it and
    # step 3 tests its last epoch; the best checkpoints are reported too.
    for name in ("stage1", "stage3"):
      st = self.summary["stages"][name]
      self.assertEqual(st["checkpoint"], "final")
      self.assertEqual(st["results"], st["results_final"])
      self.assertIn("test", st["results_best"])
      self.assertGreaterEqual(st["step_final"], st["step_best"])
      with open(os.path.join(self.workdir, name, "results.json")) as f:
        self.assertIn("results_best", f.read())
    ref = self.summary["stages"]["refine"]
    self.assertEqual((ref["checkpoint"], ref["partners"]), ("final", "global"))
    self.assertEqual(ref["step"], self.summary["stages"]["stage1"]["step_final"])
    self.assertEqual(self.summary["results"],
                     self.summary["stages"]["stage3"]["results_final"])
    with open(os.path.join(self.workdir, "results.md")) as f:
      table = f.read()
    self.assertIn("stage3 test (final)", table)
    self.assertIn("stage1 val (best)", table)

  def test_partners_from_the_whole_split_scored_as_assembled(self):
    ref = os.path.join(self.workdir, "refine")
    pred = dict(np.load(os.path.join(ref, "swap_predictions.npz")))
    clips = list(ma_refine.read_clips(self.data, "train"))
    order = {c["id"]: k for k, c in enumerate(clips)}
    by_id = {c["id"]: c for c in clips}
    i = np.array([order[x] for x in pred["ids"]])
    j = np.array([order[x] for x in pred["partner_ids"]])
    ok = pred["ok"].astype(bool)
    self.assertEqual(int(ok.sum()), len(ok) - self.summary["stages"][
        "refine"]["no_partner"])
    overlap = (pred["labels"] * np.stack(
        [by_id[x]["labels"] for x in pred["partner_ids"]])).sum(1)
    self.assertTrue(np.all(overlap[ok] == 0))
    # Not confined to a refinement batch (ma.batch_size = 16, file order).
    self.assertTrue(np.any((i // 16 != j // 16)[ok]))
    # The stored swap predictions are the stage-1 model's on the assembled
    # clips (A_i, V_j) and (A_j, V_i).
    c = tiny_config(self.data)
    c1, _ = ma_pipeline.stage_configs(c, self.data)
    s, state, _ = ma_refine.restore_stage1(c1, os.path.join(self.workdir,
                                                            "stage1"))
    rows = np.flatnonzero(ok)[:8]
    tmax = s.info["max_segments"]

    def clip_inputs(cid):
      x = {}
      t = len(by_id[cid]["audio"])
      for sp in s.info["feature_specs"]:
        v = by_id[cid][sp.name]
        x[sp.name] = np.pad(v, [(0, tmax * sp.frames_per_segment - len(v))]
                            + [(0, 0)] * (v.ndim - 1))
      x["segment_mask"] = (np.arange(tmax) < t).astype(np.float32)
      return x

    own = [clip_inputs(pred["ids"][r]) for r in rows]
    other = [clip_inputs(pred["partner_ids"][r]) for r in rows]
    stack = lambda xs: {k: jnp.asarray(np.stack([x[k] for x in xs]))
                        for k in xs[0]}
    res = jax.jit(ma_refine.score_variants)(state, stack(own), stack(other))
    for k in ("audio_prob", "visual_prob"):
      np.testing.assert_allclose(res[k], pred[k][rows], atol=1e-5)

  def test_batch_partners_option(self):
    # ma.partners="batch" (avjax's former pairing): partners from the same
    # refinement batch of ma.batch_size clips in file order.
    c = tiny_config(self.data)
    c.ma.partners = "batch"
    c1, _ = ma_pipeline.stage_configs(c, self.data)
    out = tempfile.mkdtemp()
    summary = ma_refine.refine(c1, os.path.join(self.workdir, "stage1"), out)
    self.assertEqual(summary["partners"], "batch")
    pred = dict(np.load(os.path.join(out, "swap_predictions.npz")))
    order = {c["id"]: k for k, c in enumerate(
        ma_refine.read_clips(self.data, "train"))}
    i = np.array([order[x] for x in pred["ids"]])
    j = np.array([order[x] for x in pred["partner_ids"]])
    ok = pred["ok"].astype(bool)
    self.assertTrue(ok.any())
    np.testing.assert_array_equal((i // 16)[ok], (j // 16)[ok])

  def test_refined_dataset_matches_csv_and_keeps_features(self):
    ref = os.path.join(self.workdir, "refine")
    with open(os.path.join(ref, "refined_labels.csv")) as f:
      rows = list(csv.DictReader(f))
    info = tfrecord.read_info(os.path.join(ref, "dataset"))
    self.assertEqual(info["splits"]["test"]["num_clips"], 16)
    cls = {c: i for i, c in enumerate(info["classes"])}
    src = {c["id"]: c for c in ma_refine.read_clips(self.data, "train")}
    new = list(ma_refine.read_clips(os.path.join(ref, "dataset"), "train"))
    self.assertLen(new, 64)
    for clip in new:
      old = src[clip["id"]]
      for k in ("audio", "visual", "motion", "labels"):
        np.testing.assert_array_equal(clip[k], old[k])
      self.assertTrue(np.all(clip["audio_labels"] <= clip["labels"]))
    by_id = {c["id"]: c for c in new}
    self.assertLen(rows, int(sum(c["labels"].sum() for c in new)))
    for r in rows:
      c, k = by_id[r["clip"]], cls[r["class"]]
      self.assertEqual(c["labels"][k], 1)
      self.assertEqual(int(r["audio_kept"]), c["audio_labels"][k])
      self.assertEqual(int(r["visual_kept"]), c["visual_labels"][k])

  def test_parse_uses_the_stage3_model(self):
    tu.check_parses(self, self.workdir, "best")

  def test_resumes_per_stage(self):
    # Completed: nothing reruns. Without the refinement's final output, only
    # the refinement reruns (identically); stages 1 and 3 are kept.
    done = ma_pipeline.train_and_evaluate(tiny_config(self.data),
                                          self.workdir)
    self.assertEqual(done["results"], self.summary["results"])
    ref = os.path.join(self.workdir, "refine")
    with open(os.path.join(ref, "refined_labels.csv")) as f:
      before = f.read()
    os.remove(os.path.join(ref, "summary.json"))
    os.remove(os.path.join(ref, "refined_labels.csv"))
    stage3 = os.path.join(self.workdir, "stage3", "results.json")
    mtime = os.path.getmtime(stage3)
    again = ma_pipeline.train_and_evaluate(tiny_config(self.data),
                                           self.workdir)
    with open(os.path.join(ref, "refined_labels.csv")) as f:
      self.assertEqual(f.read(), before)
    self.assertEqual(again["stages"]["refine"],
                     self.summary["stages"]["refine"])
    self.assertEqual(os.path.getmtime(stage3), mtime)
    self.assertEqual(again["results"], self.summary["results"])

  def test_reuses_another_runs_stage1(self):
    other = tempfile.mkdtemp()
    c = tiny_config(self.data)
    c.ma.modalities = "visual"
    c.ma.stage1_workdir = os.path.relpath(
        os.path.join(self.workdir, "stage1"), other)
    res = ma_pipeline.train_and_evaluate(c, other)
    self.assertFalse(os.path.exists(os.path.join(other, "stage1")))
    self.assertEqual(res["stages"]["stage1"], self.summary["stages"]["stage1"])
    ref = res["stages"]["refine"]
    self.assertEqual(ref["dropped_audio"], 0)  # visual labels only
    self.assertEqual(ref["dropped_visual"],
                     self.summary["stages"]["refine"]["dropped_visual"])
    c.ma.stage1_workdir = "/nonexistent/stage1"
    with self.assertRaisesRegex(FileNotFoundError, "no finished stage 1"):
      ma_pipeline.train_and_evaluate(c, tempfile.mkdtemp())


if __name__ == "__main__":
  absltest.main()

"""MA: partner pairing, refinement rule, loss dispatch, 3-stage pipeline."""

import csv
import os
import tempfile

from absl.testing import absltest
import jax
from jax.experimental.compilation_cache import compilation_cache as cc
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from avjax.data import schema
from avjax.data import tfrecord
from avjax.trainers import avvp_weak
from avjax.trainers import ma_pipeline
from avjax.trainers import ma_refine
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
    cfg = tiny_config("unused", "baseline").loss
    base = avvp_weak.loss_fn(out, batch, loss_cfg=cfg)
    self.assertNotIn("loss_nce", base)
    cfg.type, cfg.nce_weight = "han_nce", 0.5
    with_nce = avvp_weak.loss_fn(out, batch, loss_cfg=cfg)
    np.testing.assert_allclose(
        with_nce["loss"], base["loss"] + 0.5 * with_nce["loss_nce"], rtol=1e-6)
    cfg.use_modality_labels = True
    refined = avvp_weak.loss_fn(out, batch, loss_cfg=cfg)
    p = np.asarray(out["audio_prob"])
    np.testing.assert_allclose(refined["loss_audio"],  # audio targets now 0
                               -np.log1p(-p).mean(), rtol=1e-5)
    np.testing.assert_allclose(refined["loss_visual"],
                               with_nce["loss_visual"])


class PipelineTest(absltest.TestCase):
  """Tiny model on the fake dataset: all three stages, then a resume."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # The stages compile the same init/predict programs again: a persistent
    # compilation cache (for this class only) makes the repeats cheap.
    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp())
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    cls.data = tu.trainer_dataset(val=16, test=16)
    cls.workdir = tempfile.mkdtemp()
    cls.summary = ma_pipeline.train_and_evaluate(tiny_config(cls.data),
                                                 cls.workdir)

  @classmethod
  def tearDownClass(cls):
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    cc.reset_cache()
    super().tearDownClass()

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

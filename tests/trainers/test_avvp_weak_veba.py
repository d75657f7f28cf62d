"""VEBA on the weak trainer end to end (tiny): train, spans, curve, refusals."""

import json
import os

from absl.testing import absltest
import pytest
import numpy as np

from avjax import benchmark
from avjax.projects.veba import curve as veba_curve
from avjax.projects.veba import spans as veba_spans
from avjax.data import classes
from avjax.data import datasets
from avjax.data import tfrecord
from avjax.evaluators import veba as veba_eval
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from configs import veba as veba_config
from tests import testing_utils as tu

pytestmark = pytest.mark.slow  # trains VEBA end to end


def tiny_config(cache_dir, arg="runlocal,vfrac=0.5"):
  c = veba_config.get_config(arg)
  c.data.cache_dir = cache_dir
  c.data.num_shards = 2
  c.data.synthetic.update(num_train=64, num_val=16, num_test=24)
  c.model.d_model = c.model.d_ff = 16
  c.batch_size = c.eval_batch_size = 16
  c.data.shuffle_buffer = 16
  c.num_epochs = 1
  return c


class VebaTrainerTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    import tempfile  # pylint: disable=g-import-not-at-top
    cls.cache, cls.workdir = tempfile.mkdtemp(), tempfile.mkdtemp()
    cls.config = tiny_config(cls.cache)
    cls.summary = avvp_weak.train_and_evaluate(cls.config, cls.workdir)

  def test_scores_every_modality_at_376_classes(self):
    info = tfrecord.read_info(datasets.resolve(self.config.data))
    self.assertLen(info["classes"], 376)
    test = self.summary["results"]["test"]
    self.assertEqual(test["num_clips"], 24)
    for k in veba_eval.METRIC_KEYS:
      self.assertBetween(test[k], 0.0, 100.0, k)
    val = self.summary["results"]["val"]
    self.assertNotIn("seg_av", val)  # VEBA's val split is weak only
    self.assertIn("map_vav", val)
    with open(os.path.join(self.workdir, "metrics.jsonl")) as f:
      logged = [json.loads(x) for x in f]
    self.assertTrue(any("train/loss_av" in x for x in logged))

  def test_parse_restores_the_veba_run(self):
    out = tu.check_parses(self, self.workdir, "latest")
    self.assertEqual(out["audio"].shape[1], 376)

  def test_spans_of_saved_predictions(self):
    pred = dict(np.load(os.path.join(self.workdir, "pred_test.npz")))
    spans = veba_spans.spans_from_predictions(pred, [f"c{i}" for i in
                                                     range(376)])
    self.assertLen(spans, 24)
    both = pred["audio"] & pred["visual"]
    self.assertEqual(sum(s["offset"] - s["onset"] for ss in spans.values()
                         for s in ss), int(both.sum()))
    tp, n_pred, n_true = veba_spans.span_match(pred, both, both)
    self.assertEqual((tp, n_pred), (n_pred, sum(map(len, spans.values()))))

  def test_refusals(self):
    c = tiny_config(self.cache)
    c.eval.best_metric = "seg_type"
    with self.assertRaisesRegex(ValueError, r"eval.best_metric='seg_type'"):
      loop.validate_config(c, avvp_weak.TRAINER)
    with self.assertRaisesRegex(ValueError, "vfrac=1.5"):
      veba_config.get_config("vfrac=1.5")


class VebaCurveTest(absltest.TestCase):

  def test_curve_table_and_png(self):
    d = tu.make_tempdir(self)
    rows = {f"vfrac_{p:03d}": {"seg_av": p / 2, "ev_av": p / 3}
            for p in (100, 20, 60)}
    rows["other"] = {}
    with open(os.path.join(d, "table.json"), "w") as f:
      json.dump({"rows": rows}, f)
    points = veba_curve.curve(rows)
    self.assertEqual([p for p, _ in points], [20, 60, 100])
    md = veba_curve.markdown(points, ["seg_av", "ev_av"])
    self.assertIn("| 60 | 30.0 | 20.0 |", md)
    png = os.path.join(d, "fig5.png")
    veba_curve.plot(points, ["seg_av", "ev_av"], png)
    with open(png, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class VebaBenchmarkTest(absltest.TestCase):

  def test_benchmark_dataset_has_num_classes(self):
    d = tu.make_tempdir(self)
    data = veba_config.get_config("data=veba").data
    res = benchmark.write_dataset(d, data, 8, 4, num_classes=376)
    info = tfrecord.read_info(d)
    self.assertEqual((res["num_classes"], len(info["classes"])), (376, 376))
    self.assertEqual(info["classes"][:2], ["class_000", "class_001"])
    self.assertEqual(benchmark.class_names(25), classes.LLP_CLASSES)


class VebaConfigTest(absltest.TestCase):

  def test_tables(self):
    names = [r["name"] for r in veba_config.get_hyper("table3")]
    self.assertEqual(names, ["baseline", "han", "ours"])
    self.assertEqual(veba_config.get_hyper("table4"),
                     veba_config.get_hyper("table3"))
    fig5 = veba_config.get_hyper("fig5")
    self.assertEqual(fig5[1], {"config": "configs/veba.py:vfrac=0.2",
                               "name": "vfrac_020"})
    c = veba_config.get_config("variant=baseline")
    self.assertEqual((c.loss.type, c.eval.heads), ("veba_shared", "shared"))


if __name__ == "__main__":
  absltest.main()

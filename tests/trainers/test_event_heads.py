"""End to end: five heads on 8 devices, restore, analysis tables."""

import os
import shutil
import tempfile

from absl.testing import absltest
import pytest
import jax

from avjax.projects.event_heads import analyze as analyze_event_heads
from avjax.trainers import event_heads
from avjax.trainers import loop
from configs import event_heads as eh_config

pytestmark = pytest.mark.slow  # trains the event heads end to end

TINY = dict(num_train=64, num_val=16, num_test=24, classes_per_type=1,
            min_segments=4, max_segments=6)


def tiny_config(cache_dir, variant="five_heads"):
  c = eh_config.get_config(f"runlocal,variant={variant}")
  c.data.cache_dir, c.data.num_shards = cache_dir, 8
  c.data.synthetic.update(TINY)
  c.model.d_model = 16
  c.batch_size = c.eval_batch_size = 8
  c.num_epochs, c.log_every_steps = 2, 2
  return c


class EventHeadsTrainerTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.cache = tempfile.mkdtemp()
    cls.sweep = tempfile.mkdtemp()
    cls.workdir = os.path.join(cls.sweep, "five_heads")
    cls.summary = event_heads.train_and_evaluate(tiny_config(cls.cache),
                                                 cls.workdir)

  def test_trained_on_all_devices_and_scored_every_clip(self):
    self.assertEqual(jax.device_count(), 8)
    res = self.summary["results"]["test"]
    self.assertEqual(res["num_clips"], 24)
    for k in ("acc", "acc_onset", "f1_union", "f1_top2"):
      self.assertBetween(res[k], 0.0, 100.0)
    self.assertBetween(res["card_union"], 1.0, 5.0)
    self.assertTrue(os.path.exists(os.path.join(self.workdir,
                                                "results.json")))

  def test_restored_best_reproduces_final_numbers_exactly(self):
    again = event_heads.evaluate_checkpoint(tiny_config(self.cache),
                                            self.workdir, "best")
    self.assertEqual(again["results"], self.summary["results"])

  def test_analysis_writes_tables_with_known_types(self):
    out = os.path.join(self.sweep, "tables")
    res = analyze_event_heads.analyze(self.sweep, out)
    self.assertEqual(res["missing"], ["audio_only", "visual_only",
                                      "naive_av"])
    for f in ("table1.md", "table2.md", "table3.md", "table4.md"):
      self.assertTrue(os.path.exists(os.path.join(out, f)), f)
    t4 = res["table4"]
    self.assertEqual(t4["num_classes"], 5)
    self.assertEqual(sum(map(sum, t4["confusion"])), 5)
    self.assertEqual(res["table3"]["num_clips"], 24)
    prof = t4["profile"]  # one row per true type, clips of its classes
    self.assertEqual(sum(prof["clips"]), res["table3"]["num_clips"])
    self.assertEqual(len(prof["acc"]), 5)
    self.assertEqual(t4["specialists_recovered"],
                     sum(s == t for s, t in zip(prof["specialist"],
                                                t4["types"])))
    for other in ("logit", "relative"):  # the other scores, reported beside
      self.assertEqual(res["table4_" + other]["score"], other)
      self.assertEqual(res["table4_" + other]["num_classes"], 5)
    with open(os.path.join(out, "table4.md")) as f:
      text = f.read()
    self.assertIn("Specialist", text)
    self.assertIn("With score=relative", text)

  def test_analysis_bootstraps_union_against_top_k(self):
    # The five-head run stands in for the naive-AV baseline as well (its
    # Top-K is taken from the mean of its heads' probabilities, as the
    # trainer scores f1_top<K>), so every difference is known.
    sweep = tempfile.mkdtemp()
    for r in ("five_heads", "naive_av"):
      shutil.copytree(os.path.join(self.sweep, "five_heads"),
                      os.path.join(sweep, r))
    res = analyze_event_heads.analyze(sweep, os.path.join(sweep, "tables"))
    scores = self.summary["results"]["test"]
    boot = res["table2"]["bootstrap"]
    self.assertNotEmpty(boot)
    for k, b in boot.items():
      self.assertAlmostEqual(
          b["diff"], scores["f1_union"] - scores[f"f1_top{k}"], places=3)
      self.assertLessEqual(b["lo"], b["hi"])
    with open(os.path.join(sweep, "tables", "table2.md")) as f:
      self.assertIn("paired bootstrap", f.read())

  def test_invalid_config_refused_before_training(self):
    c = tiny_config(self.cache)
    c.model.instant_ratio = 0.0
    c.loss.single_label = "random"
    with self.assertRaisesRegex(ValueError, r"(?s)single_label.*"
                                r"instant_ratio"):
      loop.setup(c, trainer=event_heads.TRAINER)


if __name__ == "__main__":
  absltest.main()

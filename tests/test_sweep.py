"""The sweep runner: row listing, overrides, resume from results, table."""

import contextlib
import importlib
import io
import json
import os
import socket
import subprocess
from unittest import mock

from absl.testing import absltest

from avjax import sweep
from tests import testing_utils

# Config files whose get_hyper rows carry published numbers, and the hypers
# checked (every table that has paper rows).
PAPER_TABLES = {
    "configs/ave.py": ("table1", "table2", "seed1", "blocks", "long_v",
                       "table2_lag"),
    "configs/ave_cml.py": ("table3",),
    "configs/avvp_han.py": (None,),
    "configs/avvp_ma.py": ("all",),
    "configs/avvp_crossmodal.py": ("table1", "table2", "appendix",
                                   "ablation"),
    "configs/veba.py": ("table3", "fig5"),
    "configs/event_heads.py": ("table1", "table1_seeds", "onsets"),
}


class SweepTest(absltest.TestCase):

  def test_rows_are_named_and_unique(self):
    rows = sweep.rows_of("configs/avvp_ma.py", "table2")
    names = [sweep.row_name(r) for r in rows]
    self.assertLen(names, 4)
    self.assertLen(set(names), 4)

  def test_override_sets_field_and_rejects_unknown(self):
    c = sweep.load_config("configs/avvp_han.py:variant=no_hybrid", True,
                          {"optim.lr": 0.5, "batch_size": 8})
    self.assertEqual(c.optim.lr, 0.5)
    self.assertEqual(c.batch_size, 8)
    self.assertFalse(c.model.cross_attention)
    self.assertEqual(c.num_epochs, 2)  # runlocal was appended
    with self.assertRaisesRegex(KeyError, "optim.nope"):
      sweep.load_config("configs/avvp_han.py", False, {"optim.nope": 1})

  def test_finished_rows_are_read_and_tabulated(self):
    d = testing_utils.make_tempdir(self)
    rows = sweep.rows_of("configs/avvp_han.py", None)
    for k, row in enumerate(rows):
      os.makedirs(os.path.join(d, sweep.row_name(row)))
      with open(os.path.join(d, sweep.row_name(row), "results.json"),
                "w") as f:
        json.dump({"results": {"test": {"seg_a": 10.0 + k, "seg_v": 5.0},
                               "val": {"seg_a": 0.0}}}, f)
    scores = sweep.sweep("configs/avvp_han.py", None, d,
                         keys=["seg_a", "seg_v"])
    self.assertEqual(scores["variant=no_hybrid"]["seg_a"], 11.0)
    with open(os.path.join(d, "table.md")) as f:
      md = f.read()
    # HAN's row carries its published numbers: a paper column after each.
    self.assertIn("| row | seg_a | paper seg_a | seg_v | paper seg_v |", md)
    self.assertIn("| variant=han | 10.0 | 60.1 | 5.0 | 52.9 |", md)
    self.assertIn("| variant=no_hybrid | 11.0 | - | 5.0 | - |", md)
    with open(os.path.join(d, "table.json")) as f:
      self.assertLen(json.load(f)["rows"], len(rows))
    with self.assertRaisesRegex(KeyError, "no split 'nope'"):
      sweep.sweep("configs/avvp_han.py", None, d, split="nope")

  def test_shard_trains_only_its_rows_and_tabulates_what_is_done(self):
    d = testing_utils.make_tempdir(self)
    rows = sweep.rows_of("configs/avvp_han.py", None)
    self.assertGreater(len(rows), 2)
    for k, row in enumerate(rows):
      if k % 2 == 1:  # shard 1/2's rows are done; shard 0's are not
        os.makedirs(os.path.join(d, sweep.row_name(row)))
        with open(os.path.join(d, sweep.row_name(row), "results.json"),
                  "w") as f:
          json.dump({"results": {"test": {"seg_a": float(k)}}}, f)
    # Shard 1 has nothing to train; shard 0's unfinished rows are left out.
    scores = sweep.sweep("configs/avvp_han.py", None, d, keys=["seg_a"],
                         shard=(1, 2))
    self.assertEqual(sorted(scores), sorted(
        sweep.row_name(r) for k, r in enumerate(rows) if k % 2 == 1))
    self.assertFalse(os.path.exists(
        os.path.join(d, sweep.row_name(rows[0]))))

  def test_row_lock_skips_a_live_holder_and_takes_over_a_dead_ones(self):
    d = testing_utils.make_tempdir(self)
    lock = os.path.join(d, ".sweep_lock")
    live = {"host": socket.gethostname(), "pid": os.getppid()}
    with open(lock, "w") as f:
      json.dump(live, f)
    with sweep.row_lock(d) as held_by:
      self.assertEqual(held_by, f"pid {live['pid']} on host {live['host']}")
    self.assertTrue(os.path.exists(lock))  # not ours: left in place
    dead = subprocess.Popen(["true"])
    dead.wait()
    with open(lock, "w") as f:
      json.dump({"host": live["host"], "pid": dead.pid}, f)
    with sweep.row_lock(d) as held_by:
      self.assertIsNone(held_by)
      with open(lock) as f:
        self.assertEqual(json.load(f)["pid"], os.getpid())
    self.assertFalse(os.path.exists(lock))  # released

  def test_sweep_leaves_a_row_another_live_process_trains(self):
    d = testing_utils.make_tempdir(self)
    rows = sweep.rows_of("configs/avvp_han.py", None)
    for k, row in enumerate(rows):
      os.makedirs(os.path.join(d, sweep.row_name(row)))
      if k == 0:  # row 0: locked by a live process, not finished
        with open(os.path.join(d, sweep.row_name(row), ".sweep_lock"),
                  "w") as f:
          json.dump({"host": socket.gethostname(), "pid": os.getppid()}, f)
        continue
      with open(os.path.join(d, sweep.row_name(row), "results.json"),
                "w") as f:
        json.dump({"results": {"test": {"seg_a": float(k)}}}, f)
    scores = sweep.sweep("configs/avvp_han.py", None, d, keys=["seg_a"])
    self.assertEqual(sorted(scores),
                     sorted(sweep.row_name(r) for r in rows[1:]))
    self.assertEqual(os.listdir(os.path.join(d, sweep.row_name(rows[0]))),
                     [".sweep_lock"])  # nothing trained there

  def test_parse_shard(self):
    self.assertIsNone(sweep.parse_shard(None))
    self.assertEqual(sweep.parse_shard("1/3"), (1, 3))
    for bad in ("3/3", "1", "a/b", "-1/2"):
      with self.assertRaisesRegex(ValueError, "expected K/N"):
        sweep.parse_shard(bad)

  def test_stage_rows_read_another_rows_run(self):
    d = testing_utils.make_tempdir(self)
    for k, run in enumerate(("+R", "+C+R")):
      os.makedirs(os.path.join(d, run))
      res = lambda v: {"results": {"test": {"seg_v": v}}}
      with open(os.path.join(d, run, "results.json"), "w") as f:
        json.dump({**res(50.0 + k), "stages": {"stage1": res(40.0 + k),
                                               "stage3": res(50.0 + k)}}, f)
    scores = sweep.sweep("configs/avvp_ma.py", "table2", d, keys=["seg_v"])
    self.assertEqual({k: v["seg_v"] for k, v in scores.items()},
                     {"baseline": 40.0, "+C": 41.0, "+R": 50.0, "+C+R": 51.0})
    self.assertEqual(sorted(os.listdir(d)),
                     ["+C+R", "+R", "table.json", "table.md"])


  def test_table_without_paper_numbers_has_no_paper_columns(self):
    md = sweep.table({"a": {"x": 1.0, "y": 2.0}}, ["x", "y"])
    self.assertEqual(md.splitlines()[0], "| row | x | y |")
    self.assertEqual(md.splitlines()[2], "| a | 1.0 | 2.0 |")
    self.assertEqual(md, sweep.table({"a": {"x": 1.0, "y": 2.0}}, ["x", "y"],
                                     {"a": {}}))

  def test_table_puts_paper_column_after_each_published_key(self):
    rows = {"a": {"x": 1.0, "y": 2.0}, "b": {"x": 3.0, "y": 4.0}}
    md = sweep.table(rows, ["x", "y"], {"a": {"y": 20.5},
                                        "b": {"y": 38.25}}).splitlines()
    self.assertEqual(md[0], "| row | x | y | paper y |")
    self.assertEqual(md[1], "|---|---|---|---|")
    self.assertEqual(md[2], "| a | 1.0 | 2.0 | 20.5 |")
    self.assertEqual(md[3], "| b | 3.0 | 4.0 | 38.25 |")  # as published
    md = sweep.table(rows, ["x", "y"], {"a": {"y": 20.5}}).splitlines()
    self.assertEqual(md[3], "| b | 3.0 | 4.0 | - |")

  def test_sweep_writes_paper_numbers_to_table_md_and_json(self):
    d = testing_utils.make_tempdir(self)
    rows = [{"config": "configs/avvp_han.py", "name": "r0",
             "paper": {"seg_a": 60.1}},
            {"config": "configs/avvp_han.py", "name": "r1"}]
    for k, row in enumerate(rows):
      os.makedirs(os.path.join(d, row["name"]))
      with open(os.path.join(d, row["name"], "results.json"), "w") as f:
        json.dump({"results": {"test": {"seg_a": 10.0 + k, "seg_v": 5.0}}},
                  f)
    with mock.patch.object(sweep, "rows_of", return_value=rows):
      scores = sweep.sweep("configs/avvp_han.py", None, d,
                           keys=["seg_a", "seg_v"])
    self.assertEqual(scores["r0"], {"seg_a": 10.0, "seg_v": 5.0})
    with open(os.path.join(d, "table.md")) as f:
      md = f.read()
    self.assertIn("| row | seg_a | paper seg_a | seg_v |", md)
    self.assertIn("| r0 | 10.0 | 60.1 | 5.0 |", md)
    self.assertIn("| r1 | 11.0 | - | 5.0 |", md)
    with open(os.path.join(d, "table.json")) as f:
      got = json.load(f)["rows"]
    self.assertEqual(got["r0"]["paper"], {"seg_a": 60.1})
    self.assertNotIn("paper", got["r1"])

  def test_dry_run_prints_paper_numbers(self):
    rows = [{"config": "configs/avvp_han.py", "name": "r0",
             "paper": {"seg_a": 60.1}}]
    out = io.StringIO()
    with mock.patch.object(sweep, "rows_of", return_value=rows), \
        mock.patch.object(sweep, "flags") as fl, \
        contextlib.redirect_stdout(out):
      fl.FLAGS.dry_run = True
      sweep.main(["sweep"])
    self.assertIn("paper: seg_a=60.1", out.getvalue())


  def test_paper_numbers_are_metrics_their_row_reports(self):
    """Every published number of a get_hyper row names a metric its config
    tabulates (table_keys) and its evaluator computes, as a percentage."""
    seen = 0
    for path, hypers in PAPER_TABLES.items():
      for h in hypers:
        for row in sweep.rows_of(path, h):
          paper = sweep.paper_of(row)
          if not paper:
            continue
          seen += 1
          c = sweep.load_config(row["config"], False, row.get("overrides"))
          # (event_heads' evaluator names its metrics only in table_keys)
          metrics = getattr(importlib.import_module(
              f"avjax.evaluators.{c.eval.evaluator}"), "METRIC_KEYS", None)
          where = f"{path} {h} {sweep.row_name(row)}"
          self.assertContainsSubset(paper, list(c.table_keys), where)
          if metrics is not None:
            self.assertContainsSubset(paper, metrics, where)
          for v in paper.values():
            self.assertIsInstance(v, float, where)
            self.assertBetween(v, 0.0, 100.0, where)
    self.assertGreater(seen, 0)


if __name__ == "__main__":
  absltest.main()

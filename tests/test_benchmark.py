"""avjax.benchmark end to end with tiny settings (no timing assertions)."""

import json
import os
import tempfile

from absl import flags
from absl.testing import absltest
import pytest

from avjax import benchmark

TINY = ("--batch_sizes=8", "--steps=2", "--warmup=1",
        "--num_train_clips=32", "--num_eval_clips=20",
        "--config.eval_batch_size=16", "--config.model.d_model=32",
        "--config.model.d_ff=32", "--config.data.shuffle_buffer=16")
TIMING_KEYS = ("step_ms", "step_ms_mean", "step_ms_max", "cpu_ms",
               "clips_per_s", "gflop_per_s")
EVAL_KEYS = ("forward_s", "total_s", "clips_per_s")


def parse(*args) -> flags.FlagValues:
  argv = ["benchmark", *TINY, *args]
  fv = flags.FlagValues()
  benchmark.define_flags(fv, argv)
  fv(argv)
  return fv


class BenchmarkTest(absltest.TestCase):

  def assert_positive(self, d, keys, where):
    for k in keys:
      self.assertGreater(d[k], 0, f"{where}.{k}")

  @pytest.mark.slow  # runs the benchmark in a subprocess
  def test_main_reports_every_number(self):
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "bench.json")
    fv = parse("--devices=8", f"--out={out}", f"--tmp_dir={tmp}",
               "--pooled_visual")
    self.assertEqual(benchmark.main(["benchmark"], fv), 0)
    with open(out) as f:
      res = json.load(f)
    self.assertEqual(res["env"]["device_count"], 8)
    self.assert_positive(res["env"], ("cpu_count",), "env")
    self.assertEqual(res["data"]["train_clips"], 32)
    self.assertTrue(res["data"]["pooled_visual"])
    self.assertEqual(res["model"]["d_model"], 32)
    self.assert_positive(res["model"], ("params",), "model")
    self.assertEqual([r["batch_size"] for r in res["train"]], [8])
    for r in res["train"]:
      self.assert_positive(r, ("lower_s", "compile_s", "gflop",
                               "peak_rss_mib", "read_clips_per_s"), "train")
      for src in benchmark.SOURCES:
        self.assert_positive(r[src], TIMING_KEYS, src)
      self.assertEqual(r["tfrecord"]["steps_per_epoch"],
                       32 // r["batch_size"])
    self.assertGreater(res["eval"]["compile_s"], 0)
    for src in benchmark.SOURCES:
      self.assertEqual(res["eval"][src]["num_clips"], 20)
      self.assert_positive(res["eval"][src], EVAL_KEYS, f"eval.{src}")
      self.assertGreaterEqual(res["eval"][src]["score_s"], 0)
    self.assertGreater(res["peak_rss_mib"], 0)
    self.assertEqual(os.listdir(tmp), ["bench.json"])  # dataset removed

  @pytest.mark.slow  # runs the benchmark in a subprocess
  def test_arrays_only_with_model_overrides(self):
    fv = parse("--source=synthetic_arrays",
               "--config.model.pool_first=False",
               "--config.model.dtype=bfloat16")
    res = benchmark.run(fv)
    self.assertEqual(res["model"]["dtype"], "bfloat16")
    self.assertFalse(res["model"]["pool_first"])
    self.assertNotIn("tfrecord", res["train"][0])
    self.assertNotIn("tfrecord", res["eval"])
    self.assert_positive(res["train"][0]["synthetic_arrays"], TIMING_KEYS,
                         "synthetic_arrays")
    self.assertEqual(res["eval"]["synthetic_arrays"]["num_clips"], 20)
    self.assertIn("| 8 |", benchmark.format_tables(res))

  def test_device_count_mismatch_is_an_error(self):
    with self.assertRaisesRegex(ValueError, "--devices=3"):
      benchmark.run(parse("--devices=3"))


if __name__ == "__main__":
  absltest.main()

"""End to end: train on 8 devices, checkpoint, restore, evaluate, refusals."""

import os
import subprocess
import sys
import tempfile

from absl.testing import absltest
import pytest
import jax
import numpy as np

from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.utils import checkpointing
from avjax.utils import writers
from configs import avvp_han
from tests import testing_utils as tu

pytestmark = pytest.mark.slow  # trains HAN end to end

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def tiny_config(data_dir):
  c = avvp_han.get_config("runlocal")
  c.data.name, c.data.data_dir = "fake", data_dir
  c.model.d_model = c.model.d_ff = 16
  c.batch_size = c.eval_batch_size = 8
  c.num_epochs, c.log_every_steps = 2, 1
  return c


class AVVPWeakTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data = tu.trainer_dataset()
    cls.workdir = tempfile.mkdtemp()
    cls.summary = avvp_weak.train_and_evaluate(tiny_config(cls.data),
                                               cls.workdir)

  def test_trained_on_all_devices_and_scored_every_clip(self):
    self.assertEqual(jax.device_count(), 8)
    res = self.summary["results"]
    self.assertEqual(res["test"]["num_clips"], 21)
    self.assertEqual(res["val"]["num_clips"], 20)
    for k in ("seg_a", "seg_type", "ev_event", "map"):
      self.assertBetween(res["test"][k], 0.0, 100.0)
    self.assertTrue(os.path.exists(os.path.join(self.workdir, "eval_best.md")))
    self.assertTrue(os.listdir(os.path.join(self.workdir, "tb")))

  def test_restored_best_reproduces_final_numbers_exactly(self):
    again = avvp_weak.evaluate_checkpoint(tiny_config(self.data),
                                          self.workdir, "best")
    self.assertEqual(again["results"], self.summary["results"])
    self.assertEqual(again["step"], self.summary["step"])

  def test_parse_restores_the_run_and_predicts(self):
    # 7 segments: longer than the 5-segment window, the last window padded.
    tu.check_parses(self, self.workdir, "best")

  def test_refuses_checkpoint_of_different_model(self):
    c = tiny_config(self.data)
    c.model.d_model = 32
    with self.assertRaisesRegex(checkpointing.CheckpointMismatchError,
                                r"(?s)different model.*d_model.*16.*32"):
      avvp_weak.evaluate_checkpoint(c, self.workdir, "latest")

  def test_batch_size_must_divide_devices(self):
    c = tiny_config(self.data)
    c.batch_size = 12
    with self.assertRaisesRegex(ValueError, r"batch_size=12 must be a "
                                r"positive multiple of the global device "
                                r"count 8"):
      loop.setup(c, trainer=avvp_weak.TRAINER)

  def test_non_finite_loss_stops_with_clear_error(self):
    c = tiny_config(self.data)
    c.optim.lr = 1e35
    with self.assertRaisesRegex(writers.NonFiniteLossError,
                                "non-finite loss"):
      avvp_weak.train_and_evaluate(c, tempfile.mkdtemp())

  def test_one_device_gives_same_loss_curve(self):
    wd = tempfile.mkdtemp()
    code = (
        "import sys; sys.path.insert(0, %r);"
        "from tests.trainers import test_avvp_weak as t;"
        "from avjax.trainers import avvp_weak;"
        "avvp_weak.train_and_evaluate(t.tiny_config(%r), %r)"
        % (REPO, self.data, wd))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   cwd=REPO, capture_output=True)
    loss = lambda w: [r["train/loss"] for r in writers.read_jsonl(w)
                      if "train/loss" in r]
    one, eight = loss(wd), loss(self.workdir)
    self.assertLen(one, 16)
    np.testing.assert_allclose(one, eight, rtol=2e-4)


if __name__ == "__main__":
  absltest.main()

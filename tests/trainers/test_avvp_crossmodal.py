"""Cross-modal learning trains end to end and logs its discriminator."""

import tempfile

from absl.testing import absltest
import pytest
import numpy as np

from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.utils import writers
from configs import avvp_crossmodal
from tests import testing_utils as tu
from tests.trainers import test_avvp_weak

pytestmark = pytest.mark.slow  # trains the cross-modal model end to end


class CrossModalTrainTest(absltest.TestCase):

  def test_one_epoch_adversarial(self):
    data = tempfile.mkdtemp()
    tu.write_fake_dataset(data, {"train": 32, "val": 8, "test": 8},
                          num_shards=2, lengths=(5, 3))
    c = test_avvp_weak.tiny_config(data)
    c.model.adversarial = True
    c.loss.type = "crossmodal"
    c.num_epochs = 1
    wd = tempfile.mkdtemp()
    summary = avvp_weak.train_and_evaluate(c, wd)
    self.assertEqual(summary["results"]["test"]["num_clips"], 8)
    rows = [r for r in writers.read_jsonl(wd) if "train/loss" in r]
    self.assertLen(rows, 4)
    for r in rows:
      self.assertBetween(r["train/disc_acc"], 0.0, 1.0)
      self.assertTrue(np.isfinite(r["train/loss_disc"]))
    scales = [r["train/grl_scale"] for r in rows]
    self.assertEqual(scales[0], 0.0)
    self.assertTrue(np.all(np.diff(scales) > 0))
    tu.check_parses(self, wd, "best")  # parse drops the discriminator

  def test_adversarial_needs_crossmodal_loss(self):
    c = avvp_crossmodal.get_config("runlocal,variant=adv")
    c.loss.type = "han"
    with self.assertRaisesRegex(ValueError, "loss.type.*crossmodal"):
      loop.validate_config(c, avvp_weak.TRAINER)

if __name__ == "__main__":
  absltest.main()

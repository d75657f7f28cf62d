"""Cross-modal learning trains end to end and logs its discriminator."""

import tempfile

from absl.testing import absltest
import jax
import numpy as np
import pytest

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

  @pytest.mark.slow
  def test_reference_forms_train_and_restore_batch_stats(self):
    """form=reference: BatchNorm running statistics are trained, saved and
    restored with the checkpoint the test split is scored from."""
    data = tempfile.mkdtemp()
    tu.write_fake_dataset(data, {"train": 16, "val": 8, "test": 8},
                          num_shards=2, lengths=(5, 3))
    c = test_avvp_weak.tiny_config(data)
    c.model.update(avvp_crossmodal.FORMS["reference"], adversarial=True,
                   separate_self_attention=True, skip=True,
                   global_context=True)
    c.loss.type = "crossmodal"
    c.num_epochs = 1
    wd = tempfile.mkdtemp()
    summary = avvp_weak.train_and_evaluate(c, wd)
    self.assertEqual(summary["results"]["test"]["num_clips"], 8)
    s = loop.setup(loop.read_config(wd), train=False)
    state, _, _ = loop.restore(s, wd, "latest")
    stats = state.model_state["batch_stats"]["modality_disc"]["norm_0"]
    self.assertGreater(float(np.abs(jax.device_get(stats["mean"])).max()),
                       0.0)

  def test_reference_form_is_the_llp_default(self):
    ref = avvp_crossmodal.get_config("data=llp")
    paper = avvp_crossmodal.get_config("data=llp,form=paper")
    for key, value in avvp_crossmodal.FORMS["reference"].items():
      self.assertEqual(ref.model[key], value)
      self.assertEqual(paper.model[key],
                       avvp_crossmodal.FORMS["paper"][key])
    self.assertEqual(avvp_crossmodal.get_config("").model.disc_norm, "layer")
    self.assertFalse(avvp_crossmodal.get_config(
        "data=llp,variant=han").model.shared_fc)
    with self.assertRaisesRegex(ValueError, "form='x'"):
      avvp_crossmodal.get_config("form=x")

  def test_adversarial_needs_crossmodal_loss(self):
    c = avvp_crossmodal.get_config("runlocal,variant=adv")
    c.loss.type = "han"
    with self.assertRaisesRegex(ValueError, "loss.type.*crossmodal"):
      loop.validate_config(c, avvp_weak.TRAINER)

if __name__ == "__main__":
  absltest.main()

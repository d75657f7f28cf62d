"""AVG pretraining -> fine-tuning from the restored pretraining checkpoint."""

import os
import tempfile

from absl.testing import absltest
import pytest
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from avjax.projects.crossmodal import pipeline
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import pretrained
from configs import avvp_crossmodal
from tests import testing_utils as tu

pytestmark = pytest.mark.slow  # AVG pretraining then fine-tuning end to end


def tiny_config(data_dir, variant="pretrained"):
  c = avvp_crossmodal.get_config(f"variant={variant},runlocal")
  c.data.name, c.data.data_dir = "fake", data_dir
  c.model.d_model = c.model.d_ff = 16
  c.batch_size = c.eval_batch_size = c.avg.batch_size = 8
  c.num_epochs = c.avg.num_epochs = 1
  c.log_every_steps = 4
  c.avg.audio_threshold = c.avg.visual_threshold = 0.3
  c.avg.eval_splits = ["val"]
  return c


def flat(params):
  return flax.traverse_util.flatten_dict(jax.device_get(params), sep="/")


class AVGPipelineTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data = tu.trainer_dataset()
    cls.workdir = tempfile.mkdtemp()
    cls.summary = pipeline.train_and_evaluate(tiny_config(cls.data),
                                              cls.workdir)
    cls.pre = os.path.join(cls.workdir, "pretrain")

  def test_both_stages_ran_and_report(self):
    self.assertEqual(self.summary["results"]["test"]["num_clips"], 21)
    pre = self.summary["pretrain"]
    self.assertEqual(pre["step"], 8)
    self.assertEqual(sorted(pre["results"]), ["val"])
    for res in (pre["results"]["val"], pre["init"]["val"]):
      for k in ("a2v_r1", "v2a_r1", "chance_r1", "pair_acc", "pos_rate"):
        self.assertBetween(res[k], 0.0, 100.0)
    # the positive rate is a property of the data, not of the encoder
    self.assertEqual(pre["results"]["val"]["pos_rate"],
                     pre["init"]["val"]["pos_rate"])

  def test_frozen_encoder_unchanged_by_finetuning(self):
    fine = pretrained.load_params(os.path.join(self.workdir, "finetune"))
    pre = pretrained.load_params(self.pre)
    want, got = flat(pre["avg_encoder"]), flat(fine["avg_encoder"])
    self.assertEqual(sorted(want), sorted(got))
    for k in want:
      np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    self.assertIn("mmil", fine)  # the rest of the model was trained

  def test_init_from_restored_pretraining(self):
    c = tiny_config(self.data, "pretrain_e2e")
    c.model.init_from = self.pre
    loaded = pretrained.load_params(self.pre)
    params = {"avg_encoder": jax.tree.map(jnp.zeros_like,
                                          loaded["avg_encoder"]),
              "mmil": {"w": jnp.ones(3)}}
    state = train_lib.TrainState.create(apply_fn=None, params=params,
                                        tx=optax.identity(),
                                        rng=jax.random.PRNGKey(0))
    state = pretrained.init_params(state, c.model)
    want, got = flat(loaded["avg_encoder"]), flat(state.params["avg_encoder"])
    self.assertEqual(sorted(want), sorted(got))
    for k in want:
      np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    self.assertTrue(any(np.abs(want[k]).max() > 0 for k in want))
    np.testing.assert_array_equal(state.params["mmil"]["w"], np.ones(3))

  def test_frozen_optimizer_zeroes_encoder_updates(self):
    params = {"avg_encoder": {"k": np.ones((2, 3), np.float32)},
              "mmil": {"w": np.ones(3, np.float32)}}
    grads = jax.tree.map(np.ones_like, params)
    for frozen in (True, False):
      c = tiny_config(self.data)
      c.model.freeze_pretrained = frozen
      tx = pretrained.maybe_freeze(optax.adam(0.1), c.model)
      state = train_lib.TrainState.create(apply_fn=None, params=params,
                                          tx=tx, rng=jax.random.PRNGKey(0))
      new = state.apply_gradients(grads=grads)
      self.assertTrue(np.all(new.params["mmil"]["w"] < 1.0))
      moved = np.abs(new.params["avg_encoder"]["k"] - 1.0).max()
      self.assertEqual(moved == 0.0, frozen)

  def test_mismatched_encoder_refused(self):
    c = tiny_config(self.data, "pretrain_e2e")
    c.model.init_from = self.pre
    params = pretrained.load_params(self.pre)
    params["avg_encoder"]["audio_proj"]["kernel"] = np.zeros((6, 32))
    state = train_lib.TrainState.create(apply_fn=None, params=params,
                                        tx=optax.identity(),
                                        rng=jax.random.PRNGKey(0))
    with self.assertRaisesRegex(checkpointing.CheckpointMismatchError,
                                r"pretrained_shapes"):
      pretrained.init_params(state, c.model)

  def test_config_validation(self):
    c = tiny_config(self.data)
    c.model.init_from = ""
    with self.assertRaisesRegex(ValueError, "model.init_from"):
      loop.validate_config(c, avvp_weak.TRAINER)


if __name__ == "__main__":
  absltest.main()

"""A new model is two files and no edit elsewhere: a model module and a
config naming it (`config.model.name` as a full module path).

The test writes both outside the repository (a package folder and a config
file in a temporary directory put on PYTHONPATH), then trains a few steps
and evaluates the saved checkpoint through the normal command lines
(`python -m avjax.main`, `python -m avjax.evaluate`): the loop, the AVVP
loss and evaluator are chosen by name like any built-in component.
"""

import json
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
import pytest

from tests import testing_utils as tu

pytestmark = pytest.mark.slow  # trains a toy model through the CLI

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

# File 1 of 2: the model module (the model-module contract of
# `avjax.models.build`: build(model_cfg, info), input_features(model_cfg)).
MODEL = '''
"""A toy AVVP model: per-segment linear audio/visual scores, mean pooled."""

import flax.linen as nn
import jax.numpy as jnp


class ToyNet(nn.Module):
  num_classes: int
  hidden: int

  @nn.compact
  def __call__(self, batch, *, train):
    del train
    streams = []
    for key in ("audio", "motion"):
      h = nn.relu(nn.Dense(self.hidden, name=key + "_in")(batch[key]))
      streams.append(nn.Dense(self.num_classes, name=key + "_out")(h))
    frame = nn.sigmoid(jnp.stack(streams, axis=2))  # [B, T, 2, C]
    m = batch["segment_mask"][:, :, None, None]
    clip = (frame * m).sum(1) / jnp.maximum(m.sum(1), 1.0)  # [B, 2, C]
    clip = jnp.clip(clip, 1e-6, 1 - 1e-6)
    return {"frame_prob": frame, "audio_prob": clip[:, 0],
            "visual_prob": clip[:, 1], "global_prob": clip.mean(1)}


def build(model_cfg, info):
  return ToyNet(num_classes=len(info["classes"]), hidden=model_cfg.hidden)


def input_features(model_cfg):
  del model_cfg
  return ("audio", "motion")
'''

# File 2 of 2: the config (the AVVP trainer, loss and evaluator by name).
CONFIG = '''
"""The toy model on weakly-supervised AVVP."""

import ml_collections

from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, runlocal=False)
  c = common.avvp_base()
  c.experiment_name = "toy"
  c.model = ml_collections.ConfigDict({"name": "toy_pkg.toy_model",
                                       "hidden": 8})
  common.set_data(c, "synthetic")
  c.batch_size = c.eval_batch_size = 16
  c.num_epochs, c.log_every_steps = 2, 2
  if arg.runlocal:
    c.data.synthetic.update(num_train=64, num_val=16, num_test=16)
  return c
'''


class ExtendingTest(absltest.TestCase):

  def test_toy_model_in_two_files_trains_and_evaluates(self):
    plugins = tu.make_tempdir(self)
    os.makedirs(os.path.join(plugins, "toy_pkg"))
    with open(os.path.join(plugins, "toy_pkg", "toy_model.py"), "w") as f:
      f.write(textwrap.dedent(MODEL))
    config = os.path.join(plugins, "toy_config.py")
    with open(config, "w") as f:
      f.write(textwrap.dedent(CONFIG))
    workdir = os.path.join(tu.make_tempdir(self), "run")
    data = tu.trainer_dataset()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([plugins, REPO]))
    flags = [f"--config={config}:runlocal", f"--workdir={workdir}",
             "--config.data.name=fake", f"--config.data.data_dir={data}"]

    def run(module, *extra):
      proc = subprocess.run([sys.executable, "-m", module] + flags +
                            list(extra), cwd=REPO, env=env,
                            capture_output=True, text=True)
      self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])

    run("avjax.main")
    with open(os.path.join(workdir, "results.json")) as f:
      trained = json.load(f)
    self.assertEqual(trained["step"], 8)  # 64 clips / 16, 2 epochs
    self.assertEqual(trained["results"]["test"]["num_clips"], 21)
    for k in ("seg_a", "seg_type", "ev_event", "map"):
      self.assertBetween(trained["results"]["test"][k], 0.0, 100.0)
    with open(os.path.join(workdir, "config.json")) as f:
      self.assertEqual(json.load(f)["model"]["name"], "toy_pkg.toy_model")

    run("avjax.evaluate", "--checkpoint=best")
    with open(os.path.join(workdir, "eval_best.json")) as f:
      again = json.load(f)
    self.assertEqual(again["results"], trained["results"])
    self.assertTrue(os.path.exists(os.path.join(workdir, "pred_test.npz")))


if __name__ == "__main__":
  absltest.main()

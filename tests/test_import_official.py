"""`python -m avjax.import_official`: an official release's weights become an
avjax run that evaluates and parses like a trained one."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
import jax
import numpy as np

from avjax import import_official
from avjax.data import schema
from avjax.models import convert_torch
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.trainers import registry as trainer_registry
from configs import ave_cml
from configs import avvp_crossmodal
from configs import avvp_han
from configs import avvp_ma
from tests import testing_utils as tu
from tests.models import test_convert_avdln
from tests.models import test_convert_crossmodal
from tests.models.test_convert_torch import random_state_dict
from tests.trainers import test_ave_supervised

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLP_CLASSES = tuple(f"class_{i}" for i in range(25))


def config(module, data_dir):
  c = module.get_config("data=llp")
  c.data.data_dir = data_dir
  return c


class ImportOfficialTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    import tempfile  # pylint: disable=g-import-not-at-top
    cls.data = tempfile.mkdtemp()
    tu.write_fake_dataset(cls.data, {"train": 16, "val": 8, "test": 9},
                          num_shards=1, lengths=(10,), classes=LLP_CLASSES,
                          features=schema.LLP_FEATURES)
    cls.han_shapes = json.loads(str(tu.load_golden("han")[
        "state_dict_shapes"]))
    cls.ma_shapes = json.loads(str(tu.load_golden("ma")["state_dict_shapes"]))

  def write_state_dict(self, shapes, seed=0):
    path = os.path.join(tu.make_tempdir(self), "weights.npz")
    np.savez(path, **random_state_dict(shapes, seed))
    return path

  def test_han_weights_become_a_run_that_evaluates_and_parses(self):
    weights = self.write_state_dict(self.han_shapes)
    workdir = os.path.join(tu.make_tempdir(self), "run")
    proc = subprocess.run(
        [sys.executable, "-m", "avjax.import_official",
         "--config=configs/avvp_han.py:data=llp",
         f"--config.data.data_dir={self.data}", f"--weights={weights}",
         f"--workdir={workdir}", "--splits=test"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    info = json.load(open(os.path.join(workdir, "imported.json")))
    self.assertEqual(info["source"], "han")
    self.assertLen(info["sha256"], 64)
    summary = json.load(open(os.path.join(workdir, "eval_best.json")))
    self.assertEqual(summary["results"]["test"]["num_clips"], 9)
    # The stored parameters are the converted ones, bit for bit.
    c = config(avvp_han, self.data)
    s = loop.setup(c, train=False, trainer=avvp_weak.TRAINER)
    state, _, step = loop.restore(s, workdir, "best")
    self.assertEqual(step, 0)
    want = convert_torch.convert_han(np.load(weights)).params
    jax.tree.map(np.testing.assert_array_equal, state.params, want)
    tu.check_parses(self, workdir)

  def test_ma_weights_are_scored_as_one_run(self):
    weights = self.write_state_dict(self.ma_shapes, seed=1)
    workdir = os.path.join(tu.make_tempdir(self), "run")
    c, source = import_official.import_weights(
        config(avvp_ma, self.data), weights, workdir)
    self.assertEqual((source, c.trainer), ("ma", "avvp_weak"))
    stored = loop.read_config(workdir)
    self.assertEqual(stored.trainer, "avvp_weak")
    s = loop.setup(stored, train=False, trainer=avvp_weak.TRAINER)
    state, _, _ = loop.restore(s, workdir, "best")
    want = convert_torch.convert_ma(np.load(weights)).params
    jax.tree.map(np.testing.assert_array_equal, state.params, want)

  def test_crossmodal_weights_keep_batchnorm_statistics(self):
    shapes = json.loads(str(tu.load_golden("crossmodal")["state_dict_shapes"]))
    sd = test_convert_crossmodal.random_state_dict(shapes, 0)
    weights = os.path.join(tu.make_tempdir(self), "crossmodal.npz")
    np.savez(weights, **sd)
    workdir = os.path.join(tu.make_tempdir(self), "run")
    c, source = import_official.import_weights(
        config(avvp_crossmodal, self.data), weights, workdir)
    self.assertEqual(source, "crossmodal")
    s = loop.setup(c, train=False, trainer=avvp_weak.TRAINER)
    state, _, _ = loop.restore(s, workdir, "best")
    want = convert_torch.convert_crossmodal(sd).variables
    jax.tree.map(np.testing.assert_array_equal, state.params, want["params"])
    jax.tree.map(np.testing.assert_array_equal,
                 state.model_state["batch_stats"], want["batch_stats"])

  def test_avdln_keras_weights_score_a2v_and_v2a(self):
    data, _ = test_ave_supervised.converted_fixture()
    weights = os.path.join(tu.make_tempdir(self), "cmm_model_weights.h5")
    test_convert_avdln.write_release_layout(
        weights, test_convert_avdln.random_weights(0))
    c = ave_cml.get_config("data=ave")
    c.data.data_dir, c.batch_size, c.eval_batch_size = data, 8, 8
    workdir = os.path.join(tu.make_tempdir(self), "run")
    c, source = import_official.import_weights(c, weights, workdir)
    self.assertEqual(source, "avdln")
    res = trainer_registry.get(c.trainer).evaluate_checkpoint(
        c, workdir, "best", splits=["test"])["results"]["test"]
    for k in ("a2v", "v2a"):
      self.assertBetween(res[k], 0.0, 100.0)

  def test_refusals_name_the_problem(self):
    weights = self.write_state_dict(self.han_shapes)
    c = config(avvp_han, self.data)
    c.model.d_ff = 256  # not the release's network
    with self.assertRaisesRegex(import_official.ImportRefused,
                                r"misshapen.*ffn1.*\(512, 512\).*"
                                r"model: \(512, 256\)"):
      import_official.import_weights(c, weights, tu.make_tempdir(self))
    used = tu.make_tempdir(self)
    open(os.path.join(used, "x"), "w").close()
    with self.assertRaisesRegex(import_official.ImportRefused, "not empty"):
      import_official.import_weights(config(avvp_han, self.data), weights,
                                     used)
    with self.assertRaisesRegex(import_official.ImportRefused,
                                "no such file"):
      import_official.import_weights(config(avvp_han, self.data),
                                     weights + ".missing",
                                     tu.make_tempdir(self))


if __name__ == "__main__":
  absltest.main()

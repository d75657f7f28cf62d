"""The loop's config handling: one validation for every component, and old
runs' config.json / checkpoint fingerprints read by the current code."""

import json
import os

from absl.testing import absltest

from avjax.models import build
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from configs import ave
from configs import avvp_han
from tests import testing_utils as tu


def write_config(workdir: str, config: dict) -> None:
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config, f)


class ValidateTest(absltest.TestCase):

  def test_every_component_reports_at_once(self):
    c = avvp_han.get_config("runlocal")
    c.eval.evaluator = "nope"
    c.loss.dropped_target = "maybe"
    c.model.dropout = 1.5
    c.num_epochs = 0
    with self.assertRaisesRegex(
        ValueError, r"(?s)num_epochs=0.*unknown config.eval.evaluator="
        r"'nope'.*loss.dropped_target='maybe'.*model.dropout=1.5"):
      loop.validate_config(c, avvp_weak.TRAINER)

  def test_plugin_names_must_be_importable(self):
    c = avvp_han.get_config("runlocal")
    c.model.name = "no_such_pkg.model"
    with self.assertRaisesRegex(ModuleNotFoundError, "PYTHONPATH"):
      loop.validate_config(c)


class LegacyTest(absltest.TestCase):

  def test_old_config_json_gets_the_fields_it_lacked(self):
    d = tu.make_tempdir(self)
    old = avvp_han.get_config("runlocal").to_dict()
    del old["eval"]["evaluator"], old["model"]["shared_fc"]
    del old["loss"]["dropped_target"], old["data"]["extra_train_splits"]
    write_config(d, old)
    c = loop.read_config(d)
    self.assertEqual(c.eval.evaluator, "avvp_f1")
    self.assertFalse(c.model.shared_fc)
    self.assertEqual(c.loss.dropped_target, "negative")
    self.assertEqual(tuple(c.data.extra_train_splits), ())
    as_json = lambda x: json.loads(json.dumps(x.to_dict()))
    self.assertEqual(as_json(c), as_json(avvp_han.get_config("runlocal")))
    loop.validate_config(c, avvp_weak.TRAINER)

  def test_old_trainer_components_by_trainer(self):
    d = tu.make_tempdir(self)
    old = ave.get_config("runlocal").to_dict()
    del old["eval"]["evaluator"]
    write_config(d, old)
    self.assertEqual(loop.read_config(d).eval.evaluator, "ave_acc")
    old["eval"]["evaluator"] = "avvp"  # the evaluator's old name
    old["trainer"] = "avvp_weak"
    write_config(d, old)
    self.assertEqual(loop.read_config(d).eval.evaluator, "avvp_f1")

  def test_stored_model_blocks_upgraded_by_the_model(self):
    c = avvp_han.get_config("runlocal")
    old = c.model.to_dict()
    del old["shared_fc"]
    self.assertEqual(build.upgrade_fingerprint(c.model, old),
                     c.model.to_dict())
    c.model.name = "avg"  # AVG pretraining stored its AVVP block's name
    old = dict(c.model.to_dict(), name="avvp_net")
    self.assertEqual(build.upgrade_fingerprint(c.model, old)["name"], "avg")


if __name__ == "__main__":
  absltest.main()

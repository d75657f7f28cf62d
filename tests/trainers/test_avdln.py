"""AVDLN and DCCA train on the converted AVE-layout fixture; A2V/V2A scored
on the clips whose event is shorter than the clip."""

import tempfile

from absl.testing import absltest
import pytest

from avjax.trainers import avdln
from avjax.trainers import loop
from configs import ave_cml
from tests.trainers import test_ave_supervised as fixture

pytestmark = pytest.mark.slow  # trains AVDLN end to end


def tiny(data_dir, variant, form="avjax"):
  c = ave_cml.get_config(f"runlocal,variant={variant},form={form}")
  c.data.name, c.data.data_dir = "ave", data_dir
  c.batch_size = c.eval_batch_size = 8
  c.num_epochs, c.log_every_steps = 1, 1
  return c


class AVDLNTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data, cls.fix = fixture.converted_fixture()

  def test_avdln_and_dcca_train_and_localize(self):
    lays = self.fix["layouts"]
    short = sum(0 < lays[i]["event"].sum() < 10
                for i in self.fix["order"]["test"])
    for variant in ("avdln", "dcca"):
      with self.subTest(variant):
        res = avdln.train_and_evaluate(tiny(self.data, variant),
                                       tempfile.mkdtemp())
        test = res["results"]["test"]
        self.assertEqual(test["num_queries"], short)
        for k in ("a2v", "v2a"):
          self.assertBetween(test[k], 0.0, 100.0)


  def test_reference_protocol_trains_on_pairs_and_reports_final(self):
    c = tiny(self.data, "avdln", "reference")
    s = loop.setup(c, trainer=avdln.TRAINER)
    self.assertEqual(s.steps_per_epoch, 10 * (fixture.SIZES["train"] // 8))
    res = avdln.train_and_evaluate(c, tempfile.mkdtemp())
    self.assertEqual(res["step"], s.total_steps)
    self.assertEqual(res["checkpoint"], "latest")  # the final model
    for k in ("a2v", "v2a"):
      self.assertBetween(res["results"]["test"][k], 0.0, 100.0)


if __name__ == "__main__":
  absltest.main()

"""AVDLN and DCCA train on the converted AVE-layout fixture; A2V/V2A scored
on the clips whose event is shorter than the clip."""

import tempfile

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from avjax.trainers import avdln
from configs import ave_cml
from tests.trainers import test_ave_supervised as fixture


def tiny(data_dir, variant):
  c = ave_cml.get_config(f"runlocal,variant={variant}")
  c.data.name, c.data.data_dir = "ave", data_dir
  c.batch_size = c.eval_batch_size = 8
  c.num_epochs, c.log_every_steps = 1, 1
  return c


class AVDLNTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data, cls.fix = fixture.converted_fixture()

  def test_pair_masks(self):
    y = np.eye(3)[[[2, 0, 0, 2]]]  # background = last class
    pos, neg = avdln.pair_masks(jnp.asarray(y), jnp.ones((1, 4)))
    np.testing.assert_array_equal(pos, [[0, 1, 1, 0]])
    self.assertEqual(float(neg[0, 0, 0]), 0.0)  # diagonal
    self.assertEqual(float(neg[0, 0, 3]), 0.0)  # background x background
    self.assertEqual(float(neg[0, 0, 1]), 1.0)
    s, e = avdln.event_bounds(y, np.ones((1, 4)))
    self.assertEqual((int(s[0]), int(e[0])), (1, 3))

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


if __name__ == "__main__":
  absltest.main()

"""HAN trains on an LLP fixture in the published layout, converted by
`avjax.prepare`, with the synthetic run's config and only the data block
changed (issue: real datasets)."""

import os
import tempfile

from absl.testing import absltest
import pytest

from avjax import prepare
from avjax.data import make_llp_fixture
from avjax.trainers import avvp_weak
from configs import avvp_han
from configs import common

pytestmark = pytest.mark.slow  # converts an LLP layout and trains on it


class LLPLayoutTrainTest(absltest.TestCase):

  def test_han_trains_on_converted_llp_layout(self):
    root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    names = make_llp_fixture.write_fixture(root, train=64, val=16, test=16)
    self.assertEqual(prepare.main(["llp", f"--root={root}", f"--out={out}",
                                   "--num_shards=2", "--quiet"]), 0)
    c = avvp_han.get_config("runlocal")  # the synthetic smoke config ...
    c.data = common.llp_data(out)  # ... with only its data block replaced
    c.num_epochs = 1
    summary = avvp_weak.train_and_evaluate(c, tempfile.mkdtemp())
    test = summary["results"]["test"]
    self.assertEqual(test["num_clips"], len(names["test"]))
    self.assertBetween(test["seg_type"], 0.0, 100.0)
    self.assertTrue(os.path.exists(os.path.join(out, "dataset_info.json")))


if __name__ == "__main__":
  absltest.main()

"""AVE cross-modality localization evaluator: event bounds."""

from absl.testing import absltest
import numpy as np

from avjax.evaluators import ave_cml


class EventBoundsTest(absltest.TestCase):

  def test_event_bounds(self):
    y = np.eye(3)[[[2, 0, 0, 2]]]  # background = last class
    s, e = ave_cml.event_bounds(y, np.ones((1, 4)))
    self.assertEqual((int(s[0]), int(e[0])), (1, 3))


if __name__ == "__main__":
  absltest.main()

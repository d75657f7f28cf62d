"""AVE metrics: segment accuracy, sliding-window localization, attention."""

from absl.testing import absltest
import numpy as np

from avjax.metrics import ave


class AVEMetricsTest(absltest.TestCase):

  def test_segment_accuracy(self):
    prob = np.eye(3)[[[0, 1, 2, 2], [1, 1, 0, 0]]]
    y = np.eye(3)[[[0, 1, 1, 2], [1, 0, 0, 0]]]
    y[1, 3] = 0  # unlabelled segment: ignored
    self.assertAlmostEqual(ave.segment_accuracy(prob, y), 100 * 5 / 7)
    mask = np.array([[1, 1, 1, 1], [1, 0, 0, 0]])
    self.assertAlmostEqual(ave.segment_accuracy(prob, y, mask), 80.0)

  def test_window_localization(self):
    t = 6
    dist = np.ones((t, t))
    for s in range(2, 5):
      dist[s, s] = 0.0  # the query's true matches
    costs = ave.window_costs(dist, 2, 3)
    self.assertEqual(costs.shape, (4,))
    self.assertEqual(costs[2], 0.0)
    self.assertEqual(ave.localize(dist, 2, 3), 2)
    dist2 = np.ones((t, t))
    dist2[2, 0] = dist2[3, 1] = dist2[4, 2] = 0.0  # shifted by 2: wrong
    res = ave.cross_modal_accuracy(np.stack([dist, dist2]),
                                   np.array([2, 2]), np.array([5, 5]))
    self.assertEqual(res["a2v"], 50.0)
    self.assertEqual(res["num_queries"], 2.0)
    self.assertAlmostEqual(res["chance"], 25.0)
    # V2A uses the transpose: dist2.T places the visual query at 4.
    self.assertEqual(res["v2a"], 50.0)
    full = ave.cross_modal_accuracy(dist[None], np.array([0]),
                                    np.array([t]))
    self.assertEqual(full["num_queries"], 0.0)

  def test_attention_mass(self):
    att = np.full((1, 2, 4), 0.25)
    att[0, 0] = [0.7, 0.1, 0.1, 0.1]
    regions = np.array([[True, False, False, False]])
    res = ave.attention_mass(att, regions, np.array([[True, False]]))
    self.assertAlmostEqual(res["mass"], 0.7)
    self.assertAlmostEqual(res["uniform"], 0.25)
    self.assertAlmostEqual(res["ratio"], 2.8)


if __name__ == "__main__":
  absltest.main()

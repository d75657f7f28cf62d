"""Tests for avjax.metrics.tagging (AP as scikit-learn defines it)."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from avjax.metrics import tagging


def _column(scores, targets):
  return np.asarray(scores, float)[:, None], np.asarray(targets)[:, None]


def _reference_ap(scores, targets):
  """Loop over distinct thresholds: sum_n (R_n - R_{n-1}) P_n."""
  ap, prev_recall = 0.0, 0.0
  for thr in sorted(set(scores), reverse=True):
    chosen = scores >= thr
    tp = np.sum(chosen & (targets == 1))
    recall = tp / np.sum(targets == 1)
    ap += (recall - prev_recall) * tp / np.sum(chosen)
    prev_recall = recall
  return ap


class AveragePrecisionTest(parameterized.TestCase):

  @parameterized.named_parameters(
      # The example of the scikit-learn docs: P=1 at R=.5, P=2/3 at R=1.
      ("sklearn_doc", [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 5 / 6),
      # Tie at 0.5 enters together: P=1 at R=.5, then P=2/3 at R=1.
      ("tie", [0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0], 5 / 6),
      ("all_tied", [0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0], 0.25),
      ("perfect", [0.9, 0.8, 0.1], [1, 1, 0], 1.0),
      ("worst", [0.9, 0.8, 0.1], [0, 0, 1], 1 / 3),
      # P=1/2 at R=1/2 then P=2/4 at R=1 -> 0.5.
      ("interleaved", [4, 3, 2, 1], [0, 1, 0, 1], 0.5),
  )
  def test_hand_computed(self, scores, targets, expected):
    ap = tagging.average_precision(*_column(scores, targets))
    self.assertAlmostEqual(ap[0], expected, places=12)

  def test_class_without_positives_is_nan_and_left_out_of_map(self):
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.5, 0.3]])
    targets = np.array([[1, 0], [0, 0], [1, 0]])
    ap = tagging.average_precision(scores, targets)
    self.assertEqual(ap[0], 1.0)
    self.assertTrue(np.isnan(ap[1]))
    self.assertEqual(tagging.mean_average_precision(scores, targets), 100.0)
    self.assertTrue(np.isnan(
        tagging.mean_average_precision(scores, np.zeros_like(targets))))

  def test_vectorised_matches_reference_loop(self):
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((200, 25)), 1)  # many ties
    targets = rng.random((200, 25)) < 0.2
    ap = tagging.average_precision(scores, targets)
    for c in range(25):
      self.assertAlmostEqual(ap[c], _reference_ap(scores[:, c], targets[:, c]),
                             places=12)
    self.assertAlmostEqual(tagging.mean_average_precision(scores, targets),
                           100.0 * np.mean(ap), places=9)

  def test_rejects_bad_inputs(self):
    with self.assertRaisesRegex(ValueError, r"\[N, C\]"):
      tagging.average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with self.assertRaisesRegex(ValueError, "finite"):
      tagging.average_precision(np.full((2, 1), np.nan), np.ones((2, 1)))
    with self.assertRaisesRegex(ValueError, "0/1"):
      tagging.average_precision(np.zeros((2, 1)), np.full((2, 1), 2))


if __name__ == "__main__":
  absltest.main()

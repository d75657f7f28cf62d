"""AVG pair quality against dense labels (the threshold grid)."""

from absl.testing import absltest
import ml_collections
import numpy as np

from avjax.projects.crossmodal import avg_thresholds


def _batch():
  """One clip, 3 snippets: audio of 0 and 1 alike, 2 orthogonal; the visual
  snippets pairwise at cos 0.5; truth: 0 and 1 share audio class 0."""
  audio = np.array([[[1, 0, 0], [1, 0.1, 0], [0, 0, 1]]], np.float32)
  visual = np.array([[[1, 1, 0], [0, 1, 1], [1, 0, 1]]], np.float32)
  seg_a = np.array([[[1, 0], [1, 0], [0, 0]]], np.uint8)
  seg_v = np.array([[[0, 0], [0, 0], [0, 1]]], np.uint8)
  return {"audio": audio, "visual": visual, "seg_audio": seg_a,
          "seg_visual": seg_v, "segment_mask": np.ones((1, 3), np.float32),
          "_mask": np.ones(1, np.float32)}


class AvgThresholdsTest(absltest.TestCase):

  def test_grid_against_hand_counts(self):
    cfg = ml_collections.ConfigDict({"scope": "clip", "audio_threshold": 0.,
                                     "visual_threshold": 0., "link": "any",
                                     "silence_threshold": 2.0})
    rows = avg_thresholds.grid([_batch()], cfg, [0.9], [0.4, 0.6])
    loose, strict = rows  # visual 0.4 links everything; 0.6 nothing
    # strict: components {0, 1}, {2}: the 2 ordered pairs (0,1), (1,0) of 6.
    self.assertAlmostEqual(strict["pos_rate"], 100 * 2 / 6, places=4)
    self.assertAlmostEqual(strict["truth_rate"], 100 * 2 / 6, places=4)
    self.assertAlmostEqual(strict["precision"], 100.0, places=4)
    self.assertAlmostEqual(strict["recall"], 100.0, places=4)
    self.assertAlmostEqual(strict["visual_edge_rate"], 0.0, places=4)
    self.assertAlmostEqual(strict["audio_edge_prec"], 100.0, places=4)
    # loose: one component, every pair positive; 2 of 6 are true.
    self.assertAlmostEqual(loose["pos_rate"], 100.0, places=4)
    self.assertAlmostEqual(loose["precision"], 100 * 2 / 6, places=4)
    self.assertAlmostEqual(loose["recall"], 100.0, places=4)
    self.assertAlmostEqual(loose["f1"], 100 * 2 * (1 / 3) / (4 / 3),
                           places=3)
    # no two snippets share a visual class: the visual edges are all wrong.
    self.assertAlmostEqual(loose["visual_edge_prec"], 0.0, places=4)
    self.assertIn("| 0.90 | 0.40 |", avg_thresholds.markdown(rows))


if __name__ == "__main__":
  absltest.main()

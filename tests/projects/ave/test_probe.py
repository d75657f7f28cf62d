"""Linear probes of the synthetic AVE generator (settings chosen on val)."""

from unittest import mock

from absl.testing import absltest
import numpy as np

from avjax.projects.ave import probe as ave_probe
from avjax.data.synthetic import ave as sa

TINY = {"num_train": 40, "num_val": 20, "num_test": 20, "num_background": 0}


class AveProbeTest(absltest.TestCase):

  def test_ridge_recovers_separable_classes(self):
    rng = np.random.default_rng(0)
    centers = 5 * rng.standard_normal((3, 4))
    y = rng.integers(0, 3, 90)
    x = centers[y] + 0.1 * rng.standard_normal((90, 4))
    np.testing.assert_array_equal(ave_probe.ridge(x, y, x, 3, lam=1.0), y)

  def test_parse_grid_is_a_product(self):
    self.assertEqual(ave_probe.parse_grid("max_box=3,4;sync_fn=abs"),
                     [{"max_box": 3, "sync_fn": "abs"},
                      {"max_box": 4, "sync_fn": "abs"}])
    self.assertEqual(ave_probe.parse_grid("distractor_amp=0.3"),
                     [{"distractor_amp": 0.3}])
    self.assertEqual(ave_probe.parse_grid(""), [{}])  # the base alone
    with self.assertRaisesRegex(ValueError, "field=v1"):
      ave_probe.parse_grid("max_box")

  def test_select_rule(self):
    row = lambda a, v, vobj, av: {"A": a, "V": v, "Vobj": vobj, "AV": av}
    rows = [row(50, 55, 56, 60),    # closest V, but no attention gain
            row(50, 40, 60, 65),    # eligible, |V - 55.3| = 15.3
            row(50, 60, 70, 70),    # eligible, |V - 55.3| = 4.7
            row(70, 54, 70, 65)]    # V closest, but AV < A
    self.assertEqual(ave_probe.select(rows), 2)
    self.assertIsNone(ave_probe.select(rows[:1]))
    self.assertEqual(ave_probe.select(rows, min_att_gain=0), 0)

  def test_probe_scores_the_named_split_only(self):
    cfg = sa.SyntheticAVEConfig(**TINY)
    seen = []
    real = ave_probe.features

    def spy(c, split, n):
      seen.append((split, n))
      return real(c, split, n)

    with mock.patch.object(ave_probe, "features", spy):
      res = ave_probe.probe(cfg, "val", num_train=40, num_eval=20)
    self.assertEqual(seen, [("train", 40), ("val", 20)])
    for k in ("A", "V", "Vobj", "AV", "AVobj", "lcca_a2v"):
      self.assertBetween(res[k], 0.0, 100.0)
    # The object cells beat the pool and audio adds to the pool.
    self.assertGreater(res["Vobj"], res["V"])
    self.assertGreater(res["AV"], res["V"])
    with self.assertRaisesRegex(ValueError, "fit on train"):
      ave_probe.probe(cfg, "train")

  def test_features_match_the_generator(self):
    cfg = sa.SyntheticAVEConfig(**TINY)
    f = ave_probe.features(cfg, "val", 2)
    clip, lay = sa.make_clip(cfg, "val", 1)
    np.testing.assert_allclose(f["pooled"][1], clip["visual_vec"], rtol=1e-5)
    obj = clip["visual_map"][:, lay["object"]].mean(1)
    np.testing.assert_allclose(f["object"][1], obj, rtol=1e-5)
    np.testing.assert_array_equal(f["bounds"][1], [lay["start"], lay["end"]])
    self.assertEqual(f["labels"].shape, (2, cfg.num_segments))

  def test_run_marks_the_pick(self):
    res = ave_probe.run(ave_probe.parse_grid("max_box=1,4"), TINY, "val",
                        40, 20, min_att_gain=-100)
    self.assertLen(res["rows"], 2)
    self.assertEqual(res["pick"], ave_probe.select(res["rows"], -100))
    self.assertIn("**pick**", ave_probe.markdown(res))


if __name__ == "__main__":
  absltest.main()

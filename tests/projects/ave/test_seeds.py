"""Table 2 over seeds: grouping and mean ± sd from a sweep's rows."""

import os
import tempfile

from absl.testing import absltest

from avjax.projects.ave import seeds as ave_seeds

ROWS = {
    "late-dmrfe s0": {"acc": 93.0}, "late-dmrfe s1": {"acc": 94.0},
    "early-gmu s0": {"acc": 90.0}, "early-gmu s1": {"acc": 92.0},
    "late-gmu s0": {"acc": 91.0}, "late-gmu s1": {"acc": 91.0},
    "decision-gmu s0": {"acc": 89.5},
    "A s1": {"acc": 50.0},  # not a Table 2 row
}


class AveSeedsTest(absltest.TestCase):

  def test_group(self):
    g = ave_seeds.group(ROWS)
    self.assertEqual(set(g), {"gmu", "dmrfe"})
    self.assertEqual(g["gmu"], {"early": {0: 90.0, 1: 92.0},
                                "late": {0: 91.0, 1: 91.0},
                                "decision": {0: 89.5}})

  def test_plain_table2_names_are_seed_0(self):
    g = ave_seeds.group({"late-dmrn": {"acc": 91.4}, "early-dmrn s1": {
        "acc": 92.0}})
    self.assertEqual(g, {"dmrn": {"late": {0: 91.4}, "early": {1: 92.0}}})

  def test_setting_tags_are_kept_apart(self):
    rows = {"late-mrn vg30_n3200": {"acc": 90.0},
            "early-mrn vg30_n3200 s1": {"acc": 88.0},
            "late-mrn": {"acc": 70.0}, "early-mrn lag1": {"acc": 80.0},
            "late-gmu s2": {"acc": 91.0}}
    self.assertEqual(ave_seeds.tags(rows), ["", "lag1", "vg30_n3200"])
    self.assertEqual(ave_seeds.group(rows, tag="vg30_n3200"),
                     {"mrn": {"late": {0: 90.0}, "early": {1: 88.0}}})
    self.assertEqual(ave_seeds.group(rows),  # untagged only
                     {"mrn": {"late": {0: 70.0}}, "gmu": {"late": {2: 91.0}}})

  def test_markdown_cells(self):
    md = ave_seeds.markdown(ave_seeds.group(ROWS)).splitlines()
    self.assertEqual(md[0], "| stage | gmu | dmrfe |")  # the paper's order
    self.assertEqual(md[2], "| early | 91.0 ± 1.4 | - |")
    self.assertEqual(md[3], "| late | 91.0 ± 0.0 | 93.5 ± 0.7 |")
    self.assertEqual(md[4], "| decision | 89.5 (n=1) | - |")
    # Paired by seed: 91-90 = +1, 91-92 = -1 -> mean 0, one win of two.
    self.assertEqual(md[5], "| late - early (late wins) | +0.0 (1/2) | - |")


  def test_plot_writes_a_png(self):
    path = os.path.join(tempfile.mkdtemp(), "t.png")
    self.assertEqual(ave_seeds.plot(ave_seeds.group(ROWS), path, "t"), path)
    with open(path, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    self.assertIsNone(ave_seeds.plot({}, path, "empty"))


if __name__ == "__main__":
  absltest.main()

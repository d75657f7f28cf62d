"""avjax.parity_steps: the step-loss comparison, the written order as CSV
rows, drops applied to labels, argument errors, the report; one slow run
against the official HAN code when it and a torch interpreter are here."""

import json
import os

import numpy as np
import pytest

from avjax import parity
from avjax import parity_ma
from avjax import parity_steps
from avjax.data import pipeline
from configs import avvp_ma
from tests import test_parity as han_tests


def test_compare_finds_the_first_diverging_step():
  rng = np.random.default_rng(0)
  official = rng.uniform(0.1, 1.0, (10, 3))
  same = parity_steps.compare(official, official.copy(), 4)
  assert same["steps"] == 10 and same["rel_step1"] == 0.0
  assert same["first_step_over"] == {"0.0001": None, "0.001": None,
                                     "0.01": None}
  assert [e["max_rel"] for e in same["per_epoch"]] == [0.0, 0.0, 0.0]
  avjax = official.copy()
  avjax[6, 1] += 0.002 * official[6].sum()  # step 7: total off by 0.2%
  avjax[8, 0] += 0.05 * official[8].sum()   # step 9: by 5%
  got = parity_steps.compare(official, avjax[:9], 4)
  assert got["steps"] == 9 and got["steps_avjax"] == 9
  assert got["first_step_over"] == {"0.0001": 7, "0.001": 7, "0.01": 9}
  assert got["per_epoch"][0]["max_rel"] == 0.0
  assert got["per_epoch"][1]["max_rel"] == pytest.approx(0.002)
  assert got["per_epoch"][2]["max_rel"] == pytest.approx(0.05)
  assert got["per_epoch"][2]["max_term_rel"] > 0.05  # one term carries it
  assert got["first_step_loss_equal"]
  with pytest.raises(ValueError, match="no step losses"):
    parity_steps.compare(official[:0], avjax[:0], 4)


def test_written_rows_are_avjax_fixed_order_as_csv_rows(tmp_path):
  c = han_tests.tiny_config()
  c.data.cache_dir = str(tmp_path / "cache")
  ctx = parity.start(c, str(tmp_path / "work"), ["avjax"], None, None,
                     False)
  names = parity_ma.read_train_labels(os.path.join(ctx["export_dir"],
                                                   "data"))[0]
  rows = parity_steps.written_rows(ctx["avjax_data"], 5, 0, names)
  assert len(rows) == 10  # 12 clips, batch 5: the last 2 unused
  assert len(set(rows)) == 10 and set(rows) <= set(range(12))
  src = pipeline.Source(ctx["avjax_data"], "train", [])
  ids = []
  for b in pipeline.train_batches(src, 5, 3, num_steps=2, order="fixed"):
    ids += [x.decode() for x in b["clip_id"]]
  assert [names[r] for r in rows] == ids
  with pytest.raises(parity.SetupError, match="not in the export"):
    parity_steps.written_rows(ctx["avjax_data"], 5, 0, names[1:])


def test_apply_drops():
  classes = ["a", "b", "c"]
  weak = {"x": {"a", "b"}, "y": {"c"}}
  got = parity_steps.apply_drops({("x", "b", "audio"), ("y", "c", "visual")},
                                 ["x", "y"], weak, classes)
  np.testing.assert_array_equal(got["x"][0], [1, 0, 0])
  np.testing.assert_array_equal(got["x"][1], [1, 1, 0])
  np.testing.assert_array_equal(got["y"][0], [0, 0, 1])
  np.testing.assert_array_equal(got["y"][1], [0, 0, 0])


def test_argument_errors(tmp_path):
  han = han_tests.tiny_config()
  with pytest.raises(parity.SetupError, match="only MA configs"):
    parity_steps.check_args(han, 3, None)
  parity_steps.check_args(han, 1, None)
  ma = avvp_ma.get_config()
  with pytest.raises(parity.SetupError, match="needs --need_to_change"):
    parity_steps.check_args(ma, 3, None)
  with pytest.raises(parity.SetupError, match="no such file"):
    parity_steps.check_args(ma, 3, str(tmp_path / "missing.pkl"))
  with pytest.raises(parity.SetupError, match="1 or 3"):
    parity_steps.check_args(ma, 2, None)


def test_markdown_report():
  official = np.full((6, 4), 0.5)
  avjax = official * (1 + 1e-6)
  scores = {k: 50.0 + i for i, k in enumerate(parity.KEYS)}
  res = {"what": "MA stage 3, seed 5", "seed": 5, "dropout": 0.0,
         "data": "synthetic", "compare": parity_steps.compare(official,
                                                              avjax, 3),
         "official": {"val": [scores, scores], "test_final": scores},
         "avjax": {"val": [scores, scores], "test_final": None}}
  md = parity_steps.markdown(res)
  assert "MA stage 3, seed 5" in md and "6 steps compared" in md
  assert "| 2 | 2.00000 | 2.00000 | 1.0e-06 |" in md
  assert "| official | 50.0 | 51.0 |" in md and "| avjax | - | - |" in md
  assert "official 53.0, 53.0" in md


@pytest.mark.slow
def test_official_han_same_weights_one_epoch(tmp_path):
  official, python = han_tests.official_or_skip()
  c = han_tests.tiny_config()
  c.data.synthetic.num_train = 32
  c.batch_size = 8  # the tests' 8 forced devices
  c.data.cache_dir = str(tmp_path / "cache")
  work = str(tmp_path / "work")
  res = parity_steps.run(c, work, official_dir=official, python=python)
  cmp = res["compare"]
  assert cmp["steps_official"] == cmp["steps_avjax"] == 4  # 32 / 8
  assert cmp["rel_step1"] < 1e-5  # same weights, same first batch
  assert cmp["per_epoch"][0]["max_rel"] < 1e-3
  with open(os.path.join(work, "official", "step_losses.json")) as f:
    assert json.load(f)["dropout"] == 0.0
  for side in parity.SIDES:
    assert set(res[side]["test_final"]) == set(parity.KEYS)
  assert abs(res["official"]["test_final"]["seg_type"] -
             res["avjax"]["test_final"]["seg_type"]) < 1.0
  assert os.path.exists(os.path.join(work, "parity_steps.md"))


def test_own_draws_table_and_report():
  def scores(x):
    return {k: x + i for i, k in enumerate(parity.KEYS)}
  results = {"official": {1: {"test_final": scores(50.0)},
                          2: {"test_final": scores(52.0)}},
             "avjax": {1: {"test_final": scores(49.0)},
                       2: {"test_final": scores(50.0)}}}
  table = parity_steps.own_table(results)
  row = table["seg_a"]
  assert row["official"]["mean"] == 51.0 and row["avjax"]["mean"] == 49.5
  assert row["diff"] == pytest.approx(-1.5)
  # Welch: sqrt(sd_o^2/2 + sd_a^2/2), sd_o = sqrt(2), sd_a = sqrt(0.5)
  assert row["se"] == pytest.approx((2 / 2 + 0.5 / 2) ** 0.5)
  res = {"what": "MA stage 3", "seeds": [1, 2], "dropout": 0.1,
         "data": "synthetic", "need_to_change": "need.json", "table": table,
         "runs": {s: {str(k): v for k, v in r.items()}
                  for s, r in results.items()}}
  md = parity_steps.own_markdown(res)
  assert "Own draws: MA stage 3" in md and "drops: need.json" in md
  assert "| seg_a | 51.0 ± 1.4 | 49.5 ± 0.7 | -1.5 (-1.3 se) |" in md
  assert "| 2 | avjax | 50.0 | 51.0 |" in md
  # one seed: no spread, no standard error
  one = {s: {1: r[1]} for s, r in results.items()}
  assert parity_steps.own_table(one)["seg_a"]["se"] is None


@pytest.mark.slow
def test_official_han_own_draws(tmp_path, monkeypatch):
  official, python = han_tests.official_or_skip()
  c = han_tests.tiny_config()
  c.data.synthetic.num_train = 32
  c.batch_size = 8
  c.data.cache_dir = str(tmp_path / "cache")
  work = str(tmp_path / "work")
  res = parity_steps.run_own_draws(c, work, [0, 1], official_dir=official,
                                   python=python)
  for side in parity.SIDES:
    assert set(res["runs"][side]) == {"0", "1"}
    assert res["table"]["seg_type"][side]["n"] == 2
  # own draws: the official side ran without the same-weights mode
  assert not os.path.exists(os.path.join(work, "seed_0", "official",
                                         "init.npz"))
  # avjax: its own draws (the config's order and dropout, seed S)
  for seed in (0, 1):
    with open(os.path.join(work, f"seed_{seed}", "avjax", "config.json")) as f:
      got = json.load(f)
    assert got["seed"] == seed and got["model"]["init_from"] == ""
    assert got["data"]["order"] == c.data.order != "fixed"
    assert got["model"]["dropout"] == c.model.dropout > 0
  assert os.path.exists(os.path.join(work, "parity_steps.md"))
  # resumed: nothing reruns (either side's training would raise), same table
  def no_rerun(*a, **k):
    raise AssertionError("a finished run was run again")
  monkeypatch.setattr(parity, "launch", no_rerun)
  from avjax.trainers import registry as trainers
  monkeypatch.setattr(trainers.get(c.trainer), "train_and_evaluate",
                      no_rerun)
  again = parity_steps.run_own_draws(c, work, [0, 1], official_dir=official,
                                     python=python)
  assert again["table"] == res["table"]


def test_own_draws_workdir_holds_one_stage_and_drop_set(tmp_path):
  root = str(tmp_path)
  drops = {("tr0_0_10", "Speech", "audio")}
  parity_steps.pin_own_draws(root, 3, drops)
  parity_steps.pin_own_draws(root, 3, set(drops))  # the same: resumable
  with pytest.raises(parity.SetupError, match="another stage or drop set"):
    parity_steps.pin_own_draws(root, 3, drops | {("tr1_0_10", "Dog",
                                                  "visual")})
  with pytest.raises(parity.SetupError, match="use another --workdir"):
    parity_steps.pin_own_draws(root, 1, None)

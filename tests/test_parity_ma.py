"""avjax.parity_ma: need_to_change.pkl <-> drops, drop precision/recall and
overlap on fabricated drops, the official MA printout, the report writer,
setup errors; one slow end-to-end run when the official MA code and a
torch interpreter are here."""

import json
import os
import pickle
import subprocess

import pytest

from avjax import parity
from avjax import parity_ma
from avjax.data import classes as classes_lib
from configs import avvp_ma
from tests import test_parity as han_tests

OFFICIAL_DIR = os.environ.get("AVJAX_OFFICIAL_MA_DIR", "/work/scratch/MA")
C = classes_lib.LLP_CLASSES
FILES = ["tr0_0_10", "tr1_0_10", "tr2_0_10", "tr3_0_10"]
# Weak labels, and the truth per modality (weak = audio | visual).
WEAK = {"tr0_0_10": {C[0], C[1]}, "tr1_0_10": {C[2]},
        "tr2_0_10": {C[0], C[3]}, "tr3_0_10": {C[4]}}
TRUTH = {"tr0_0_10": {"audio": {C[0]}, "visual": {C[0], C[1]}},
         "tr1_0_10": {"audio": {C[2]}, "visual": set()},
         "tr2_0_10": {"audio": {C[0], C[3]}, "visual": {C[3]}},
         "tr3_0_10": {"audio": {C[4]}, "visual": {C[4]}}}
# Truly absent: audio (tr0, C1); visual (tr1, C2), (tr2, C0).


def _need(visual, audio):
  """[need_to_change_v, need_to_change_a] from {class index: rows}."""
  return [[list(d.get(c, [])) for c in range(len(C))] for d in (visual,
                                                                 audio)]


# ------------------------------------------------------------- drops


def test_need_to_change_to_drops_and_back(tmp_path):
  need = _need({2: [1], 0: [2, 0]}, {1: [0]})
  drops = parity_ma.drops_from_need_to_change(need, FILES)
  assert drops == {("tr1_0_10", C[2], "visual"), ("tr2_0_10", C[0], "visual"),
                   ("tr0_0_10", C[0], "visual"), ("tr0_0_10", C[1], "audio")}
  back = parity_ma.need_to_change_from_drops(drops, FILES)
  assert back == _need({2: [1], 0: [0, 2]}, {1: [0]})  # rows sorted
  assert parity_ma.drops_from_need_to_change(back, FILES) == drops
  # The runner's JSON and a pickled file read the same.
  path = tmp_path / "need_to_change.pkl"
  with open(path, "wb") as f:
    pickle.dump(back, f)
  assert parity_ma.drops_from_need_to_change(
      parity_ma.read_need_to_change(str(path)), FILES) == drops
  js = tmp_path / "need_to_change.json"
  js.write_text(json.dumps({"visual": back[0], "audio": back[1]}))
  assert parity_ma.drops_from_need_to_change(
      parity_ma.read_need_to_change(str(js)), FILES) == drops
  with pytest.raises(ValueError, match="classes"):
    parity_ma.drops_from_need_to_change([[[0]], [[0]]], FILES)


def test_drops_from_refined_csv(tmp_path):
  path = tmp_path / "refined_labels.csv"
  path.write_text("clip,class,audio_kept,visual_kept\n"
                  f"tr0_0_10,{C[0]},1,1\ntr0_0_10,{C[1]},0,1\n"
                  f"tr1_0_10,{C[2]},1,0\ntr2_0_10,{C[0]},0,0\n")
  assert parity_ma.drops_from_refined_csv(str(path)) == {
      ("tr0_0_10", C[1], "audio"), ("tr1_0_10", C[2], "visual"),
      ("tr2_0_10", C[0], "audio"), ("tr2_0_10", C[0], "visual")}


def test_drop_precision_recall_and_overlap():
  official = {("tr0_0_10", C[1], "audio"),      # correct
              ("tr1_0_10", C[2], "visual"),     # correct
              ("tr3_0_10", C[4], "visual")}     # wrong
  avjax = {("tr1_0_10", C[2], "visual"), ("tr2_0_10", C[0], "visual"),
           ("tr2_0_10", C[0], "audio")}         # 2 correct visual, 1 wrong
  s = parity_ma.drop_stats(official, WEAK, TRUTH)
  assert s["labels"] == 6 and s["both"] == 0
  assert s["audio"] == {"dropped": 1, "truly_absent": 1, "correct": 1,
                        "precision": 1.0, "recall": 1.0}
  assert s["visual"]["dropped"] == 2 and s["visual"]["truly_absent"] == 2
  assert s["visual"]["precision"] == 0.5 and s["visual"]["recall"] == 0.5
  a = parity_ma.drop_stats(avjax, WEAK, TRUTH)
  assert a["both"] == 1
  assert a["audio"]["precision"] == 0.0 and a["audio"]["recall"] == 0.0
  assert a["visual"]["precision"] == 1.0 and a["visual"]["recall"] == 1.0
  cmp = parity_ma.compare_drops(official, avjax, WEAK, TRUTH)
  assert cmp["overlap"]["visual"] == {"jaccard": 1 / 3, "common": 1,
                                      "official_only": 1, "avjax_only": 1}
  assert cmp["overlap"]["audio"]["jaccard"] == 0.0
  assert cmp["overlap"]["all"]["jaccard"] == pytest.approx(1 / 5)
  # No drops: precision undefined; without truth only counts.
  none = parity_ma.drop_stats(set(), WEAK, TRUTH)
  assert none["audio"]["precision"] is None and none["audio"]["recall"] == 0
  assert parity_ma.drop_stats(official, WEAK)["visual"] == {"dropped": 2}
  assert parity_ma.jaccard(set(), set()) == 1.0
  with pytest.raises(ValueError, match="no weak train labels"):
    parity_ma.drop_stats({("tr3_0_10", C[0], "audio")}, WEAK, TRUTH)


def test_clips_without_partner():
  assert parity_ma.clips_without_partner(WEAK) == []
  weak = {"a": {C[0], C[1]}, "b": {C[0]}, "c": {C[1], C[2]}}
  assert parity_ma.clips_without_partner(weak) == ["a"]


# ------------------------------------------------------------- parsing

MA_BLOCK = """

Audio  \t {a:.1f} \t {ea:.1f}
Visual \t 2.0 \t 7.0
AudVis \t 3.0 \t 8.0
Segment-levelType@Avg. F1: 4.0
Segment-level Event@Avg. F1: 5.0
Event-level Type@Avg. F1: 9.0
Event-level Event@Avg. F1: 10.0

"""


def test_parse_official_ma_log():
  text = ("#### parity phase: train\nTrain Epoch: 1 [0/4 (0%)]\tLoss: 1\n"
          "Validation Performance of Epoch 1:\n" + MA_BLOCK.format(a=1, ea=6)
          + "Test the latest model:\n" + MA_BLOCK.format(a=11, ea=16))
  out = parity.parse_official_log(text, parity_ma.PRINTED)
  assert len(out["train"]) == 2
  assert out["train"][0] == {"seg_a": 1.0, "ev_a": 6.0, "seg_v": 2.0,
                             "ev_v": 7.0, "seg_av": 3.0, "ev_av": 8.0,
                             "seg_type": 4.0, "seg_event": 5.0,
                             "ev_type": 9.0, "ev_event": 10.0}
  assert out["train"][1]["seg_a"] == 11.0
  assert parity.type_prefix(parity_ma.PRINTED) == "Segment-levelType@Avg. F1:"
  with pytest.raises(ValueError, match="expected 2 values"):
    parity.parse_official_log("Audio \t 1.0\n", parity_ma.PRINTED)


# ------------------------------------------------------------- report


def _drops(items):
  return [list(d) for d in sorted(items)]


def fake_seed(side, seed, base, drops):
  return {parity_ma.STAGE1: han_tests.fake_run(side, seed, base),
          parity_ma.STAGE3: han_tests.fake_run(side, seed, base + 5),
          parity_ma.REFINE: {"side": side, "seed": seed,
                             "drops": _drops(drops), "wall_s": {"total": 3.0},
                             "error": {"audio": [0.25, 0.5],
                                       "visual": [0.5, 0.0]},
                             "normalised_error": {"audio": [0.5, 1.0],
                                                  "visual": [1.0, 0.0]}}}


def fake_results(official, avjax):
  """Two seeds per side: official scores 40 + seed, avjax 41, with these
  drops."""
  return {"official": {s: fake_seed("official", s, 40.0 + s, official)
                       for s in (0, 1)},
          "avjax": {s: fake_seed("avjax", s, 41.0, avjax) for s in (0, 1)}}


def test_report_on_fabricated_runs(tmp_path):
  official = {("tr0_0_10", C[1], "audio"), ("tr1_0_10", C[2], "visual")}
  avjax = {("tr1_0_10", C[2], "visual"), ("tr2_0_10", C[0], "visual")}
  results = fake_results(official, avjax)
  c = avvp_ma.get_config()
  info = {"protocol": parity.protocol(c), "data": "fake",
          "config_differences": parity_ma.config_differences(c),
          "loop_differences": {
              "MA pipeline": parity_ma.ma_notes(c, results)}}
  summary = parity_ma.write_report(str(tmp_path), results, info, WEAK, TRUTH)
  assert summary["stage1"]["final"]["seg_a"]["official"]["mean"] == (
      pytest.approx(41.5))
  assert summary["stage3"]["final"]["seg_a"]["avjax"]["mean"] == (
      pytest.approx(47.0))
  ref = summary["refine"]
  assert ref["per_seed"]["0"]["overlap"]["visual"]["jaccard"] == 0.5
  assert ref["mean"]["official"]["audio"]["precision"]["mean"] == 1.0
  assert ref["mean"]["avjax"]["visual"]["recall"]["mean"] == 1.0
  md = (tmp_path / "parity_ma.md").read_text()
  assert "## Refinement (stage 2), label by label" in md
  assert "| 0 | visual | 2 | 1 | 2 | 100.0 | 100.0 | 50.0 | 100.0 | - | " \
         "0.500 (1 common) |" in md
  assert "| 0 | audio | 1 | 1 | 0 | 100.0 | - | 100.0 | 0.0 | - | 0.000" in md
  assert "## Stage 1, test, best-on-val checkpoint" in md
  assert "## Stage 3, test, final-epoch model" in md
  assert "| seg_a | 41.5 ± 0.7 | 42.0 ± 0.0 | +0.5 (+1.0 se) |" in md
  assert "| refine | 3 ± 0 | 3 ± 0 |" in md
  assert "mean |official - avjax| over classes: seed 0: audio 0.000" in md
  assert ("training error (train clips with [p > 0.5] != weak label, of 4): "
          "seed 0: official audio 2 / visual 2, avjax audio 2 / visual 2; "
          "seed 1:") in md
  assert "Python's `random`" in md
  assert config_free_of_differences(c)
  data = json.loads((tmp_path / "parity_ma.json").read_text())
  assert set(data["runs"]["official"]) == {"0", "1"}
  assert data["summary"]["refine"]["mean"]["overlap"]["all"]["n"] == 2


def _fit_rows(side_effect, b_v, b_a, noise=()):
  """Rows of `wrong_drop_rows`'s form whose scores follow the fit's model
  exactly (plus `noise` per row): 4 official and 4 avjax seeds, avjax's
  with more wrong visual drops (so that the raw difference is confounded)."""
  wrong = [(100, 300), (250, 280), (180, 350), (320, 260)]
  rows = []
  for i, side in enumerate(["official"] * 4 + ["avjax"] * 4):
    wv, wa = wrong[i % 4]
    wv += 40 * (side == "avjax")
    score = (70.0 + side_effect * (side == "avjax") + b_v * wv + b_a * wa +
             (noise[i] if noise else 0.0))
    rows.append({"side": side, "seed": i, "wrong_visual": wv,
                 "wrong_audio": wa,
                 "test": {m: score for m in parity_ma.FIT_METRICS}})
  return rows


def test_wrong_drop_fit_recovers_the_model():
  rows = _fit_rows(-0.8, -0.02, -0.03)
  f = parity_ma.wrong_drop_fit(rows, "seg_type")
  assert f["coef"]["side"] == pytest.approx(-0.8, abs=1e-6)
  assert f["coef"]["wrong_visual"] == pytest.approx(-0.02, abs=1e-8)
  assert f["coef"]["wrong_audio"] == pytest.approx(-0.03, abs=1e-8)
  assert f["residual_sd"] == pytest.approx(0.0, abs=1e-6)
  assert f["n"] == {"official": 4, "avjax": 4}
  # raw: the plain difference of means, which the wrong drops confound
  off = [r["test"]["seg_type"] for r in rows if r["side"] == "official"]
  avj = [r["test"]["seg_type"] for r in rows if r["side"] == "avjax"]
  assert f["raw"] == pytest.approx(sum(avj) / 4 - sum(off) / 4)
  assert f["raw"] != pytest.approx(f["coef"]["side"], abs=0.01)


def test_wrong_drop_fit_standard_errors_and_too_few_seeds():
  noise = [0.5, -0.3, 0.2, -0.4, 0.1, 0.6, -0.5, -0.2]
  f = parity_ma.wrong_drop_fit(_fit_rows(0.0, -0.02, 0.0, noise), "ev_v")
  # OLS on 8 - 4 degrees of freedom (numpy's solve with s^2 = RSS / 4 and
  # (X'X)^-1 gives these)
  assert f["se"]["side"] == pytest.approx(0.343127, rel=1e-4)
  assert f["coef"]["side"] == pytest.approx(0.127434, rel=1e-4)
  assert f["residual_sd"] > 0
  one_side = [r for r in _fit_rows(0.0, 0.0, 0.0) if r["side"] == "avjax"]
  assert parity_ma.wrong_drop_fit(one_side, "seg_type") is None
  assert parity_ma.wrong_drop_fit(_fit_rows(0.0, 0.0, 0.0)[2:6],
                                  "seg_type") is None


def test_wrong_drop_fit_leaves_out_a_term_without_spread():
  rows = _fit_rows(-0.5, -0.02, 0.0)
  for r in rows:  # ma.modalities=visual: no audio drops at all
    r["wrong_audio"] = 0
  f = parity_ma.wrong_drop_fit(rows, "seg_type")
  assert f["terms"] == ["wrong_visual"]
  assert f["coef"]["wrong_audio"] is None and f["se"]["wrong_audio"] is None
  assert f["coef"]["side"] == pytest.approx(-0.5, abs=1e-6)
  lines = parity_ma.wrong_drop_lines(rows, [f])
  assert any(l.startswith("| seg_type | ") and "| - |" in l for l in lines)
  # the side fully confounded with the wrong drops: no fit
  for r in rows:
    r["wrong_visual"] = 100 if r["side"] == "avjax" else 50
  assert parity_ma.wrong_drop_fit(rows, "seg_type") is None


def test_wrong_drops_in_the_report(tmp_path):
  # seed 0: official drops one correct audio label and one correct visual
  # label; avjax drops a visual label the clip does show (tr0, C1 visual).
  official = {("tr0_0_10", C[1], "audio"), ("tr1_0_10", C[2], "visual")}
  avjax = {("tr0_0_10", C[1], "visual"), ("tr2_0_10", C[0], "visual")}
  results = fake_results(official, avjax)
  summary = parity_ma.write_report(str(tmp_path), results, {}, WEAK, TRUTH)
  rows = {(r["side"], r["seed"]): r for r in summary["wrong_drops"]["rows"]}
  assert rows[("official", 0)]["wrong_visual"] == 0
  assert rows[("official", 0)]["wrong_audio"] == 0
  assert rows[("avjax", 1)]["wrong_visual"] == 1
  assert rows[("avjax", 1)]["test"]["seg_a"] == 47.0  # final, not best (46)
  assert summary["wrong_drops"]["fits"] == []  # 4 rows: too few to fit
  md = (tmp_path / "parity_ma.md").read_text()
  assert "## Stage 3 against the refinement's wrong drops" in md
  assert "| avjax | 1 | 1 | 0 |" in md
  # without the truth there is nothing to count
  s2 = parity_ma.write_report(str(tmp_path), results, {}, WEAK, None)
  assert s2["wrong_drops"]["rows"] == []


def config_free_of_differences(c):
  return parity_ma.config_differences(c) == []


def test_report_with_one_side_only(tmp_path):
  results = {"official": {0: fake_seed("official", 0, 40.0, set())},
             "avjax": {}}
  parity_ma.write_report(str(tmp_path), results, {"protocol": {}}, WEAK,
                         None)
  md = (tmp_path / "parity_ma.md").read_text()
  assert "| 0 | audio | - | 0 | - | - | - | - | - | - | - |" in md
  assert "not available for this dataset" in md


# ------------------------------------------------------------- errors


def test_setup_errors(tmp_path):
  c = avvp_ma.get_config("variant=c")  # no refinement
  with pytest.raises(parity.SetupError, match="ma.refine=False"):
    parity_ma.run(c, str(tmp_path / "w"), [0], ["avjax"])
  with pytest.raises(parity.SetupError, match="MA pipeline config"):
    parity_ma.run(han_tests.tiny_config(), str(tmp_path / "w"), [0],
                  ["avjax"])
  with pytest.raises(parity.SetupError, match="step1_train_base_model"):
    parity_ma.check_official_dir(str(tmp_path))
  with pytest.raises(parity.SetupError, match="Yu-Wu"):
    parity_ma.check_official_dir(None)
  assert not (tmp_path / "w").exists()
  c = avvp_ma.get_config("variant=r,refine=audio")
  diffs = " ".join(parity_ma.config_differences(c))
  assert "loss.type='han'" in diffs and "ma.modalities='audio'" in diffs


# ------------------------------------------------------------- slow


@pytest.mark.slow
def test_end_to_end_tiny(tmp_path):
  """Both sides, one seed, 1 epoch per stage on 40 train clips."""
  official, python = han_tests.official_or_skip(
      parity_ma.check_official_dir, OFFICIAL_DIR, "MA",
      "AVJAX_OFFICIAL_MA_DIR")
  c = avvp_ma.get_config()
  c.data.synthetic.update(num_train=40, num_val=10, num_test=10)
  c.data.cache_dir = str(tmp_path / "cache")
  c.num_epochs = 1
  c.batch_size = 8
  c.ma.batch_size = 8
  c.model.d_model = c.model.d_ff = 64  # avjax side only: a difference
  work = str(tmp_path / "work")
  summary = parity_ma.run(c, work, [0], ["official", "avjax"],
                          official_dir=official, python=python)
  seed_dir = os.path.join(work, "official", "seed_0")
  for stage in parity_ma.STAGES:
    assert os.path.exists(os.path.join(seed_dir, stage, parity.RESULT))
  assert os.path.exists(os.path.join(seed_dir, "stage1", "best.pt"))
  assert os.path.exists(os.path.join(seed_dir, "stage3", "final.pt"))
  for stage in ("stage1", "stage3"):
    for which in ("best", "final"):
      row = summary[stage][which]["seg_type"]
      assert row["official"]["n"] == 1 and row["avjax"]["n"] == 1
  ov = summary["refine"]["per_seed"]["0"]["overlap"]["all"]
  assert 0.0 <= ov["jaccard"] <= 1.0
  md = open(os.path.join(work, "parity_ma.md")).read()
  assert "model.d_model=64" in md
  # Resumable: a second call reruns nothing.
  log = os.path.join(seed_dir, "stage3", "official.log")
  mtime = os.path.getmtime(log)
  parity_ma.run(c, work, [0], ["official", "avjax"], official_dir=official,
                python=python)
  assert os.path.getmtime(log) == mtime
  subprocess.run([python, parity_ma.RUNNER, "--help"], check=True,
                 capture_output=True)

r"""Parity of avjax's MA pipeline (stage 1 -> refinement -> stage 3) with the
official MA code on the same data, seeds and protocol.

  python -m avjax.parity_ma --workdir=/tmp/parity/ma \
      --official_dir=PATH/MA --python=TORCH_VENV/bin/python \
      [--config=configs/avvp_ma.py[:args]] [--config.<field>=<value> ...] \
      [--seeds=0,1,2] [--sides=official,avjax] [--export_only]

The official code is Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing (`git
clone` it: step1_train_base_model/, step2_find_exchange/, step3_retrain/;
nothing in it is modified), run by a Python with torch (as `avjax.parity`).
The data and protocol come from the avjax config as in `avjax.parity` (the
same export, converted for avjax by `python -m avjax.prepare llp`); the
protocol (num_epochs, batch_size, optim.*) applies to both training stages,
as in avjax's pipeline. Per seed S:

1. Official (`avjax/parity_ma_official.py`, each stage in
   WORKDIR/official/seed_S/<stage>/, a run folder holding a `data` link to
   the export):
   stage1  step 1 (HAN + its contrastive term) --epochs/--batch-size/--lr/
           --seed, StepLR(decay_every_epochs, decay_factor); test of its
           final model (MMIL_Net.pt, which it saves) and of the best-on-val
           one (best.pt, saved by the runner by the official HAN rule).
   refine  step 2 --mode estimate_labels on stage 1's final model (or best
           with config.ma.checkpoint=best): need_to_change.pkl. Python's
           `random` (its partner draw), numpy and torch are seeded with S.
   stage3  step 3 --mode retrain on that pkl; its last model (final.pt) and
           best-on-val one (best.pt), tested.
   Run-time patches only (see the runner): device, num_workers, torchvision
   stub, StepLR, pandas >= 3, numpy's np.int.
2. avjax: the config's `ma_pipeline` on WORKDIR/avjax_data (data block
   replaced, --config.seed=S) in WORKDIR/avjax/seed_S: its stages' final and
   best checkpoints scored on test, its refine/refined_labels.csv.
3. WORKDIR/parity_ma.md, parity_ma.json (and curve plots): the refinement
   label by label (per modality: labels dropped, precision and recall
   against the train clips' per-modality truth, which the export writes when
   the dataset has it (a drop is correct when the class is absent from that
   modality); labels dropped in both modalities; the Jaccard overlap of the
   two sides' drop sets per seed), stage 1 and stage 3 test scores (the ten
   AVVP metrics, mean ± sd over seeds, final-epoch and best-on-val),
   stage 3's final scores against the refinement's wrong drops per seed
   and side (with a least-squares fit: the side difference left at equal
   wrong drops),
   validation curves, wall times and every difference the harness knows.

Resumable per seed and stage: a stage whose parity_result.json exists is not
rerun (rerunning an official stage reruns the stages after it; avjax's
pipeline resumes by stage itself). WORKDIR/setup.json pins data, protocol
and config.
"""

import csv
import json
import os
import pickle
import shutil
import statistics
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple


from avjax import parity
from avjax.utils import cli as cli_lib
from avjax.data import classes as classes_lib

REPO = "https://github.com/Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing"
STEP_DIRS = ("step1_train_base_model", "step2_find_exchange",
             "step3_retrain")
OFFICIAL_FILES = tuple(f"{d}/{f}" for d in STEP_DIRS for f in (
    "main_avvp.py", "dataloader.py", "nets/net_audiovisual.py",
    "utils/eval_metrics.py"))
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "parity_ma_official.py")
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "configs", "avvp_ma.py")
STAGE1, REFINE, STAGE3 = "stage1", "refine", "stage3"
STAGES = (STAGE1, REFINE, STAGE3)
TRAINED = (STAGE1, STAGE3)
MODALITIES = ("audio", "visual")
NEED_ORDER = ("visual", "audio")  # need_to_change.pkl: [visual, audio]
RESULT = parity.RESULT
REPORT = "parity_ma"
# The official MA code's evaluation printout, in its order.
PRINTED = ((("seg_a", "ev_a"), "Audio "), (("seg_v", "ev_v"), "Visual "),
           (("seg_av", "ev_av"), "AudVis "),
           ("seg_type", "Segment-levelType@Avg. F1:"),
           ("seg_event", "Segment-level Event@Avg. F1:"),
           ("ev_type", "Event-level Type@Avg. F1:"),
           ("ev_event", "Event-level Event@Avg. F1:"))
# The official MA pipeline in avjax config terms (HAN's model and loss, its
# contrastive term, modality gating at evaluation, the refinement options).
OFFICIAL_MA = dict(
    parity.OFFICIAL_HAN, **{
        "trainer": "ma_pipeline", "loss.type": "han_nce",
        "loss.nce_weight": 1.0, "loss.nce_tau": 0.2,
        "loss.nce_smoothing": 0.1, "eval.gating": "modality",
        "ma.refine": True, "ma.modalities": "both", "ma.partners": "global",
        "ma.threshold": 0.5, "ma.dropped_target": "zero",
        "ma.global_drops_with_audio": True, "ma.stage1_workdir": ""})
# config.ma.checkpoint -> step 1's model that the official step 2 refines.
STEP2_CHECKPOINT = {"final": "MMIL_Net", "latest": "MMIL_Net", "best": "best"}

Drop = Tuple[str, str, str]  # (clip, class, modality)


log = parity.log


# ---------------------------------------------------------------- drops


def drops_from_need_to_change(need, filenames: Sequence[str],
                              classes: Sequence[str] = classes_lib.LLP_CLASSES
                              ) -> Set[Drop]:
  """need_to_change.pkl's [need_to_change_v, need_to_change_a] (per class,
  train-CSV row indices; ints or 0-d tensors) -> {(clip, class, modality)}.
  Also reads the runner's JSON ({"visual": ..., "audio": ...})."""
  if isinstance(need, dict):
    need = [need[m] for m in NEED_ORDER]
  if len(need) != len(NEED_ORDER):
    raise ValueError(f"need_to_change: {len(need)} lists, expected "
                     f"[need_to_change_v, need_to_change_a]")
  out = set()
  for modality, per_class in zip(NEED_ORDER, need):
    if len(per_class) != len(classes):
      raise ValueError(f"need_to_change ({modality}): {len(per_class)} "
                       f"classes, expected {len(classes)}")
    for c, rows in enumerate(per_class):
      for i in rows:
        out.add((filenames[int(i)], classes[c], modality))
  return out


def need_to_change_from_drops(drops: Iterable[Drop], filenames: Sequence[str],
                              classes: Sequence[str] = classes_lib.LLP_CLASSES
                              ) -> List[List[List[int]]]:
  """The inverse: [need_to_change_v, need_to_change_a] with sorted int row
  indices (what step 3 reads from need_to_change.pkl)."""
  row = {f: i for i, f in enumerate(filenames)}
  col = {c: i for i, c in enumerate(classes)}
  need = {m: [[] for _ in classes] for m in NEED_ORDER}
  for clip, cls, modality in drops:
    need[modality][col[cls]].append(row[clip])
  return [[sorted(x) for x in need[m]] for m in NEED_ORDER]


def read_need_to_change(path: str):
  """need_to_change.json (the runner's) or the official .pkl (one holding
  tensors needs torch)."""
  if path.endswith(".json"):
    with open(path) as f:
      return json.load(f)
  with open(path, "rb") as f:
    return pickle.load(f)


def drops_from_refined_csv(path: str) -> Set[Drop]:
  """avjax's refine/refined_labels.csv (clip, class, audio_kept,
  visual_kept per weak label) -> {(clip, class, modality)} dropped."""
  out = set()
  with open(path, newline="") as f:
    for r in csv.DictReader(f):
      for m in MODALITIES:
        if int(r[f"{m}_kept"]) == 0:
          out.add((r["clip"], r["class"], m))
  return out


def jaccard(a: Set, b: Set) -> float:
  """|a & b| / |a | b|; 1 for two empty sets."""
  union = len(a | b)
  return len(a & b) / union if union else 1.0


def _ratio(num: int, den: int) -> Optional[float]:
  return num / den if den else None


def drop_stats(drops: Set[Drop], weak: Dict[str, Set[str]],
               truth: Optional[Dict[str, Dict[str, Set[str]]]] = None
               ) -> Dict[str, Any]:
  """Per modality: labels dropped and, with `truth` ({clip: {modality:
  classes}}), how many of them are truly absent from that modality
  (precision) and how many truly absent weak labels were dropped (recall);
  `both`: labels dropped from both modalities. Raises on a drop that is no
  weak label."""
  bad = [d for d in drops if d[1] not in weak.get(d[0], ())]
  if bad:
    raise ValueError(f"{len(bad)} dropped labels are no weak train labels, "
                     f"e.g. {sorted(bad)[:3]}")
  out = {"labels": sum(len(v) for v in weak.values())}
  for m in MODALITIES:
    dropped = {(c, k) for c, k, mm in drops if mm == m}
    res = {"dropped": len(dropped)}
    if truth is not None:
      absent = {(c, k) for c, ks in weak.items() for k in ks
                if k not in truth[c][m]}
      hit = len(dropped & absent)
      res.update(truly_absent=len(absent), correct=hit,
                 precision=_ratio(hit, len(dropped)),
                 recall=_ratio(hit, len(absent)))
    out[m] = res
  out["both"] = len({(c, k) for c, k, m in drops if m == "audio"} &
                    {(c, k) for c, k, m in drops if m == "visual"})
  return out


def compare_drops(official: Set[Drop], avjax: Set[Drop],
                  weak: Dict[str, Set[str]],
                  truth: Optional[Dict[str, Dict[str, Set[str]]]] = None
                  ) -> Dict[str, Any]:
  """Both sides' `drop_stats` and, per modality (and over both), the
  Jaccard overlap and the number of labels both sides dropped."""
  out = {"official": drop_stats(official, weak, truth),
         "avjax": drop_stats(avjax, weak, truth), "overlap": {}}
  for m in MODALITIES + ("all",):
    o = {d for d in official if m in ("all", d[2])}
    a = {d for d in avjax if m in ("all", d[2])}
    out["overlap"][m] = {"jaccard": jaccard(o, a), "common": len(o & a),
                         "official_only": len(o - a),
                         "avjax_only": len(a - o)}
  return out


def clips_without_partner(weak: Dict[str, Set[str]]) -> List[str]:
  """Train clips no other clip's label set is disjoint from (the official
  step 2 would redraw their partner forever)."""
  sets = {}
  for clip, ks in weak.items():
    sets.setdefault(frozenset(ks), []).append(clip)
  out = []
  for s, clips in sets.items():
    if not any(not (s & t) for t in sets):
      out += clips
  return sorted(out)


def read_train_labels(root: str) -> Tuple[List[str], Dict[str, Set[str]],
                                          Optional[Dict[str, Dict[str,
                                                                  Set[str]]]]]:
  """(train filenames in CSV row order, weak labels, per-modality truth or
  None) of an export."""
  from avjax.data.readers import llp_annotations  # pylint: disable=g-import-not-at-top
  from avjax.data import llp_export  # pylint: disable=g-import-not-at-top
  rows = llp_annotations.read_weak(os.path.join(
      root, llp_annotations.SPLIT_FILES["train"]))
  weak = {f: set(ks) for f, ks in rows}
  mod = llp_export.read_modality_labels(root)
  truth = None if mod is None else {
      f: {"audio": set(a), "visual": set(v)} for f, (a, v) in mod.items()}
  return [f for f, _ in rows], weak, truth


def _drop_list(drops: Set[Drop]) -> List[List[str]]:
  return [list(d) for d in sorted(drops)]


def _drop_set(items) -> Set[Drop]:
  return {tuple(d) for d in items}


# ---------------------------------------------------------------- setup


def check_official_dir(path: Optional[str]) -> str:
  """The absolute MA checkout, or a SetupError saying how to get it."""
  if not path:
    raise parity.SetupError("--official_dir is required for the official "
                            "side: a checkout of the official MA code (`git "
                            f"clone {REPO} DIR`)")
  missing = [f for f in OFFICIAL_FILES
             if not os.path.isfile(os.path.join(path, f))]
  if missing:
    raise parity.SetupError(
        f"--official_dir={path} lacks {', '.join(missing)}; it must be a "
        f"checkout of the official MA code: `git clone {REPO} {path}`")
  return os.path.abspath(path)


def check_config(config) -> None:
  if config.get("trainer") != "ma_pipeline" or "ma" not in config:
    raise parity.SetupError(f"config.trainer={config.get('trainer')!r}: the "
                            "MA harness needs an MA pipeline config "
                            "(configs/avvp_ma.py)")
  if not config.ma.refine:
    raise parity.SetupError("config.ma.refine=False: nothing to compare "
                            "with the official refinement (use variant=cr "
                            "or r)")
  if config.ma.get("checkpoint", "final") not in STEP2_CHECKPOINT:
    raise parity.SetupError(f"config.ma.checkpoint={config.ma.checkpoint!r}"
                            f"; valid: {sorted(STEP2_CHECKPOINT)}")


def config_differences(config) -> List[str]:
  return parity.config_differences(config, OFFICIAL_MA, "official MA")


def ma_notes(config, results=None) -> List[str]:
  """What differs between the two pipelines beyond the training loops."""
  which = config.ma.get("checkpoint", "final")
  notes = [
      "stage-1 models differ (torch vs JAX random streams), so the "
      "refinement compares two pipelines, not two refiners of one model",
      "refinement partners: official step 2 draws each clip's partner by "
      "rejection sampling with Python's `random` (seeded by the runner with "
      "the seed; unseeded in the official code), avjax uniformly over the "
      "disjoint clips with numpy default_rng([seed, 2021]): the same "
      "distribution, different draws",
      f"refined model (config.ma.checkpoint={which!r}): official step 2 "
      "loads " + ("step 1's MMIL_Net.pt (its last epoch; the authors' "
                  "run.sh)" if which != "best" else
                  "best.pt (saved by the runner, official HAN rule)") +
      ", avjax stage 1's " + ("latest" if which != "best" else "best") +
      " checkpoint",
      "best-on-val: the official MA code keeps only its last models (step 1 "
      "saves it, step 3 tests it); the runner saves best.pt by the official "
      "HAN rule (last epoch whose val Type@AV >= every earlier one)",
      "seeds: the authors' run.sh keeps the argparse defaults (seed 1 for "
      "steps 1 and 3, 2 for step 2); the harness passes --seed S to every "
      "step"]
  for seed, res in sorted(((results or {}).get("official") or {}).items()):
    s3 = res.get(STAGE3, {})
    got = s3.get("test_in_train")
    if got and s3.get("test_final"):
      diff = max(abs(got[0][k] - s3["test_final"][k]) for k in parity.KEYS)
      if diff > 0.05:
        notes.append(f"seed {seed}: official step 3's own test of its last "
                     f"model differs from final.pt's by up to {diff:.2f}")
  return notes


# ---------------------------------------------------------------- official


def runner_command(ctx: Dict[str, Any], step: int, run: str, seed: int,
                   extra: Sequence[str] = ()) -> List[str]:
  proto = ctx["protocol"]
  return ([ctx["python"], RUNNER, f"--official_dir={ctx['official_dir']}",
           f"--step={step}", f"--run_dir={run}", f"--seed={seed}",
           f"--step_size={proto['step_size']}", f"--gamma={proto['gamma']!r}"]
          + list(extra) + ["--"] + parity.official_args(proto, seed))


def _run_dir(ctx: Dict[str, Any], run: str) -> str:
  """A fresh official run folder with `data` linked to the export's."""
  parity.fresh_dir(run)
  os.symlink(os.path.join(ctx["export_dir"], "data"),
             os.path.join(run, "data"))
  return run


def official_train(ctx: Dict[str, Any], seed: int, step: int, run: str
                   ) -> Dict[str, Any]:
  """Official step 1 or 3 in `run` (made by the caller) -> a run result."""
  stage = STAGE1 if step == 1 else STAGE3
  what = f"official seed {seed} {stage}"
  wall = parity.launch(runner_command(ctx, step, run, seed), run, run, what,
                       ctx["protocol"]["epochs"], PRINTED)
  return parity.collect_official(run, ctx["protocol"], seed, wall, PRINTED,
                                 train_tests=1 if step == 3 else 0,
                                 what=what)


def official_refine(ctx: Dict[str, Any], seed: int, run: str,
                    stage1: str) -> Dict[str, Any]:
  which = STEP2_CHECKPOINT[ctx["config"].ma.get("checkpoint", "final")]
  wall = parity.launch(runner_command(
      ctx, 2, run, seed, [f"--stage1_dir={stage1}", f"--checkpoint={which}"]),
                       run, run, f"official seed {seed} refine")
  need = read_need_to_change(os.path.join(run, "need_to_change.json"))
  drops = drops_from_need_to_change(need, ctx["train"][0])
  return {"side": "official", "seed": seed, "checkpoint": which,
          "drops": _drop_list(drops),
          "error": need.get("error", {}),
          "normalised_error": need.get("normalised_error", {}),
          "wall_s": {"total": wall}}


def run_official(seed: int, ctx: Dict[str, Any]) -> Dict[str, Any]:
  """The three official stages of a seed (each resumable)."""
  root = os.path.join(ctx["workdir"], "official", f"seed_{seed}")
  dirs = {s: os.path.join(root, s) for s in STAGES}
  out, rerun = {}, False
  for stage in STAGES:
    done = os.path.join(dirs[stage], RESULT)
    if os.path.exists(done) and not rerun:
      with open(done) as f:
        out[stage] = json.load(f)
      continue
    rerun = True  # the stages after a rerun one are rerun too
    run = _run_dir(ctx, dirs[stage])
    if stage == STAGE1:
      res = official_train(ctx, seed, 1, run)
    elif stage == REFINE:
      res = official_refine(ctx, seed, run, dirs[STAGE1])
    else:
      shutil.copyfile(os.path.join(dirs[REFINE], "need_to_change.pkl"),
                      os.path.join(run, "need_to_change.pkl"))
      res = official_train(ctx, seed, 3, run)
    parity.write_json(done, res)
    out[stage] = res
  return out


# ---------------------------------------------------------------- avjax


def stage_walls(run: str, t0: float) -> Dict[str, Optional[float]]:
  """Seconds per pipeline stage of a run started at t0 (from the times its
  stages' final files were written)."""
  ends = {STAGE1: os.path.join(run, STAGE1, "results.json"),
          REFINE: os.path.join(run, REFINE, "summary.json"),
          STAGE3: os.path.join(run, STAGE3, "results.json")}
  out, last = {}, t0
  for stage in STAGES:
    end = os.path.getmtime(ends[stage])
    out[stage], last = end - last, end
  return out


def train_errors(refine_dir: str, data_dir: str, threshold: float
                 ) -> Dict[str, List[float]]:
  """Per modality and class (LLP order) the stage-1 model's training error
  ([p > threshold] != weak label on the original train clips, the quantity
  the drop rule normalises) from avjax's refine/swap_predictions.npz."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
  from avjax.projects.ma import refine as ma_refine  # pylint: disable=g-import-not-at-top
  classes = tfrecord.read_info(data_dir)["classes"]
  pred = np.load(os.path.join(refine_dir, "swap_predictions.npz"))
  y = pred["labels"] > 0
  out = {}
  for m in MODALITIES:
    err = np.mean((pred[f"{m}_prob"][:, ma_refine.ORIG] > threshold) != y,
                  axis=0)
    by = dict(zip(classes, err.tolist()))
    out[m] = [by[c] for c in classes_lib.LLP_CLASSES if c in by]
  return out


def run_avjax(seed: int, ctx: Dict[str, Any]) -> Dict[str, Any]:
  """avjax's MA pipeline on the converted export (resumable by stage)."""
  from avjax.projects.ma import pipeline as ma_pipeline  # pylint: disable=g-import-not-at-top
  from avjax.utils import writers  # pylint: disable=g-import-not-at-top
  run = os.path.join(ctx["workdir"], "avjax", f"seed_{seed}")

  def go():
    c = parity.avjax_config(ctx["config"], seed, ctx["avjax_data"])
    timing = os.path.join(run, "parity_timing.json")
    resumed = os.path.isdir(run)
    log("avjax seed %d: MA pipeline in %s%s", seed, run,
        " (resumed)" if resumed else "")
    t0 = time.time()
    ma_pipeline.train_and_evaluate(c, run)
    if not os.path.exists(timing):  # the walls of an uninterrupted run
      writers.write_json(timing, {s: None for s in STAGES} if resumed else
                         stage_walls(run, t0))
    walls = writers.read_json(timing)
    data_dir = ma_pipeline.pin_data(c, run)
    c1, c3 = ma_pipeline.stage_configs(c, data_dir)
    out = {}
    for stage, cfg in ((STAGE1, c1), (STAGE3, c3)):
      out[stage] = parity.collect_avjax(os.path.join(run, stage), cfg, seed,
                                        {"total": walls[stage]})
    summary = writers.read_json(os.path.join(run, REFINE, "summary.json"))
    drops = drops_from_refined_csv(os.path.join(run, REFINE,
                                                "refined_labels.csv"))
    out[REFINE] = {"side": "avjax", "seed": seed,
                   "checkpoint": summary.get("checkpoint"),
                   "drops": _drop_list(drops),
                   "error": train_errors(os.path.join(run, REFINE), data_dir,
                                         c.ma.threshold),
                   "normalised_error": {
                       m: [summary[f"error_rate_{m}"][k]
                           for k in classes_lib.LLP_CLASSES
                           if k in summary[f"error_rate_{m}"]]
                       for m in MODALITIES},
                   "no_partner": summary.get("no_partner"),
                   "wall_s": {"total": walls[REFINE]}}
    out["resumed"] = resumed
    return out
  return parity.cached(os.path.join(run, RESULT), go)


# ---------------------------------------------------------------- report


def _mean_abs(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
  if not a or len(a) != len(b):
    return None
  return statistics.fmean(abs(x - y) for x, y in zip(a, b))


def summarize(results: Dict[str, Dict[int, Dict[str, Any]]],
              weak: Dict[str, Set[str]],
              truth: Optional[Dict[str, Dict[str, Set[str]]]]
              ) -> Dict[str, Any]:
  """{side: {seed: {stage: result}}} -> the MA parity summary: per trained
  stage `parity.summarize`'s tables; `refine`: per seed `compare_drops`
  (the stats of a side alone where the other has not run) and mean ± sd;
  `wrong_drops`: `wrong_drop_rows` and their `wrong_drop_fit`s (with the
  truth only)."""
  out = {}
  for stage in TRAINED:
    out[stage] = parity.summarize({s: {seed: r[stage] for seed, r in
                                       results.get(s, {}).items()
                                       if stage in r} for s in parity.SIDES})
  per_seed = {}
  seeds = sorted({seed for s in parity.SIDES for seed in results.get(s, {})})
  for seed in seeds:
    got = {s: results.get(s, {}).get(seed, {}).get(REFINE)
           for s in parity.SIDES}
    drops = {s: _drop_set(r["drops"]) for s, r in got.items() if r}
    if len(drops) == 2:
      row = compare_drops(drops["official"], drops["avjax"], weak, truth)
    else:
      row = {s: drop_stats(d, weak, truth) for s, d in drops.items()}
    err = {m: _mean_abs(*[(got[s] or {}).get("normalised_error", {}).get(
        m, []) for s in parity.SIDES]) for m in MODALITIES}
    row["normalised_error_mean_abs_diff"] = err
    row["max_error"] = {s: {m: max(r.get("error", {}).get(m) or [None])
                            for m in MODALITIES}
                        for s, r in got.items() if r and r.get("error")}
    row["no_partner_avjax"] = (got["avjax"] or {}).get("no_partner")
    per_seed[str(seed)] = row
  agg = {}
  for s in parity.SIDES:
    rows = [r[s] for r in per_seed.values() if s in r]
    agg[s] = {m: {k: parity.mean_sd([r[m].get(k) for r in rows])
                  for k in ("dropped", "precision", "recall")}
              for m in MODALITIES}
    agg[s]["both"] = parity.mean_sd([r["both"] for r in rows])
  agg["overlap"] = {m: parity.mean_sd([r["overlap"][m]["jaccard"]
                                       for r in per_seed.values()
                                       if "overlap" in r])
                    for m in MODALITIES + ("all",)}
  wall = {s: parity.mean_sd([r.get(REFINE, {}).get("wall_s", {}).get(
      "total") for r in results.get(s, {}).values()]) for s in parity.SIDES}
  out[REFINE] = {"per_seed": per_seed, "mean": agg, "wall_s": wall}
  rows = wrong_drop_rows(out[REFINE], results)
  fits = [wrong_drop_fit(rows, m) for m in FIT_METRICS]
  out["wrong_drops"] = {"rows": rows, "fits": [f for f in fits if f]}
  return out


# Stage-3 metrics fitted against the refinement's wrong drops.
FIT_METRICS = ("seg_type", "seg_v", "ev_v", "ev_av")
FIT_TERMS = ("wrong_visual", "wrong_audio")


def wrong_drop_rows(summary_refine: Dict[str, Any],
                    results: Dict[str, Dict[int, Dict[str, Any]]],
                    which: str = "final") -> List[Dict[str, Any]]:
  """One row per (side, seed) with both a refinement (scored against the
  truth) and a stage 3: the wrong drops per modality (dropped labels the
  modality does hold) and stage 3's test scores (`which` checkpoint)."""
  rows = []
  for seed, row in summary_refine["per_seed"].items():
    for s in parity.SIDES:
      st = row.get(s)
      s3 = results.get(s, {}).get(int(seed), {}).get(STAGE3)
      if not st or not s3 or st["visual"].get("correct") is None:
        continue
      rows.append({
          "side": s, "seed": int(seed),
          **{f"wrong_{m}": st[m]["dropped"] - st[m]["correct"]
             for m in MODALITIES},
          "test": s3[f"test_{which}"]})
  return rows


def wrong_drop_fit(rows: Sequence[Dict[str, Any]], metric: str
                   ) -> Optional[Dict[str, Any]]:
  """Least squares over both sides' seeds: stage 3's `metric` = b0 +
  side * [avjax] + sum_t b_t * t for t in FIT_TERMS. `side` is the
  difference left once the wrong drops are accounted for; the raw
  difference of means is `raw`. Coefficients with standard errors (the
  usual OLS ones, on n - rank degrees of freedom); a term with no spread
  over the rows is left out (its coefficient None). None with too few seeds
  (each side at least 2, and more rows than coefficients + 1) or when the
  side cannot be told from the drops."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  n = {s: sum(r["side"] == s for r in rows) for s in parity.SIDES}
  k = 2 + len(FIT_TERMS)
  if min(n.values()) < 2 or len(rows) <= k + 1:
    return None
  # a term with no spread (e.g. no audio drops with ma.modalities=visual)
  # is left out: it is the intercept's.
  terms = tuple(t for t in FIT_TERMS if len({r[t] for r in rows}) > 1)
  x = np.array([[1.0, r["side"] == "avjax"] + [r[t] for t in terms]
                for r in rows], float)
  y = np.array([r["test"][metric] for r in rows], float)
  rank = int(np.linalg.matrix_rank(x))
  if rank < x.shape[1]:
    return None  # side confounded with the drops: nothing to separate
  beta, *_ = np.linalg.lstsq(x, y, rcond=None)
  resid = y - x @ beta
  s2 = float(resid @ resid) / (len(y) - rank)
  se = np.sqrt(np.diag(s2 * np.linalg.inv(x.T @ x)))
  side = x[:, 1] == 1
  names = ("intercept", "side") + terms
  coef = {t: None for t in FIT_TERMS}
  err = dict(coef)
  coef.update({t: float(b) for t, b in zip(names, beta)})
  err.update({t: float(v) for t, v in zip(names, se)})
  return {"metric": metric, "n": dict(n), "terms": list(terms),
          "raw": float(y[side].mean() - y[~side].mean()),
          "coef": coef, "se": err, "residual_sd": float(np.sqrt(s2))}


def wrong_drop_lines(rows: Sequence[Dict[str, Any]],
                     fits: Sequence[Dict[str, Any]]) -> List[str]:
  """The report section: per seed the wrong drops and stage 3's final
  scores, then the fits."""
  if not rows:
    return []
  lines = ["## Stage 3 against the refinement's wrong drops", "",
           "Wrong drops: dropped weak labels that the modality does hold "
           "(dropped - correct). Stage 3's test scores are the final-epoch "
           "model's. A side's stage 3 can only be judged against the "
           "other's with its drops taken into account: their number moves "
           "from seed to seed with the drop rule's normaliser.", "",
           "| side | seed | wrong visual | wrong audio | " + " | ".join(
               FIT_METRICS) + " |",
           "|---|---|---|---|" + "---|" * len(FIT_METRICS)]
  for r in sorted(rows, key=lambda r: (r["side"], r["seed"])):
    lines.append(f"| {r['side']} | {r['seed']} | {r['wrong_visual']} | "
                 f"{r['wrong_audio']} | " + " | ".join(
                     f"{r['test'][m]:.1f}" for m in FIT_METRICS) + " |")
  if fits:
    lines += ["", "Least squares over both sides' seeds, metric = b0 + "
              "side·[avjax] + b_v·wrong visual + b_a·wrong audio (± one "
              "standard error): `raw` is avjax − official without the "
              "fit, `side` the difference left at equal wrong drops.", "",
              "| metric | raw | side | b_v per 100 | b_a per 100 | "
              "residual sd |", "|---|---|---|---|---|---|"]
    for f in fits:
      c, e = f["coef"], f["se"]
      per100 = [("-" if c[t] is None else
                 f"{100 * c[t]:+.2f} ± {100 * e[t]:.2f}") for t in FIT_TERMS]
      lines.append(
          f"| {f['metric']} | {f['raw']:+.2f} | {c['side']:+.2f} ± "
          f"{e['side']:.2f} | " + " | ".join(per100) +
          f" | {f['residual_sd']:.2f} |")
  return lines + [""]


def _pct(x: Optional[float]) -> str:
  return "-" if x is None else f"{100 * x:.1f}"


def _pct_cell(m: Dict[str, Any]) -> str:
  if m["mean"] is None:
    return "-"
  return f"{100 * m['mean']:.1f}" + (
      f" ± {100 * m['sd']:.1f}" if m["sd"] is not None else "")


def refine_lines(summary: Dict[str, Any], has_truth: bool,
                 n_train: int = 0) -> List[str]:
  """The refinement section of the report (`n_train`: train clips)."""
  r = summary[REFINE]
  lines = ["## Refinement (stage 2), label by label", "",
           "Per seed and modality: weak train labels dropped by each side; "
           "precision = dropped labels truly absent from that modality / "
           "dropped, recall = truly absent labels dropped / truly absent "
           "(against the per-modality train truth"
           + ("" if has_truth else ": not available for this dataset")
           + "); Jaccard = |official ∩ avjax| / |official ∪ avjax| of the "
           "dropped (clip, class) pairs.", "",
           "| seed | modality | truly absent | dropped official | dropped "
           "avjax | precision official | precision avjax | recall official "
           "| recall avjax | both dropped | Jaccard |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for seed, row in r["per_seed"].items():
    for m in MODALITIES:
      cells = []
      for key in ("dropped", "precision", "recall"):
        for s in parity.SIDES:
          v = row.get(s, {}).get(m, {}).get(key)
          cells.append("-" if v is None else (
              str(v) if key == "dropped" else _pct(v)))
      absent = next((row[s][m].get("truly_absent") for s in parity.SIDES
                     if s in row), None)
      ov = row.get("overlap", {}).get(m)
      lines.append(
          f"| {seed} | {m} | {'-' if absent is None else absent} | "
          + " | ".join(cells) + " | - | " +
          ("-" if ov is None else f"{ov['jaccard']:.3f} ({ov['common']} "
           "common)") + " |")
    both = " / ".join(str(row[s]["both"]) if s in row else "-"
                      for s in parity.SIDES)
    ov = row.get("overlap", {}).get("all")
    lines.append(f"| {seed} | both modalities | - | - | - | - | - | - | - | "
                 f"{both} | " + ("-" if ov is None else
                                 f"{ov['jaccard']:.3f} (all drops)") + " |")
  m = r["mean"]
  lines += ["", "Mean ± sd over seeds (precision, recall and Jaccard in %):",
            "", "| | official | avjax |", "|---|---|---|"]
  for mod in MODALITIES:
    for key in ("dropped", "precision", "recall"):
      fmt = (lambda x: parity.cell(x, 0)) if key == "dropped" else _pct_cell
      lines.append(f"| {mod} {key} | {fmt(m['official'][mod][key])} | "
                   f"{fmt(m['avjax'][mod][key])} |")
  lines.append(f"| dropped in both modalities | "
               f"{parity.cell(m['official']['both'], 0)} | "
               f"{parity.cell(m['avjax']['both'], 0)} |")
  lines.append("| Jaccard audio / visual / all | " + " / ".join(
      _pct_cell(m["overlap"][k]) for k in MODALITIES + ("all",)) + " | |")
  errs = [(seed, row["normalised_error_mean_abs_diff"])
          for seed, row in r["per_seed"].items()]
  if any(v is not None for _, e in errs for v in e.values()):
    lines += ["", "Normalised per-class training error E_c of the stage-1 "
              "models (the divisor of the drop rule), mean |official - "
              "avjax| over classes: " + "; ".join(
                  f"seed {seed}: " + ", ".join(
                      f"{k} {v:.3f}" for k, v in e.items() if v is not None)
                  for seed, e in errs) + "."]
  tops = [(seed, row["max_error"]) for seed, row in r["per_seed"].items()
          if row.get("max_error")]
  if tops:
    lines += ["", f"Its normaliser, the largest per-class training error "
              f"(train clips with [p > 0.5] != weak label, of {n_train}): "
              + "; ".join(f"seed {seed}: " + ", ".join(
                  f"{s} " + " / ".join(
                      f"{m} {round(e[m] * n_train)}" for m in MODALITIES
                      if e.get(m) is not None)
                  for s, e in t.items()) for seed, t in tops) + "."]
  partners = [row["no_partner_avjax"] for row in r["per_seed"].values()
              if row.get("no_partner_avjax")]
  if partners:
    lines += ["", f"avjax clips without a disjoint partner: {partners}."]
  return lines + [""]


def markdown(summary: Dict[str, Any], info: Dict[str, Any]) -> str:
  """parity_ma.md from `summarize`'s output and the run description."""
  p = info.get("protocol", {})
  lines = ["# MA parity: avjax vs the official code "
           "(Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing)", "",
           f"- data: {info.get('data', '?')}",
           f"- protocol, each training stage: {parity.protocol_text(p)}",
           f"- seeds: official {summary[STAGE1]['seeds']['official']}, avjax "
           f"{summary[STAGE1]['seeds']['avjax']} (the official steps: --seed "
           "S and random/numpy/torch seeded with S before each, step 2's "
           "partner draw included)",
           f"- official: {info.get('official') or '-'}",
           f"- avjax config: {info.get('config') or '-'}", ""]
  lines += refine_lines(summary, info.get("has_truth", False),
                        info.get("train_clips", 0))
  base = info.get("no_event_test")
  for stage, title in ((STAGE1, "Stage 1"), (STAGE3, "Stage 3")):
    lines += parity.test_table_lines(summary[stage], base, f"{title}, ")
  if base:
    lines += [parity.NO_EVENT_NOTE, ""]
  wd = summary.get("wrong_drops", {})
  lines += wrong_drop_lines(wd.get("rows", []), wd.get("fits", []))
  for stage, title in ((STAGE1, "Stage 1"), (STAGE3, "Stage 3")):
    lines += parity.validation_lines(summary[stage], f"{title} validation")
  lines += ["## Wall time per seed (s, mean ± sd)", "",
            "| stage | official | avjax |", "|---|---|---|"]
  lines += parity.wall_rows(summary[STAGE1]["wall_s"], "stage 1 ")
  lines.append("| refine | " + " | ".join(parity.cell(
      summary[REFINE]["wall_s"][s], 0) for s in parity.SIDES) + " |")
  lines += parity.wall_rows(summary[STAGE3]["wall_s"], "stage 3 ")
  lines += ["", "official: train = main_avvp.py --mode train/retrain (with "
            "its per-epoch validation; step 3's includes its test of the "
            "last model), test_best / test_final = --mode test runs, refine "
            "= step 2 (--mode estimate_labels), total = the stage's process. "
            "avjax: total = the pipeline stage (compilation, training, "
            "validation, scoring both checkpoints on val and test); - when "
            "the pipeline was resumed."]
  lines += parity.prep_line(info)
  for stage, title in ((STAGE1, "Stage 1"), (STAGE3, "Stage 3")):
    lines += [""] + parity.curve_lines(
        summary[stage], info.get("plots", {}).get(stage),
        f"{title} validation curves (mean over seeds)")
  lines += [""] + parity.difference_lines(info, "official MA")
  return "\n".join(lines) + "\n"


def write_report(workdir: str, results, info: Dict[str, Any],
                 weak: Dict[str, Set[str]],
                 truth: Optional[Dict[str, Dict[str, Set[str]]]]
                 ) -> Dict[str, Any]:
  summary = summarize(results, weak, truth)
  plots = {}
  for stage in TRAINED:
    name = f"{REPORT}_curves_{stage}.png"
    if parity.plot_curves(summary[stage], os.path.join(workdir, name)):
      plots[stage] = name
  info = dict(info, plots=plots, has_truth=truth is not None,
              train_clips=len(weak))
  with open(os.path.join(workdir, f"{REPORT}.md"), "w") as f:
    f.write(markdown(summary, info))
  parity.write_json(
      os.path.join(workdir, f"{REPORT}.json"),
      {"info": info, "summary": summary,
       "runs": {s: {str(k): v for k, v in r.items()}
                for s, r in results.items()}})
  return summary


# ---------------------------------------------------------------- driver


def run(config, workdir: str, seeds: Sequence[int], sides: Sequence[str],
        official_dir: Optional[str] = None, python: Optional[str] = None,
        export_only: bool = False) -> Optional[Dict[str, Any]]:
  """The whole harness (see the module doc); returns the summary."""
  check_config(config)
  ctx = parity.start(config, workdir, sides, official_dir, python,
                     export_only, check_official_dir)
  root = os.path.join(ctx["export_dir"], "data")
  ctx["train"] = read_train_labels(root)
  filenames, weak, truth = ctx["train"]
  if export_only:
    ctx.update(python=python or sys.executable,
               official_dir=official_dir or "OFFICIAL_DIR")
    run_root = os.path.join(ctx["workdir"], "official", "seed_S")
    for step, stage in ((1, STAGE1), (2, REFINE), (3, STAGE3)):
      log("official %s would run (in %s, with `data` linked to %s):\n  %s",
          stage, os.path.join(run_root, stage), root, " ".join(
              runner_command(ctx, step, os.path.join(run_root, stage),
                             seeds[0] if seeds else 0)))
    return None
  lonely = clips_without_partner(weak)
  if lonely and "official" in sides:
    raise parity.SetupError(
        f"{len(lonely)} train clips (e.g. {lonely[:3]}) share a class with "
        "every other clip: the official step 2 would redraw their partner "
        "forever")
  diffs = config_differences(config)
  for d in diffs:
    log("warning: %s", d)
  results = parity.finished(ctx, seeds, sides, lambda side, seed: os.path.join(
      ctx["workdir"], side, f"seed_{seed}", RESULT))
  # An official seed's result is per stage.
  for seed in seeds:
    if "official" not in sides:
      got = {}
      for stage in STAGES:
        path = os.path.join(ctx["workdir"], "official", f"seed_{seed}",
                            stage, RESULT)
        if os.path.exists(path):
          with open(path) as f:
            got[stage] = json.load(f)
      if got:
        results["official"][seed] = got
  n = ctx["data"]["export"]["num_clips"]

  def report():
    info = {"data": parity.data_text(ctx), "protocol": ctx["protocol"],
            "seeds": list(seeds),
            "official": ctx.get("official_dir", official_dir),
            "config": parity.config_source(),
            "config_differences": diffs,
            "loop_differences": {
                **{f"Training loops (stage {i})": parity.loop_differences(
                    config, n.get("train"), {
                        s: {seed: r[st] for seed, r in results[s].items()
                            if st in r} for s in parity.SIDES})
                   for i, st in ((1, STAGE1), (3, STAGE3))},
                "MA pipeline": ma_notes(config, results)},
            "no_event_test": ctx["data"]["no_event_test"],
            "prep_s": ctx["prep"]}
    return write_report(ctx["workdir"], results, info, weak, truth)

  def done(side, seed, res, dt):
    r = res.get(REFINE, {})
    log("%s seed %d done (%.0f s): stage 1 test seg_type final %.2f; "
        "refinement dropped %d labels; stage 3 test seg_type final %.2f",
        side, seed, dt, res[STAGE1]["test_final"]["seg_type"],
        len(r.get("drops", [])), res[STAGE3]["test_final"]["seg_type"])

  parity.run_seeds(seeds, sides, {
      "official": lambda seed: run_official(seed, ctx),
      "avjax": lambda seed: run_avjax(seed, ctx)}, results, report, done)
  summary = report()
  log("wrote %s", os.path.join(ctx["workdir"], f"{REPORT}.md"))
  return summary


def main(argv):
  return parity.cli(argv, run)


if __name__ == "__main__":
  parity.define_flags(DEFAULT_CONFIG, REPO)
  cli_lib.run(main)

r"""Same weights, same order: avjax's training step by step against the
official code.

  python -m avjax.parity_steps --workdir=/tmp/steps/han \
      --official_dir=PATH/AVVP-ECCV20 --python=TORCH_VENV/bin/python \
      [--config=configs/avvp_han.py[:args]] [--config.<field>=<value> ...] \
      [--seed=0] [--dropout=0]
  python -m avjax.parity_steps --workdir=/tmp/steps/ma3 \
      --config=configs/avvp_ma.py --stage=3 --official_dir=PATH/MA \
      --need_to_change=RUN/need_to_change.json --python=...

The seed-by-seed harnesses (`avjax.parity`, `avjax.parity_ma`) compare
distributions: each side draws its own initial weights, epoch orders and
dropout masks. This check takes the draws away, so that what remains is the
training computation itself:

1. The data is exported and converted as by those harnesses (same options,
   same WORKDIR layout). The training clips are taken in avjax's written
   order every epoch (`data.order=fixed`; the last incomplete batch unused),
   listed as train-CSV rows in WORKDIR/order.json.
2. The official code trains with that order and every dropout rate set to
   --dropout (the runners' Trajectory mode; seeded with --seed, as the
   harness), saving its initial weights (init.npz) and every step's loss
   terms; then its final model is tested.
3. avjax imports those initial weights (`avjax.import_official`) and trains
   the same config with `data.order=fixed`, `model.dropout=--dropout` and a
   log line every step; its final checkpoint is tested.
4. WORKDIR/parity_steps.md, .json and .png: the largest relative difference
   of the step losses per epoch, the first step over 1e-4 / 1e-3 / 1e-2,
   the validation curves and the final test scores of both.

With --dropout=0 both runs are deterministic: equal code follows the same
trajectory up to float32 rounding (which Adam amplifies slowly), and a
difference in a loss, its targets, the optimizer or the schedule shows at
the step where it first acts. --dropout=0.1 keeps the order and weights
and leaves only the dropout draws different.

--draws=own --seeds=S1,S2,...: each side its own initial weights, epoch
orders and dropout draws per seed (the official code at its own rates,
avjax at the config's: the official ones unless overridden; a config that
differs from the official setup is warned about), on the same data
(MA stage 3: the same --need_to_change drops on both sides), in
WORKDIR/seed_S/; WORKDIR/parity_steps.md compares the final models' test
scores (mean ± sd, avjax − official with its standard error). This
separates the trainer from the rest of a pipeline: MA's stage 3 on one
drop set measures the stage-3 trainers alone, without the refinement's
seed-to-seed spread.

Configs: an AVVP config (`configs/avvp_han.py`: official AVVP-ECCV20) or the
MA pipeline (`configs/avvp_ma.py`: official MA, --stage=1 its step 1,
--stage=3 its step 3 trained on --need_to_change, official step 2's
output, .pkl or the MA harness's .json, applied to both sides).
"""

import json
import os
import pickle
from typing import Any, Dict, List, Optional, Sequence

from absl import app
from absl import flags
import numpy as np

from avjax import parity
from avjax import parity_ma
from avjax.utils import cli as cli_lib
from ml_collections import config_flags

REPORT = "parity_steps"
TERMS = ("audio", "visual", "global", "nce")
THRESHOLDS = (1e-4, 1e-3, 1e-2)
OFFICIAL_RUN, AVJAX_RUN = "official", "avjax"
NEED_PKL = "need_to_change.pkl"  # what the official step 3 reads


def is_ma(config) -> bool:
  return config.trainer == "ma_pipeline"


def check_args(config, stage: int, need_to_change: Optional[str]) -> None:
  if not is_ma(config):
    if stage != 1:
      raise parity.SetupError(f"--stage={stage}: only MA configs "
                              "(configs/avvp_ma.py) have a stage 3")
    return
  parity_ma.check_config(config)
  if stage not in (1, 3):
    raise parity.SetupError(f"--stage={stage}: 1 or 3")
  if stage == 3 and not need_to_change:
    raise parity.SetupError(
        "--stage=3 needs --need_to_change (official step 2's "
        "need_to_change.pkl, or need_to_change.json of an avjax.parity_ma "
        "run: WORKDIR/official/seed_S/refine/)")
  if need_to_change and not os.path.isfile(need_to_change):
    raise parity.SetupError(f"--need_to_change={need_to_change}: no such "
                            "file")


def written_rows(data_dir: str, batch_size: int, seed: int,
                 filenames: Sequence[str]) -> List[int]:
  """One epoch of avjax's fixed-order training clips as train-CSV rows."""
  from avjax.data import pipeline  # pylint: disable=g-import-not-at-top
  src = pipeline.Source(data_dir, "train", [])
  steps = src.steps_per_epoch(batch_size)
  row = {f: i for i, f in enumerate(filenames)}
  out = []
  for batch in pipeline.train_batches(src, batch_size, seed,
                                      num_steps=steps, order="fixed"):
    for c in batch["clip_id"]:
      c = c.decode() if isinstance(c, bytes) else str(c)
      if c not in row:
        raise parity.SetupError(f"clip {c!r} of {data_dir} is not in the "
                                "export's AVVP_train.csv")
      out.append(row[c])
  return out


def apply_drops(drops, filenames: Sequence[str], weak, classes):
  """{clip: (audio labels, visual labels)} of the weak labels less drops."""
  refined = {}
  for name in filenames:
    y = np.zeros(len(classes), np.float32)
    for k in weak[name]:
      y[classes.index(k)] = 1
    refined[name] = (y.copy(), y.copy())
  for clip, cls, modality in drops:
    refined[clip][0 if modality == "audio" else 1][classes.index(cls)] = 0
  return refined


def avjax_config(ctx: Dict[str, Any], seed: int, stage: int,
                 dropout: Optional[float], refine_dir: Optional[str] = None):
  """The trained config of avjax's side (one avvp_weak run). `dropout`:
  the same-draws rate (fixed order, that dropout, a log line every step);
  None: the config's own draws (its order, dropout and logging)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  c = parity.avjax_config(ctx["config"], seed, ctx["avjax_data"])
  if is_ma(c):
    from avjax.projects.ma import pipeline as ma_pipeline  # pylint: disable=g-import-not-at-top
    stage1, stage3 = ma_pipeline.stage_configs(c, ctx["avjax_data"])
    c = stage3 if stage == 3 else stage1
    if stage == 3:
      ma_pipeline.refined_data(c, refine_dir)
  c = ml_collections.ConfigDict(c.to_dict())
  if dropout is not None:
    c.data.order = "fixed"
    c.model.dropout = float(dropout)
    c.log_every_steps = 1
  return c


def official_cmd(ctx, run: str, seed: int, stage: int,
                 extra: Sequence[str] = ()) -> List[str]:
  """The official train + final-test command; `extra`: the runner's
  same-draws flags (--order/--dropout), none for its own draws."""
  if is_ma(ctx["config"]):
    return parity_ma.runner_command(
        ctx, stage, run, seed, ["--phases=train,test_final", *extra])
  cmd = parity.official_command(ctx["python"], ctx["official_dir"], run,
                                ctx["protocol"], seed,
                                phases=("train", "test_final"))
  i = cmd.index("--")
  return cmd[:i] + list(extra) + cmd[i:]


def official_curves(run: str, val_suffix: str = "val_pd.csv"
                    ) -> Dict[str, Any]:
  rows = parity._read_jsonl(os.path.join(run, "metrics_exact.jsonl"))  # pylint: disable=protected-access
  val = [{k: r[k] for k in parity.KEYS} for r in rows
         if r["phase"] == "train" and str(r["label_file"]).endswith(
             val_suffix)]
  test = [{k: r[k] for k in parity.KEYS} for r in rows
          if r["phase"] == "test_final"]
  return {"val": val, "test_final": test[-1] if test else None}


def avjax_losses(run: str, n_terms: int) -> np.ndarray:
  """[steps, n_terms] of avjax's per-step loss terms (TERMS order)."""
  from avjax.utils import writers  # pylint: disable=g-import-not-at-top
  keys = [f"train/loss_{t}" for t in TERMS[:n_terms]]
  by_step = {r["step"]: [r[k] for k in keys]
             for r in writers.read_jsonl(run) if keys[0] in r}
  return np.array([by_step[s] for s in sorted(by_step)], np.float64)


def compare(official: np.ndarray, avjax: np.ndarray,
            steps_per_epoch: int) -> Dict[str, Any]:
  """Step losses [steps, terms] of both sides -> the differences."""
  n = min(len(official), len(avjax))
  if n == 0:
    raise ValueError("no step losses to compare")
  o, a = official[:n], avjax[:n]
  tot_o, tot_a = o.sum(1), a.sum(1)
  rel = np.abs(tot_o - tot_a) / np.maximum(np.abs(tot_o), 1e-12)
  term_rel = np.abs(o - a) / np.maximum(np.abs(o), 1e-12)
  epochs = []
  for e in range(-(-n // steps_per_epoch)):
    sl = slice(e * steps_per_epoch, min(n, (e + 1) * steps_per_epoch))
    epochs.append({"epoch": e + 1, "max_rel": float(rel[sl].max()),
                   "max_term_rel": float(term_rel[sl].max()),
                   "loss_official": float(tot_o[sl].mean()),
                   "loss_avjax": float(tot_a[sl].mean())})
  first = {}
  for t in THRESHOLDS:
    over = np.nonzero(rel > t)[0]
    first[f"{t:g}"] = int(over[0]) + 1 if len(over) else None
  return {"steps": n, "steps_official": len(official),
          "steps_avjax": len(avjax), "first_step_loss_equal": bool(
              rel[0] < 1e-5), "rel_step1": float(rel[0]),
          "first_step_over": first, "per_epoch": epochs,
          "rel": rel.tolist()}


def markdown(res: Dict[str, Any]) -> str:
  c = res["compare"]
  lines = [f"# Same weights, same order: {res['what']}", "",
           f"Data: {res['data']}. Seed {res['seed']}, dropout "
           f"{res['dropout']}, {c['steps']} steps compared (official "
           f"{c['steps_official']}, avjax {c['steps_avjax']}); avjax started "
           "from the official initial weights.", "",
           f"Step 1 total loss: relative difference {c['rel_step1']:.1e}. "
           "First step whose total loss differs by more than " + ", ".join(
               f"{k}: {v if v is not None else 'none'}"
               for k, v in c["first_step_over"].items()) + ".", "",
           "| epoch | mean loss official | mean loss avjax | max rel. "
           "diff (total) | max rel. diff (any term) |",
           "|---|---|---|---|---|"]
  for e in c["per_epoch"]:
    lines.append(f"| {e['epoch']} | {e['loss_official']:.5f} | "
                 f"{e['loss_avjax']:.5f} | {e['max_rel']:.1e} | "
                 f"{e['max_term_rel']:.1e} |")
  lines += ["", "| test, final model | " + " | ".join(parity.KEYS) + " |",
            "|---" * (len(parity.KEYS) + 1) + "|"]
  for side in parity.SIDES:
    t = res[side]["test_final"] or {}
    lines.append(f"| {side} | " + " | ".join(
        f"{t[k]:.1f}" if k in t else "-" for k in parity.KEYS) + " |")
  lines += ["", "Validation seg Type@AV per epoch: official " + ", ".join(
      f"{v['seg_type']:.1f}" for v in res["official"]["val"]) +
            "; avjax " + ", ".join(f"{v['seg_type']:.1f}"
                                   for v in res["avjax"]["val"]) + "."]
  return "\n".join(lines) + "\n"


def plot(res: Dict[str, Any], path: str) -> bool:
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
  rel = np.maximum(np.array(res["compare"]["rel"]), 1e-9)
  ax1.semilogy(np.arange(1, len(rel) + 1), rel, lw=0.7)
  ax1.set(xlabel="step", ylabel="|loss official - loss avjax| / loss",
          title="step losses, relative difference")
  for side in parity.SIDES:
    v = [x["seg_type"] for x in res[side]["val"]]
    ax2.plot(np.arange(1, len(v) + 1), v, marker="o", label=side)
  ax2.set(xlabel="epoch", ylabel="val seg Type@AV", title="validation")
  ax2.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def _start(config, workdir: str, stage: int, need_to_change: Optional[str],
           official_dir: Optional[str], python: Optional[str]):
  """(run context, train filenames, need_to_change lists or None) after
  checking the arguments, exporting and converting the data."""
  check_args(config, stage, need_to_change)
  ctx = parity.start(config, workdir, parity.SIDES, official_dir, python,
                     False, parity_ma.check_official_dir if is_ma(config)
                     else parity.check_official_dir)
  filenames, weak, _ = parity_ma.read_train_labels(
      os.path.join(ctx["export_dir"], "data"))
  ctx["weak"] = weak
  need = None
  if stage == 3:
    drops = parity_ma.drops_from_need_to_change(
        parity_ma.read_need_to_change(need_to_change), filenames)
    need = parity_ma.need_to_change_from_drops(drops, filenames)
    ctx["drops"] = drops
  return ctx, filenames, need


def _write_refined(ctx, cfg, need, filenames) -> None:
  """Stage 3: avjax's training split with the drops applied (once)."""
  from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
  from avjax.projects.ma import refine  # pylint: disable=g-import-not-at-top
  if need is None or os.path.isdir(cfg.data.data_dir):
    return
  classes = list(tfrecord.read_info(ctx["avjax_data"])["classes"])
  refine.write_refined_dataset(
      ctx["avjax_data"], cfg.data.data_dir, "train",
      apply_drops(ctx["drops"], filenames, ctx["weak"], classes))


def _official_dir(ctx, run: str, need) -> str:
  """A fresh official run folder (MA: `data` linked and the drops' pkl);
  returns the folder the official code runs in."""
  if is_ma(ctx["config"]):  # as the MA harness's
    cwd = parity_ma._run_dir(ctx, run)  # pylint: disable=protected-access
    if need is not None:
      with open(os.path.join(run, NEED_PKL), "wb") as f:
        pickle.dump(need, f)
    return cwd
  parity.fresh_dir(run)
  return ctx["export_dir"]


def run(config, workdir: str, seed: int = 0, stage: int = 1,
        dropout: float = 0.0, need_to_change: Optional[str] = None,
        official_dir: Optional[str] = None, python: Optional[str] = None
        ) -> Dict[str, Any]:
  """The whole check (see the module doc); returns the result."""
  from avjax import import_official  # pylint: disable=g-import-not-at-top
  from avjax.trainers import registry as trainers  # pylint: disable=g-import-not-at-top
  ma = is_ma(config)
  ctx, filenames, need = _start(config, workdir, stage, need_to_change,
                                official_dir, python)
  root = ctx["workdir"]
  cfg = avjax_config(ctx, seed, stage, dropout, os.path.join(root, "refine"))
  _write_refined(ctx, cfg, need, filenames)
  order_path = os.path.join(root, "order.json")
  if os.path.exists(order_path):  # a resumed check: the order is pinned
    with open(order_path) as f:
      rows = json.load(f)["rows"]
  else:
    rows = written_rows(cfg.data.data_dir, cfg.batch_size, seed, filenames)
    parity.write_json(order_path, {"rows": rows})
  what = (f"MA stage {stage}" if ma else "HAN") + f", seed {seed}"

  # official
  run_o = os.path.join(root, OFFICIAL_RUN)
  losses_path = os.path.join(run_o, "step_losses.json")
  if not os.path.exists(losses_path):
    cwd = _official_dir(ctx, run_o, need)
    parity.launch(official_cmd(ctx, run_o, seed, stage, [
        f"--order={order_path}", f"--dropout={dropout!r}"]),
                  cwd, run_o, f"official {what}", ctx["protocol"]["epochs"],
                  parity_ma.PRINTED if ma else parity.PRINTED)
  with open(losses_path) as f:
    off_steps = json.load(f)["steps"]
  official = np.array(off_steps, np.float64)

  # avjax
  run_a = os.path.join(root, AVJAX_RUN)
  trainer = trainers.get(cfg.trainer)
  if not os.path.exists(os.path.join(run_a, "eval_latest.json")):
    if not os.path.isdir(run_a):
      import_official.import_weights(cfg, os.path.join(run_o, "init.npz"),
                                     run_a)
    trainer.train_and_evaluate(cfg, run_a)
    trainer.evaluate_checkpoint(cfg, run_a, "latest")
  got = parity.collect_avjax(run_a, cfg, seed, {})
  res = {"what": what, "seed": seed, "dropout": dropout, "stage": stage,
         "data": parity.data_text(ctx),
         "compare": compare(official, avjax_losses(run_a, official.shape[1]),
                            len(rows) // cfg.batch_size),
         "official": official_curves(run_o),
         "avjax": {"val": got["val"], "test_final": got["test_final"]}}
  parity.write_json(os.path.join(root, f"{REPORT}.json"), res)
  with open(os.path.join(root, f"{REPORT}.md"), "w") as f:
    f.write(markdown(res))
  plot(res, os.path.join(root, f"{REPORT}.png"))
  parity.log("wrote %s", os.path.join(root, f"{REPORT}.md"))
  return res


def run_own_draws(config, workdir: str, seeds: Sequence[int], stage: int = 1,
                  need_to_change: Optional[str] = None,
                  official_dir: Optional[str] = None,
                  python: Optional[str] = None) -> Dict[str, Any]:
  """--draws=own: per seed both sides train the same data (MA stage 3: the
  same drops) each with its own initial weights, epoch orders and dropout
  draws (official: torch.manual_seed(S), its own rates; avjax:
  config.seed=S, the config's), in WORKDIR/seed_S/{official,avjax}; the
  final models' test scores per seed and `own_table`. Resumable per seed
  and side; one stage and drop set per workdir (`pin_own_draws`)."""
  from avjax.trainers import registry as trainers  # pylint: disable=g-import-not-at-top
  ctx, filenames, need = _start(config, workdir, stage, need_to_change,
                                official_dir, python)
  root = ctx["workdir"]
  ma = is_ma(config)
  what = (f"MA stage {stage}" if ma else "HAN")
  pin_own_draws(root, stage, ctx.get("drops"))
  diffs = (parity_ma.config_differences(config) if ma else
           parity.config_differences(config))
  for d in diffs:
    parity.log("warning: %s (avjax only: the official side runs its own "
               "code as written)", d)
  results = {s: {} for s in parity.SIDES}
  for seed in seeds:
    run_o = os.path.join(root, f"seed_{seed}", OFFICIAL_RUN)
    done = os.path.join(run_o, "test_final.json")
    if not os.path.exists(done):
      cwd = _official_dir(ctx, run_o, need)
      parity.launch(official_cmd(ctx, run_o, seed, stage), cwd, run_o, f"official {what}, seed {seed}",
                    ctx["protocol"]["epochs"],
                    parity_ma.PRINTED if ma else parity.PRINTED)
      curves = official_curves(run_o)
      if curves["test_final"] is None:
        raise parity.SetupError(f"{run_o}: the official run printed no "
                                "final test scores (see official.log)")
      parity.write_json(done, curves)
    with open(done) as f:
      results["official"][seed] = json.load(f)
    run_a = os.path.join(root, f"seed_{seed}", AVJAX_RUN)
    cfg = avjax_config(ctx, seed, stage, None, os.path.join(root, "refine"))
    _write_refined(ctx, cfg, need, filenames)
    trainer = trainers.get(cfg.trainer)
    if not os.path.exists(os.path.join(run_a, "eval_latest.json")):
      trainer.train_and_evaluate(cfg, run_a)
      trainer.evaluate_checkpoint(cfg, run_a, "latest")
    got = parity.collect_avjax(run_a, cfg, seed, {})
    results["avjax"][seed] = {"val": got["val"],
                              "test_final": got["test_final"]}
    parity.log("seed %d: test seg Type@AV official %.2f, avjax %.2f", seed,
               results["official"][seed]["test_final"]["seg_type"],
               got["test_final"]["seg_type"])
  res = {"what": what, "draws": "own", "seeds": list(seeds), "stage": stage,
         "data": parity.data_text(ctx), "dropout": config.model.dropout,
         "need_to_change": need_to_change,
         "table": own_table(results), "runs": {
             s: {str(k): v for k, v in r.items()} for s, r in
             results.items()}}
  parity.write_json(os.path.join(root, f"{REPORT}.json"), res)
  with open(os.path.join(root, f"{REPORT}.md"), "w") as f:
    f.write(own_markdown(res))
  parity.log("wrote %s", os.path.join(root, f"{REPORT}.md"))
  return res


def pin_own_draws(root: str, stage: int, drops) -> None:
  """Pins what an own-draws workdir holds (stage and drop set: its runs are
  resumed, so another stage or drop set needs another workdir)."""
  import hashlib  # pylint: disable=g-import-not-at-top
  key = {"draws": "own", "stage": stage, "drops": None if drops is None else
         hashlib.sha1(json.dumps(sorted(map(list, drops))).encode()
                      ).hexdigest()}
  path = os.path.join(root, "own_draws.json")
  if os.path.exists(path):
    with open(path) as f:
      had = json.load(f)
    if had != key:
      raise parity.SetupError(
          f"{root} holds own-draws runs of {had}, not {key} (another stage "
          "or drop set): use another --workdir")
  else:
    parity.write_json(path, key)


def own_table(results: Dict[str, Dict[int, Dict[str, Any]]]
              ) -> Dict[str, Any]:
  """{side: {seed: {"test_final": scores}}} -> per metric
  `parity.compare_row` (mean ± sd per side, avjax − official, its standard
  error)."""
  return {k: parity.compare_row(*[
      [r["test_final"][k] for r in results[s].values() if r.get("test_final")]
      for s in parity.SIDES]) for k in parity.KEYS}


def own_markdown(res: Dict[str, Any]) -> str:
  drops = (f"; drops: {res['need_to_change']}" if res.get("need_to_change")
           else "")
  lines = [f"# Own draws: {res['what']}", "",
           f"Data: {res['data']}{drops}. Each side its own initial weights, "
           f"epoch orders and dropout draws (avjax dropout {res['dropout']}; "
           "the official code at its own rates), "
           f"seeds {res['seeds']}; final models on test.", "",
           "| test, final model | official | avjax | avjax − official |",
           "|---|---|---|---|"]
  for k, row in res["table"].items():
    lines.append(f"| {k} | {parity.cell(row['official'])} | "
                 f"{parity.cell(row['avjax'])} | {parity._diff(row)} |")  # pylint: disable=protected-access
  lines += ["", "| seed | side | " + " | ".join(parity.KEYS) + " |",
            "|---|---" + "|---" * len(parity.KEYS) + "|"]
  for seed in res["seeds"]:
    for side in parity.SIDES:
      t = res["runs"][side].get(str(seed), {}).get("test_final") or {}
      lines.append(f"| {seed} | {side} | " + " | ".join(
          f"{t[k]:.1f}" if k in t else "-" for k in parity.KEYS) + " |")
  return "\n".join(lines) + "\n"


def define_flags():
  """The command's flags (defined when run, not on import)."""
  config_flags.DEFINE_config_file(
      "config", parity.DEFAULT_CONFIG, "avjax config: an AVVP config "
      "(official AVVP-ECCV20) or configs/avvp_ma.py (official MA); "
      "--config.<field>=<value> overrides apply to both sides' protocol "
      "(num_epochs, batch_size, optim.*) as in avjax.parity.",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Output and run folder (resumable: "
                      "finished sides are not rerun).")
  flags.DEFINE_string("official_dir", None, "Checkout of the official code "
                      f"({parity.REPO} or {parity_ma.REPO}).")
  flags.DEFINE_string("python", None, "Python with torch for the official "
                      "code (default: this one, if it has torch).")
  flags.mark_flags_as_required(["workdir"])
  flags.DEFINE_integer("seed", 0, "torch.manual_seed of the official code "
                       "(its initial weights), config.seed of avjax.")
  flags.DEFINE_integer("stage", 1, "MA configs: the stage trained (1, or 3 "
                       "with --need_to_change).")
  flags.DEFINE_float("dropout", 0.0, "Every dropout rate on both sides (0: "
                     "deterministic runs).")
  flags.DEFINE_string("need_to_change", None, "MA --stage=3: the official "
                      "step 2's need_to_change.pkl or the MA harness's "
                      "need_to_change.json.")
  flags.DEFINE_enum("draws", "same", ["same", "own"], "same: the official "
                    "initial weights and avjax's order on both sides, every "
                    "dropout rate --dropout (step by step). own: each side "
                    "its own weights, orders and dropout draws (official: "
                    "its own rates; avjax: the config's), over --seeds "
                    "(test scores compared; one stage and drop set per "
                    "--workdir).")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "--draws=own: the seeds.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from avjax.utils import runtime  # pylint: disable=g-import-not-at-top
  runtime.initialize()
  f = flags.FLAGS
  if f.draws == "own":
    if f.dropout:
      raise app.UsageError("--dropout sets both sides' rate with "
                           "--draws=same; with --draws=own the official "
                           "code keeps its own rates and avjax the config's "
                           "(--config.model.dropout)")
    run_own_draws(f.config, f.workdir, [int(x) for x in f.seeds], f.stage,
                  f.need_to_change, f.official_dir, f.python)
  else:
    run(f.config, f.workdir, f.seed, f.stage, f.dropout, f.need_to_change,
        f.official_dir, f.python)
  return 0


if __name__ == "__main__":
  define_flags()
  cli_lib.run(main)

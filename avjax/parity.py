r"""Parity of avjax's HAN training with the official code on the same data,
seeds and protocol.

  python -m avjax.parity --workdir=/tmp/parity \
      --official_dir=PATH/AVVP-ECCV20 --python=TORCH_VENV/bin/python \
      [--config=configs/avvp_han.py[:args]] [--config.<field>=<value> ...] \
      [--seeds=0,1,2] [--sides=official,avjax] [--export_only]

The official code is https://github.com/YapengTian/AVVP-ECCV20 (`git clone`
it; nothing in it is modified) run by a Python with torch (`pip install
torch==2.13.0 numpy pandas` (CPU) into a venv and pass --python; default:
this interpreter if it has torch). Steps:

1. Export: the config's data block (the built-in synthetic sets or a
   prepared directory, as `avjax.main` resolves it) is written in LLP's
   published layout to WORKDIR/export/data (`avjax.data.llp_export`: feature
   .npy files, AVVP_*.csv, plus the train clips' per-modality weak truth when
   the dataset has it); avjax reads the same files through
   `python -m avjax.prepare llp --strict` (WORKDIR/avjax_data).
2. Official, per seed: `avjax/parity_official.py` runs main_avvp.py (train,
   then --mode test on its best-on-val checkpoint and on the last epoch's
   model) in WORKDIR/export with the protocol of the config: --epochs
   (num_epochs), --batch-size (batch_size), --lr (optim.lr), --seed, and
   StepLR(step_size=optim.decay_every_epochs, gamma=optim.decay_factor).
   Run-time patches only: device cuda -> cpu, DataLoader num_workers=0, a
   torchvision stub if it is missing, StepLR's step size, pandas >= 3
   positional `row[0]`; see that file. Its stdout is parsed (the ten scores
   of every evaluation); the unrounded scores are recorded alongside.
3. avjax, per seed: the config's trainer on WORKDIR/avjax_data (the config
   with only its data block replaced and --config.seed=s): per-epoch
   validation from metrics.jsonl, test scores of `best` (eval_best.json) and
   of the final epoch (`latest`, eval_latest.json).
4. WORKDIR/parity.md, parity.json, parity_curves.png: per metric mean ± sd
   over seeds of both sides and their difference, for the best-on-val and
   the final-epoch model; best validation Type@AV; wall times; per-epoch
   validation curves (seg Type@AV, seg V).

Resumable: a seed whose parity_result.json exists is not rerun (an
interrupted avjax seed resumes from its checkpoint; an interrupted official
seed restarts). WORKDIR/setup.json pins the data, protocol and config: a
rerun with other values stops (use another --workdir). Every difference the
harness can see between the avjax config and the official HAN is listed in
the report. `avjax.parity_ma` runs the same harness (these functions) on
MA's three-step pipeline.
"""

import importlib
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
from ml_collections import config_flags

from avjax import errors
from avjax.utils import cli as cli_lib

KEYS = ("seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
        "ev_a", "ev_v", "ev_av", "ev_type", "ev_event")
SIDES = ("official", "avjax")
WHICH = {"best": "test, best-on-val checkpoint",
         "final": "test, final-epoch model"}
REPO = "https://github.com/YapengTian/AVVP-ECCV20"
OFFICIAL_FILES = ("main_avvp.py", "dataloader.py", "nets/net_audiovisual.py",
                  "utils/eval_metrics.py")
TORCH_HINT = ("pip install torch==2.13.0 numpy pandas (CPU) into a venv and "
              "pass --python=VENV/bin/python")
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "parity_official.py")
DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "configs", "avvp_han.py")
RESULT = "parity_result.json"
# The official main_avvp.py's evaluation printout, in its order.
PRINTED = (("seg_a", "Audio Event Detection Segment-level F1:"),
           ("seg_v", "Visual Event Detection Segment-level F1:"),
           ("seg_av", "Audio-Visual Event Detection Segment-level F1:"),
           ("seg_type", "Segment-levelType@Avg. F1:"),
           ("seg_event", "Segment-level Event@Avg. F1:"),
           ("ev_a", "Audio Event Detection Event-level F1:"),
           ("ev_v", "Visual Event Detection Event-level F1:"),
           ("ev_av", "Audio-Visual Event Detection Event-level F1:"),
           ("ev_type", "Event-level Type@Avg. F1:"),
           ("ev_event", "Event-level Event@Avg. F1:"))
PHASE_MARK = "#### parity phase:"
# The official HAN (MMIL_Net, main_avvp.py) in avjax config terms.
OFFICIAL_HAN = {
    "trainer": "avvp_weak",
    "model.name": "avvp_net", "model.d_model": 512, "model.num_layers": 1,
    "model.num_heads": 1, "model.d_ff": 512, "model.dropout": 0.1,
    "model.cross_attention": True, "model.input_modalities": "av",
    "model.use_frames": True, "model.use_motion": True,
    "model.global_context": False, "model.separate_self_attention": False,
    "model.modality_encoder_layers": 0,
    "model.skip": False, "model.adversarial": False, "model.avg_layers": 0,
    "model.init_from": "", "model.dtype": "float32",
    "model.init_scheme": "torch",
    "loss.type": "han", "loss.audio_smoothing": 0.0,
    "loss.visual_smoothing": 0.1, "loss.use_modality_labels": False,
    "optim.grad_clip": 0.0, "max_steps": 0,
    "eval.gating": "global", "eval.threshold": 0.5,
    "eval.best_metric": "seg_type",
}


class SetupError(errors.UserError, ValueError):
  """A missing tool or input, with what to do about it."""


def log(msg: str, *args) -> None:
  print("parity: " + (msg % args if args else msg), flush=True)


# ---------------------------------------------------------------- protocol


def protocol(config) -> Dict[str, Any]:
  """The training protocol both sides follow, from the avjax config."""
  o = config.optim
  step = float(o.decay_every_epochs)
  if not step.is_integer() or step < 1:
    raise SetupError(f"config.optim.decay_every_epochs={o.decay_every_epochs}"
                     ": the official StepLR steps per epoch; use a whole "
                     "number of epochs")
  if config.get("max_steps", 0):
    raise SetupError(f"config.max_steps={config.max_steps}: the official "
                     "code trains whole epochs; set it to 0")
  return {"epochs": int(config.num_epochs), "batch_size": int(
      config.batch_size), "lr": float(o.lr), "step_size": int(step),
          "gamma": float(o.decay_factor)}


def _get(config, dotted: str):
  for part in dotted.split("."):
    if part not in config:
      return None
    config = config[part]
  return config


def config_differences(config, official: Optional[Dict[str, Any]] = None,
                       name: str = "official HAN") -> List[str]:
  """avjax config fields that differ from the official setup `official`
  (default: the official HAN, `OFFICIAL_HAN`)."""
  out = []
  for key, want in (OFFICIAL_HAN if official is None else official).items():
    have = _get(config, key)
    if have is None and key in ("model.init_scheme", "model.avg_layers",
                                "model.init_from"):
      continue  # older configs: the field does not exist (default)
    if have != want:
      out.append(f"config.{key}={have!r} ({name}: {want!r})")
  return out


def _lr_text(lrs) -> str:
  return ", ".join(f"{x:.3g}" for x in lrs)


def loop_differences(config, num_train: Optional[int],
                     results: Optional[Dict[str, Dict[int, Any]]] = None
                     ) -> List[str]:
  """What differs (or was checked to agree) between the two training loops
  under this config; `results` ({side: {seed: run result}}) adds the checks
  made on the runs (best-epoch rule, learning rate of every epoch)."""
  results = results or {}
  b = int(config.batch_size)
  sb = int(config.data.get("shuffle_buffer", 0) or 0)
  notes = [
      "random streams differ (torch vs JAX): initialisation, dropout masks "
      "and data order; seeds pair runs by number only",
      "official evaluates with batch size 1, avjax in padded batches: the "
      "same per-clip scores, averaged over clips",
  ]
  key = config.eval.best_metric
  runs = results.get("avjax", {})
  if runs:
    bad = [f"seed {seed}: avjax epoch {r['best_epoch']}, official rule "
           f"{best_epoch_official([v[key] for v in r['val']])}"
           for seed, r in sorted(runs.items())
           if r.get("best_epoch") != best_epoch_official(
               [v[key] for v in r["val"]])]
    notes.append(
        "best checkpoint: official keeps the last epoch whose val Type@AV "
        ">= every earlier one (`F >= best_F`); " + (
            f"avjax (eval.best_metric={key!r}) picked that epoch on every "
            "seed" if not bad else "avjax picked another epoch: " +
            "; ".join(bad)))
  lr = {s: next((r.get("lr_per_epoch") for _, r in sorted(
      results.get(s, {}).items()) if r.get("lr_per_epoch")), None)
        for s in SIDES}
  if lr["official"] and lr["avjax"]:
    same = len(lr["official"]) == len(lr["avjax"]) and all(
        math.isclose(x, y, rel_tol=1e-5) for x, y in zip(lr["official"],
                                                         lr["avjax"]))
    notes.append(
        "learning rate of each epoch " + (
            f"identical: {_lr_text(lr['official'])}" if same else
            f"DIFFERS: official {_lr_text(lr['official'])}; avjax "
            f"{_lr_text(lr['avjax'])}") + " (official: StepLR.step(epoch) "
        "after each epoch; avjax: staircase over steps)")
  if num_train is not None and num_train % b:
    notes.append(f"{num_train} train clips, batch {b}: official trains the "
                 f"last partial batch of {num_train % b} clips every epoch "
                 f"({math.ceil(num_train / b)} steps); avjax drops it "
                 f"({num_train // b} steps, a different subset each epoch)")
  if sb > 0 and (num_train is None or sb < num_train):
    notes.append(f"data order: avjax data.shuffle_buffer={sb} (seeded shard "
                 "order through a buffer); official draws a uniform "
                 "permutation every epoch")
  elif sb > 0:
    notes.append(f"data order: avjax data.shuffle_buffer={sb} holds every "
                 "train clip: a uniform shuffle, as official's")
  else:
    notes.append("data order: both draw a uniform permutation every epoch "
                 "(avjax data.shuffle_buffer=0)")
  return notes


# ---------------------------------------------------------------- official


def check_official_dir(path: Optional[str]) -> str:
  """The absolute official checkout, or a SetupError saying how to get it."""
  if not path:
    raise SetupError("--official_dir is required for the official side: a "
                     f"checkout of the official HAN code (`git clone {REPO} "
                     "DIR`)")
  missing = [f for f in OFFICIAL_FILES
             if not os.path.isfile(os.path.join(path, f))]
  if missing:
    raise SetupError(f"--official_dir={path} lacks {', '.join(missing)}; it "
                     "must be a checkout of the official HAN code: "
                     f"`git clone {REPO} {path}`")
  return os.path.abspath(path)


def find_python(python: Optional[str]) -> str:
  """The interpreter for the official code (checked to import torch)."""
  if not python:
    missing = [m for m in ("torch", "numpy", "pandas")
               if importlib.util.find_spec(m) is None]
    if missing:
      raise SetupError(f"no {' or '.join(missing)} in this interpreter "
                       f"({sys.executable}); {TORCH_HINT}")
    return sys.executable
  try:
    res = subprocess.run([python, "-c", "import torch, numpy, pandas"],
                         capture_output=True, text=True, timeout=300,
                         check=False)
  except OSError as e:
    raise SetupError(f"--python={python} cannot be run ({e}); {TORCH_HINT}"
                     ) from None
  if res.returncode:
    last = (res.stderr.strip().splitlines() or ["?"])[-1]
    raise SetupError(f"--python={python} cannot import torch, numpy and "
                     f"pandas ({last}); {TORCH_HINT}")
  return python


def official_args(proto: Dict[str, Any], seed: int) -> List[str]:
  """main_avvp.py's arguments: data paths relative to the export folder and
  the protocol."""
  from avjax.data.readers import llp  # pylint: disable=g-import-not-at-top
  from avjax.data.readers import llp_annotations  # pylint: disable=g-import-not-at-top
  folders = {s.spec.name: s.folder for s in llp.STREAMS.values()}
  files = llp_annotations.SPLIT_FILES
  return ["--audio_dir", f"data/{folders['audio']}/",
          "--video_dir", f"data/{folders['visual']}/",
          "--st_dir", f"data/{folders['motion']}/",
          "--label_train", f"data/{files['train']}",
          "--label_val", f"data/{files['val']}",
          "--label_test", f"data/{files['test']}",
          "--epochs", str(proto["epochs"]),
          "--batch-size", str(proto["batch_size"]),
          "--lr", repr(proto["lr"]), "--seed", str(seed)]


def official_command(python: str, official_dir: str, run_dir: str,
                     proto: Dict[str, Any], seed: int,
                     phases: Sequence[str] = ("train", "test_best",
                                              "test_final")) -> List[str]:
  return [python, RUNNER, f"--official_dir={official_dir}",
          f"--run_dir={run_dir}", f"--step_size={proto['step_size']}",
          f"--gamma={proto['gamma']!r}", f"--phases={','.join(phases)}",
          "--"] + official_args(proto, seed)


def _keys(entry) -> Tuple[str, ...]:
  return (entry,) if isinstance(entry, str) else tuple(entry)


def type_prefix(printed=PRINTED) -> str:
  """The printed line holding seg Type@AV (one per evaluation)."""
  return next(prefix for keys, prefix in printed
              if "seg_type" in _keys(keys))


def parse_official_log(text: str, printed=PRINTED
                       ) -> Dict[str, List[Dict[str, float]]]:
  """{phase: [the ten scores of each evaluation printed in it]}.

  `printed`: the evaluation printout, in order, as (key, line prefix) or
  ((keys...), line prefix) for a line with several values (the official MA
  code's `Audio \t seg \t event`). Phases are marked by the runner
  (`#### parity phase: NAME`); output before any mark counts as `train`.
  """
  out, phase, block, pos = {}, "train", {}, 0
  for line in text.splitlines():
    line = line.strip()
    if line.startswith(PHASE_MARK):
      phase, block, pos = line[len(PHASE_MARK):].strip(), {}, 0
      continue
    for i, (keys, prefix) in enumerate(printed):
      if line.startswith(prefix):
        if i != pos:
          raise ValueError(f"unexpected score line {line!r} after "
                           f"{list(block)} (phase {phase})")
        values = line[len(prefix):].split()
        keys = _keys(keys)
        if len(values) != len(keys):
          raise ValueError(f"score line {line!r}: expected {len(keys)} "
                           f"values ({', '.join(keys)})")
        block.update(zip(keys, map(float, values)))
        pos += 1
        if pos == len(printed):
          out.setdefault(phase, []).append(block)
          block, pos = {}, 0
        break
  return out


def _read_jsonl(path: str) -> List[Dict[str, Any]]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(x) for x in f if x.strip()]


def _merge_exact(printed: List[Dict[str, float]], exact: List[Dict[str, Any]],
                 what: str) -> List[Dict[str, float]]:
  """The unrounded scores where they agree with the printed ones."""
  if len(exact) != len(printed):
    log("%s: %d recorded evaluations, %d printed: using the printed (0.1) "
        "values", what, len(exact), len(printed))
    return printed
  for p, e in zip(printed, exact):
    for k in KEYS:
      if not (math.isnan(p[k]) and math.isnan(e[k])) and abs(
          round(e[k], 1) - p[k]) > 0.051:
        raise RuntimeError(f"{what}: printed {k}={p[k]} but recorded "
                           f"{e[k]}: the official output was not parsed right")
  return [{k: float(e[k]) for k in KEYS} for e in exact]


def best_epoch_official(returned: Sequence[float]) -> int:
  """main_avvp.py's rule: the last epoch whose F >= every earlier one."""
  best, best_f = 0, 0.0
  for i, f in enumerate(returned, 1):
    if f >= best_f:
      best, best_f = i, f
  return best


def collect_official(run_dir: str, proto: Dict[str, Any], seed: int,
                     wall_s: Optional[float] = None, printed_format=PRINTED,
                     train_tests: int = 0, what: str = "official"
                     ) -> Dict[str, Any]:
  """The result of a finished official run from its log and records.

  The train phase prints one validation evaluation per epoch, then
  `train_tests` test evaluations (the official MA step 3 tests its last
  model: `test_in_train`).
  """
  with open(os.path.join(run_dir, "official.log")) as f:
    printed = parse_official_log(f.read(), printed_format)
  exact = _read_jsonl(os.path.join(run_dir, "metrics_exact.jsonl"))
  res = {"side": "official", "seed": seed, "protocol": proto}
  for phase, key in (("train", "val"), ("test_best", "test_best"),
                     ("test_final", "test_final")):
    p = printed.get(phase, [])
    e = [x for x in exact if x.get("phase") == phase]
    res[key] = _merge_exact(p, e, f"{what} seed {seed} {phase}")
  if len(res["val"]) != proto["epochs"] + train_tests:
    raise RuntimeError(f"{what} seed {seed}: {len(res['val'])} train-phase "
                       f"evaluations in the log, expected {proto['epochs']}"
                       + (f" + {train_tests}" if train_tests else ""))
  if train_tests:
    res["test_in_train"] = res["val"][proto["epochs"]:]
    res["val"] = res["val"][:proto["epochs"]]
  for key in ("test_best", "test_final"):
    if len(res[key]) != 1:
      raise RuntimeError(f"official seed {seed}: {len(res[key])} {key} "
                         "evaluations in the log, expected 1")
    res[key] = res[key][0]
  returned = [x["returned"] for x in exact if x.get("phase") == "train"
              ][:proto["epochs"]]
  if len(returned) != len(res["val"]):
    returned = [v["seg_type"] for v in res["val"]]
  res["best_epoch"] = best_epoch_official(returned)
  res["best_val_seg_type"] = max(v["seg_type"] for v in res["val"])
  phases = {}
  path = os.path.join(run_dir, "phases.json")
  if os.path.exists(path):
    with open(path) as f:
      phases = json.load(f)
  sec = phases.get("seconds", {})
  res["lr_per_epoch"] = phases.get("lr", [])[:proto["epochs"]]
  res["wall_s"] = {"train": sec.get("train"),
                   "test_best": sec.get("test_best"),
                   "test_final": sec.get("test_final"), "total": wall_s}
  return res


def cached(path: str, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
  """The JSON at `path` if it exists, else fn()'s result written there."""
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  res = fn()
  write_json(path, res)
  return res


def launch(cmd: Sequence[str], cwd: str, run: str, what: str,
           epochs: int = 0, printed=PRINTED) -> float:
  """Runs an official command in `cwd`: stdout to run/official.log (with
  progress lines: seg Type@AV of every evaluation), stderr to
  run/official.err, the command to run/command.txt. Raises on failure;
  returns the wall time (s)."""
  with open(os.path.join(run, "command.txt"), "w") as f:
    f.write(f"cd {cwd} && " + " ".join(cmd) + "\n")
  log("%s: %s(log: %s)", what, f"{epochs} epochs " if epochs else "",
      os.path.join(run, "official.log"))
  prefix = type_prefix(printed)
  t0 = time.time()
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  with open(os.path.join(run, "official.log"), "w") as out, open(
      os.path.join(run, "official.err"), "w") as err:
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=err, text=True, env=env)
    phase, epoch = "train", 0
    for line in proc.stdout:
      out.write(line)
      out.flush()
      if line.startswith(PHASE_MARK):
        phase = line[len(PHASE_MARK):].strip()
      elif line.strip().startswith(prefix):  # seg Type@AV: one per eval
        value = line.strip()[len(prefix):].strip()
        if phase == "train" and epoch < epochs:
          epoch += 1
          dt = time.time() - t0
          log("%s: epoch %d/%d val seg_type=%s (%.0f s, ETA %.0f s)", what,
              epoch, epochs, value, dt, dt / epoch * (epochs - epoch))
        else:
          log("%s: %s seg_type=%s", what, phase if phase != "train" else
              "test (in train)", value)
    rc = proc.wait()
  wall = time.time() - t0
  if rc:
    with open(os.path.join(run, "official.err")) as f:
      tail = "".join(f.readlines()[-20:])
    raise RuntimeError(f"{what} failed (exit {rc}); command in "
                       f"{run}/command.txt; stderr ends:\n{tail}")
  return wall


def fresh_dir(path: str) -> str:
  shutil.rmtree(path, ignore_errors=True)
  os.makedirs(path)
  return path


def run_official(seed: int, ctx: Dict[str, Any]) -> Dict[str, Any]:
  run = os.path.join(ctx["workdir"], "official", f"seed_{seed}")
  proto = ctx["protocol"]

  def go():
    fresh_dir(run)
    cmd = official_command(ctx["python"], ctx["official_dir"], run, proto,
                           seed)
    wall = launch(cmd, ctx["export_dir"], run, f"official seed {seed}",
                  proto["epochs"])
    return collect_official(run, proto, seed, wall)
  return cached(os.path.join(run, RESULT), go)


# ---------------------------------------------------------------- avjax


def avjax_config(config, seed: int, data_dir: str):
  """The config with its data block pointing at the converted export."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from configs import common  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict(config.to_dict())
  data = common.llp_data(data_dir)
  if "shuffle_buffer" in config.data:
    data.shuffle_buffer = config.data.shuffle_buffer
  c.data = data
  c.seed = seed
  c.lock()
  return c


def collect_avjax(run_dir: str, config, seed: int,
                  timing: Dict[str, Any]) -> Dict[str, Any]:
  from avjax.utils import writers  # pylint: disable=g-import-not-at-top
  by_step = {}
  for r in writers.read_jsonl(run_dir):
    if "val/seg_type" in r:
      by_step[r["step"]] = {k: r[f"val/{k}"] for k in KEYS}
  steps = sorted(by_step)
  val = [by_step[s] for s in steps]
  lr_at = {r["step"]: r["train/lr"] for r in writers.read_jsonl(run_dir)
           if "train/lr" in r}
  lrs = [float(config.optim.lr)] + [lr_at.get(s) for s in steps[:-1]]
  test = config.data.test_split
  best = writers.read_json(os.path.join(run_dir, "eval_best.json"))
  final = writers.read_json(os.path.join(run_dir, "eval_latest.json"))
  return {"side": "avjax", "seed": seed,
          "val": val, "val_steps": steps,
          "test_best": {k: best["results"][test][k] for k in KEYS},
          "test_final": {k: final["results"][test][k] for k in KEYS},
          "best_step": best["step"], "final_step": final["step"],
          "best_epoch": steps.index(best["step"]) + 1 if best[
              "step"] in steps else None,
          "best_val_seg_type": max(v["seg_type"] for v in val),
          "lr_per_epoch": lrs, "wall_s": dict(timing)}


def run_avjax(seed: int, ctx: Dict[str, Any]) -> Dict[str, Any]:
  from avjax.utils import writers  # pylint: disable=g-import-not-at-top
  run = os.path.join(ctx["workdir"], "avjax", f"seed_{seed}")
  done = os.path.join(run, RESULT)
  if os.path.exists(done):
    return writers.read_json(done)
  os.makedirs(run, exist_ok=True)
  c = avjax_config(ctx["config"], seed, ctx["avjax_data"])
  trainer = importlib.import_module(f"avjax.trainers.{c.trainer}")
  timing_path = os.path.join(run, "parity_timing.json")
  timing = (writers.read_json(timing_path) if os.path.exists(timing_path)
            else {})
  if not os.path.exists(os.path.join(run, "results.json")):
    log("avjax seed %d: training %d epochs in %s", seed, c.num_epochs, run)
    t0 = time.time()
    resumed = os.path.isdir(os.path.join(run, "checkpoints"))
    trainer.train_and_evaluate(c, run)
    timing.update(train=time.time() - t0, resumed=resumed)
    writers.write_json(timing_path, timing)
  if not os.path.exists(os.path.join(run, "eval_latest.json")):
    log("avjax seed %d: scoring the final-epoch model", seed)
    t0 = time.time()
    trainer.evaluate_checkpoint(c, run, "latest", splits=[c.data.test_split])
    timing.update(test_final=time.time() - t0)
    writers.write_json(timing_path, timing)
  timing["total"] = (None if timing.get("train") is None else
                     timing["train"] + timing.get("test_final", 0.0))
  res = collect_avjax(run, c, seed, timing)
  writers.write_json(done, res)
  return res


# ---------------------------------------------------------------- report


def mean_sd(values: Sequence[Optional[float]]) -> Dict[str, Any]:
  vals = [float(v) for v in values if v is not None]
  if not vals:
    return {"n": 0, "mean": None, "sd": None, "values": []}
  return {"n": len(vals), "mean": statistics.fmean(vals),
          "sd": statistics.stdev(vals) if len(vals) > 1 else None,
          "values": vals}


def compare_row(official: Sequence[Optional[float]],
                avjax: Sequence[Optional[float]]) -> Dict[str, Any]:
  """One metric over seeds: both sides' `mean_sd`, avjax − official
  (`diff`) and its standard error (`se`, Welch's; None without two values a
  side)."""
  row = {"official": mean_sd(official), "avjax": mean_sd(avjax)}
  o, a = row["official"], row["avjax"]
  row["diff"] = (None if o["mean"] is None or a["mean"] is None else
                 a["mean"] - o["mean"])
  row["se"] = (None if None in (o["sd"], a["sd"]) else math.sqrt(
      o["sd"] ** 2 / o["n"] + a["sd"] ** 2 / a["n"]))
  return row


def summarize(results: Dict[str, Dict[int, Dict[str, Any]]]
              ) -> Dict[str, Any]:
  """Tables of the runs: {side: {seed: run result}} -> parity summary."""
  out = {"seeds": {s: sorted(results.get(s, {})) for s in SIDES}}
  for which in WHICH:
    table = {}
    for k in KEYS:
      table[k] = compare_row(*[[r[f"test_{which}"][k] for r in results.get(
          s, {}).values()] for s in SIDES])
    out[which] = table
  out["val"] = {s: {
      "best_val_seg_type": mean_sd([r["best_val_seg_type"] for r in results.get(
          s, {}).values()]),
      "best_epoch": {str(seed): r.get("best_epoch") for seed, r in sorted(
          results.get(s, {}).items())}} for s in SIDES}
  stages = sorted({k for s in SIDES for r in results.get(s, {}).values()
                   for k, v in r.get("wall_s", {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})
  out["wall_s"] = {s: {k: mean_sd([r.get("wall_s", {}).get(k) for r in
                                   results.get(s, {}).values()])
                       for k in stages} for s in SIDES}
  out["curves"] = {s: {str(seed): [{"epoch": i + 1, "seg_type": v["seg_type"],
                                    "seg_v": v["seg_v"]}
                                   for i, v in enumerate(r["val"])]
                       for seed, r in sorted(results.get(s, {}).items())}
                   for s in SIDES}
  return out


def cell(m: Dict[str, Any], digits: int = 1) -> str:
  if m["mean"] is None:
    return "-"
  sd = f" ± {m['sd']:.{digits}f}" if m["sd"] is not None else ""
  return f"{m['mean']:.{digits}f}{sd}"


def _diff(row) -> str:
  if row["diff"] is None:
    return "-"
  se = (f" ({row['diff'] / row['se']:+.1f} se)" if row["se"] else "")
  return f"{row['diff']:+.1f}{se}"


def protocol_text(p: Dict[str, Any]) -> str:
  return (f"{p.get('epochs')} epochs, batch {p.get('batch_size')}, Adam lr "
          f"{p.get('lr')}, x{p.get('gamma')} every {p.get('step_size')} "
          "epochs")


def test_table_lines(summary: Dict[str, Any], base=None,
                     title: str = "") -> List[str]:
  """The best-on-val and final-epoch test tables (`title` goes before the
  heading's text, e.g. "Stage 1, "); `base`: the no-event scores column."""
  lines = []
  for which, text in WHICH.items():
    text = title + text if title else text[0].upper() + text[1:]
    lines += [f"## {text} (mean ± sd over seeds)", "",
              "| metric | official | avjax | avjax - official |" + (
                  " no event predicted |" if base else ""),
              "|---|---|---|---|" + ("---|" if base else "")]
    for k, row in summary[which].items():
      lines.append(f"| {k} | {cell(row['official'])} | "
                   f"{cell(row['avjax'])} | {_diff(row)} |" + (
                       f" {base[k]:.1f} |" if base else ""))
    lines.append("")
  return lines


def validation_lines(summary: Dict[str, Any], title: str = "Validation"
                     ) -> List[str]:
  v = summary["val"]
  best = [cell(v[s]["best_val_seg_type"]) for s in SIDES]
  return [f"## {title}", "", "| | official | avjax |", "|---|---|---|",
          f"| best val seg Type@AV | {best[0]} | {best[1]} |",
          "| best epoch by seed | " + " | ".join(
              ", ".join(f"s{k}: {e}" for k, e in v[s]["best_epoch"].items())
              or "-" for s in SIDES) + " |", ""]


WALL_ORDER = ("train", "test_best", "test_final", "total")


def wall_rows(wall: Dict[str, Dict[str, Any]], prefix: str = "",
              order: Sequence[str] = WALL_ORDER) -> List[str]:
  """Table rows `| prefix+stage | official | avjax |` of summarize()'s
  wall_s."""
  return [f"| {prefix}{stage} | " + " | ".join(
      cell(wall[s].get(stage, mean_sd([])), 0) for s in SIDES) + " |"
          for stage in sorted({k for s in SIDES for k in wall[s]},
                              key=lambda k: (order.index(k) if k in order
                                             else len(order), k))]


def curve_lines(summary: Dict[str, Any], plot: Optional[str] = None,
                title: str = "Validation curves (mean over seeds)"
                ) -> List[str]:
  lines = [f"## {title}", ""]
  if plot:
    lines += [f"![curves]({plot})", ""]
  lines += ["| epoch | official seg_type | avjax seg_type | official seg_v "
            "| avjax seg_v |", "|---|---|---|---|---|"]
  c = summary["curves"]
  n = max([len(x) for s in SIDES for x in c[s].values()] + [0])
  for e in range(n):
    cells = []
    for key in ("seg_type", "seg_v"):
      for s in SIDES:
        vals = [x[e][key] for x in c[s].values() if len(x) > e]
        cells.append(cell(mean_sd(vals)))
    lines.append(f"| {e + 1} | {cells[0]} | {cells[1]} | {cells[2]} | "
                 f"{cells[3]} |")
  return lines


def difference_lines(info: Dict[str, Any], name: str = "official HAN"
                     ) -> List[str]:
  diffs = info.get("config_differences", [])
  lines = ["## Differences", "",
           f"avjax config vs the {name}: " + ("none" if not diffs else "")]
  lines += [f"- {d}" for d in diffs]
  loops = info.get("loop_differences", [])
  if isinstance(loops, dict):  # {heading: notes}
    for heading, notes in loops.items():
      lines += ["", f"{heading}:"] + [f"- {d}" for d in notes]
  else:
    lines += ["", "Training loops:"] + [f"- {d}" for d in loops]
  return lines


def prep_line(info: Dict[str, Any]) -> List[str]:
  if not info.get("prep_s"):
    return []
  return ["Once per workdir: " + ", ".join(
      f"{k} {v:.0f} s" for k, v in info["prep_s"].items()) + "."]


NO_EVENT_NOTE = ("(no event predicted: the test scores of an all-negative "
                 "prediction, what a model that has not learned to fire "
                 "scores.)")


def markdown(summary: Dict[str, Any], info: Dict[str, Any]) -> str:
  """parity.md from `summarize`'s output and the run description `info`."""
  lines = ["# HAN parity: avjax vs the official code "
           "(YapengTian/AVVP-ECCV20)", ""]
  lines += [f"- data: {info.get('data', '?')}",
            f"- protocol: {protocol_text(info.get('protocol', {}))}",
            f"- seeds: official {summary['seeds']['official']}, avjax "
            f"{summary['seeds']['avjax']}",
            f"- official: {info.get('official') or '-'}",
            f"- avjax config: {info.get('config') or '-'}", ""]
  base = info.get("no_event_test")
  lines += test_table_lines(summary, base)
  if base:
    lines += [NO_EVENT_NOTE, ""]
  lines += validation_lines(summary)
  lines += ["## Wall time per seed (s, mean ± sd)", "",
            "| stage | official | avjax |", "|---|---|---|"]
  lines += wall_rows(summary["wall_s"])
  lines += ["", "official: train = main_avvp.py --mode train (with its "
            "per-epoch validation); test_best / test_final = its --mode test "
            "runs. avjax: train = train_and_evaluate (compilation, per-epoch "
            "validation, val+test scoring of best); test_final = scoring "
            "`latest` on test."]
  lines += prep_line(info)
  lines += [""] + curve_lines(summary, info.get("plot"))
  lines += [""] + difference_lines(info)
  return "\n".join(lines) + "\n"


def plot_curves(summary: Dict[str, Any], path: str) -> bool:
  """parity_curves.png: per-epoch val seg Type@AV and seg V, a line per
  side and seed; False if matplotlib is missing."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
    import matplotlib.ticker  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  styles = {"official": ("C0", "-"), "avjax": ("C1", "--")}
  for ax, key, title in zip(axes, ("seg_type", "seg_v"),
                            ("val segment Type@AV", "val segment V")):
    for side in SIDES:
      color, ls = styles[side]
      for i, (seed, curve) in enumerate(summary["curves"][side].items()):
        ax.plot([x["epoch"] for x in curve], [x[key] for x in curve],
                color=color, ls=ls, marker="o", ms=3, alpha=0.8,
                label=side if i == 0 else None)
    ax.set(title=title, xlabel="epoch", ylabel="F1 (%)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return True


def write_report(workdir: str, results, info: Dict[str, Any]
                 ) -> Dict[str, Any]:
  summary = summarize(results)
  if plot_curves(summary, os.path.join(workdir, "parity_curves.png")):
    info = dict(info, plot="parity_curves.png")
  with open(os.path.join(workdir, "parity.md"), "w") as f:
    f.write(markdown(summary, info))
  write_json(os.path.join(workdir, "parity.json"),
              {"info": info, "summary": summary,
               "runs": {s: {str(k): v for k, v in r.items()}
                        for s, r in results.items()}})
  return summary


# ---------------------------------------------------------------- driver


def write_json(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)


def check_setup(workdir: str, setup: Dict[str, Any]) -> None:
  """Pins data, protocol and config of a workdir; a rerun must match."""
  path = os.path.join(workdir, "setup.json")
  setup = json.loads(json.dumps(setup))
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    bad = [k for k in setup if old.get(k) != setup[k]]
    if bad:
      raise SetupError(f"{workdir} holds runs with another {' and '.join(bad)}"
                       f" (see {path}); use another --workdir")
    return
  os.makedirs(workdir, exist_ok=True)
  write_json(path, setup)


def _config_dict(config) -> Dict[str, Any]:
  d = json.loads(json.dumps(config.to_dict(), default=str))
  d.pop("seed", None)
  return d


def prepare_data(config, workdir: str, need_avjax: bool) -> Dict[str, Any]:
  """Exports the data (and converts it for avjax); returns paths/times."""
  from avjax import prepare  # pylint: disable=g-import-not-at-top
  from avjax.data import datasets  # pylint: disable=g-import-not-at-top
  from avjax.data import llp_export  # pylint: disable=g-import-not-at-top
  export_dir = os.path.join(workdir, "export")
  root = os.path.join(export_dir, "data")
  times = {}
  t0 = time.time()
  if not os.path.exists(os.path.join(root, llp_export.SUMMARY_FILE)):
    log("resolving the data block %r (a synthetic set is generated on first "
        "use)", config.data.name)
    source = datasets.resolve(config.data)
    log("exporting %s (%s) to %s", config.data.name, source, root)
    splits = {"train": config.data.train_split,
              "val": config.data.val_split, "test": config.data.test_split}
    llp_export.export(source, root, splits, log=log)
    times["export"] = time.time() - t0
  with open(os.path.join(root, llp_export.SUMMARY_FILE)) as f:
    summary = json.load(f)
  avjax_data = os.path.join(workdir, "avjax_data")
  if need_avjax:
    t0 = time.time()
    from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
    if not os.path.exists(os.path.join(avjax_data, tfrecord.INFO_FILE)):
      log("converting the export for avjax: python -m avjax.prepare llp "
          "--root=%s --out=%s --strict", root, avjax_data)
      rc = prepare.main(["llp", f"--root={root}", f"--out={avjax_data}",
                         "--strict", "--quiet"])
      if rc:
        raise RuntimeError(f"avjax.prepare llp failed on {root} (exit {rc})")
      times["prepare"] = time.time() - t0
    info = tfrecord.read_info(avjax_data)
    got = {s: v["num_clips"] for s, v in info["splits"].items()}
    if got != summary["num_clips"]:
      raise RuntimeError(f"{avjax_data} holds {got} clips; the export "
                         f"{summary['num_clips']}")
  return {"export_dir": export_dir, "avjax_data": avjax_data,
          "export": summary, "times": times,
          "no_event_test": no_event_scores(root, "test")}


def no_event_scores(root: str, split: str) -> Dict[str, float]:
  """The scores of predicting no event at all on an exported split (what an
  untrained or collapsed model scores: clips without events of a modality
  count 1)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from avjax.data.readers import llp_annotations  # pylint: disable=g-import-not-at-top
  from avjax.metrics import avvp  # pylint: disable=g-import-not-at-top
  _, gt_a, gt_v, _ = llp_annotations.read_dense(root, split)
  none = np.zeros_like(gt_a)
  res = avvp.avvp_scores(none, none, gt_a, gt_v)
  return {k: res[k] for k in KEYS}


def start(config, workdir: str, sides: Sequence[str],
          official_dir: Optional[str], python: Optional[str],
          export_only: bool,
          check_official: Callable[[Optional[str]], str] = check_official_dir
          ) -> Dict[str, Any]:
  """Checks the setup (before any work), pins it, exports the data (and
  converts it for avjax); returns the run context: workdir, config,
  protocol, official_dir/python (official side), export_dir, avjax_data,
  data (`prepare_data`'s) and prep (the once-per-workdir times)."""
  unknown = [s for s in sides if s not in SIDES]
  if unknown:
    raise SetupError(f"--sides: unknown {unknown}; valid: {list(SIDES)}")
  proto = protocol(config)
  ctx = {"workdir": os.path.abspath(workdir), "config": config,
         "protocol": proto}
  if "official" in sides and not export_only:  # fail before any work
    ctx["official_dir"] = check_official(official_dir)
    ctx["python"] = find_python(python)
  check_setup(ctx["workdir"], {"data": json.loads(json.dumps(
      config.data.to_dict(), default=str)), "protocol": proto,
                               "config": _config_dict(config)})
  data = prepare_data(config, ctx["workdir"], "avjax" in sides and
                      not export_only)
  ctx.update(export_dir=data["export_dir"], avjax_data=data["avjax_data"],
             data=data)
  prep_path = os.path.join(ctx["workdir"], "prep_times.json")
  prep = {}
  if os.path.exists(prep_path):
    with open(prep_path) as f:
      prep = json.load(f)
  prep.update(data["times"])
  write_json(prep_path, prep)
  ctx["prep"] = prep
  return ctx


def data_text(ctx: Dict[str, Any]) -> str:
  d, n = ctx["data"], ctx["data"]["export"]["num_clips"]
  return (f"{ctx['config'].data.name} ({d['export']['source']}): train "
          f"{n.get('train')}, val {n.get('val')}, test {n.get('test')} "
          f"clips; exported to {d['export_dir']}")


def finished(ctx: Dict[str, Any], seeds: Sequence[int], sides: Sequence[str],
             path: Callable[[str, int], str]) -> Dict[str, Dict[int, Any]]:
  """{side: {seed: result}} of the finished runs of the sides not run now
  (an earlier invocation); `path(side, seed)`: a run's result file."""
  results = {s: {} for s in SIDES}
  for side in SIDES:
    for seed in seeds:
      p = path(side, seed)
      if side not in sides and os.path.exists(p):
        with open(p) as f:
          results[side][seed] = json.load(f)
  return results


def run_seeds(seeds: Sequence[int], sides: Sequence[str],
              runners: Dict[str, Callable[[int], Dict[str, Any]]],
              results: Dict[str, Dict[int, Any]],
              report: Callable[[], Any],
              done: Callable[[str, int, Dict[str, Any], float], None]
              ) -> None:
  """Every seed of every side in turn (`runners[side](seed)`), the report
  rewritten after each run."""
  for seed in seeds:
    for side in sides:
      t0 = time.time()
      results[side][seed] = runners[side](seed)
      done(side, seed, results[side][seed], time.time() - t0)
      report()  # the report so far, after every run


def run(config, workdir: str, seeds: Sequence[int], sides: Sequence[str],
        official_dir: Optional[str] = None, python: Optional[str] = None,
        export_only: bool = False) -> Optional[Dict[str, Any]]:
  """The whole harness (see the module doc); returns the summary."""
  ctx = start(config, workdir, sides, official_dir, python, export_only)
  proto = ctx["protocol"]
  if export_only:
    cmd = official_command(python or sys.executable, official_dir or
                           "OFFICIAL_DIR", os.path.join(
                               ctx["workdir"], "official", "seed_S"),
                           proto, seeds[0] if seeds else 0)
    log("exported to %s; the official run of seed %s would be:\n  cd %s && "
        "%s", ctx["export_dir"], seeds[0] if seeds else 0,
        ctx["export_dir"], " ".join(cmd))
    return None
  diffs = config_differences(config)
  for d in diffs:
    log("warning: %s", d)
  results = finished(ctx, seeds, sides, lambda side, seed: os.path.join(
      ctx["workdir"], side, f"seed_{seed}", RESULT))
  n = ctx["data"]["export"]["num_clips"]

  def report():
    info = {"data": data_text(ctx),
            "protocol": proto, "seeds": list(seeds),
            "official": ctx.get("official_dir", official_dir),
            "config": config_source(),
            "config_differences": diffs,
            "loop_differences": loop_differences(config, n.get("train"),
                                                 results),
            "no_event_test": ctx["data"]["no_event_test"],
            "prep_s": ctx["prep"]}
    return write_report(ctx["workdir"], results, info)

  def done(side, seed, res, dt):
    log("%s seed %d done (%.0f s): test seg_type best %.2f, final %.2f",
        side, seed, dt, res["test_best"]["seg_type"],
        res["test_final"]["seg_type"])

  run_seeds(seeds, sides, {"official": lambda seed: run_official(seed, ctx),
                           "avjax": lambda seed: run_avjax(seed, ctx)},
            results, report, done)
  summary = report()
  log("wrote %s", os.path.join(ctx["workdir"], "parity.md"))
  return summary


def config_source() -> Optional[str]:
  """The --config argument and overrides of this command line."""
  args = [a for a in sys.argv[1:] if a.startswith("--config")]
  return " ".join(args) or None


# ---------------------------------------------------------------- CLI


def define_flags(default_config: str = DEFAULT_CONFIG, repo: str = REPO):
  """The command's flags (defined when run, not on import)."""
  config_flags.DEFINE_config_file(
      "config", default_config, "avjax config (data block, model, "
      "protocol); --config.<field>=<value> overrides apply to the avjax side "
      "and to the protocol both sides follow (num_epochs, batch_size, "
      "optim.lr, optim.decay_every_epochs, optim.decay_factor).",
      lock_config=True)
  flags.DEFINE_string("workdir", None, "Output and run folder (resumable).")
  flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (torch.manual_seed of "
                    "the official code, config.seed of avjax).")
  flags.DEFINE_string("official_dir", None, "Checkout of the official code "
                      f"(`git clone {repo}`).")
  flags.DEFINE_string("python", None, "Python with torch for the official "
                      "code (default: this one, if it has torch).")
  flags.DEFINE_list("sides", list(SIDES), "Which sides to run.")
  flags.DEFINE_bool("export_only", False, "Only export (and print the "
                    "official command).")
  flags.mark_flags_as_required(["workdir"])


def cli(argv, run_fn: Callable[..., Any]) -> int:
  """Runs `run_fn(config, workdir, seeds, sides, official_dir, python,
  export_only)` from the flags (a SetupError reaches the user as one line
  through the `avjax.utils.cli` boundary, exit 2)."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from avjax.utils import runtime  # pylint: disable=g-import-not-at-top
  runtime.initialize()
  f = flags.FLAGS
  try:
    seeds = [int(s) for s in f.seeds]
  except ValueError:
    raise app.UsageError(f"--seeds={','.join(f.seeds)}: integers") from None
  run_fn(f.config, f.workdir, seeds, f.sides, f.official_dir, f.python,
         f.export_only)
  return 0


def main(argv):
  return cli(argv, run)


if __name__ == "__main__":
  define_flags()
  cli_lib.run(main)

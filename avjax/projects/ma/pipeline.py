"""MA (Wu & Yang 2021): base training -> label refinement -> retraining.

  python -m avjax.main --config=configs/avvp_ma.py --workdir=DIR

Stages, each in its own subfolder of the workdir and skipped when that
folder already holds its final output (so a killed pipeline resumes at the
stage it was in; inside a training stage `avvp_weak` resumes from its latest
checkpoint):

  stage1/  `avvp_weak` on the weak labels (`config.loss.type`: "han" or
           "han_nce" for +C)                              -> results.json
  refine/  `refine.refine` on stage 1 (only if `config.ma.refine`)
                                                          -> summary.json
  stage3/  `avvp_weak` from scratch on refine/dataset with
           `loss.use_modality_labels=True`                -> results.json

Every training stage is scored at its final-epoch checkpoint and at its
best-on-validation one; `config.ma.checkpoint` ("final", the reference's:
its steps save/refine/test the last epoch's model; or "best") picks the one
the refinement starts from and the one each stage reports as `results`
(both: `results_final`, `results_best`). Stage 3's targets follow the
reference: a dropped label's target is exactly 0 (`ma.dropped_target`:
"zero"; "negative" smooths it like an absent class) and, with
`ma.global_drops_with_audio` (default True), the global head's target of a
label dropped from the audio track is 0 as well (see `losses.avvp`).

With `config.ma.stage1_workdir` (absolute, or relative to the workdir) the
pipeline refines the finished stage 1 of another run instead of training
its own (e.g. Table 3's refine-audio/visual-only rows reuse MA's stage 1;
the restore checks that its model matches this config) and reads that
run's pinned dataset.

`data.json` pins the dataset directory (resolved once, reused by every
stage and resume). The workdir's `results.json` holds every stage's summary
and the final model's results (stage 3, or stage 1 without refinement);
`results.md` compares the stages.
"""

import os
from typing import Any, Dict, Tuple

import jax
import ml_collections

from avjax.data import datasets
from avjax.evaluators import avvp_f1
from avjax.losses import avvp as avvp_losses
from avjax.projects.ma import refine
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.utils import writers

STAGE1, REFINE, STAGE3 = "stage1", "refine", "stage3"
DATA_FILE = "data.json"


def pin_data(config, workdir: str) -> str:
  """The dataset directory of the whole pipeline, resolved once.

  Stored in `workdir/data.json` on first use, so every stage (also after a
  resume) reads the same data even if the synthetic generator changes.
  """
  path = os.path.join(workdir, DATA_FILE)
  if os.path.exists(path):
    return writers.read_json(path)["data_dir"]
  shared = stage1_dir(config, workdir)
  other = os.path.join(os.path.dirname(shared), DATA_FILE)
  if shared != os.path.join(workdir, STAGE1) and os.path.exists(other):
    data_dir = writers.read_json(other)["data_dir"]
  else:
    data_dir = datasets.resolve(config.data)
  writers.write_json(path, {"data_dir": data_dir, "name": config.data.name})
  return data_dir


def stage1_dir(config, workdir: str) -> str:
  """This run's stage-1 folder, or the shared one of `ma.stage1_workdir`."""
  other = config.ma.stage1_workdir
  return os.path.normpath(os.path.join(workdir, other)) if other else (
      os.path.join(workdir, STAGE1))


def stage_configs(config, data_dir: str
                  ) -> Tuple[ml_collections.ConfigDict,
                             ml_collections.ConfigDict]:
  """The `avvp_weak` configs of stage 1 and stage 3 (stage 3's data is set
  by `refined_data`)."""
  def copy(suffix, modality_labels):
    c = ml_collections.ConfigDict(config.to_dict())
    c.trainer = "avvp_weak"
    c.experiment_name = f"{config.experiment_name}_{suffix}"
    c.data.name, c.data.data_dir = f"{config.data.name}_pinned", data_dir
    c.loss.use_modality_labels = modality_labels
    if modality_labels:
      c.loss.dropped_target = config.ma.dropped_target
      c.loss.global_drops_with_audio = config.ma.global_drops_with_audio
    return c
  return copy(STAGE1, False), copy(STAGE3, True)


def refined_data(stage3_config, refine_dir: str) -> None:
  """Points a stage-3 config at the refined dataset."""
  stage3_config.data.name = "ma_refined"
  stage3_config.data.data_dir = os.path.join(refine_dir, "dataset")


def validate(config) -> None:
  if config.ma.modalities not in refine.MODALITIES:
    raise ValueError(f"config.ma.modalities={config.ma.modalities!r}; "
                     f"valid: {refine.MODALITIES}")
  refine.checkpoint_name(config)
  if config.ma.partners not in refine.PARTNER_MODES:
    raise ValueError(f"config.ma.partners={config.ma.partners!r}; "
                     f"valid: {refine.PARTNER_MODES}")
  dropped = config.ma.dropped_target
  if dropped not in avvp_losses.DROPPED_TARGETS:
    raise ValueError(f"config.ma.dropped_target={dropped!r}; valid: "
                     f"{tuple(avvp_losses.DROPPED_TARGETS)}")


def report(config, workdir: str, summary: Dict[str, Any],
           write: bool = True) -> Dict[str, Any]:
  """A trained stage's summary with both checkpoints scored.

  `summary` is `avvp_weak.train_and_evaluate`'s (it scored the best
  checkpoint). Adds `results_final`/`step_final` (the last epoch's
  checkpoint) and `results_best`/`step_best`, and sets `results`, `step` and
  `checkpoint` to those of `config.ma.checkpoint`. The reported checkpoint
  is scored last, so the stage's `pred_<split>.npz` are its. With `write`,
  rewrites `workdir/results.json` (the stage's final output either way).
  """
  which = config.ma.checkpoint
  key = "best" if refine.checkpoint_name(config) == "best" else "final"
  out = dict(summary)
  if "results_final" not in out:
    scored = {"best": summary}
    scored["final"] = avvp_weak.evaluate_checkpoint(config, workdir, "latest")
    if key == "best":  # leave the best checkpoint's predictions last
      scored["best"] = avvp_weak.evaluate_checkpoint(config, workdir, "best")
    for k, ev in scored.items():
      out[f"results_{k}"], out[f"step_{k}"] = ev["results"], ev["step"]
  elif out.get("checkpoint") == which:
    return out
  out.update(results=out[f"results_{key}"], step=out[f"step_{key}"],
             checkpoint=which)
  if write:
    writers.write_json(os.path.join(workdir, "results.json"), out)
  return out


def train_stage(config, workdir: str, write: bool = True) -> Dict[str, Any]:
  """Trains (or reads) one `avvp_weak` stage; see `report`."""
  return report(config, workdir, loop.maybe_run(
      workdir, "results.json",
      lambda: avvp_weak.train_and_evaluate(config, workdir)), write)


def run_stages(config, workdir: str) -> Dict[str, Any]:
  """Runs (or skips) every stage; returns their summaries by stage name."""
  validate(config)
  c1, c3 = stage_configs(config, pin_data(config, workdir))
  dirs = {k: os.path.join(workdir, k) for k in (STAGE1, REFINE, STAGE3)}
  dirs[STAGE1] = stage1_dir(config, workdir)
  if dirs[STAGE1] != os.path.join(workdir, STAGE1) and not os.path.exists(
      os.path.join(dirs[STAGE1], "results.json")):
    raise FileNotFoundError(
        f"config.ma.stage1_workdir={config.ma.stage1_workdir!r}: "
        f"{dirs[STAGE1]} holds no finished stage 1 (results.json); train "
        "that run first")
  # Another run's stage 1 is scored here but its results.json is its own.
  out = {STAGE1: train_stage(c1, dirs[STAGE1], write=(
      dirs[STAGE1] == os.path.join(workdir, STAGE1)))}
  if not config.ma.refine:
    return out
  out[REFINE] = loop.maybe_run(dirs[REFINE], refine.SUMMARY_FILE,
                               lambda: refine.refine(c1, dirs[STAGE1],
                                                        dirs[REFINE]))
  refined_data(c3, dirs[REFINE])
  out[STAGE3] = train_stage(c3, dirs[STAGE3])
  return out


def comparison_table(config, stages: Dict[str, Any]) -> str:
  """Markdown: the trained stages on every scored split."""
  rows = {}
  for name in (STAGE1, STAGE3):
    for key in ("final", "best"):
      for split, r in stages.get(name, {}).get(f"results_{key}", {}).items():
        rows[f"{config.experiment_name} {name} {split} ({key})"] = r
  return avvp_f1.to_markdown(rows)


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Runs the pipeline; returns (and writes) `workdir/results.json`."""
  os.makedirs(workdir, exist_ok=True)
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  stages = run_stages(config, workdir)
  final = STAGE3 if STAGE3 in stages else STAGE1
  summary = {"final_stage": final, "results": stages[final]["results"],
             "step": stages[final].get("step"), "stages": stages}
  if REFINE in stages:
    summary["refinement"] = {
        k: v for k, v in stages[REFINE].items()
        if k.startswith(("quality_", "dropped_", "no_partner", "num_"))}
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  table = comparison_table(config, stages)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "results.md"), "w") as f:
      f.write(table + "\n")
  writers.log("\n" + table)
  return summary


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None) -> Dict[str, Any]:
  """Scores the final stage's checkpoint (`avjax.evaluate` entry point)."""
  c1, c3 = stage_configs(config, pin_data(config, workdir))
  if config.ma.refine:
    refined_data(c3, os.path.join(workdir, REFINE))
    return avvp_weak.evaluate_checkpoint(c3, os.path.join(workdir, STAGE3),
                                         which, splits)
  return avvp_weak.evaluate_checkpoint(c1, os.path.join(workdir, STAGE1),
                                       which, splits)

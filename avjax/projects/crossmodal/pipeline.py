"""AVG pretraining -> AVVP fine-tuning in one command (Lamba et al. 2021).

  python -m avjax.main --config=configs/avvp_crossmodal.py:variant=pretrain_e2e \
      --workdir=DIR

Stages, each in its own subfolder and skipped when it holds its
results.json (inside a stage the trainer resumes from its latest
checkpoint), with the dataset pinned once in `DIR/data.json`:

  pretrain/  `pretrain` (`avg_pretrain`) on `config.avg` (unlabeled)
             -> results.json
             (`config.avg.pretrain_dir`, relative to DIR: runs that name
             the same folder share one pretraining)
  finetune/  `avvp_weak` with `model.init_from=DIR/pretrain` (the AVG
             encoder frozen when `model.freeze_pretrained`) -> results.json

`DIR/results.json` holds the fine-tuned model's results plus the
pretraining metrics under `pretrain`.
"""

import os
from typing import Any, Dict, Tuple

import ml_collections

from avjax.data import datasets
from avjax.projects.crossmodal import pretrain
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.utils import writers

PRETRAIN, FINETUNE = "pretrain", "finetune"


def pinned_data(config, workdir: str) -> str:
  """`config.data` resolved once into `workdir/data.json`, so both stages
  (and any resume) read the same dataset even if the generator changes."""
  path = os.path.join(workdir, "data.json")
  if not os.path.exists(path):
    writers.write_json(path, {"data_dir": datasets.resolve(config.data),
                              "name": config.data.name})
  return writers.read_json(path)["data_dir"]


def pretrain_dir(config, workdir: str) -> str:
  return os.path.abspath(os.path.join(workdir, config.avg.pretrain_dir))


def stage_configs(config, workdir: str
                  ) -> Tuple[ml_collections.ConfigDict,
                             ml_collections.ConfigDict]:
  """The `avg_pretrain` and `avvp_weak` configs of the two stages."""
  data_dir = pinned_data(config, workdir)
  stages = []
  for trainer, name in (("avg_pretrain", PRETRAIN), ("avvp_weak", FINETUNE)):
    c = ml_collections.ConfigDict(config.to_dict())
    c.trainer = trainer
    c.experiment_name = f"{config.experiment_name}_{name}"
    c.data.name, c.data.data_dir = f"{config.data.name}_pinned", data_dir
    stages.append(c)
  pre, fine = stages
  pre.model.init_from, pre.model.freeze_pretrained = "", False
  fine.model.init_from = pretrain_dir(config, workdir)
  return pre, fine


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Runs (or skips) both stages; writes `workdir/results.json`."""
  os.makedirs(workdir, exist_ok=True)
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  pre, fine = stage_configs(config, workdir)
  dirs = {PRETRAIN: pretrain_dir(config, workdir),
          FINETUNE: os.path.join(workdir, FINETUNE)}
  p = loop.maybe_run(dirs[PRETRAIN], "results.json",
                     lambda: pretrain.train_and_evaluate(pre, dirs[PRETRAIN]))
  f = loop.maybe_run(dirs[FINETUNE], "results.json",
                     lambda: avvp_weak.train_and_evaluate(fine,
                                                          dirs[FINETUNE]))
  summary = {"results": f["results"], "step": f.get("step"),
             "pretrain": {"results": p["results"], "init": p.get("init"),
                          "step": p.get("step")}}
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None) -> Dict[str, Any]:
  """Scores the fine-tuned model (`avjax.evaluate` entry point)."""
  _, fine = stage_configs(config, workdir)
  return avvp_weak.evaluate_checkpoint(
      fine, os.path.join(workdir, FINETUNE), which, splits)

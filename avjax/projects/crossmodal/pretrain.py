"""AVG pretraining (Lamba et al. 2021): the AVG encoder on unlabeled clips.

  python -m avjax.main --config=configs/avvp_crossmodal.py:variant=avg_pretrain \
      --workdir=DIR

Trains `model.avg_layers` AVG transformer layers (`config.model.name="avg"`,
`avjax.models.avg`) with the margin grounding loss (`loss.type="grounding"`,
`avjax.losses.grounding`): ground-truth pairs are the connected components
of the graph linking snippets whose input audio or visual features are
similar, computed on device inside the jitted step. Labels are ignored, so
any split of any dataset in the data contract works (`config.avg.data_dir`,
`config.avg.split`; default: the config's own data, train split). The loop
(`trainers.loop`) runs it with the schedule of `config.avg`; every epoch
the grounding metrics (`eval.evaluator="grounding"`: cross-modal R@1 both
ways vs chance, pair accuracy) are measured on the first of the
`config.avg.eval_splits`; `results.json` holds them on every eval split
present for the final state and for the untrained encoder (`init`). The
latest checkpoints (`checkpoints/`) are what `config.model.init_from=DIR`
loads.
"""

import os
from typing import Any, Dict, Optional

import ml_collections

from avjax import errors
from avjax.losses import grounding
from avjax.trainers import loop
from avjax.utils import writers

TRAINER = loop.Trainer("avg_pretrain")


def validate(config) -> None:
  """The pretraining block's own fields (before the run is derived)."""
  a = config.avg
  errors.raise_invalid(errors.failed_checks(config, [
      (config.model.avg_layers > 0, "model.avg_layers",
       "> 0 (the AVG encoder to pretrain)"),
      (a.num_epochs > 0 and a.lr > 0, "avg.num_epochs", "> 0 (and avg.lr)"),
      (a.best_metric in grounding.METRICS, "avg.best_metric",
       f"one of {grounding.METRICS}"),
  ]), "AVG pretraining config")


def pretrain_config(config) -> ml_collections.ConfigDict:
  """The run the loop trains: the AVG model, loss and evaluator, schedule
  and data from `config.avg`, nothing initialised from elsewhere."""
  c = ml_collections.ConfigDict(config.to_dict())
  c.trainer = "avg_pretrain"
  c.model.name = "avg"
  c.model.init_from, c.model.freeze_pretrained = "", False
  c.loss.type = "grounding"
  c.eval.evaluator, c.eval.best_metric = "grounding", c.avg.best_metric
  c.batch_size, c.num_epochs = c.avg.batch_size, c.avg.num_epochs
  c.optim.lr, c.optim.decay_factor = c.avg.lr, 1.0
  c.data.train_split = c.avg.split
  if c.avg.eval_splits:  # validated on the first
    c.data.val_split = c.avg.eval_splits[0]
  if c.avg.data_dir:
    c.data.name, c.data.data_dir = "avg_pretrain_data", c.avg.data_dir
  return c


def setup(config, train: bool = True) -> loop.Setup:
  validate(config)
  return loop.setup(pretrain_config(config), train, TRAINER)


def eval_splits(s: loop.Setup, splits=None) -> list:
  """`splits` (default `config.avg.eval_splits`) that the data has."""
  return [sp for sp in splits or s.config.avg.eval_splits
          if sp in s.info["splits"]]


def run_evals(s: loop.Setup, state, splits=None
              ) -> Dict[str, Dict[str, float]]:
  """{split: grounding metrics} of `state` (see `eval_splits`)."""
  return {sp: loop.make_evaluator(s, sp).run(state)
          for sp in eval_splits(s, splits)}


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Pretrains (the loop: resume, checkpoints, logging), measuring
  grounding every epoch; writes results.json with the final state's and
  the untrained encoder's (`init`) metrics."""
  s = setup(config)
  init = run_evals(s, loop.make_state(s)[0])
  if (not s.config.avg.eval_splits
      or s.config.data.val_split not in s.info["splits"]):
    raise ValueError(f"config.avg.eval_splits={s.config.avg.eval_splits}: "
                     f"the first must be a split of {s.data_dir}")
  loop.fit(s, workdir)
  summary = evaluate_checkpoint(config, workdir, s=s)
  summary["init"] = init
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def evaluate_checkpoint(config, workdir: str, which: str = "latest",
                        splits=None, s: Optional[loop.Setup] = None
                        ) -> Dict[str, Any]:
  """Grounding metrics of `latest`, `best` (by `avg.best_metric` on the
  first eval split) or a step; writes `eval_<which>.json`."""
  s = s or setup(config, train=False)
  return loop.evaluate_checkpoint(s.config, workdir, which,
                                  eval_splits(s, splits), s=s)

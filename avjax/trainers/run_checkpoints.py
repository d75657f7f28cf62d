"""A run's checkpoints: fingerprint, managers, restore and resume.

`s` is a `loop.Setup` (config, model, info, features). A checkpoint stores
its run's fingerprint (model block, class count, input features, parameter
shapes); a restore refuses a checkpoint whose fingerprint does not match
the current config, after the model's `upgrade_fingerprint` hook has
brought an older stored model block up to date.
"""

import os
from typing import Any, Dict

from avjax.models import build as models
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import writers


def fingerprint(s, params) -> Dict[str, Any]:
  """Fields that must match between a checkpoint and the current config."""
  return {"model": s.config.model.to_dict(),
          "classes": len(s.info["classes"]),
          "features": {f["name"]: f for f in s.info["features"]
                       if f["name"] in s.features},
          "param_shapes": train_lib.param_shapes(params)}


def upgrade_fn(s):
  """A stored fingerprint as this code writes it (the model's hook)."""
  def upgrade(fp):
    if isinstance(fp.get("model"), dict):
      fp = dict(fp, model=models.upgrade_fingerprint(s.config.model,
                                                     fp["model"]))
    return fp
  return upgrade


def managers(workdir: str, config):
  """(latest, best) checkpoint managers of a workdir."""
  return (checkpointing.manager(os.path.join(workdir, "checkpoints"),
                                config.keep_checkpoints),
          checkpointing.manager(os.path.join(workdir, "best"), 1))


def restore(s, state, workdir: str, which: str = "best"):
  """(state, meta, step) of checkpoint `which` of a workdir ("best",
  "latest" or a step number of `checkpoints/`), read into the structure of
  the fresh `state`."""
  latest, best = managers(workdir, s.config)
  step = None if which in ("best", "latest") else int(which)
  return checkpointing.restore(best if which == "best" else latest, step,
                               state, fingerprint(s, state.params),
                               upgrade_fn(s))


def maybe_restore(s, state, latest, fp):
  """Resumes from the workdir's latest checkpoint if there is one; a fresh
  run is initialised by the model's `init_params` hook instead."""
  meta = {"best_metric": -1.0, "best_step": -1, "history": []}
  step = 0
  if not s.config.restart and latest.all_steps():
    state, meta, step = checkpointing.restore(latest, None, state, fp,
                                              upgrade_fn(s))
    writers.log("resumed from %s at step %d", latest.directory, step)
  else:  # a fresh run: the model may initialise it (`model.init_from`)
    state = models.init_params(state, s.config.model)
  # Metrics logged after the restored step (or by a run killed before its
  # first checkpoint) are written again by this run: drop them.
  writers.truncate_jsonl(os.path.dirname(latest.directory), step)
  return state, meta, step

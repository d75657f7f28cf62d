"""The loss registry: `config.loss.type` -> a loss module.

Every loss is a module with one signature:

  loss_fn(out, batch, *, config, step, total_steps) -> {"loss": scalar,
      ...}    the objective of the model outputs `out` on `batch`, and any
      other scalar terms to log; `step` (traced) and `total_steps` drive
      schedules inside a loss (e.g. the gradient-reversal scale);
  TYPES                       the `config.loss.type` values it implements;
  check(config) -> [str]      (optional) config errors;
  label_keys(config) -> tuple (optional) train-split label keys it reads
                              besides `labels` (checked against the data).

`config.loss.type` is a name of `LOSSES` or a full module path
(`my_pkg.my_loss`, whose `loss_fn` is used).
"""

import functools
from types import ModuleType
from typing import Callable, Dict

from avjax.utils import registry

LOSSES = {
    **{t: "avjax.losses.avvp" for t in ("han", "han_nce", "crossmodal")},
    **{t: "avjax.losses.veba" for t in ("veba", "veba_shared")},
    **{t: "avjax.losses.ave" for t in ("segment", "mil")},
    **{t: "avjax.losses.cml" for t in ("contrastive", "dcca")},
    "event_heads": "avjax.losses.event_heads",
    "grounding": "avjax.losses.grounding",
}


def get(config) -> ModuleType:
  """The module of `config.loss.type`."""
  return registry.load("config.loss.type", config.loss.type, LOSSES)


def check(config) -> list:
  module = get(config)
  return module.check(config) if hasattr(module, "check") else []


def label_keys(config) -> tuple:
  module = get(config)
  return tuple(module.label_keys(config)) if hasattr(
      module, "label_keys") else ()


def make(config, total_steps: int) -> Callable[..., Dict]:
  """loss(out, batch, step=...) of `config` (see `train_lib.train_step`)."""
  return functools.partial(get(config).loss_fn, config=config,
                           total_steps=total_steps)

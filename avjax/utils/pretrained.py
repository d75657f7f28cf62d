"""Initialising (and freezing) part of a model from a pretraining run.

`config.model.init_from` names a pretraining workdir (e.g. AVG pretraining,
`avjax.projects.crossmodal.pretrain`); the parameter subtrees in `SUBTREES` that
both its latest checkpoint and the model have are copied into a freshly
initialised state (shapes checked). `config.model.freeze_pretrained` keeps
those subtrees fixed: their updates are zeroed with `optax.multi_transform`.
"""

import os
from typing import Any, Dict, Tuple

import flax
import jax
import optax
import orbax.checkpoint as ocp

from avjax.utils import checkpointing
from avjax.utils import writers

SUBTREES = ("avg_encoder",)  # parameter subtrees a pretraining run provides


def validate(model_cfg) -> list:
  """(ok, key, expectation) checks of the pretraining fields (keys relative
  to `config.model`)."""
  m = model_cfg
  return [
      (m.avg_layers >= 0, "avg_layers",
       "0 (no AVG encoder) or a positive number of layers"),
      (not m.avg_layers or m.input_modalities == "av", "input_modalities",
       "'av' when model.avg_layers > 0"),
      (not m.freeze_pretrained or bool(m.init_from), "init_from",
       "a pretraining workdir when model.freeze_pretrained=True"),
      (not m.init_from or m.avg_layers > 0, "avg_layers",
       "> 0 when model.init_from is set (nothing to initialise)"),
  ]


def frozen_subtrees(model_cfg, params) -> Tuple[str, ...]:
  """The top-level parameter subtrees kept fixed during training."""
  if not model_cfg.freeze_pretrained:
    return ()
  return tuple(k for k in SUBTREES if k in params)


def maybe_freeze(tx: optax.GradientTransformation, model_cfg
                 ) -> optax.GradientTransformation:
  """Zeroes the updates of the pretrained subtrees when frozen."""
  if not model_cfg.freeze_pretrained:
    return tx

  def labels(params):
    frozen = frozen_subtrees(model_cfg, params)
    return {k: jax.tree.map(lambda _: "frozen" if k in frozen else "train",
                            v) for k, v in params.items()}
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                               labels)


def load_params(workdir: str) -> Dict[str, Any]:
  """Parameters of the latest checkpoint of a run (host NumPy arrays)."""
  mgr = checkpointing.manager(os.path.join(workdir, "checkpoints"), 1,
                              async_save=False)
  step = mgr.latest_step()
  if step is None:
    raise FileNotFoundError(f"config.model.init_from={workdir!r}: no "
                            "checkpoint in its checkpoints/ folder")
  restored = mgr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore()))["state"]
  return jax.device_get(restored["params"])


def init_params(state, model_cfg, subtrees: Tuple[str, ...] = SUBTREES):
  """Copies `subtrees` (default `SUBTREES`) from `model_cfg.init_from` into
  state.params."""
  src = model_cfg.get("init_from", "")
  if not src:
    return state
  loaded = load_params(src)
  params = flax.core.unfreeze(state.params)
  names = [k for k in subtrees if k in loaded and k in params]
  if not names:
    raise ValueError(f"config.model.init_from={src!r} has none of the "
                     f"subtrees {subtrees} the model has ({sorted(params)})")
  shape = lambda t: jax.tree.map(lambda x: list(x.shape), t)
  checkpointing.check_fingerprint(
      {"pretrained_shapes": {k: shape(loaded[k]) for k in names}},
      {"pretrained_shapes": {k: shape(params[k]) for k in names}}, src)
  for k in names:
    params[k] = jax.tree.map(
        lambda new, old: jax.device_put(new.astype(old.dtype), old.sharding),
        loaded[k], params[k])
  writers.log("initialised %s from %s", ", ".join(names), src)
  return state.replace(params=params)

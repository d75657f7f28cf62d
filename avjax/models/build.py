"""The model registry: `config.model.name` -> a model module.

Every model is a module with one signature (big_vision's import by name):

  build(model_cfg, info) -> flax.linen.Module   the model of a `config.model`
      block, sized for the dataset `info` (`tfrecord.read_info`: classes,
      feature_specs);
  input_features(model_cfg) -> tuple            dataset streams it reads;
  check(model_cfg) -> [str]                     (optional) config errors;
  init_params(state, model_cfg) -> state        (optional) a fresh run's
      state initialised from elsewhere (e.g. `model.init_from`);
  optimizer(tx, model_cfg) -> tx                (optional) e.g. frozen parts;
  upgrade_fingerprint(model_dict) -> dict       (optional) a checkpoint's
      stored `config.model` as this code writes it (fields added since).

`config.model.name` is a name of `MODELS` or a full module path
(`my_pkg.my_model`, importable from sys.path): a new model is one module
plus a config naming it.
"""

import inspect
from types import ModuleType
from typing import Optional

from avjax import errors
from avjax.utils import registry

MODELS = {name: f"avjax.models.{name}" for name in (
    "avvp_net",     # HAN and its family (MA, cross-modal learning, VEBA)
    "avg",          # AVG pretraining's encoder (cross-modal learning)
    "ave_net",      # AVE event localization, every fusion and stage
    "avdln",        # AVE cross-modal localization: AVDLN / DCCA
    "event_heads",  # event-specific fusion layers (Senocak et al. 2023)
)}


def get(model_cfg) -> ModuleType:
  """The module of `config.model.name`."""
  return registry.load("config.model.name", model_cfg.name, MODELS)


def check(model_cfg) -> list:
  """Config errors of the model block (empty if fine)."""
  module = get(model_cfg)
  return module.check(model_cfg) if hasattr(module, "check") else []


def build(model_cfg, info: dict):
  """Checks `config.model` and builds its model for the dataset `info`."""
  errors.raise_invalid(check(model_cfg))
  return get(model_cfg).build(model_cfg, info)


def input_features(model_cfg, info: Optional[dict] = None) -> tuple:
  """Feature streams the model of `config.model` reads (a module whose
  `input_features` takes `info` may choose by the dataset's streams)."""
  fn = get(model_cfg).input_features
  if info is not None and "info" in inspect.signature(fn).parameters:
    return tuple(fn(model_cfg, info=info))
  return tuple(fn(model_cfg))


def init_params(state, model_cfg):
  """The model's `init_params` hook (a fresh run's state), if any."""
  module = get(model_cfg)
  return module.init_params(state, model_cfg) if hasattr(
      module, "init_params") else state


def optimizer(tx, model_cfg):
  """The model's `optimizer` hook (e.g. frozen subtrees), if any."""
  module = get(model_cfg)
  return module.optimizer(tx, model_cfg) if hasattr(
      module, "optimizer") else tx


def upgrade_fingerprint(model_cfg, model_dict: dict) -> dict:
  """A checkpoint's stored `config.model` dict, upgraded by the model."""
  module = get(model_cfg)
  return module.upgrade_fingerprint(model_dict) if hasattr(
      module, "upgrade_fingerprint") else model_dict

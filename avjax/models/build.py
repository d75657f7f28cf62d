"""Builds a model from `config.model` and the dataset info."""

import jax.numpy as jnp

from avjax.models import avg
from avjax.models import avvp_net
from avjax.models import inits

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def build(model_cfg, info: dict):
  """Returns a Flax module for `model_cfg.name` sized for the dataset."""
  specs = {s.name: s for s in info["feature_specs"]}
  if model_cfg.name == "avvp_net":
    f = specs["visual"].frames_per_segment if "visual" in specs else 1
    if model_cfg.dtype not in _DTYPES:
      raise ValueError(f"config.model.dtype={model_cfg.dtype!r}; valid: "
                       f"{sorted(_DTYPES)}")
    return avvp_net.AVVPNet(
        num_classes=len(info["classes"]), d_model=model_cfg.d_model,
        num_layers=model_cfg.num_layers, num_heads=model_cfg.num_heads,
        d_ff=model_cfg.d_ff, dropout=model_cfg.dropout,
        cross_attention=model_cfg.cross_attention,
        input_modalities=model_cfg.input_modalities, frames_per_segment=f,
        use_frames=model_cfg.use_frames, use_motion=model_cfg.use_motion,
        pool_first=model_cfg.pool_first,
        fused_attention=model_cfg.get("fused_attention", True),
        global_context=model_cfg.get("global_context", False),
        separate_self_attention=model_cfg.get("separate_self_attention",
                                              False),
        skip=model_cfg.get("skip", False),
        shared_fc=model_cfg.get("shared_fc", False),
        adversarial=model_cfg.get("adversarial", False),
        avg_encoder=avg_encoder(model_cfg, info),
        avg_frozen=model_cfg.get("freeze_pretrained", False),
        init_scheme=inits.check(model_cfg.init_scheme),
        dtype=_DTYPES[model_cfg.dtype])
  raise ValueError(f"unknown config.model.name={model_cfg.name!r}; valid: "
                   "'avvp_net'")


def avg_encoder(model_cfg, info: dict):
  """The AVG encoder of `model_cfg` (None when `avg_layers` is 0)."""
  if not model_cfg.get("avg_layers", 0):
    return None
  specs = {s.name: s for s in info["feature_specs"]}
  f = specs["visual"].frames_per_segment if "visual" in specs else 1
  return avg.AVGEncoder(
      d_model=model_cfg.d_model, num_layers=model_cfg.avg_layers,
      num_heads=model_cfg.num_heads, d_ff=model_cfg.d_ff,
      dropout=model_cfg.dropout, frames_per_segment=f,
      use_frames=model_cfg.use_frames, use_motion=model_cfg.use_motion,
      pool_first=model_cfg.pool_first,
      init_scheme=inits.check(model_cfg.init_scheme),
      dtype=_DTYPES[model_cfg.dtype])


def input_features(model_cfg) -> tuple:
  """Feature streams the model reads from the dataset."""
  feats = []
  if "a" in model_cfg.input_modalities:
    feats.append("audio")
  if "v" in model_cfg.input_modalities:
    if model_cfg.use_frames:
      feats.append("visual")
    if model_cfg.use_motion:
      feats.append("motion")
  return tuple(feats)

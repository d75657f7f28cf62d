"""Audio-visual grounding (AVG) encoder of cross-modal learning for AVVP.

Lamba et al. 2021 pretrain a UNITER-like transformer on audio and visual
snippet embeddings with a margin contrastive grounding objective
(`avjax.losses.grounding`) and initialise the AVVP model from it. The same
`AVGEncoder` is the pretraining model's `avg_encoder` subtree and, with
`model.avg_layers > 0`, the AVVP network's input encoder, so a pretraining
checkpoint transfers by parameter subtree (`avjax.utils.pretrained`).
"""

from typing import Any, Dict, Tuple

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from avjax import errors
from avjax.models import attention
from avjax.models import encoders
from avjax.models import inits


def sinusoidal_positions(t: int, d: int) -> jnp.ndarray:
  """Fixed [t, d] transformer position encodings (any clip length)."""
  pos = np.arange(t)[:, None]
  div = np.exp(np.arange(0, d, 2) * (-np.log(10000.0) / d))
  pe = np.zeros((t, d), np.float32)
  pe[:, 0::2] = np.sin(pos * div)
  pe[:, 1::2] = np.cos(pos * div)[:, :d // 2]
  return jnp.asarray(pe)


class AVGEncoder(nn.Module):
  """Single-stream transformer over the audio and visual snippets of a clip.

  Audio [B, T, Da] -> Dense, visual frames/motion -> `VisualProjection` (the
  same projections as HAN), plus a learned modality embedding and fixed
  position encodings; the 2T tokens go through `num_layers` self-attention
  layers (`HybridAttentionLayer` without the cross branch) and are split back
  into the two streams.

  Attributes:
    d_model, num_layers, num_heads, d_ff, dropout: transformer settings.
    frames_per_segment, use_frames, use_motion, pool_first: visual input
      (as `AVVPNet`).
    init_scheme: parameter initialisers (`inits.SCHEMES`).
    dtype: computation dtype.
  """
  d_model: int = 512
  num_layers: int = 2
  num_heads: int = 1
  d_ff: int = 512
  dropout: float = 0.1
  frames_per_segment: int = 8
  use_frames: bool = True
  use_motion: bool = True
  pool_first: bool = True
  init_scheme: str = "torch"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, batch: Dict[str, jnp.ndarray], *,
               train: bool) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """batch: audio [B,T,Da], visual [B,T*F,Dv], motion [B,T,Dm],
    segment_mask [B,T] -> (audio, visual) embeddings [B, T, d]."""
    a = nn.Dense(self.d_model, dtype=self.dtype, name="audio_proj",
                 **inits.linear(self.init_scheme, batch["audio"].shape[-1]))(
                     batch["audio"])
    v = encoders.VisualProjection(
        self.d_model, self.frames_per_segment, self.pool_first, self.dtype,
        init_scheme=self.init_scheme, name="visual_proj")(
            batch["visual"] if self.use_frames else None,
            batch["motion"] if self.use_motion else None)
    t = a.shape[1]
    types = self.param("modality_emb", nn.initializers.normal(0.02),
                       (2, self.d_model))
    pos = sinusoidal_positions(t, self.d_model)
    x = jnp.concatenate([a + pos + types[0], v + pos + types[1]], axis=1)
    mask = batch.get("segment_mask")
    if mask is not None:
      mask = jnp.concatenate([mask, mask], axis=1)
    for i in range(self.num_layers):
      x = attention.HybridAttentionLayer(
          self.d_model, self.num_heads, self.d_ff, self.dropout,
          cross_attention=False, init_scheme=self.init_scheme,
          dtype=self.dtype, name=f"layer_{i}")(
              x, x, mask, train=train)
    return x[:, :t], x[:, t:]


class AVGPretrainNet(nn.Module):
  """The AVG pretraining model: an `AVGEncoder` under the name `avg_encoder`.

  Attributes:
    avg_encoder: the encoder (its parameters are the subtree `avg_encoder`,
      the same path as in `AVVPNet`).
  """
  avg_encoder: AVGEncoder

  def __call__(self, batch: Dict[str, jnp.ndarray], *,
               train: bool) -> Dict[str, jnp.ndarray]:
    """Returns `audio_emb`, `visual_emb` [B, T, d]."""
    a, v = self.avg_encoder(batch, train=train)
    return {"audio_emb": a, "visual_emb": v}


# The model-module contract (`avjax.models.build`) of the pretraining
# model (`config.model.name="avg"`): an AVVP `config.model` block whose
# `avg_layers` AVG layers are pretrained alone.


def frames_per_segment(info: dict) -> int:
  """Visual frames per segment of a dataset (1 without a visual stream)."""
  specs = {s.name: s for s in info["feature_specs"]}
  return specs["visual"].frames_per_segment if "visual" in specs else 1


def encoder(model_cfg, info: dict) -> AVGEncoder:
  """The AVG encoder of an AVVP `config.model` block (`avg_layers` > 0)."""
  m = model_cfg
  return AVGEncoder(
      d_model=m.d_model, num_layers=m.avg_layers, num_heads=m.num_heads,
      d_ff=m.d_ff, dropout=m.dropout,
      frames_per_segment=frames_per_segment(info), use_frames=m.use_frames,
      use_motion=m.use_motion, pool_first=m.pool_first,
      init_scheme=m.init_scheme, dtype=getattr(jnp, m.dtype))


def check(model_cfg) -> list:
  m = model_cfg
  return errors.failed_checks(m, [
      (m.avg_layers > 0, "avg_layers", "> 0 (the AVG encoder to pretrain)"),
      (m.input_modalities == "av", "input_modalities",
       "'av' (the encoder grounds audio and visual snippets)"),
      (m.dtype in ("float32", "bfloat16"), "dtype",
       "'float32' or 'bfloat16'"),
      (m.d_model % m.num_heads == 0, "num_heads",
       f"a divisor of model.d_model={m.d_model}"),
      (0.0 <= m.dropout < 1.0, "dropout", "in [0, 1)"),
      (m.init_scheme in inits.SCHEMES, "init_scheme",
       f"one of {list(inits.SCHEMES)}"),
  ], "config.model.")


def build(model_cfg, info: dict) -> AVGPretrainNet:
  return AVGPretrainNet(encoder(model_cfg, info))


def input_features(model_cfg) -> tuple:
  """Audio and the visual streams of `use_frames`/`use_motion`."""
  return ("audio",) + (("visual",) if model_cfg.use_frames else ()) + (
      ("motion",) if model_cfg.use_motion else ())


def upgrade_fingerprint(model_dict: dict) -> dict:
  """Pretraining checkpoints written before the "avg" model name stored
  their AVVP block's name."""
  out = {"shared_fc": False, "gcaa_first_segment": False,
         "disc_norm": "layer", "disc_relu": False, **model_dict}
  if out.get("name") == "avvp_net":
    out["name"] = "avg"
  return out

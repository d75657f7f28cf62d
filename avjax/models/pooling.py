"""Multiple-instance pooling over time (and modality)."""

from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax.models import inits
from avjax.utils import masking

_NEG = -1e9


class AttentiveMMILPooling(nn.Module):
  """HAN's frame-level heads and attentive multimodal MIL pooling.

  Attributes:
    num_classes: C.
    dtype: computation dtype of the Dense heads (outputs are float32).
    init_scheme: parameter initialisers (`inits.SCHEMES`).
  """
  num_classes: int
  dtype: Any = jnp.float32
  init_scheme: str = "torch"

  @nn.compact
  def __call__(self, x: jnp.ndarray,
               segment_mask: Optional[jnp.ndarray] = None
               ) -> Dict[str, jnp.ndarray]:
    """x: [B, T, M, d] stacked streams (M=2: audio, visual).

    Returns:
      frame_prob [B, T, M, C], global_prob [B, C], audio_prob [B, C],
      visual_prob [B, C] (the last two for M == 2), frame_att [B, T, M, C],
      modality_att [B, T, M, C] (softmax over M).
    """
    dense = lambda n: nn.Dense(self.num_classes, dtype=self.dtype, name=n,
                               **inits.linear(self.init_scheme, x.shape[-1]))
    frame_prob = jax.nn.sigmoid(dense("frame_cls")(x).astype(jnp.float32))
    att_logits = dense("frame_att")(x).astype(jnp.float32)
    if segment_mask is not None:
      valid = segment_mask.astype(bool)[:, :, None, None]
      att_logits = jnp.where(valid, att_logits, _NEG)
    frame_att = jax.nn.softmax(att_logits, axis=1)
    av_att = jax.nn.softmax(dense("modality_att")(x).astype(jnp.float32),
                            axis=2)
    temporal = frame_att * frame_prob
    out = {"frame_prob": frame_prob, "frame_att": frame_att,
           "modality_att": av_att,
           "global_prob": (temporal * av_att).sum(axis=(1, 2))}
    if x.shape[2] == 2:
      out["audio_prob"] = temporal[:, :, 0].sum(axis=1)
      out["visual_prob"] = temporal[:, :, 1].sum(axis=1)
    return out


def max_pool(scores: jnp.ndarray, segment_mask: Optional[jnp.ndarray] = None,
             axis: int = 1) -> jnp.ndarray:
  """Masked max over time of [B, T, ...] scores."""
  if segment_mask is not None:
    m = segment_mask.astype(bool).reshape(
        segment_mask.shape + (1,) * (scores.ndim - 2))
    scores = jnp.where(m, scores, _NEG)
  return scores.max(axis=axis)


def mean_pool(scores: jnp.ndarray, segment_mask: Optional[jnp.ndarray] = None,
              axis: int = 1) -> jnp.ndarray:
  """Masked mean over time of [B, T, ...] scores."""
  if segment_mask is None:
    return scores.mean(axis=axis)
  m = segment_mask.reshape(segment_mask.shape + (1,) * (scores.ndim - 2))
  return masking.masked_mean(scores, m, axis=axis)

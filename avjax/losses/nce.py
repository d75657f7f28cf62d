"""Cross-modal contrastive (InfoNCE) losses.

`temporal_nce` is MA's in-clip loss (Wu & Yang 2021, Eq. 8): each
L2-normalised audio feature after hybrid attention must pick the visual
feature of its own time step among all time steps of the same clip.
`clip_nce` is a cross-batch form: clip-level audio vs visual of every clip of
the batch. Both are pure functions of global arrays: under `jax.jit` with the
batch sharded over a mesh, XLA inserts whatever communication `clip_nce` needs
(no explicit all-gather). `local_clip_nce` is the per-device variant
(negatives only from the device's own shard) written with `jax.shard_map`.
"""

from typing import Optional

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from avjax.utils import masking

_NEG = -1e9


def l2_normalize(x: jnp.ndarray, eps: float = 1e-12) -> jnp.ndarray:
  """x / max(||x||, eps) over the last axis (torch F.normalize).

  Written with rsqrt(max(||x||^2, eps^2)) so the gradient stays finite at 0.
  """
  x = x.astype(jnp.float32)
  sq = jnp.sum(x * x, axis=-1, keepdims=True)
  return x * jax.lax.rsqrt(jnp.maximum(sq, eps * eps))


def temporal_nce(audio: jnp.ndarray, visual: jnp.ndarray,
                 segment_mask: Optional[jnp.ndarray] = None, *,
                 tau: float = 0.2, label_smoothing: float = 0.1,
                 weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """In-clip temporal InfoNCE of audio step t against visual steps 1..T.

  Args:
    audio: [B, T, d] audio features after hybrid attention (MA: HAN output).
    visual: [B, T, d] visual features of the same clips (MA: before HAN).
    segment_mask: optional [B, T], 1 for valid segments; padded steps are
      neither anchors nor candidates.
    tau: temperature of the cosine similarities.
    label_smoothing: s; as in the reference code, the matching step gets
      target 1 - s and each of the other K - 1 valid steps s / (K - 1).
    weights: optional [B] per-clip weights (e.g. `_mask` of padded batches).

  Returns:
    Scalar mean cross-entropy over valid (clip, step) pairs.
  """
  a, v = l2_normalize(audio), l2_normalize(visual)
  b, t = a.shape[:2]
  mask = (jnp.ones((b, t), jnp.float32) if segment_mask is None
          else segment_mask.astype(jnp.float32))
  logits = jnp.einsum("btd,bsd->bts", a, v) / tau
  col = mask[:, None, :] > 0
  logp = jax.nn.log_softmax(jnp.where(col, logits, _NEG), axis=-1)
  n = mask.sum(-1)[:, None, None]
  eye = jnp.eye(t, dtype=jnp.float32)
  off = label_smoothing / jnp.maximum(n - 1.0, 1.0)
  target = jnp.where(col, eye * (1.0 - label_smoothing) + (1.0 - eye) * off,
                     0.0)
  per = -jnp.sum(target * jnp.where(col, logp, 0.0), axis=-1)  # [B, T]
  w = mask if weights is None else mask * weights[:, None]
  return masking.masked_mean(per, w)


def masked_mean(x: jnp.ndarray, segment_mask: Optional[jnp.ndarray] = None
                ) -> jnp.ndarray:
  """[B, T, d] -> [B, d] mean over valid segments."""
  if segment_mask is None:
    return x.mean(axis=1)
  return masking.masked_mean(x, segment_mask.astype(x.dtype)[:, :, None],
                             axis=1)


def clip_nce(audio: jnp.ndarray, visual: jnp.ndarray,
             segment_mask: Optional[jnp.ndarray] = None, *, tau: float = 0.2,
             weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Symmetric clip-level InfoNCE over every clip of the batch.

  Args:
    audio, visual: [B, T, d] streams, averaged over valid segments.
    segment_mask: optional [B, T].
    tau: temperature.
    weights: optional [B]; clips with weight 0 (padding) are neither anchors
      nor negatives.

  Returns:
    Scalar: mean of the audio->visual and visual->audio cross-entropies with
    the same clip as the positive.
  """
  a = l2_normalize(masked_mean(audio, segment_mask))
  v = l2_normalize(masked_mean(visual, segment_mask))
  w = (jnp.ones(a.shape[:1], jnp.float32) if weights is None
       else weights.astype(jnp.float32))
  logits = jnp.where(w[None, :] > 0, a @ v.T / tau, _NEG)
  a2v = -jnp.diagonal(jax.nn.log_softmax(logits, axis=1))
  logits_t = jnp.where(w[None, :] > 0, v @ a.T / tau, _NEG)
  v2a = -jnp.diagonal(jax.nn.log_softmax(logits_t, axis=1))
  return masking.masked_mean(0.5 * (a2v + v2a), w)


def local_clip_nce(mesh, audio: jnp.ndarray, visual: jnp.ndarray,
                   segment_mask: jnp.ndarray, *, tau: float = 0.2,
                   axis: str = "data") -> jnp.ndarray:
  """`clip_nce` with negatives from each device's own shard only.

  Every device computes `clip_nce` on its shard of the batch; the result is
  the mean over devices (`lax.pmean`), replicated.
  """
  def per_device(a, v, m):
    return jax.lax.pmean(clip_nce(a, v, m, tau=tau), axis)

  fn = jax.shard_map(per_device, mesh=mesh,
                     in_specs=(P(axis), P(axis), P(axis)), out_specs=P())
  return fn(audio, visual, segment_mask)


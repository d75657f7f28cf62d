"""Global-context-aware attention (GCAA) of cross-modal learning for AVVP.

Lamba et al. 2021 replace HAN's attention with the context-aware attention of
Yang et al. 2019: queries and keys are gated mixes of each token and the
(masked) mean of its sequence, then scaled dot-product attention.

The official code's layers index the module's [T, B, d] output with `[0]`
(`self.self_attn(...)[0]`, `self.cm_attn(...)[0]` in
nets/net_audiovisual.py), so every segment receives segment 0's attention
output; the paper's +GCAA numbers come from that code. `first_segment=True`
reproduces it (the reference form); False is the paper's per-segment form.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax.models import inits
from avjax.utils import masking

_NEG = -1e9


def masked_mean(x: jnp.ndarray,
                segment_mask: Optional[jnp.ndarray]) -> jnp.ndarray:
  """x: [B, T, d], segment_mask: [B, T] or None -> [B, 1, d] mean."""
  if segment_mask is None:
    return x.mean(axis=1, keepdims=True)
  return masking.masked_mean(x, segment_mask.astype(x.dtype)[..., None],
                             axis=1, keepdims=True)


class GlobalContextAttention(nn.Module):
  """Multi-head attention with global-context-gated queries and keys.

  q = x Wq, c_q = mean(x) Uq, gate l_q = sigmoid(q vq + c_q wq) [B, T, 1],
  q' = (1 - l_q) q + l_q c_q; the same for keys over the context sequence;
  values are plain projections. Parameters: 6 (d_in d + d) + 4 (d + 1).

  Attributes:
    num_heads: attention heads.
    qkv_features: width d of queries, keys and values (divisible by heads).
    out_features: output width.
    dropout_rate: dropout on the attention weights.
    init_scheme: parameter initialisers (`inits.SCHEMES`; "torch": every
      projection a PyTorch nn.Linear default, as the reference code's).
    first_segment: return query 0's output for every query (the official
      code's `[0]`; reference form). False: one output per query (paper).
    dtype: computation dtype.
  """
  num_heads: int = 1
  qkv_features: int = 512
  out_features: int = 512
  dropout_rate: float = 0.0
  init_scheme: str = "torch"
  first_segment: bool = False
  dtype: Any = jnp.float32

  def _dense(self, features, name, x):
    return nn.Dense(features, dtype=self.dtype, name=name,
                    **inits.linear(self.init_scheme, x.shape[-1]))(x)

  def _gated(self, x, seq, segment_mask, prefix):
    """Projects x [B, T, d_in] and mixes it with its sequence's context."""
    dense = lambda n, f, inp: self._dense(f, f"{prefix}_{n}", inp)
    h = dense("proj", self.qkv_features, x)
    c = dense("ctx", self.qkv_features, masked_mean(seq, segment_mask))
    gate = jax.nn.sigmoid(dense("gate_tok", 1, h) + dense("gate_ctx", 1, c))
    return (1.0 - gate) * h + gate * c

  @nn.compact
  def __call__(self, inputs_q: jnp.ndarray, inputs_kv: jnp.ndarray,
               segment_mask: Optional[jnp.ndarray] = None, *,
               deterministic: bool) -> jnp.ndarray:
    """inputs_q: [B, Tq, d_in]; inputs_kv: [B, Tk, d_in]; segment_mask: [B, T]
    (needs Tq == Tk; 1 = real segment) -> [B, Tq, out_features]."""
    if self.qkv_features % self.num_heads:
      raise ValueError(f"qkv_features={self.qkv_features} not divisible by "
                       f"num_heads={self.num_heads}")
    q = self._gated(inputs_q, inputs_q, segment_mask, "query")
    k = self._gated(inputs_kv, inputs_kv, segment_mask, "key")
    v = self._dense(self.qkv_features, "value", inputs_kv)
    heads = lambda t: t.reshape(t.shape[:2] + (self.num_heads, -1))
    q, k, v = heads(q), heads(k), heads(v)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    logits = logits / jnp.sqrt(jnp.float32(q.shape[-1]))
    if segment_mask is not None:
      valid = segment_mask.astype(bool)[:, None, None, :]
      logits = jnp.where(valid, logits, _NEG)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate)(weights,
                                            deterministic=deterministic)
    y = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    y = y.reshape(y.shape[:2] + (self.qkv_features,))
    y = self._dense(self.out_features, "out", y)
    if self.first_segment:  # the official `output[0]` over [T, B, d]
      y = jnp.broadcast_to(y[:, :1], y.shape)
    return y

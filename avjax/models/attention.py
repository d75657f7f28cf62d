"""Hybrid (self + cross-modal) attention of HAN, usable by later models."""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from avjax.models import gcaa


def key_padding_mask(segment_mask: Optional[jnp.ndarray]):
  """[B, T] (1 = real segment) -> attention mask [B, 1, T, T] or None."""
  if segment_mask is None:
    return None
  m = segment_mask.astype(bool)
  return m[:, None, None, :] & jnp.ones_like(m)[:, None, :, None]


class HybridAttentionLayer(nn.Module):
  """One HAN layer: x' = LN(x + Drop(Cross(x, ctx)) + Drop(Self(x))), then FFN.

  The same instance (shared weights) is applied to each stream with the other
  stream as context, as in the reference implementation.

  Attributes:
    d_model: width d.
    num_heads: attention heads (1 in HAN).
    d_ff: feed-forward width (512 in HAN).
    dropout: dropout rate on attention weights, residual branches and FFN.
    cross_attention: include the cross-modal branch (False gives plain
      per-modality self-attention encoders, the "no hybrid attention" ablation).
    self_attention: include the self-attention branch.
    global_context: use global-context-aware attention (`gcaa`) in both
      branches instead of multi-head dot-product attention.
    dtype: computation dtype.
  """
  d_model: int = 512
  num_heads: int = 1
  d_ff: int = 512
  dropout: float = 0.1
  cross_attention: bool = True
  self_attention: bool = True
  global_context: bool = False
  dtype: Any = jnp.float32

  def _attn(self, name, q, kv, segment_mask, det):
    """Attention of q over kv: [B, T, d] each -> [B, T, d]."""
    kw = dict(num_heads=self.num_heads, qkv_features=self.d_model,
              out_features=self.d_model, dropout_rate=self.dropout,
              dtype=self.dtype, name=name)
    if self.global_context:
      return gcaa.GlobalContextAttention(**kw)(q, kv, segment_mask,
                                               deterministic=det)
    return nn.MultiHeadDotProductAttention(**kw)(
        q, kv, mask=key_padding_mask(segment_mask), deterministic=det)

  @nn.compact
  def __call__(self, x: jnp.ndarray, context: jnp.ndarray,
               segment_mask: Optional[jnp.ndarray] = None, *,
               train: bool) -> jnp.ndarray:
    """x, context: [B, T, d]; segment_mask: [B, T] -> [B, T, d]."""
    det = not train
    y = x
    if self.cross_attention:
      c = self._attn("cross_attn", x, context, segment_mask, det)
      y = y + nn.Dropout(self.dropout)(c, deterministic=det)
    if self.self_attention:
      s = self._attn("self_attn", x, x, segment_mask, det)
      y = y + nn.Dropout(self.dropout)(s, deterministic=det)
    y = nn.LayerNorm(dtype=self.dtype, name="norm1")(y)
    h = nn.relu(nn.Dense(self.d_ff, dtype=self.dtype, name="ffn1")(y))
    h = nn.Dropout(self.dropout)(h, deterministic=det)
    h = nn.Dense(self.d_model, dtype=self.dtype, name="ffn2")(h)
    y = y + nn.Dropout(self.dropout)(h, deterministic=det)
    return nn.LayerNorm(dtype=self.dtype, name="norm2")(y)

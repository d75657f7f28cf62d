"""Hybrid (self + cross-modal) attention of HAN, usable by later models."""

from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import gcaa


def key_padding_mask(segment_mask: Optional[jnp.ndarray]):
  """[B, T] (1 = real segment) -> attention mask [B, 1, T, T] or None."""
  if segment_mask is None:
    return None
  m = segment_mask.astype(bool)
  return m[:, None, None, :] & jnp.ones_like(m)[:, None, :, None]


class _DenseParams(nn.Module):
  """The kernel/bias of a DenseGeneral [d_in] -> [h, hd] (or [h, hd] -> [d]),
  initialised as flax's DenseGeneral would (LeCun normal on the flattened
  kernel, zero bias), without applying it."""
  in_shape: Sequence[int]
  out_shape: Sequence[int]

  @nn.compact
  def __call__(self):
    n_in, n_out = int(np.prod(self.in_shape)), int(np.prod(self.out_shape))
    init = nn.initializers.lecun_normal()
    kernel = self.param("kernel", lambda k: init(k, (n_in, n_out)).reshape(
        tuple(self.in_shape) + tuple(self.out_shape)))
    bias = self.param("bias", nn.initializers.zeros, tuple(self.out_shape))
    return kernel.reshape(n_in, n_out), bias.reshape(-1)


class _AttentionParams(nn.Module):
  """The parameters of nn.MultiHeadDotProductAttention (same tree)."""
  d_model: int
  num_heads: int

  @nn.compact
  def __call__(self) -> Dict[str, Any]:
    h = self.num_heads
    hd = self.d_model // h
    qkv = {n: _DenseParams((self.d_model,), (h, hd), name=n)()
           for n in ("query", "key", "value")}
    qkv["out"] = _DenseParams((h, hd), (self.d_model,), name="out")()
    return qkv


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
    fused: compute the multi-head attention of both branches with one input
      projection matmul per stream (x: cross query + self q, k, v; context:
      cross k, v) and one batched output projection, instead of eight
      separate matmuls. Same parameters (tree, shapes, initialisation) and
      same function as nn.MultiHeadDotProductAttention (tested), fewer and
      larger kernels (faster on CPU).
    dtype: computation dtype.
  """
  d_model: int = 512
  num_heads: int = 1
  d_ff: int = 512
  dropout: float = 0.1
  cross_attention: bool = True
  self_attention: bool = True
  global_context: bool = False
  fused: bool = True
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

  def _fused_attn(self, x, context, segment_mask, det):
    """Both branches' attention outputs {name: [B, T, d]}, fused matmuls."""
    names = [n for n, on in (("cross_attn", self.cross_attention),
                             ("self_attn", self.self_attention)) if on]
    p = {n: _AttentionParams(self.d_model, self.num_heads, name=n)()
         for n in names}
    # (branch, projection) read from x; cross k, v read from the context.
    from_x = [(n, "query") for n in names] + (
        [("self_attn", "key"), ("self_attn", "value")]
        if self.self_attention else [])
    from_c = ([("cross_attn", "key"), ("cross_attn", "value")]
              if self.cross_attention else [])
    proj = {}
    for inp, keys in ((x, from_x), (context, from_c)):
      if not keys:
        continue
      w = jnp.concatenate([p[n][k][0] for n, k in keys], axis=1)
      b = jnp.concatenate([p[n][k][1] for n, k in keys])
      out = (inp.astype(self.dtype) @ w.astype(self.dtype)) + b.astype(
          self.dtype)
      for (n, k), o in zip(keys, jnp.split(out, len(keys), axis=-1)):
        proj[n, k] = o.reshape(o.shape[:-1] + (self.num_heads, -1))
    mask = key_padding_mask(segment_mask)
    heads = []
    for n in names:
      q, k, v = (proj[n, "query"], proj[n, "key"], proj[n, "value"])
      q = q / jnp.sqrt(q.shape[-1]).astype(q.dtype)
      w = jnp.einsum("...qhd,...khd->...hqk", q, k)
      if mask is not None:
        w = jnp.where(mask, w, jnp.finfo(w.dtype).min)
      w = jax.nn.softmax(w).astype(self.dtype)
      if not det and self.dropout > 0.0:
        keep = jax.random.bernoulli(self.make_rng("dropout"),
                                    1.0 - self.dropout, (1, 1) + w.shape[-2:])
        w = w * (keep.astype(w.dtype) / (1.0 - self.dropout))
      o = jnp.einsum("...hqk,...khd->...qhd", w, v)
      heads.append(o.reshape(o.shape[:-2] + (-1,)))
    wo = jnp.stack([p[n]["out"][0] for n in names]).astype(self.dtype)
    bo = jnp.stack([p[n]["out"][1] for n in names]).astype(self.dtype)
    out = jnp.einsum("nbti,nio->nbto", jnp.stack(heads), wo) + bo[:, None,
                                                                  None]
    return dict(zip(names, out))

  @nn.compact
  def __call__(self, x: jnp.ndarray, context: jnp.ndarray,
               segment_mask: Optional[jnp.ndarray] = None, *,
               train: bool) -> jnp.ndarray:
    """x, context: [B, T, d]; segment_mask: [B, T] -> [B, T, d]."""
    det = not train
    y = x
    if self.fused and not self.global_context:
      att = self._fused_attn(x, context, segment_mask, det)
    else:
      att = {}
      if self.cross_attention:
        att["cross_attn"] = self._attn("cross_attn", x, context,
                                       segment_mask, det)
      if self.self_attention:
        att["self_attn"] = self._attn("self_attn", x, x, segment_mask, det)
    for name in ("cross_attn", "self_attn"):
      if name in att:
        y = y + nn.Dropout(self.dropout)(att[name], deterministic=det)
    y = nn.LayerNorm(dtype=self.dtype, name="norm1")(y)
    h = nn.relu(nn.Dense(self.d_ff, dtype=self.dtype, name="ffn1")(y))
    h = nn.Dropout(self.dropout)(h, deterministic=det)
    h = nn.Dense(self.d_model, dtype=self.dtype, name="ffn2")(h)
    y = y + nn.Dropout(self.dropout)(h, deterministic=det)
    return nn.LayerNorm(dtype=self.dtype, name="norm2")(y)

"""Hybrid (self + cross-modal) attention of HAN, usable by later models."""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import gcaa
from avjax.models import inits


def key_padding_mask(segment_mask: Optional[jnp.ndarray]):
  """[B, T] (1 = real segment) -> attention mask [B, 1, T, T] or None."""
  if segment_mask is None:
    return None
  m = segment_mask.astype(bool)
  return m[:, None, None, :] & jnp.ones_like(m)[:, None, :, None]


def keep_masks(rng: jax.Array, rate: float, shapes: Sequence[Sequence[int]]
               ) -> Tuple[List[jnp.ndarray], float]:
  """Dropout keep masks of several shapes from ONE draw of random words.

  Each 32-bit word gives two 16-bit uniforms, so the masks cost half the
  random bits of `jax.random.bernoulli` (float32 uniforms) and one PRNG call
  instead of one per mask. The keep probability is quantised to 1/65536
  (rate 0.1 -> 0.1000061); it is returned so that callers rescale by exactly
  the probability the masks have.
  """
  threshold = int(round((1.0 - rate) * 65536))
  sizes = [int(np.prod(sh)) for sh in shapes]
  n = sum(sizes)
  words = jax.random.bits(rng, ((n + 1) // 2,), jnp.uint32)
  u = jnp.concatenate([words & 0xFFFF, words >> 16])[:n]
  keep = u < threshold
  parts = jnp.split(keep, np.cumsum(sizes)[:-1])
  return ([m.reshape(sh) for m, sh in zip(parts, shapes)],
          threshold / 65536.0)


# (branch, projection) pairs of the fused layout, in kernel column order.
def _fused_keys(cross: bool, self_attn: bool):
  """Projections read from x, read from the context, and the branches."""
  names = [n for n, on in (("cross_attn", cross), ("self_attn", self_attn))
           if on]
  from_x = [(n, "query") for n in names] + (
      [("self_attn", "key"), ("self_attn", "value")] if self_attn else [])
  from_c = [("cross_attn", "key"), ("cross_attn", "value")] if cross else []
  return from_x, from_c, names


def fuse_params(params: Dict[str, Any], cross: bool = True,
                self_attn: bool = True) -> Dict[str, Any]:
  """A `fused=False` layer's parameters (nn.MultiHeadDotProductAttention
  trees `cross_attn`/`self_attn`) in the `fused=True` layout (exact; e.g. to
  load an unfused checkpoint into a fused model)."""
  from_x, from_c, names = _fused_keys(cross, self_attn)
  out = {k: v for k, v in params.items() if k not in names}
  flat = lambda a, lead: a.reshape(a.shape[:lead] + (-1,))
  for key, parts in (("fused_x", from_x), ("fused_ctx", from_c)):
    if parts:
      out[f"{key}_kernel"] = jnp.concatenate(
          [flat(params[n][k]["kernel"], 1) for n, k in parts], axis=1)
      out[f"{key}_bias"] = jnp.concatenate(
          [params[n][k]["bias"].reshape(-1) for n, k in parts])
  d = params[names[0]]["out"]["bias"].shape[-1]
  out["fused_out_kernel"] = jnp.stack(
      [params[n]["out"]["kernel"].reshape(-1, d) for n in names])
  out["fused_out_bias"] = jnp.stack([params[n]["out"]["bias"]
                                     for n in names])
  return out


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
    gcaa_first_segment: with `global_context`, add segment 0's attention
      output to every segment (the official code's `[0]`, `gcaa`).
    fused: compute the multi-head attention of both branches with one input
      projection matmul per stream (x: cross query + self q, k, v; context:
      cross k, v) and one batched output projection, instead of eight
      separate matmuls, from parameters stored in that fused layout (no
      per-step weight concatenation). Same function and initialisation as
      nn.MultiHeadDotProductAttention (tested through `fuse_params`, which
      also converts an unfused layer's parameters); fewer, larger kernels
      (faster on CPU). `fused=False` keeps flax's parameter tree.
    init_scheme: parameter initialisers, `inits.SCHEMES` ("torch": PyTorch's
      nn.MultiheadAttention / nn.Linear defaults, the reference's).
    dtype: computation dtype.
  """
  d_model: int = 512
  num_heads: int = 1
  d_ff: int = 512
  dropout: float = 0.1
  cross_attention: bool = True
  self_attention: bool = True
  global_context: bool = False
  gcaa_first_segment: bool = False
  fused: bool = True
  init_scheme: str = "torch"
  dtype: Any = jnp.float32

  def _attn(self, name, q, kv, segment_mask, det):
    """Attention of q over kv: [B, T, d] each -> [B, T, d]."""
    kw = dict(num_heads=self.num_heads, qkv_features=self.d_model,
              out_features=self.d_model, dropout_rate=self.dropout,
              dtype=self.dtype, name=name)
    if self.global_context:
      return gcaa.GlobalContextAttention(
          **kw, init_scheme=self.init_scheme,
          first_segment=self.gcaa_first_segment)(
              q, kv, segment_mask, deterministic=det)
    if self.init_scheme != "flax":
      kw.update(
          kernel_init=inits.attention_in(self.init_scheme, self.d_model),
          out_kernel_init=inits.attention_out(self.init_scheme, self.d_model))
    # Dropout masks drawn per batch element and head, as PyTorch's.
    return nn.MultiHeadDotProductAttention(**kw, broadcast_dropout=False)(
        q, kv, mask=key_padding_mask(segment_mask), deterministic=det)

  def _fused_attn(self, x, context, segment_mask, det):
    """Both branches' attention outputs {name: [B, T, d]}, fused matmuls.

    The parameters are stored fused (`fuse_params` maps the unfused layout):
    `fused_x` [d, n_x*d] = [cross q | self q, k, v] read from x,
    `fused_ctx` [d, 2d] = [cross k, v] read from the context, `fused_out`
    [n_branch, d, d] (initialised as one attention's projections of the
    `init_scheme`: torch's xavier in_proj / Linear out_proj with zero
    biases, or flax's per-projection DenseGeneral: LeCun normal with fan-in
    d, zero bias), so no weight concatenation runs per step. The attention
    weights' dropout mask is drawn per batch element, head and stream, as
    PyTorch's nn.MultiheadAttention does.
    """
    from_x, from_c, names = _fused_keys(self.cross_attention,
                                        self.self_attention)
    d, h = self.d_model, self.num_heads
    w_in = inits.attention_in(self.init_scheme, d)
    proj = {}
    for inp, keys, pname in ((x, from_x, "fused_x"),
                             (context, from_c, "fused_ctx")):
      if not keys:
        continue
      w = self.param(f"{pname}_kernel", w_in, (d, len(keys) * d))
      b = self.param(f"{pname}_bias", nn.initializers.zeros,
                     (len(keys) * d,))
      out = (inp.astype(self.dtype) @ w.astype(self.dtype)) + b.astype(
          self.dtype)
      for (n, k), o in zip(keys, jnp.split(out, len(keys), axis=-1)):
        proj[n, k] = o.reshape(o.shape[:-1] + (h, -1))
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
                                    1.0 - self.dropout, w.shape)
        w = w * (keep.astype(w.dtype) / (1.0 - self.dropout))
      o = jnp.einsum("...hqk,...khd->...qhd", w, v)
      heads.append(o.reshape(o.shape[:-2] + (-1,)))
    wo = self.param("fused_out_kernel", inits.attention_out(
        self.init_scheme, d, in_axis=-2, out_axis=-1, batch_axis=(0,)),
                    (len(names), d, d))
    bo = self.param("fused_out_bias", nn.initializers.zeros, (len(names), d))
    out = jnp.einsum("nbti,nio->nbto", jnp.stack(heads),
                     wo.astype(self.dtype)) + bo.astype(self.dtype)[:, None,
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
    names = [n for n in ("cross_attn", "self_attn") if n in att]
    fast = self.fused and not det and self.dropout > 0.0
    if fast:  # all of the layer's dropout masks from one draw
      shape = x.shape[:-1]
      masks, keep = keep_masks(
          self.make_rng("dropout"), self.dropout,
          [shape + (self.d_model,)] * len(names) + [shape + (self.d_ff,),
                                                     shape + (self.d_model,)])
      drop = lambda i, v: v * (masks[i].astype(v.dtype) / jnp.asarray(
          keep, v.dtype))
    else:
      drop = lambda i, v: nn.Dropout(self.dropout)(v, deterministic=det)
    for i, name in enumerate(names):
      y = y + drop(i, att[name])
    y = nn.LayerNorm(dtype=self.dtype, name="norm1")(y)
    h = nn.relu(nn.Dense(self.d_ff, dtype=self.dtype, name="ffn1",
                         **inits.linear(self.init_scheme, y.shape[-1]))(y))
    h = drop(len(names), h)
    h = nn.Dense(self.d_model, dtype=self.dtype, name="ffn2",
                 **inits.linear(self.init_scheme, h.shape[-1]))(h)
    y = y + drop(len(names) + 1, h)
    return nn.LayerNorm(dtype=self.dtype, name="norm2")(y)

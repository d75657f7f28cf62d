"""Audio-visual fusion modules of the AVE paper's Table 2, keyed by name.

Every module maps audio features a [..., Da] and visual features v [..., Dv]
to one joint representation [..., out_dim]; Da may differ from Dv (early
fusion fuses raw audio with attended visual features). Baselines follow
Kiela et al. 2018 (additive, max-pooling, gated, bilinear, gated bilinear),
Arevalo et al. 2017 (GMU) and Kim et al. 2016 (MRN); DMRN is the AVE paper's
dual multimodal residual network (Eqs. 5-6, reference code: U = Dense-tanh-
Dense, merged = (U_a(a) + U_v(v)) / 2, a' = tanh(a + merged), v' = tanh(v +
merged), output (a' + v') / 2), stackable as `num_blocks` blocks. DMRFE
(the DMRN ensemble) is built by `ave_net` from DMRN branches.

The multiplicative fusions (bilinear, gated bilinear, MRN: every term that
sees the visual input is a product of two learned maps) layer-normalise
their two inputs first (`input_norm`, default on). Their output scales with
the product of the input scales, and the inputs differ by stage: early
fusion gets the raw audio and the attended visual features (rms ~1.0 and
~0.55 on the synthetic default), late fusion the BiLSTM outputs (o *
tanh(c), rms ~0.2 at init), where tanh(U h) is nearly linear and the fused
output came out at rms 0.036 (concat: 0.2). Without the normalisation the
late bilinear / gated-bilinear / MRN rows scored 66.9 / 62.5 / 66.8 against
78.4 / 81.1 / 73.0 early (seed 0); `input_norm=False` is that old form.
"""

from typing import Callable, Dict

import flax.linen as nn
import jax.numpy as jnp

from avjax.models import inits


class _Projected(nn.Module):
  """Base: both inputs projected to `dim` (Dense) before combining."""
  dim: int = 128

  def project(self, a, v, act: Callable = lambda x: x):
    return (act(nn.Dense(self.dim, name="proj_a")(a)),
            act(nn.Dense(self.dim, name="proj_v")(v)))


class Additive(_Projected):
  """W_a a + W_v v."""

  @nn.compact
  def __call__(self, a, v):
    pa, pv = self.project(a, v)
    return pa + pv


class MaxPooling(_Projected):
  """Element-wise max(W_a a, W_v v)."""

  @nn.compact
  def __call__(self, a, v):
    return jnp.maximum(*self.project(a, v))


class Gated(_Projected):
  """Audio gated by visual and visual by audio: tanh(W_a a) * sig(G_v v) +
  tanh(W_v v) * sig(G_a a) (Kiela et al.'s gating, made symmetric)."""

  @nn.compact
  def __call__(self, a, v):
    pa, pv = self.project(a, v, jnp.tanh)
    ga = nn.sigmoid(nn.Dense(self.dim, name="gate_a")(a))
    gv = nn.sigmoid(nn.Dense(self.dim, name="gate_v")(v))
    return pa * gv + pv * ga


def _norm(a, v, on: bool):
  """(LayerNorm(a), LayerNorm(v)) when `on`, else (a, v)."""
  if not on:
    return a, v
  return nn.LayerNorm(name="norm_a")(a), nn.LayerNorm(name="norm_v")(v)


class Bilinear(_Projected):
  """Low-rank multimodal bilinear pooling: P(tanh(U a) * tanh(V v)), on
  layer-normalised a, v when `input_norm`."""
  input_norm: bool = True

  @nn.compact
  def __call__(self, a, v):
    a, v = _norm(a, v, self.input_norm)
    pa, pv = self.project(a, v, jnp.tanh)
    return nn.Dense(self.dim, name="out")(pa * pv)


class GMU(_Projected):
  """Gated multimodal unit: z * tanh(W_a a) + (1 - z) * tanh(W_v v),
  z = sigmoid(W_z [a; v])."""

  @nn.compact
  def __call__(self, a, v):
    pa, pv = self.project(a, v, jnp.tanh)
    z = nn.sigmoid(nn.Dense(self.dim, name="gate")(
        jnp.concatenate([a, v], -1)))
    return z * pa + (1 - z) * pv


class GatedBilinear(_Projected):
  """Bilinear term gated by the concatenated inputs:
  P(sigmoid(W_g [a; v]) * tanh(U a) * tanh(V v)), on layer-normalised a, v
  when `input_norm`."""
  input_norm: bool = True

  @nn.compact
  def __call__(self, a, v):
    a, v = _norm(a, v, self.input_norm)
    pa, pv = self.project(a, v, jnp.tanh)
    g = nn.sigmoid(nn.Dense(self.dim, name="gate")(
        jnp.concatenate([a, v], -1)))
    return nn.Dense(self.dim, name="out")(g * pa * pv)


class Concat(nn.Module):
  """[a; v] (no parameters; out_dim = Da + Dv)."""
  dim: int = 128

  @nn.compact
  def __call__(self, a, v):
    return jnp.concatenate([a, v], -1)


def _match(x, dim, name):
  """x itself when its width is `dim`, else a Dense projection to `dim`."""
  return x if x.shape[-1] == dim else nn.Dense(dim, name=name)(x)


class MRN(nn.Module):
  """Multimodal residual network (Kim et al. 2016), audio as the residual
  branch: a <- W_s a + tanh(W_a a) * tanh(W_2 tanh(W_1 v)), per block, on
  layer-normalised a, v when `input_norm`."""
  dim: int = 128
  num_blocks: int = 1
  input_norm: bool = True

  @nn.compact
  def __call__(self, a, v):
    a, v = _norm(a, v, self.input_norm)
    h = _match(a, self.dim, "in_a")
    for i in range(self.num_blocks):
      fv = jnp.tanh(nn.Dense(self.dim, name=f"v2_{i}")(
          jnp.tanh(nn.Dense(self.dim, name=f"v1_{i}")(v))))
      h = nn.Dense(self.dim, name=f"shortcut_{i}")(h) + jnp.tanh(
          nn.Dense(self.dim, name=f"a_{i}")(h)) * fv
    return h


class DMRNBlock(nn.Module):
  """One DMRN block: (a', v') = tanh(a + m), tanh(v + m), m = (U_a a +
  U_v v) / 2, U = Dense-tanh-Dense."""
  dim: int = 128
  init_scheme: str = "flax"  # "torch": TBMRF_Net's U_a/U_v (Linear defaults)

  @nn.compact
  def __call__(self, a, v):
    def u(x, n):
      h = jnp.tanh(nn.Dense(self.dim, name=f"{n}1", **inits.linear(
          self.init_scheme, x.shape[-1]))(x))
      return nn.Dense(self.dim, name=f"{n}2",
                      **inits.linear(self.init_scheme, self.dim))(h)
    merged = (u(a, "u_a") + u(v, "u_v")) / 2
    return jnp.tanh(a + merged), jnp.tanh(v + merged)


class DMRN(nn.Module):
  """Dual multimodal residual network: `num_blocks` stacked DMRN blocks;
  output (a' + v') / 2. Inputs of another width are projected to `dim`."""
  dim: int = 128
  num_blocks: int = 1
  init_scheme: str = "flax"

  @nn.compact
  def __call__(self, a, v):
    a, v = _match(a, self.dim, "in_a"), _match(v, self.dim, "in_v")
    for i in range(self.num_blocks):
      a, v = DMRNBlock(self.dim, self.init_scheme, name=f"block_{i}")(a, v)
    return (a + v) / 2


FUSIONS: Dict[str, type] = {
    "additive": Additive, "max_pooling": MaxPooling, "gated": Gated,
    "bilinear": Bilinear, "gmu": GMU, "gated_bilinear": GatedBilinear,
    "concat": Concat, "mrn": MRN, "dmrn": DMRN,
}
STACKABLE = ("mrn", "dmrn")
# Fusions with the `input_norm` switch (see the module docstring).
NORMED = ("bilinear", "gated_bilinear", "mrn")
# Names with the DMRN ensemble, which `ave_net` assembles from DMRN branches.
NAMES = tuple(FUSIONS) + ("dmrfe",)


def make(kind: str, dim: int, num_blocks: int = 1, input_norm: bool = True,
         **kw) -> nn.Module:
  """The fusion module `kind` (one of FUSIONS) with width `dim`;
  `input_norm` applies to the NORMED kinds only; `kw` goes to the module
  (e.g. its flax `name`)."""
  if kind not in FUSIONS:
    raise ValueError(f"unknown fusion {kind!r}; valid: {sorted(FUSIONS)}")
  if kind in NORMED:
    kw["input_norm"] = input_norm
  if kind in STACKABLE:
    return FUSIONS[kind](dim=dim, num_blocks=num_blocks, **kw)
  if num_blocks != 1:
    raise ValueError(f"fusion {kind!r} has no blocks to stack "
                     f"(num_blocks={num_blocks}); stackable: {STACKABLE}")
  return FUSIONS[kind](dim=dim, **kw)


def out_dim(kind: str, dim: int, da: int, dv: int) -> int:
  """Width of the fused representation."""
  return da + dv if kind == "concat" else dim

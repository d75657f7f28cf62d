"""Modality discriminator of cross-modal learning (Lamba et al. 2021) and the
gradient reversal layer in front of it (Ganin & Lempitsky 2015)."""

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax.models import inits


@jax.custom_vjp
def gradient_reversal(x: jnp.ndarray, scale) -> jnp.ndarray:
  """Identity forward; the backward pass multiplies the gradient by -scale.

  Args:
    x: any array.
    scale: scalar (Python float or array); receives no gradient.

  Returns:
    x unchanged.
  """
  del scale
  return x


def _grl_fwd(x, scale):
  return x, scale


def _grl_bwd(scale, g):
  return (-scale * g).astype(g.dtype), jnp.zeros_like(scale)


gradient_reversal.defvjp(_grl_fwd, _grl_bwd)


NORMS = ("layer", "batch")


class TorchBatchNorm(nn.Module):
  """BatchNorm1d over every row of [..., d] as PyTorch's (the reference's).

  Training: normalise with the (masked) batch mean and biased variance of all
  rows; the running statistics (collection `batch_stats`: `mean`, `var`)
  move by `momentum` towards the batch mean and the UNBIASED variance (n/(n-1),
  as torch). Evaluation: the running statistics.

  Attributes:
    momentum: torch's momentum (new = (1 - m) old + m batch).
    epsilon: added to the variance (torch 1e-5).
    dtype: computation dtype.
  """
  momentum: float = 0.1
  epsilon: float = 1e-5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, row_weights: Optional[jnp.ndarray] = None,
               *, train: bool, update_stats: bool = True) -> jnp.ndarray:
    """x: [..., d]; row_weights: [...] (1 = a real row) or None -> [..., d].

    update_stats=False normalises with the batch statistics but leaves the
    running ones unchanged (a second call on the same rows)."""
    d = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (d,))
    bias = self.param("bias", nn.initializers.zeros, (d,))
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (d,),
                            jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (d,), jnp.float32)
    xf = x.astype(jnp.float32).reshape(-1, d)
    if train:
      w = (jnp.ones(xf.shape[:1], jnp.float32) if row_weights is None else
           row_weights.astype(jnp.float32).reshape(-1))[:, None]
      n = jnp.maximum(w.sum(), 1.0)
      mean = (w * xf).sum(0) / n
      var = (w * jnp.square(xf - mean)).sum(0) / n
      if update_stats and not self.is_initializing():
        m = self.momentum
        ra_mean.value = (1.0 - m) * ra_mean.value + m * mean
        ra_var.value = (1.0 - m) * ra_var.value + m * var * n / jnp.maximum(
            n - 1.0, 1.0)
    else:
      mean, var = ra_mean.value, ra_var.value
    y = (xf - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
    return y.reshape(x.shape).astype(self.dtype)


class ModalityDiscriminator(nn.Module):
  """MLP d -> 128 (norm, ReLU) -> 10 (norm, ReLU) -> 1 logit per feature.

  The reference code (nets/net_audiovisual*.py, `Modality_classifier`) uses
  BatchNorm1d over all B*T*2 feature rows (`norm="batch"`, running
  statistics in the `batch_stats` collection); `norm="layer"` is avjax's
  earlier stand-in (no running statistics, same train/eval path).

  Attributes:
    hidden: widths of the hidden layers (paper: 128, 10).
    norm: "layer" or "batch" (reference: `TorchBatchNorm`).
    init_scheme: parameter initialisers (`inits.SCHEMES`).
    dtype: computation dtype (the logits are float32).
  """
  hidden: Sequence[int] = (128, 10)
  norm: str = "layer"
  init_scheme: str = "torch"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, row_weights: Optional[jnp.ndarray] = None,
               *, train: bool = False, update_stats: bool = True
               ) -> jnp.ndarray:
    """x: [..., d] features -> [...] logits (target 0 audio, 1 visual).

    row_weights [...] (1 = real row) and update_stats only matter for
    norm="batch" while training (`TorchBatchNorm`)."""
    if self.norm not in NORMS:
      raise ValueError(f"norm={self.norm!r}; valid: {NORMS}")
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, dtype=self.dtype, name=f"dense_{i}",
                   **inits.linear(self.init_scheme, x.shape[-1]))(x)
      if self.norm == "batch":
        x = TorchBatchNorm(dtype=self.dtype, name=f"norm_{i}")(
            x, row_weights, train=train, update_stats=update_stats)
      else:
        x = nn.LayerNorm(dtype=self.dtype, name=f"norm_{i}")(x)
      x = nn.relu(x)
    x = nn.Dense(1, dtype=self.dtype, name="logit",
                 **inits.linear(self.init_scheme, x.shape[-1]))(x)
    return x[..., 0].astype(jnp.float32)

"""Modality discriminator of cross-modal learning (Lamba et al. 2021) and the
gradient reversal layer in front of it (Ganin & Lempitsky 2015)."""

from typing import Any, Sequence

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


class ModalityDiscriminator(nn.Module):
  """MLP d -> 128 (norm, ReLU) -> 10 (norm, ReLU) -> 1 logit per feature.

  The paper uses BatchNorm; avjax's TrainState carries no `batch_stats`, so
  LayerNorm stands in for it (no running statistics, same train/eval path).

  Attributes:
    hidden: widths of the hidden layers (paper: 128, 10).
    init_scheme: parameter initialisers (`inits.SCHEMES`).
    dtype: computation dtype (the logits are float32).
  """
  hidden: Sequence[int] = (128, 10)
  init_scheme: str = "torch"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: [..., d] features -> [...] logits (target 0 audio, 1 visual)."""
    for i, width in enumerate(self.hidden):
      x = nn.Dense(width, dtype=self.dtype, name=f"dense_{i}",
                   **inits.linear(self.init_scheme, x.shape[-1]))(x)
      x = nn.relu(nn.LayerNorm(dtype=self.dtype, name=f"norm_{i}")(x))
    x = nn.Dense(1, dtype=self.dtype, name="logit",
                 **inits.linear(self.init_scheme, x.shape[-1]))(x)
    return x[..., 0].astype(jnp.float32)

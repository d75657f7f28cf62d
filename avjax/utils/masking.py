"""The masked mean every model, loss and metric uses (one definition)."""

import jax.numpy as jnp


def masked_mean(x: jnp.ndarray, weights: jnp.ndarray, axis=None,
                keepdims: bool = False) -> jnp.ndarray:
  """sum(x * w) / max(sum(w), 1) over `axis` (all axes by default).

  The mean of the weighted entries of `x` (`weights` broadcasts against it:
  0/1 masks or per-entry weights); 0 where nothing has weight.
  """
  return (x * weights).sum(axis, keepdims=keepdims) / jnp.maximum(
      weights.sum(axis, keepdims=keepdims), 1.0)

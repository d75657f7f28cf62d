"""Contrastive loss with a margin (Hadsell et al. 2006; AVE paper Eq. 10)."""

from typing import Optional

import jax.numpy as jnp

from avjax.models import avdln
from avjax.utils import masking


# The distance is the model's output (models/ must not import losses/).
euclidean = avdln.euclidean


def contrastive(distance: jnp.ndarray, same: jnp.ndarray,
                margin: float = 2.0,
                weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Mean of y D^2 + (1 - y) max(0, margin - D)^2.

  distance: [...] >= 0; same: [...] 1 for matching pairs, 0 otherwise;
  weights: optional [...] (0 drops a pair).
  """
  y = same.astype(jnp.float32)
  per = y * distance**2 + (1 - y) * jnp.maximum(0.0, margin - distance)**2
  if weights is None:
    return per.mean()
  return masking.masked_mean(per, weights)

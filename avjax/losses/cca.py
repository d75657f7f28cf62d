"""Deep CCA objective (Andrew et al. 2013) and a linear CCA fit (NumPy)."""

from typing import Tuple

import jax.numpy as jnp
import numpy as np


def _inv_sqrt(s, xp):
  d, v = xp.linalg.eigh(s)
  return (v * (1.0 / xp.sqrt(xp.maximum(d, 1e-9)))) @ v.T


def _covariances(x, y, w, reg, xp):
  n = xp.maximum(w.sum(), 2.0)
  mx, my = (w[:, None] * x).sum(0) / n, (w[:, None] * y).sum(0) / n
  xc, yc = (x - mx) * w[:, None], (y - my) * w[:, None]
  eye = lambda k: xp.eye(k, dtype=x.dtype)
  s11 = xc.T @ xc / (n - 1) + reg * eye(x.shape[1])
  s22 = yc.T @ yc / (n - 1) + reg * eye(y.shape[1])
  return s11, s22, xc.T @ yc / (n - 1), mx, my


def dcca_loss(x: jnp.ndarray, y: jnp.ndarray, weights: jnp.ndarray,
              reg: float = 1e-3) -> jnp.ndarray:
  """Minus the total canonical correlation of paired rows x [N, k], y [N, k]
  (rows with weight 0 are ignored): -sum of the singular values of
  S11^-1/2 S12 S22^-1/2."""
  s11, s22, s12, _, _ = _covariances(x, y, weights.astype(x.dtype), reg, jnp)
  t = _inv_sqrt(s11, jnp) @ s12 @ _inv_sqrt(s22, jnp)
  return -jnp.linalg.svd(t, compute_uv=False).sum()


def fit_cca(x: np.ndarray, y: np.ndarray, dim: int, reg: float = 1e-3
            ) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray,
                                                               np.ndarray]]:
  """Linear CCA of paired rows: ((mean_x, W_x), (mean_y, W_y)) projecting
  to the top `dim` canonical directions (whitened: unit variance)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  s11, s22, s12, mx, my = _covariances(x, y, np.ones(len(x)), reg, np)
  a, b = _inv_sqrt(s11, np), _inv_sqrt(s22, np)
  u, _, vt = np.linalg.svd(a @ s12 @ b)
  return (mx, a @ u[:, :dim]), (my, b @ vt.T[:, :dim])

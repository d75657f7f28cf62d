"""Per-segment feature projections shared by the AVVP models."""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from avjax.models import inits


def pool_frames(x: jnp.ndarray, frames_per_segment: int) -> jnp.ndarray:
  """Averages each group of F frames: [B, T*F, D] -> [B, T, D]."""
  b, tf, d = x.shape
  return x.reshape(b, tf // frames_per_segment, frames_per_segment, d).mean(2)


class VisualProjection(nn.Module):
  """2D frame features (+ optional 3D motion features) -> one visual stream.

  Reference HAN: Dense 2048->d on frames, mean over each segment's frames,
  Dense Dm->d on motion, concat, Dense 2d->d. Because the frame mean commutes
  with the affine projection, `pool_first=True` averages first (F times fewer
  FLOPs in the largest layer) with identical parameters and, up to float
  rounding, identical outputs.

  Attributes:
    d_model: output width d.
    frames_per_segment: F.
    pool_first: average frames before the projection (exact rewrite).
    dtype: computation dtype (e.g. jnp.bfloat16); parameters stay float32.
    init_scheme: parameter initialisers (`inits.SCHEMES`).
  """
  d_model: int = 512
  frames_per_segment: int = 8
  pool_first: bool = True
  dtype: Any = jnp.float32
  init_scheme: str = "torch"

  def _dense(self, name, x):
    return nn.Dense(self.d_model, dtype=self.dtype, name=name,
                    **inits.linear(self.init_scheme, x.shape[-1]))

  @nn.compact
  def __call__(self, frames: Optional[jnp.ndarray],
               motion: Optional[jnp.ndarray]) -> jnp.ndarray:
    """frames: [B, T*F, Dv] or None; motion: [B, T, Dm] or None -> [B, T, d]."""
    parts = []
    if frames is not None:
      dense = self._dense("frame_proj", frames)
      if self.pool_first:
        parts.append(dense(pool_frames(frames, self.frames_per_segment)))
      else:
        parts.append(pool_frames(dense(frames), self.frames_per_segment))
    if motion is not None:
      parts.append(self._dense("motion_proj", motion)(motion))
    if not parts:
      raise ValueError("VisualProjection needs frames and/or motion features")
    if len(parts) == 1:
      return parts[0]
    x = jnp.concatenate(parts, axis=-1)
    return self._dense("fusion", x)(x)

"""The feature onset rule: audio features [..., T, D] -> onsets [..., T].

With the segment energy e_t = ||a_t|| / sqrt(D), segment t > 0 is an onset
when e_t - e_{t-1} > threshold * mean_t(e) over the valid segments (a
relative energy rise); segment 0 never is. Pure NumPy / jax.numpy, so it is
shared by the data tools (`avjax.data.onsets`, the synthetic event set) and
the model graph (`avjax.models.event_heads`).
"""

import numpy as np


def feature_onsets(audio, segment_mask=None, threshold: float = 0.25,
                   xp=np):
  """The feature rule (module docstring): audio [..., T, D] -> [..., T] 0/1.

  `segment_mask` [..., T] (1 = valid) excludes padding from the mean energy
  and from the result. `xp` is numpy or jax.numpy.
  """
  d = audio.shape[-1]
  energy = xp.sqrt((audio.astype(xp.float32) ** 2).sum(-1) / d)
  mask = (xp.ones(energy.shape, xp.float32) if segment_mask is None
          else segment_mask.astype(xp.float32))
  mean = (energy * mask).sum(-1, keepdims=True) / xp.maximum(
      mask.sum(-1, keepdims=True), 1.0)
  rise = energy[..., 1:] - energy[..., :-1]
  hit = (rise > threshold * mean).astype(xp.float32) * mask[..., 1:]
  zero = xp.zeros(hit.shape[:-1] + (1,), xp.float32)
  return xp.concatenate([zero, hit], axis=-1)

"""Gradient reversal, its DANN schedule and the modality-discriminator loss.

Cross-modal learning (Lamba et al. 2021) trains a modality discriminator on
the fused per-segment features through a gradient reversal layer (Ganin &
Lempitsky 2015) whose scale follows alpha(p) = 2 / (1 + exp(-10 p)) - 1.
The reversal op itself is defined with the discriminator
(`avjax.models.discriminator.gradient_reversal`) and re-exported here.
"""

from typing import Dict, Optional

import jax.numpy as jnp

from avjax.models import discriminator
from avjax.utils import masking


# The reversal op is part of the model's graph (models/ must not import
# losses/); re-exported here for the loss-side callers.
gradient_reversal = discriminator.gradient_reversal


def dann_scale(progress) -> jnp.ndarray:
  """DANN schedule 2 / (1 + exp(-10 p)) - 1 for progress p in [0, 1]."""
  p = jnp.clip(jnp.asarray(progress, jnp.float32), 0.0, 1.0)
  return 2.0 / (1.0 + jnp.exp(-10.0 * p)) - 1.0


def modality_targets(shape) -> jnp.ndarray:
  """[..., 2] targets for [..., 2] logits: 0 for audio, 1 for visual."""
  return jnp.broadcast_to(jnp.array([0.0, 1.0], jnp.float32), shape)


def discriminator_bce(logits: jnp.ndarray,
                      segment_mask: Optional[jnp.ndarray] = None,
                      weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Mean BCE-with-logits of the modality discriminator.

  Args:
    logits: [B, T, 2] discriminator logits of the audio (index 0, target 0)
      and visual (index 1, target 1) features of each segment.
    segment_mask: optional [B, T], 1 for real segments.
    weights: optional [B] per-example weights (the `_mask` of padded batches).

  Returns:
    Scalar mean over valid (example, segment, modality) entries.
  """
  z = logits.astype(jnp.float32)
  y = modality_targets(z.shape)
  per = jnp.maximum(z, 0.0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))
  return _masked_mean(per, segment_mask, weights)


def discriminator_accuracy(logits: jnp.ndarray,
                           segment_mask: Optional[jnp.ndarray] = None,
                           weights: Optional[jnp.ndarray] = None
                           ) -> jnp.ndarray:
  """Fraction of valid [B, T, 2] logits on the right side of 0."""
  z = logits.astype(jnp.float32)
  correct = ((z > 0).astype(jnp.float32) == modality_targets(z.shape))
  return _masked_mean(correct.astype(jnp.float32), segment_mask, weights)


def _masked_mean(per: jnp.ndarray, segment_mask, weights) -> jnp.ndarray:
  """Mean of [B, T, 2] values over valid segments and weighted examples."""
  w = jnp.ones(per.shape[:2], jnp.float32)
  if segment_mask is not None:
    w = w * segment_mask.astype(jnp.float32)
  if weights is not None:
    w = w * weights.astype(jnp.float32)[:, None]
  w = jnp.broadcast_to(w[..., None], per.shape)
  return masking.masked_mean(per, w)


def adversarial_terms(out: Dict[str, jnp.ndarray], step, total_steps: int,
                      segment_mask: Optional[jnp.ndarray] = None,
                      max_scale: float = 1.0) -> Dict[str, jnp.ndarray]:
  """Discriminator loss whose feature gradient is reversed and scaled.

  The model returns `disc_logits` (discriminator on gradient-reversed
  features, reversal scale 1) and `disc_logits_detached` (same forward value,
  features under stop_gradient). With alpha = dann_scale(step / total_steps),
    loss_disc = alpha * BCE(disc_logits) + (1 - alpha) * BCE(detached)
  equals BCE in value, gives the discriminator its full gradient and the
  features -alpha times theirs: a reversal layer of scale alpha, with the
  training step known only to the loss.

  Args:
    out: model outputs with `disc_logits`, `disc_logits_detached` [B, T, 2].
    step: current training step (scalar; None means alpha = 1).
    total_steps: steps of the whole run.
    segment_mask: optional [B, T].
    max_scale: multiplies alpha (0: no reversal, the discriminator alone is
      trained; a control for the adversarial game).

  Returns:
    {"loss_disc", "disc_acc", "grl_scale"} scalars.
  """
  if step is None:
    alpha = jnp.float32(1.0)
  else:
    alpha = dann_scale(jnp.asarray(step, jnp.float32) / max(total_steps, 1))
  alpha = max_scale * alpha
  rev = discriminator_bce(out["disc_logits"], segment_mask)
  det = discriminator_bce(out["disc_logits_detached"], segment_mask)
  return {"loss_disc": alpha * rev + (1.0 - alpha) * det,
          "disc_acc": discriminator_accuracy(out["disc_logits"], segment_mask),
          "grl_scale": alpha}

"""Binary cross-entropy on probabilities, with HAN's clamping and smoothing."""

from typing import Optional

import jax.numpy as jnp

EPS = 1e-7


def bce(prob: jnp.ndarray, target: jnp.ndarray,
        weights: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Mean BCE of probabilities clamped to [1e-7, 1 - 1e-7].

  prob, target: [B, C]; weights: optional [B] per-example weights (e.g. the
  `_mask` of padded batches). Returns a scalar: mean over classes and
  (weighted) examples, like torch.nn.BCELoss.
  """
  p = jnp.clip(prob.astype(jnp.float32), EPS, 1.0 - EPS)
  per = -(target * jnp.log(p) + (1.0 - target) * jnp.log1p(-p)).mean(-1)
  if weights is None:
    return per.mean()
  return (per * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def smooth(target: jnp.ndarray, on: float, off: float) -> jnp.ndarray:
  """Maps hard 0/1 targets to `off`/`on` (HAN visual: on=0.95, off=0.05)."""
  return target * (on - off) + off


def han_loss(out: dict, labels: jnp.ndarray, *, audio_smoothing: float = 0.0,
             visual_smoothing: float = 0.1,
             audio_labels: Optional[jnp.ndarray] = None,
             visual_labels: Optional[jnp.ndarray] = None,
             weights: Optional[jnp.ndarray] = None) -> dict:
  """HAN's guided loss: BCE(global, y) + BCE(a, y_a') + BCE(v, y_v').

  `*_smoothing` s maps targets to y(1 - s) + s/2 (HAN: audio 0, visual 0.1,
  i.e. 0.9y + 0.05). Per-modality labels default to the video labels (MA's
  refined labels replace them). Returns the terms and their sum.
  """
  ya = labels if audio_labels is None else audio_labels
  yv = labels if visual_labels is None else visual_labels
  terms = {
      "loss_global": bce(out["global_prob"], labels, weights),
      "loss_audio": bce(out["audio_prob"], smooth(
          ya, 1 - audio_smoothing / 2, audio_smoothing / 2), weights),
      "loss_visual": bce(out["visual_prob"], smooth(
          yv, 1 - visual_smoothing / 2, visual_smoothing / 2), weights),
  }
  terms["loss"] = sum(terms.values())
  return terms

"""Binary cross-entropy on probabilities, with HAN's clamping and smoothing."""

from typing import Optional

import jax.numpy as jnp

from avjax.utils import masking

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
  return masking.masked_mean(per, weights)


def smooth(target: jnp.ndarray, on: float, off: float) -> jnp.ndarray:
  """Maps hard 0/1 targets to `off`/`on` (HAN visual: on=0.95, off=0.05)."""
  return target * (on - off) + off


def modality_target(labels: jnp.ndarray, refined: jnp.ndarray,
                    smoothing: float,
                    dropped_target: Optional[float] = None) -> jnp.ndarray:
  """Target of one modality head trained on refined labels (MA stage 3).

  The refined labels are smoothed to y(1 - s) + s/2. `dropped_target`: the
  target of a weak label the refinement dropped (labels 1, refined 0); None
  smooths it like any absent class (s/2). The reference code (MA
  step3_retrain) sets it to exactly 0 while the absent classes keep s/2.
  """
  t = smooth(refined, 1 - smoothing / 2, smoothing / 2)
  if dropped_target is None:
    return t
  return jnp.where((labels > 0) & (refined <= 0),
                   jnp.asarray(dropped_target, t.dtype), t)


def han_loss(out: dict, labels: jnp.ndarray, *, audio_smoothing: float = 0.0,
             visual_smoothing: float = 0.1,
             audio_labels: Optional[jnp.ndarray] = None,
             visual_labels: Optional[jnp.ndarray] = None,
             dropped_target: Optional[float] = None,
             global_labels: Optional[jnp.ndarray] = None,
             weights: Optional[jnp.ndarray] = None) -> dict:
  """HAN's guided loss: BCE(global, y) + BCE(a, y_a') + BCE(v, y_v').

  `*_smoothing` s maps targets to y(1 - s) + s/2 (HAN: audio 0, visual 0.1,
  i.e. 0.9y + 0.05). Per-modality labels default to the video labels (MA's
  refined labels replace them; `dropped_target`: see `modality_target`).
  `global_labels` replaces the target of the global head (default: labels).
  Returns the terms and their sum.
  """
  ya = labels if audio_labels is None else audio_labels
  yv = labels if visual_labels is None else visual_labels
  yg = labels if global_labels is None else global_labels
  terms = {
      "loss_global": bce(out["global_prob"], yg, weights),
      "loss_audio": bce(out["audio_prob"], modality_target(
          labels, ya, audio_smoothing, dropped_target), weights),
      "loss_visual": bce(out["visual_prob"], modality_target(
          labels, yv, visual_smoothing, dropped_target), weights),
  }
  terms["loss"] = sum(terms.values())
  return terms

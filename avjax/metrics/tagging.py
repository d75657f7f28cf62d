"""Clip-level tagging metrics: per-class average precision and mAP (NumPy).

AP follows scikit-learn's `average_precision_score`: with the scores sorted in
decreasing order and one operating point per DISTINCT score (tied scores enter
together), `AP = sum_n (R_n - R_{n-1}) P_n` with `R_0 = 0`. There is no
interpolation of the precision-recall curve.
"""

import numpy as np


def _check(scores, targets):
  scores = np.asarray(scores, np.float64)
  targets = np.asarray(targets)
  if scores.ndim != 2 or scores.shape != targets.shape:
    raise ValueError("scores and targets must both be [N, C], got "
                     f"{scores.shape} and {targets.shape}")
  if not np.isfinite(scores).all():
    raise ValueError("scores must be finite (found nan or inf)")
  if not np.isin(targets, (0, 1)).all():
    raise ValueError("targets must be bool or 0/1 valued")
  return scores, targets.astype(np.int64)


def average_precision(scores, targets) -> np.ndarray:
  """Per-class average precision.

  Args:
    scores: float `[N, C]`, higher means more likely positive.
    targets: bool or 0/1 `[N, C]`.

  Returns:
    float64 `[C]`; nan for a class without positive targets.
  """
  scores, targets = _check(scores, targets)
  n = scores.shape[0]
  order = np.argsort(-scores, axis=0, kind="stable")
  sorted_scores = np.take_along_axis(scores, order, axis=0)
  tp = np.cumsum(np.take_along_axis(targets, order, axis=0), axis=0)
  precision = tp / np.arange(1, n + 1)[:, None]
  # An operating point sits at the last sample of every group of equal scores.
  is_end = np.ones(scores.shape, bool)
  is_end[:-1] = sorted_scores[:-1] != sorted_scores[1:]
  tp_at_end = np.where(is_end, tp, 0)
  prev_tp = np.zeros_like(tp)
  prev_tp[1:] = np.maximum.accumulate(tp_at_end, axis=0)[:-1]
  num_pos = tp[-1] if n else np.zeros(scores.shape[1], np.int64)
  gain = np.where(is_end, precision * (tp - prev_tp), 0.0).sum(0)
  return np.divide(gain, num_pos, out=np.full(gain.shape, np.nan),
                   where=num_pos > 0)


def mean_average_precision(scores, targets) -> float:
  """Mean AP over the classes with at least one positive, in percent.

  Args:
    scores: float `[N, C]`.
    targets: bool or 0/1 `[N, C]`.

  Returns:
    100 * mean AP; nan when no class has a positive target.
  """
  ap = average_precision(scores, targets)
  if np.isnan(ap).all():
    return float("nan")
  return float(100.0 * np.nanmean(ap))

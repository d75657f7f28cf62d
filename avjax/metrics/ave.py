"""AVE metrics: segment accuracy, cross-modality localization, attention."""

from typing import Dict, Optional

import numpy as np


def segment_accuracy(prob: np.ndarray, seg_labels: np.ndarray,
                     segment_mask: Optional[np.ndarray] = None) -> float:
  """% of valid segments whose argmax class is the labelled one.

  prob, seg_labels: [N, T, C]; rows of seg_labels summing to 0 are ignored.
  """
  valid = seg_labels.sum(-1) > 0
  if segment_mask is not None:
    valid &= segment_mask > 0
  hit = prob.argmax(-1) == seg_labels.argmax(-1)
  return 100.0 * float(hit[valid].mean()) if valid.any() else 0.0


def window_costs(dist: np.ndarray, start: int, length: int) -> np.ndarray:
  """Cumulative distances of every placement of a query (Eq. 8).

  dist: [T_query_source, T_target] pair distances D(query_s, target_t);
  the query is rows start..start+length-1. Returns [T_target - length + 1]:
  cost[t] = sum_s dist[start + s, t + s].
  """
  t = dist.shape[1]
  q = dist[start:start + length]
  return np.array([np.trace(q[:, k:k + length]) for k in
                   range(t - length + 1)])


def localize(dist: np.ndarray, start: int, length: int) -> int:
  """argmin_t of `window_costs` (the predicted start of the match)."""
  return int(np.argmin(window_costs(dist, start, length)))


def cross_modal_accuracy(dist_av: np.ndarray, starts: np.ndarray,
                         ends: np.ndarray) -> Dict[str, float]:
  """A2V and V2A exact-match accuracy (%) over clips.

  dist_av: [N, T, T] with dist_av[n, i, j] = D(audio_i, visual_j); the event
  of clip n is [starts[n], ends[n]). A2V queries the event's audio against
  the visual stream (dist rows = audio), V2A the reverse (transposed).
  Clips whose event is empty or spans the whole clip are skipped.
  """
  t = dist_av.shape[-1]
  a2v, v2a = [], []
  for d, s, e in zip(dist_av, starts, ends):
    length = int(e - s)
    if length <= 0 or length >= t:
      continue
    a2v.append(localize(d, s, length) == s)
    v2a.append(localize(d.T, s, length) == s)
  if not a2v:
    return {"a2v": 0.0, "v2a": 0.0, "num_queries": 0.0, "chance": 0.0}
  lens = np.asarray(ends - starts)
  lens = lens[(lens > 0) & (lens < t)]
  return {"a2v": 100.0 * float(np.mean(a2v)),
          "v2a": 100.0 * float(np.mean(v2a)),
          "num_queries": float(len(a2v)),
          "chance": 100.0 * float(np.mean(1.0 / (t - lens + 1)))}


def attention_mass(att: np.ndarray, regions: np.ndarray,
                   segments: np.ndarray) -> Dict[str, float]:
  """How much attention falls on the true regions.

  att: [N, T, k] attention maps; regions: [N, k] bool true (sounding-object)
  regions; segments: [N, T] bool segments to count (e.g. the event).
  Returns the mean attention mass on the true regions, the mass a uniform
  map would put there (|regions| / k) and their ratio.
  """
  mass = (att * regions[:, None, :]).sum(-1)
  uniform = np.broadcast_to(regions.mean(-1, keepdims=True), mass.shape)
  m, u = float(mass[segments].mean()), float(uniform[segments].mean())
  return {"mass": m, "uniform": u, "ratio": m / max(u, 1e-12)}

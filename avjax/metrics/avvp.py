"""AVVP segment-level and event-level F1 metrics (NumPy, vectorised over clips).

Definitions follow the HAN reference evaluation (Tian et al., ECCV 2020), see
`shared/papers/han_notes.md`:

* Every score is computed per clip and then averaged over clips.
* Segment level, per clip and modality (audio, visual, audio-visual): for each
  class predicted or present in the ground truth of the clip,
  `F1 = 2TP / (2TP + FP + FN)` counted over the segments; the clip score is the
  mean over those classes, and 1.0 when there is no such class.
* Event level: each binary per-class sequence is cut into maximal runs of 1s.
  A predicted event is a TP if its IoU with SOME ground-truth event of the same
  class is >= 0.5 (else an FP); a ground-truth event with no predicted event at
  IoU >= 0.5 is an FN. Matching is not one-to-one. Same per-class F1 and means.
* Audio-visual = audio AND visual, for predictions and ground truth.
* Type@AV = mean of the audio, visual and audio-visual scores.
* Event@AV: per class, the audio and visual TP/FP/FN counts are added before the
  F1 (the audio-visual counts are not included).

Inputs are bool (or 0/1) arrays `[N, T, C]`. Clips shorter than T are padded
with False at the tail, which changes no count and therefore no score.
"""

from typing import Dict, Tuple

import numpy as np

SCORE_KEYS = ("seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
              "ev_a", "ev_v", "ev_av", "ev_type", "ev_event")


def _as_bool(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.dtype != np.bool_:
    if not np.isin(x, (0, 1)).all():
      raise ValueError(f"{name} must be bool or 0/1 valued, got dtype "
                       f"{x.dtype} with other values")
    x = x.astype(bool)
  if x.ndim != 3:
    raise ValueError(f"{name} must have shape [N, T, C], got {x.shape}")
  return x


def _clip_f1(tp, fp, fn) -> np.ndarray:
  """Mean per-class F1 of every clip; counts `[N, C]` -> scores `[N]`."""
  denom = 2 * tp + fp + fn
  active = denom > 0
  f1 = np.divide(2.0 * tp, denom, out=np.zeros(denom.shape), where=active)
  n_active = active.sum(-1)
  total = (f1 * active).sum(-1)
  return np.where(n_active > 0, total / np.maximum(n_active, 1), 1.0)


# Scans along the short segment axis run as a loop over segments, each step
# vectorised over all clips and classes: NumPy's `ufunc.accumulate` along axis
# 0 of a [T, M] array is about 100 times slower. No loop runs over clips.


def _tsum(x) -> np.ndarray:
  """Sum over axis 0 of bool `[T, M]` -> int32 `[M]`."""
  out = np.zeros(x.shape[1:], np.int32)
  for row in x:
    out += row
  return out


def _segment_counts(pred, gt) -> Tuple[np.ndarray, ...]:
  """TP, FP, FN over segments; bool `[T, M]` -> int `[M]` each."""
  tp = _tsum(pred & gt)
  return tp, _tsum(pred) - tp, _tsum(gt) - tp


def _runs(x) -> Tuple[np.ndarray, ...]:
  """Maximal runs of 1s along axis 0 of bool `[T, M]`.

  Returns:
    (first, last, start, end), `[T, M]` each: `first`/`last` mark the first and
    last segment of every run; at a segment inside a run, `start` and `end` are
    the run's bounds (it covers `start .. end - 1`); elsewhere they are junk.
  """
  num = x.shape[0]
  dtype = np.int8 if 2 * num < 127 else np.int32  # 2 * IoU terms fit
  first = x.copy()
  first[1:] &= ~x[:-1]
  last = x.copy()
  last[:-1] &= ~x[1:]
  pos = np.arange(num, dtype=dtype)[:, None]
  start = first * pos
  end = np.where(last, pos + 1, pos.dtype.type(num))
  for t in range(1, num):
    np.maximum(start[t - 1], start[t], out=start[t])
    np.minimum(end[num - t], end[num - t - 1], out=end[num - t - 1])
  return first, last, start, end


def _runs_hit(first, last, hit) -> np.ndarray:
  """Number of runs (marked by `first`, `last`) holding a `hit`; `[M]`."""
  seen = hit.copy()
  for t in range(1, hit.shape[0]):
    seen[t] |= seen[t - 1] & ~first[t]
  return _tsum(last & seen)


def _event_counts(pred, gt) -> Tuple[np.ndarray, ...]:
  """Event-level TP, FP, FN; bool `[T, M]` -> int `[M]` each.

  Two runs that overlap share a segment, so testing IoU >= 0.5 at every
  segment where both sequences are 1 (between the runs holding it) finds every
  matching pair. A predicted event is a TP iff it holds such a segment, and a
  ground-truth event is matched iff it holds one.
  """
  p_first, p_last, ps, pe = _runs(pred)
  g_first, g_last, gs, ge = _runs(gt)
  inter = np.minimum(pe, ge) - np.maximum(ps, gs)
  union = (pe - ps) + (ge - gs) - inter
  hit = pred & gt & (2 * inter >= union)  # IoU >= 0.5, exact in integers
  tp = _runs_hit(p_first, p_last, hit)
  fp = _tsum(p_first) - tp
  fn = _tsum(g_first) - _runs_hit(g_first, g_last, hit)
  return tp, fp, fn


def per_clip_scores(pred_audio, pred_visual, gt_audio,
                    gt_visual) -> Dict[str, np.ndarray]:
  """Per-clip AVVP scores as fractions in [0, 1].

  Args:
    pred_audio, pred_visual, gt_audio, gt_visual: bool or 0/1 `[N, T, C]`.

  Returns:
    dict from each of `SCORE_KEYS` to a float64 `[N]` array. The benchmark
    value of a key is `100 * mean` over all clips, so hosts holding disjoint
    clips can concatenate (or sum) these arrays before `summarize`.
  """
  arrays = [_as_bool(a, n) for a, n in (
      (pred_audio, "pred_audio"), (pred_visual, "pred_visual"),
      (gt_audio, "gt_audio"), (gt_visual, "gt_visual"))]
  if len({a.shape for a in arrays}) != 1:
    raise ValueError("pred_audio, pred_visual, gt_audio, gt_visual must have "
                     f"the same shape, got {[a.shape for a in arrays]}")
  n, _, c = arrays[0].shape
  # Layout [T, N * C]: every reduction below runs along the short axis 0.
  pa, pv, ga, gv = (np.moveaxis(a, 1, 0).reshape(a.shape[1], n * c)
                    for a in arrays)
  pairs = {"a": (pa, ga), "v": (pv, gv), "av": (pa & pv, ga & gv)}
  out = {}
  for level, count_fn in (("seg", _segment_counts), ("ev", _event_counts)):
    counts = {m: count_fn(p, g) for m, (p, g) in pairs.items()}
    counts["event"] = tuple(ca + cv for ca, cv in zip(counts["a"],
                                                      counts["v"]))
    for m, cnt in counts.items():
      out[f"{level}_{m}"] = _clip_f1(*(x.reshape(n, c) for x in cnt))
    out[f"{level}_type"] = (out[f"{level}_a"] + out[f"{level}_v"] +
                            out[f"{level}_av"]) / 3.0
  return {k: out[k] for k in SCORE_KEYS}


def summarize(per_clip: Dict[str, np.ndarray]) -> Dict[str, float]:
  """Averages `per_clip_scores` output over clips; percent plus `num_clips`."""
  num = int(np.asarray(per_clip[SCORE_KEYS[0]]).shape[0])
  if num == 0:
    raise ValueError("cannot average AVVP scores over zero clips")
  out = {k: float(100.0 * np.mean(per_clip[k])) for k in SCORE_KEYS}
  out["num_clips"] = num
  return out


def avvp_scores(pred_audio, pred_visual, gt_audio, gt_visual) -> Dict:
  """AVVP benchmark scores in percent (see module docstring).

  Args:
    pred_audio, pred_visual, gt_audio, gt_visual: bool or 0/1 `[N, T, C]`.

  Returns:
    dict with float percentages for `SCORE_KEYS` and int `num_clips`.
  """
  return summarize(per_clip_scores(pred_audio, pred_visual, gt_audio,
                                   gt_visual))


def segment_predictions(frame_prob, video_prob_audio, video_prob_visual,
                        threshold: float = 0.5) -> Tuple[np.ndarray, ...]:
  """Binary segment decisions of the HAN benchmark inference.

  `audio[n, t, c] = frame_prob[n, t, 0, c] >= thr and video_prob_audio[n, c]
  >= thr`; visual likewise with modality index 1 and `video_prob_visual`
  (pass the global video probability twice to reproduce HAN exactly).

  Args:
    frame_prob: float `[N, T, 2, C]`.
    video_prob_audio: float `[N, C]`.
    video_prob_visual: float `[N, C]`.
    threshold: decision threshold.

  Returns:
    (audio, visual), bool `[N, T, C]` each.
  """
  frame_prob = np.asarray(frame_prob)
  if frame_prob.ndim != 4 or frame_prob.shape[2] != 2:
    raise ValueError(f"frame_prob must be [N, T, 2, C], got {frame_prob.shape}")
  n, _, _, c = frame_prob.shape
  out = []
  for m, video in enumerate((video_prob_audio, video_prob_visual)):
    video = np.asarray(video)
    if video.shape != (n, c):
      raise ValueError(f"video probabilities must be [N, C] = {(n, c)}, got "
                       f"{video.shape}")
    out.append((frame_prob[:, :, m] >= threshold) &
               (video[:, None, :] >= threshold))
  return tuple(out)

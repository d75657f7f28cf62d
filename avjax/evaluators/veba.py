"""VEBA evaluator: tagging mAP per modality + detection F at 1-s resolution.

Clip-level scores per modality: p_a, p_v and p_av (audio, video and
audio-visual). `heads="modality"` (VEBA and HAN): p_a = audio_prob,
p_v = visual_prob, p_av = global_prob (the attentive audio-visual pooling).
`heads="shared"` (the baseline that ignores the mismatch): p_a = p_v = p_av
= global_prob, and one segment-level decision for both modalities from the
fused frame probability sum_m modality_att * frame_prob.

Targets: on a dense split the clip-level audio / video targets are "heard /
seen somewhere in the clip" and audio-visual = both (VEBA: = video); on a
weak split (VEBA's val) audio_labels / visual_labels. mAP is
`metrics.tagging` (classes with a positive only), the segment/event F
scores are `metrics.avvp` on the decisions (audio-visual = audio AND visual).
"""

from typing import Dict, List, Sequence, Tuple

import numpy as np

from avjax import errors
from avjax.evaluators import avvp_f1
from avjax.evaluators import common
from avjax.metrics import avvp
from avjax.metrics import tagging

HEADS = ("modality", "shared")
TAGGING_KEYS = ("map_a", "map_v", "map_av", "map_vav")
DETECTION_KEYS = ("seg_a", "seg_v", "seg_av", "ev_a", "ev_v", "ev_av")
METRIC_KEYS = TAGGING_KEYS + DETECTION_KEYS
BEST_METRICS = METRIC_KEYS
PREDICT_KEYS = ("frame_prob", "global_prob", "audio_prob", "visual_prob",
                "modality_att")


def check(config) -> list:
  return avvp_f1.check(config) + errors.failed_checks(config.eval, [
      (config.eval.heads in HEADS, "heads", f"one of {HEADS}")],
                                                      "config.eval.")


def jit_predict_step(mesh):
  """`common.predict_step` that also returns the modality attention."""
  return common.jit_predict_step(mesh, PREDICT_KEYS)


class Evaluator(avvp_f1.Evaluator):
  """`avvp_f1.Evaluator` (predict, gating) with VEBA's heads and scores."""

  def __init__(self, predict_fn, source, local_batch_size: int, mesh,
               heads: str = "modality", gating: str = "modality",
               threshold: float = 0.5):
    if heads not in HEADS:
      raise ValueError(f"heads={heads!r}; valid: {HEADS}")
    super().__init__(predict_fn, source, local_batch_size, mesh, gating,
                     threshold)
    self.heads = heads

  def clip_probs(self, pred) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_a, p_v, p_av) [N, C]."""
    if self.heads == "shared":
      return (pred["global_prob"],) * 3
    return pred["audio_prob"], pred["visual_prob"], pred["global_prob"]

  def decisions(self, pred: Dict[str, np.ndarray]):
    """Segment-level boolean audio/visual predictions [N, T, C]."""
    if self.heads != "shared":
      return super().decisions(pred)
    fused = (pred["frame_prob"] * pred["modality_att"]).sum(2)
    d = (fused > self.threshold) & (
        pred["global_prob"] > self.threshold)[:, None]
    d &= pred["segment_mask"].astype(bool)[:, :, None]
    return d, d

  def score(self, pred: Dict[str, np.ndarray]) -> Dict[str, float]:
    res = {"num_clips": float(len(pred["ids"]))}
    if "seg_audio" in pred:
      ta, tv = pred["seg_audio"].max(1), pred["seg_visual"].max(1)
      res.update({k: float(v) for k, v in avvp.avvp_scores(
          *self.decisions(pred), pred["seg_audio"] > 0,
          pred["seg_visual"] > 0).items()})
    else:
      ta, tv = pred["audio_labels"] > 0, pred["visual_labels"] > 0
    pa, pv, pav = self.clip_probs(pred)
    res["map_a"] = tagging.mean_average_precision(pa, ta)
    res["map_v"] = tagging.mean_average_precision(pv, tv)
    res["map_av"] = tagging.mean_average_precision(pav, ta * tv)
    res["map_vav"] = (res["map_v"] + res["map_av"]) / 2
    return res


def make(s, split: str) -> Evaluator:
  """The evaluator of a run's setup `s` for `split` (`config.eval`: heads,
  gating, threshold)."""
  ev = s.config.eval
  return Evaluator(jit_predict_step(s.mesh), common.source(s, split),
                   s.local_eval_batch, s.mesh, heads=ev.heads,
                   gating=ev.gating, threshold=ev.threshold)


def sync_spans(audio: np.ndarray, visual: np.ndarray, ids: Sequence[str],
               classes: Sequence[str], prob=None) -> Dict[str, List[dict]]:
  """Per clip, the maximal runs of segments where a class is both heard and
  seen: {clip_id: [{"event", "onset", "offset"(, "score")}]} (integer
  seconds, the span covers onset .. offset-1; sorted by onset, event).

  audio, visual: bool [N, T, C] decisions; prob: optional [N, T, C] scores
  (the span's "score" is their mean over it).
  """
  both = np.asarray(audio, bool) & np.asarray(visual, bool)
  pad = np.zeros((both.shape[0], 1, both.shape[2]), bool)
  edges = np.diff(np.concatenate([pad, both, pad], 1).astype(np.int8), axis=1)
  out = {str(i): [] for i in ids}
  for k, seg, c in zip(*np.nonzero(edges == 1)):
    off = seg + int(np.argmax(edges[k, seg:, c] == -1))
    span = {"event": classes[c], "onset": int(seg), "offset": int(off)}
    if prob is not None:
      span["score"] = round(float(np.mean(prob[k, seg:off, c])), 4)
    out[str(ids[k])].append(span)
  for spans in out.values():
    spans.sort(key=lambda x: (x["onset"], x["event"]))
  return out

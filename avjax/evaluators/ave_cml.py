"""AVE cross-modality localization evaluator (AVE paper Table 3).

Clips whose event is shorter than the clip; the event's audio (A2V) or
visual (V2A) segments slide over the other stream of the same clip (Eq. 8);
accuracy = exact start matches (%), `cml` their mean; `chance` is the mean
1 / (T - l + 1). For DCCA (`config.model.kind="dcca"`) a linear CCA
(`config.loss.cca_dim` directions) is fitted on the training pairs before
scoring and distances are taken in its space.
"""

from typing import Dict, Optional

import numpy as np

from avjax.evaluators import common
from avjax.losses import cca
from avjax.metrics import ave as ave_metrics
from avjax.utils import writers

METRIC_KEYS = ("cml", "a2v", "v2a")
BEST_METRICS = METRIC_KEYS
EMB_KEYS = ("audio_emb", "visual_emb")


def event_bounds(seg_labels: np.ndarray, segment_mask: np.ndarray):
  """(start, end) [N] of each clip's (first contiguous) event."""
  event = (seg_labels[..., :-1].sum(-1) > 0) & (segment_mask > 0)
  starts = np.where(event.any(1), event.argmax(1), 0)
  ends = starts.copy()
  for n, (e, s) in enumerate(zip(event, starts)):
    while ends[n] < len(e) and e[ends[n]]:
      ends[n] += 1
  return starts, ends


def distances(pred: Dict[str, np.ndarray], projection=None) -> np.ndarray:
  """[N, T, T] audio-visual distances, optionally in a CCA space."""
  ea, ev = pred["audio_emb"], pred["visual_emb"]
  if projection is not None:
    (ma, wa), (mv, wv) = projection
    ea, ev = (ea - ma) @ wa, (ev - mv) @ wv
  return np.sqrt(((ea[:, :, None] - ev[:, None, :])**2).sum(-1))


class Evaluator(common.Evaluator):
  """A2V/V2A exact-match accuracy; `fit` (an evaluator of the training
  split) fits the DCCA projection before scoring."""
  fit: Optional[common.Evaluator] = None
  cca_dim: int = 0

  def run(self, state) -> Dict[str, float]:
    return self.score(self.predict(state), self.projection(state))

  def evaluate(self, state, pred_path=None) -> Dict[str, float]:
    del pred_path  # no predictions are kept
    return self.run(state)

  def projection(self, state):
    if self.fit is None:
      return None
    p = self.fit.predict(state)
    pos = ((p["seg_audio"][..., :-1].sum(-1) > 0) &
           (p["segment_mask"] > 0))
    return cca.fit_cca(p["audio_emb"][pos], p["visual_emb"][pos],
                       self.cca_dim)

  def score(self, pred, projection=None) -> Dict[str, float]:
    starts, ends = event_bounds(pred["seg_audio"], pred["segment_mask"])
    res = ave_metrics.cross_modal_accuracy(distances(pred, projection),
                                           starts, ends)
    res["cml"] = (res["a2v"] + res["v2a"]) / 2
    res["num_clips"] = float(len(pred["ids"]))
    writers.log("%s: %s", self.source.split, " ".join(
        f"{k}={v:.1f}" for k, v in res.items()))
    return res


def make(s, split: str) -> Evaluator:
  fn = common.jit_predict_step(s.mesh, EMB_KEYS)
  ev = Evaluator(fn, common.source(s, split), s.local_eval_batch, s.mesh)
  if s.config.model.kind == "dcca":
    ev.fit = common.Evaluator(fn, common.source(
        s, s.config.data.train_split), s.local_eval_batch, s.mesh)
    ev.cca_dim = s.config.loss.cca_dim
  return ev

"""Event-specific fusion layers' evaluator (Senocak et al. 2023).

`metrics.event_heads` of the heads' logits: voted single-label accuracy
`acc`, per-head accuracies `acc_<head>`, the union multi-label F1
`f1_union` (micro; `f1s_union` per clip) with its mean size `card_union`,
and the Top-K baselines `f1_top<K>` of the mean head probabilities.
`pred_<split>.npz` keeps every head's logits and the selected
instant/onset segments for `avjax.projects.event_heads.analyze`.
"""

from typing import Dict, Sequence

import numpy as np

from avjax.evaluators import common
from avjax.metrics import event_heads as metrics

BEST_METRICS = ("acc", "f1_union")
PRED_KEYS = ("logits", "instant_sel", "onset_sel")


class Evaluator(common.Evaluator):
  """Voting / union / Top-K metrics of the heads' logits.

  Args:
    predict_fn, source, local_batch_size, mesh: see `common.Evaluator`.
    heads: the model's heads (`config.model.heads`), in its output order.
    data_dir: the dataset (kept in the run's summary for the analysis).
    background_last: the last class is AVE's background: without stored
      primary labels, a clip's primary label is its event class (the
      background only for background-only clips), so predicting the
      background on an event clip is wrong (`config.loss.background_last`).
  """

  def __init__(self, predict_fn, source, local_batch_size: int, mesh, *,
               heads: Sequence[str], data_dir: str = "",
               background_last: bool = False):
    super().__init__(predict_fn, source, local_batch_size, mesh)
    self.heads, self.data_dir = tuple(heads), data_dir
    self.background_last = background_last

  def score(self, pred: Dict[str, np.ndarray]) -> Dict[str, float]:
    valid = metrics.head_valid(self.heads, pred.get("onset_sel"),
                               len(pred["logits"]))
    primary = pred.get("primary_labels")
    if primary is None and self.background_last:
      primary = metrics.drop_background(pred["labels"])
    return metrics.score(pred["logits"], pred["labels"], primary,
                         self.heads, valid)

  def save_predictions(self, path: str, pred: Dict[str, np.ndarray]) -> None:
    np.savez_compressed(path, heads=np.asarray(self.heads), **{
        k: pred[k] for k in ("ids", "labels", "primary_labels",
                             "segment_mask") + PRED_KEYS if k in pred})

  def summary_fields(self) -> dict:
    return {"heads": list(self.heads), "data_dir": self.data_dir}


def make(s, split: str) -> Evaluator:
  return Evaluator(common.jit_predict_step(s.mesh, PRED_KEYS),
                   common.source(s, split), s.local_eval_batch, s.mesh,
                   heads=s.config.model.heads, data_dir=s.data_dir,
                   background_last=s.config.loss.get("background_last",
                                                     False))

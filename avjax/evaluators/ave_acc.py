"""AVE event localization evaluator: per-segment accuracy.

The argmax over the C classes (the last one the background) of `prob`
against `seg_audio`; `acc_event`/`acc_background` split it by the true
label. On the synthetic AVE dataset, the checkpoint evaluation of models
with audio-guided attention also reports how much attention falls on the
sounding object's regions during the event (`att_mass`) against a uniform
map (`att_uniform`).
"""

from typing import Dict

import numpy as np

from avjax.data.synthetic import ave as synthetic_ave
from avjax.evaluators import common
from avjax.metrics import ave as ave_metrics
from avjax.utils import writers

METRIC_KEYS = ("acc", "acc_event", "acc_background")
BEST_METRICS = METRIC_KEYS
PRED_KEYS = ("prob", "attention")


class Evaluator(common.Evaluator):
  """Segment accuracy of `prob` (argmax) against `seg_audio`.

  Args:
    predict_fn, source, local_batch_size, mesh: see `common.Evaluator`.
    info: the dataset info (the synthetic layouts for `att_mass`).
  """

  def __init__(self, predict_fn, source, local_batch_size: int, mesh,
               info=None):
    super().__init__(predict_fn, source, local_batch_size, mesh)
    self.info = info or {}

  def score(self, pred: Dict[str, np.ndarray]) -> Dict[str, float]:
    y, m = pred["seg_audio"], pred["segment_mask"]
    bg = y.argmax(-1) == y.shape[-1] - 1
    res = {"num_clips": float(len(pred["ids"])),
           "acc": ave_metrics.segment_accuracy(pred["prob"], y, m),
           "acc_event": ave_metrics.segment_accuracy(pred["prob"], y,
                                                     m * ~bg),
           "acc_background": ave_metrics.segment_accuracy(pred["prob"], y,
                                                          m * bg)}
    writers.log("%s: %s", self.source.split, " ".join(
        f"{k}={v:.1f}" for k, v in res.items()))
    return res

  def checkpoint_score(self, pred: Dict[str, np.ndarray]
                       ) -> Dict[str, float]:
    return dict(self.score(pred), **attention_scores(
        self.info, self.source.split, pred))

  def save_predictions(self, path: str, pred: Dict[str, np.ndarray]) -> None:
    np.savez_compressed(path, **{
        k: pred[k] for k in ("ids", "prob", "attention", "segment_mask")
        if k in pred})


def attention_scores(info: dict, split: str, pred) -> Dict[str, float]:
  """Attention mass on the synthetic sounding object (event segments)."""
  cfg = info.get("extra", {}).get("synthetic_ave_config")
  if cfg is None or "attention" not in pred:
    return {}
  truth = synthetic_ave.truth_by_id(
      synthetic_ave.SyntheticAVEConfig(**cfg), split, pred["ids"])
  regions = np.stack([truth[i]["object"].reshape(-1) for i in pred["ids"]])
  event = np.stack([truth[i]["event"] for i in pred["ids"]])
  res = ave_metrics.attention_mass(pred["attention"], regions, event)
  return {"att_mass": res["mass"], "att_uniform": res["uniform"]}


def make(s, split: str) -> Evaluator:
  return Evaluator(common.jit_predict_step(s.mesh, PRED_KEYS),
                   common.source(s, split), s.local_eval_batch, s.mesh,
                   info=s.info)

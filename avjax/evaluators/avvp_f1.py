"""AVVP evaluator: segment/event F1 (the ten numbers) and tagging mAP.

`config.eval`: `gating` ("global": HAN, the video decision from
global_prob; "modality": MA, audio gated by audio_prob, visual by
visual_prob) and `threshold` (decision threshold of the probabilities).
"""

from typing import Dict

import numpy as np

from avjax import errors
from avjax.evaluators import common
from avjax.metrics import avvp
from avjax.metrics import tagging

METRIC_KEYS = ("seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
               "ev_a", "ev_v", "ev_av", "ev_type", "ev_event")
BEST_METRICS = METRIC_KEYS + ("map",)
GATINGS = ("global", "modality")


def check(config) -> list:
  return errors.failed_checks(config.eval, [
      (config.eval.gating in GATINGS, "gating", "'global' or 'modality'")],
                              "config.eval.")


class Evaluator(common.Evaluator):
  """`common.Evaluator` scored with the AVVP metrics.

  Args:
    predict_fn, source, local_batch_size, mesh: see `common.Evaluator`.
    gating: "global" or "modality" (see the module docstring).
    threshold: decision threshold for probabilities.
  """

  def __init__(self, predict_fn, source, local_batch_size: int, mesh,
               gating: str = "global", threshold: float = 0.5):
    if gating not in GATINGS:
      raise ValueError(f"gating={gating!r}; valid: 'global', 'modality'")
    super().__init__(predict_fn, source, local_batch_size, mesh)
    self.gating, self.threshold = gating, threshold

  def decisions(self, pred: Dict[str, np.ndarray]):
    """Segment-level boolean audio/visual predictions [N, T, C]."""
    if self.gating == "global":
      ga = gv = pred["global_prob"]
    else:
      ga, gv = pred["audio_prob"], pred["visual_prob"]
    a, v = avvp.segment_predictions(pred["frame_prob"], ga, gv,
                                    self.threshold)
    m = pred["segment_mask"].astype(bool)[:, :, None]
    return a & m, v & m

  def score(self, pred: Dict[str, np.ndarray]) -> Dict[str, float]:
    res = {"num_clips": float(len(pred["ids"]))}
    if "seg_audio" in pred:
      a, v = self.decisions(pred)
      scores = avvp.avvp_scores(a, v, pred["seg_audio"] > 0,
                                pred["seg_visual"] > 0)
      res.update({k: float(scores[k]) for k in METRIC_KEYS})
      ta = pred["seg_audio"].max(1)
      tv = pred["seg_visual"].max(1)
      res["map_a"] = tagging.mean_average_precision(pred["audio_prob"], ta)
      res["map_v"] = tagging.mean_average_precision(pred["visual_prob"], tv)
      res["map_av"] = tagging.mean_average_precision(
          np.sqrt(pred["audio_prob"] * pred["visual_prob"]), ta * tv)
    res["map"] = tagging.mean_average_precision(pred["global_prob"],
                                                pred["labels"])
    return res

  def save_predictions(self, path: str, pred: Dict[str, np.ndarray]) -> None:
    """Decisions in `avjax.score`'s format plus the probabilities."""
    a, v = self.decisions(pred)
    np.savez_compressed(path, ids=pred["ids"], audio=a, visual=v, **{
        k: pred[k] for k in ("frame_prob", "global_prob", "audio_prob",
                             "visual_prob", "segment_mask") if k in pred})

  @staticmethod
  def markdown(rows: Dict[str, Dict[str, float]]) -> str:
    return to_markdown(rows)

  def log_keys(self, res: Dict[str, float]) -> list:
    return [k for k in METRIC_KEYS if k in res] or super().log_keys(res)


def make(s, split: str) -> Evaluator:
  return Evaluator(common.jit_predict_step(s.mesh), common.source(s, split),
                   s.local_eval_batch, s.mesh, gating=s.config.eval.gating,
                   threshold=s.config.eval.threshold)


def to_markdown(rows: Dict[str, Dict[str, float]]) -> str:
  """Metric table: one row per named result, the ten AVVP columns."""
  keys = [k for k in METRIC_KEYS + ("map_a", "map_v", "map")
          if any(k in r for r in rows.values())]
  lines = ["| run | " + " | ".join(keys) + " |",
           "|---|" + "---|" * len(keys)]
  for name, r in rows.items():
    cells = [f"{r[k]:.1f}" if k in r else "" for k in keys]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines)

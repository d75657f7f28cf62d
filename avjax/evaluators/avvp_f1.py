"""AVVP evaluator: segment/event F1 (the ten numbers) and tagging mAP."""

from typing import Dict

import numpy as np

from avjax.data import pipeline
from avjax.metrics import avvp
from avjax.metrics import tagging
from avjax.utils import sharding

METRIC_KEYS = ("seg_a", "seg_v", "seg_av", "seg_type", "seg_event",
               "ev_a", "ev_v", "ev_av", "ev_type", "ev_event")


class Evaluator:
  """Runs a jitted predict function over a split; scores on host in NumPy.

  Args:
    predict_fn: jitted (state, global batch) -> dict of global arrays.
    source: `pipeline.Source` of the split (this host's shards).
    local_batch_size: per-host eval batch size.
    mesh: device mesh.
    gating: "global" (HAN: video decision from global_prob) or "modality"
      (MA: audio gated by audio_prob, visual by visual_prob).
    threshold: decision threshold for probabilities.
  """

  def __init__(self, predict_fn, source: pipeline.Source,
               local_batch_size: int, mesh, gating: str = "global",
               threshold: float = 0.5):
    if gating not in ("global", "modality"):
      raise ValueError(f"gating={gating!r}; valid: 'global', 'modality'")
    self.predict_fn, self.source = predict_fn, source
    self.local_batch_size, self.mesh = local_batch_size, mesh
    self.gating, self.threshold = gating, threshold

  def predict(self, state, batches=None) -> Dict[str, np.ndarray]:
    """All clips of the split (padding removed), in a host-independent order.

    `batches` optionally replaces the split with an iterable of global batches
    (e.g. device-resident arrays in benchmarks); then no count is checked.
    """
    check = batches is None
    if check:
      batches = sharding.prefetch_to_mesh(
          pipeline.eval_batches(self.source, self.local_batch_size),
          self.mesh)
    chunks = sharding.gather([self.predict_fn(state, b) for b in batches])
    out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    keep = out.pop("_mask") > 0
    out = {k: v[keep] for k, v in out.items()}
    out["ids"] = np.asarray(sharding.array_to_ids(out.pop("clip_id_bytes")))
    order = np.argsort(out["ids"], kind="stable")
    out = {k: v[order] for k, v in out.items()}
    if check and len(out["ids"]) != self.source.num_clips:
      raise RuntimeError(
          f"evaluated {len(out['ids'])} clips of split "
          f"{self.source.split!r} but it has {self.source.num_clips}")
    return out

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

  def run(self, state) -> Dict[str, float]:
    pred = self.predict(state)
    return self.score(pred)

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

"""The evaluator base class and the jitted predict step.

An evaluator is a module `avjax/evaluators/<name>.py` chosen by
`config.eval.evaluator` (its name, or a full module path for a plugin; the
loop looks it up by name, `trainers.loop.evaluator_module`), with one
signature:

  make(s, split) -> Evaluator    the evaluator of `split` for a run's setup
      `s` (fields config, data_dir, info, features, mesh,
      local_eval_batch: `avjax.trainers.loop.Setup`);
  BEST_METRICS                   metrics `config.eval.best_metric` may name;
  check(config) -> [str]         (optional) errors of `config.eval`.

`Evaluator.run(state)` -> {metric: float} is the validation of every epoch;
`evaluate(state, pred_path)` also writes the split's predictions (the
checkpoint evaluation of `avjax.evaluate`); `markdown(rows)` is the
metrics table.
"""

import functools
from typing import Dict, Optional, Sequence

import jax
import numpy as np

from avjax.data import pipeline
from avjax.data import schema
from avjax.utils import sharding

# Batch keys every prediction carries along (labels and bookkeeping).
BATCH_KEYS = ("_mask", "clip_id_bytes", "segment_mask", "seg_audio",
              "seg_visual", "labels", "audio_labels", "visual_labels",
              "primary_labels")


def predict_step(state, batch: Dict[str, jax.Array],
                 keys=("frame_prob", "global_prob", "audio_prob",
                       "visual_prob")) -> Dict[str, jax.Array]:
  """Deterministic forward pass; returns the requested outputs + batch info."""
  out = state.apply_fn(state.variables(), schema.model_inputs(batch),
                       train=False)
  res = {k: out[k] for k in keys if k in out}
  for k in BATCH_KEYS:
    if k in batch:
      res[k] = batch[k]
  return res


def jit_predict_step(mesh, keys: Optional[Sequence[str]] = None):
  """`predict_step` (of `keys`, default its own) jitted over the mesh."""
  fn = predict_step if keys is None else functools.partial(
      predict_step, keys=tuple(keys))
  return jax.jit(fn, out_shardings=sharding.data_sharding(mesh))


def source(s, split: str) -> pipeline.Source:
  """This host's view of `split` of a run's dataset."""
  return pipeline.Source(s.data_dir, split, s.features, jax.process_index(),
                         jax.process_count())


class Evaluator:
  """Runs a jitted predict function over a split; scores on host in NumPy.

  Args:
    predict_fn: jitted (state, global batch) -> dict of global arrays.
    source: `pipeline.Source` of the split (this host's shards).
    local_batch_size: per-host eval batch size.
    mesh: device mesh.
  """

  def __init__(self, predict_fn, source: pipeline.Source,  # pylint: disable=redefined-outer-name
               local_batch_size: int, mesh):
    self.predict_fn, self.source = predict_fn, source
    self.local_batch_size, self.mesh = local_batch_size, mesh

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

  def score(self, pred: Dict[str, np.ndarray]) -> Dict[str, float]:
    """Metrics of the predictions of every clip (`predict`)."""
    raise NotImplementedError

  def run(self, state) -> Dict[str, float]:
    """The metrics of `state` on the split (validation)."""
    return self.score(self.predict(state))

  def evaluate(self, state, pred_path: Optional[str] = None
               ) -> Dict[str, float]:
    """The checkpoint evaluation: `checkpoint_score` of the predictions,
    which are written to `pred_path` (host 0)."""
    pred = self.predict(state)
    res = self.checkpoint_score(pred)
    if pred_path and jax.process_index() == 0:
      self.save_predictions(pred_path, pred)
    return res

  def checkpoint_score(self, pred: Dict[str, np.ndarray]
                       ) -> Dict[str, float]:
    """Metrics of a checkpoint evaluation: `score`'s (validation's) plus
    any too costly for every epoch."""
    return self.score(pred)

  def save_predictions(self, path: str, pred: Dict[str, np.ndarray]) -> None:
    """Writes `pred` (what `avjax.score` or a project tool reads)."""
    del path, pred

  def summary_fields(self) -> dict:
    """Extra fields of the run's summary (results.json)."""
    return {}

  def log_keys(self, res: Dict[str, float]) -> list:
    """The metrics of `res` a validation log line shows."""
    return sorted(k for k, v in res.items() if isinstance(v, float))

  @staticmethod
  def markdown(rows: Dict[str, Dict[str, float]]) -> str:
    """Metric table: one row per named result, every metric a column."""
    keys = sorted({k for r in rows.values() for k in r})
    lines = ["| run | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, r in rows.items():
      lines.append(f"| {name} | " + " | ".join(
          f"{r[k]:.1f}" if k in r else "" for k in keys) + " |")
    return "\n".join(lines)

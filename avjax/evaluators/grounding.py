"""AVG pretraining evaluator: grounding metrics of the encoder on a split.

`grounding.count_metrics` over every clip of the split (cross-modal R@1
both ways vs chance, pair accuracy, uni-modal pair accuracy, positive
rate) plus the mean grounding loss, from summed per-batch counts of a
jitted step (the ground truth of `losses.grounding.ground_truth`, the
settings of `config.avg`).
"""

import functools
from typing import Dict

import jax
import ml_collections

from avjax.data import pipeline
from avjax.data import schema
from avjax.evaluators import common
from avjax.losses import grounding
from avjax.utils import sharding
from avjax.utils import writers

BEST_METRICS = grounding.METRICS
# The `config.avg` fields the evaluation step reads.
_EVAL_KEYS = ("loss", "scope", "pos_margin", "neg_margin", "audio_threshold",
              "visual_threshold", "link", "silence_threshold")


def eval_step(state, batch, *, avg_cfg) -> Dict[str, jax.Array]:
  """Summed loss and retrieval counts of one (padded) batch."""
  out = state.apply_fn(state.variables(),
                       schema.model_inputs(batch), train=False)
  pos, valid = grounding.ground_truth(batch, avg_cfg)
  g = functools.partial(grounding.to_graphs, scope=avg_cfg.scope)
  a, v = g(out["audio_emb"]), g(out["visual_emb"])
  counts = grounding.retrieval_counts(
      a, v, pos, valid, 0.5 * (avg_cfg.pos_margin + avg_cfg.neg_margin))
  loss = grounding.avg_loss(a, v, pos, valid, kind=avg_cfg.loss,
                            pos_margin=avg_cfg.pos_margin,
                            neg_margin=avg_cfg.neg_margin)["loss"]
  counts["loss_sum"] = loss * counts["pairs"]
  return counts


@functools.lru_cache(maxsize=8)
def jitted_eval_step(avg_items: tuple):
  """One jitted `eval_step` per AVG setting (compiled once per shape)."""
  return jax.jit(functools.partial(
      eval_step, avg_cfg=ml_collections.ConfigDict(dict(avg_items))))


class Evaluator(common.Evaluator):
  """Grounding metrics of a state on every clip of a split (`run`).

  Args:
    step_fn: jitted (state, global batch) -> summed counts (`eval_step`).
    source, local_batch_size, mesh: see `common.Evaluator`.
  """

  def run(self, state) -> Dict[str, float]:
    total = None
    for b in pipeline.eval_batches(self.source, self.local_batch_size):
      c = jax.device_get(self.predict_fn(state, sharding.to_global(
          b, self.mesh)))
      total = c if total is None else {k: total[k] + c[k] for k in c}
    res = grounding.count_metrics(total)
    res["loss"] = float(total["loss_sum"] / max(total["pairs"], 1.0))
    writers.log("%s: %s", self.source.split, " ".join(
        f"{k}={v:.2f}" for k, v in res.items()))
    res["num_clips"] = self.source.num_clips
    return res

  def evaluate(self, state, pred_path=None) -> Dict[str, float]:
    del pred_path  # no per-clip predictions
    return self.run(state)


def make(s, split: str) -> Evaluator:
  step_fn = jitted_eval_step(tuple((k, s.config.avg[k]) for k in _EVAL_KEYS))
  return Evaluator(step_fn, common.source(s, split), s.local_eval_batch,
                   s.mesh)

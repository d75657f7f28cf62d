"""AVG pretraining (Lamba et al. 2021): the AVG encoder on unlabeled clips.

  python -m avjax.main --config=configs/avvp_crossmodal.py:variant=avg_pretrain \
      --workdir=DIR

Trains `model.avg_layers` AVG transformer layers (`avjax.models.avg`) with
the margin grounding loss (`avjax.losses.grounding`): ground-truth pairs are
the connected components of the graph linking snippets whose input audio or
visual features are similar, computed on device inside the jitted step.
Labels are ignored, so any split of any dataset in the data contract works
(`config.avg.data_dir`, `config.avg.split`; default: the config's own data,
train split). Every epoch the grounding metrics (`grounding.count_metrics`:
cross-modal R@1 both ways vs chance, pair accuracy) are measured on the
`config.avg.eval_splits` present; `results.json` holds them for the final
state and for the untrained encoder (`init`). The latest checkpoints
(`checkpoints/`) are what `config.model.init_from=DIR` loads.
"""

import dataclasses
import functools
import os
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections

from avjax.data import pipeline
from avjax.losses import grounding
from avjax.models import avg
from avjax.models import build
from avjax.trainers import avvp_weak
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import sharding
from avjax.utils import writers


def validate(config) -> None:
  a = config.avg
  checks = [
      (config.model.get("avg_layers", 0) > 0, "model.avg_layers",
       "> 0 (the AVG encoder to pretrain)"),
      (a.loss in grounding.KINDS, "avg.loss", f"one of {grounding.KINDS}"),
      (a.scope in grounding.SCOPES, "avg.scope",
       f"one of {grounding.SCOPES}"),
      (-1.0 <= a.neg_margin < a.pos_margin <= 1.0, "avg.pos_margin",
       f"in (avg.neg_margin={a.neg_margin}, 1]"),
      (a.num_epochs > 0 and a.lr > 0, "avg.num_epochs", "> 0 (and avg.lr)"),
      (a.best_metric in grounding.METRICS, "avg.best_metric",
       f"one of {grounding.METRICS}"),
  ]
  bad = [f"config.{k}: expected {want}" for ok, k, want in checks if not ok]
  if bad:
    raise ValueError("invalid AVG pretraining config:\n  " +
                     "\n  ".join(bad))


def pretrain_config(config) -> ml_collections.ConfigDict:
  """The run as `avvp_weak.setup` reads it: schedule and data from
  `config.avg`, nothing initialised from elsewhere."""
  c = ml_collections.ConfigDict(config.to_dict())
  c.trainer = "avg_pretrain"
  c.model.init_from, c.model.freeze_pretrained = "", False
  c.batch_size, c.num_epochs = c.avg.batch_size, c.avg.num_epochs
  c.optim.lr, c.optim.decay_factor = c.avg.lr, 1.0
  c.data.train_split = c.avg.split
  if c.avg.data_dir:
    c.data.name, c.data.data_dir = "avg_pretrain_data", c.avg.data_dir
  return c


def setup(config, train: bool = True) -> avvp_weak.Setup:
  validate(config)
  c = pretrain_config(config)
  s = avvp_weak.setup(c, train)
  c.eval.best_metric = c.avg.best_metric  # after avvp_weak's validation
  return dataclasses.replace(s, model=avg.AVGPretrainNet(
      build.avg_encoder(c.model, s.info)))


def ground_truth(batch: Dict[str, jax.Array], avg_cfg):
  """(positive, valid) [G, N, N] from the batch's input features: VGGish
  audio and the segment mean of the frame features (motion without them)."""
  t = batch["audio"].shape[1]
  vis = batch.get("visual", batch.get("motion"))
  vis = vis.reshape((vis.shape[0], t, -1) + vis.shape[2:]).mean(2)
  mask = batch.get("segment_mask", jnp.ones(batch["audio"].shape[:2]))
  if "_mask" in batch:
    mask = mask * batch["_mask"][:, None]
  pos, valid, _ = grounding.targets_from_inputs(
      batch["audio"], vis, mask, scope=avg_cfg.scope,
      audio_threshold=avg_cfg.audio_threshold,
      visual_threshold=avg_cfg.visual_threshold)
  return pos, valid


def loss_fn(out, batch, *, avg_cfg, step=None) -> Dict[str, jax.Array]:
  """The grounding loss of the encoder's embeddings (+ the positive rate)."""
  del step
  pos, valid = ground_truth(batch, avg_cfg)
  g = functools.partial(grounding.to_graphs, scope=avg_cfg.scope)
  terms = grounding.avg_loss(
      g(out["audio_emb"]), g(out["visual_emb"]), pos, valid,
      kind=avg_cfg.loss, pos_margin=avg_cfg.pos_margin,
      neg_margin=avg_cfg.neg_margin)
  terms["pos_rate"] = pos.sum() / jnp.maximum(valid.sum(), 1.0)
  return terms


def eval_step(state, batch, *, avg_cfg) -> Dict[str, jax.Array]:
  """Summed loss and retrieval counts of one (padded) batch."""
  out = state.apply_fn({"params": state.params},
                       train_lib.model_inputs(batch), train=False)
  pos, valid = ground_truth(batch, avg_cfg)
  g = functools.partial(grounding.to_graphs, scope=avg_cfg.scope)
  a, v = g(out["audio_emb"]), g(out["visual_emb"])
  counts = grounding.retrieval_counts(
      a, v, pos, valid, 0.5 * (avg_cfg.pos_margin + avg_cfg.neg_margin))
  loss = grounding.avg_loss(a, v, pos, valid, kind=avg_cfg.loss,
                            pos_margin=avg_cfg.pos_margin,
                            neg_margin=avg_cfg.neg_margin)["loss"]
  counts["loss_sum"] = loss * counts["pairs"]
  return counts


_EVAL_KEYS = ("loss", "scope", "pos_margin", "neg_margin", "audio_threshold",
              "visual_threshold")


@functools.lru_cache(maxsize=8)
def jitted_eval_step(avg_items: tuple):
  """One jitted `eval_step` per AVG setting (compiled once per shape)."""
  return jax.jit(functools.partial(
      eval_step, avg_cfg=ml_collections.ConfigDict(dict(avg_items))))


class Evaluator:
  """Grounding metrics of a state on every clip of a split (`run`)."""

  def __init__(self, s: avvp_weak.Setup, split: str):
    self.s, self.split = s, split
    self.src = pipeline.Source(s.data_dir, split, s.features,
                               jax.process_index(), jax.process_count())
    self.step_fn = jitted_eval_step(tuple(
        (k, s.config.avg[k]) for k in _EVAL_KEYS))

  def run(self, state) -> Dict[str, float]:
    total = None
    for b in pipeline.eval_batches(self.src, self.s.local_eval_batch):
      c = jax.device_get(self.step_fn(state, sharding.to_global(
          b, self.s.mesh)))
      total = c if total is None else {k: total[k] + c[k] for k in c}
    res = grounding.count_metrics(total)
    res["loss"] = float(total["loss_sum"] / max(total["pairs"], 1.0))
    writers.log("%s: %s", self.split, " ".join(
        f"{k}={v:.2f}" for k, v in res.items()))
    res["num_clips"] = self.src.num_clips
    return res


def run_evals(s: avvp_weak.Setup, state, splits=None
              ) -> Dict[str, Dict[str, float]]:
  """{split: metrics} on the `config.avg.eval_splits` the data has."""
  splits = splits or s.config.avg.eval_splits
  return {sp: Evaluator(s, sp).run(state) for sp in splits
          if sp in s.info["splits"]}


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Pretrains (`avvp_weak.fit`: resume, checkpoints, logging), measuring
  grounding every epoch; writes results.json with the final state's and
  the untrained encoder's (`init`) metrics."""
  s = setup(config)
  init = run_evals(s, avvp_weak.make_state(s)[0])
  val = s.config.avg.eval_splits[0] if s.config.avg.eval_splits else None
  if val not in s.info["splits"]:
    raise ValueError(f"config.avg.eval_splits={s.config.avg.eval_splits}: "
                     f"the first must be a split of {s.data_dir}")
  avvp_weak.fit(s, workdir, functools.partial(loss_fn, avg_cfg=s.config.avg),
                Evaluator(s, val))
  summary = evaluate_checkpoint(config, workdir, s=s)
  summary["init"] = init
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def evaluate_checkpoint(config, workdir: str, which: str = "latest",
                        splits=None, s: Optional[avvp_weak.Setup] = None
                        ) -> Dict[str, Any]:
  """Grounding metrics of `latest`, `best` (by `avg.best_metric` on the
  first eval split) or a step; writes `eval_<which>.json`."""
  s = s or setup(config, train=False)
  state, _ = avvp_weak.make_state(s)
  latest, best = avvp_weak.managers(workdir, s.config)
  step = None if which in ("best", "latest") else int(which)
  state, _, step = checkpointing.restore(
      best if which == "best" else latest, step, state,
      avvp_weak.fingerprint(s, state.params))
  summary = {"checkpoint": which, "step": step,
             "results": run_evals(s, state, splits)}
  writers.write_json(os.path.join(workdir, f"eval_{which}.json"), summary)
  return summary

"""Event-specific fusion layers (Senocak et al. 2023): training, evaluation.

Joint multi-task training of the heads in `config.model.heads` with one
single label per clip (softmax CE per head, equal weights; multi-hot training
labels are reduced to one label per clip by `loss.single_label`); the
loop is `avvp_weak.fit` (resume, jit data-parallel steps, checkpoints,
finite-loss guard). Evaluation (`metrics.event_heads`): voted single-label
accuracy `acc`, per-head accuracies `acc_<head>`, the union multi-label F1
`f1_union` (micro; `f1s_union` per clip) with its mean size `card_union`,
and the Top-K baselines `f1_top<K>` of the mean head probabilities.
`pred_<split>.npz` keeps every head's logits and the selected instant/onset
segments for `python -m avjax.projects.event_heads.analyze`.
"""

import functools
import os
from typing import Any, Dict, Optional

import jax
import numpy as np

from avjax.data import datasets
from avjax.data import pipeline
from avjax.evaluators import avvp_f1
from avjax.losses import event_heads as losses
from avjax.metrics import event_heads as metrics
from avjax.models import event_heads as model_lib
from avjax.trainers import ave_supervised
from avjax.trainers import avvp_weak
from avjax.trainers import train_lib
from avjax.utils import sharding
from avjax.utils import writers

BEST_METRICS = ("acc", "f1_union")
PRED_KEYS = ("logits", "instant_sel", "onset_sel")


def validate_config(config) -> None:
  m = config.model
  checks = [
      (config.num_epochs > 0, "num_epochs", "a positive number"),
      (config.optim.lr > 0, "optim.lr", "a positive float"),
      (0 < config.optim.decay_factor <= 1, "optim.decay_factor", "in (0, 1]"),
      (config.eval.best_metric in BEST_METRICS, "eval.best_metric",
       f"one of {BEST_METRICS}"),
      (config.loss.single_label in ("hash", "first"), "loss.single_label",
       "'hash' or 'first'"),
      (config.log_every_steps > 0, "log_every_steps", "a positive integer"),
      (0.0 <= m.dropout < 1.0, "model.dropout", "in [0, 1)"),
      (m.instant_k >= 0, "model.instant_k", ">= 0 (0: use instant_ratio)"),
      (0.0 < m.instant_ratio <= 1.0, "model.instant_ratio", "in (0, 1]"),
  ]
  bad = [f"config.{k}={avvp_weak._get(config, k)!r}: expected {want}"  # pylint: disable=protected-access
         for ok, k, want in checks if not ok]
  if bad:
    raise ValueError("invalid config:\n  " + "\n  ".join(bad))


def setup(config, train: bool = True) -> avvp_weak.Setup:
  """Validates, resolves data, builds the model; nothing is compiled."""
  validate_config(config)
  local_batch = sharding.check_batch_size(config.batch_size, "batch_size")
  local_eval = sharding.check_batch_size(config.eval_batch_size,
                                         "eval_batch_size")
  data_dir = datasets.resolve(config.data)
  features = model_lib.input_features(config.model)
  src = pipeline.Source(data_dir, config.data.train_split, features,
                        jax.process_index(), jax.process_count())
  model = model_lib.build(config.model, src.info)
  spe = src.steps_per_epoch(local_batch)
  total = int(config.num_epochs * spe)
  if config.get("max_steps"):
    total = min(total, config.max_steps)
  return avvp_weak.Setup(config, data_dir, src.info, sharding.make_mesh(),
                         model, features, local_batch, local_eval, spe, total,
                         src if train else None)


def loss_fn(out, batch, *, heads, single_label: str = "hash", step=None):
  """Eq. 4: sum over heads of CE with the clip's single label."""
  del step
  ids = batch.get("clip_id_bytes") if single_label == "hash" else None
  targets = losses.single_label_targets(batch["labels"], ids)
  return losses.multi_head_loss(out["logits"], targets, heads)


class Evaluator(avvp_f1.Evaluator):
  """Voting / union / Top-K metrics of the heads' logits."""

  def __init__(self, *args, heads=model_lib.HEADS, **kw):
    super().__init__(*args, **kw)
    self.heads = tuple(heads)

  def score(self, pred: Dict[str, np.ndarray]) -> Dict[str, float]:
    valid = metrics.head_valid(self.heads, pred.get("onset_sel"),
                               len(pred["logits"]))
    return metrics.score(pred["logits"], pred["labels"],
                         pred.get("primary_labels"), self.heads, valid)


def make_evaluator(s: avvp_weak.Setup, split: str) -> Evaluator:
  return ave_supervised.make_evaluator(
      s, split, keys=PRED_KEYS,
      cls=functools.partial(Evaluator, heads=s.config.model.heads))


def train_and_evaluate(config, workdir: str) -> Dict[str, Any]:
  """Trains, validates every epoch, keeps the best, scores it (val, test).

  Returns the summary written to `workdir/results.json`.
  """
  s = setup(config)
  loss = functools.partial(loss_fn, heads=tuple(config.model.heads),
                           single_label=config.loss.single_label)
  state = avvp_weak.fit(s, workdir, loss,
                        make_evaluator(s, config.data.val_split))
  summary = evaluate_checkpoint(config, workdir, "best", s=s)
  summary["final_params_sha256"] = train_lib.params_digest(state.params)
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def save_predictions(path: str, pred: Dict[str, np.ndarray], heads) -> None:
  if jax.process_index() == 0:
    np.savez_compressed(path, heads=np.asarray(heads), **{
        k: pred[k] for k in ("ids", "labels", "primary_labels",
                             "segment_mask") + PRED_KEYS if k in pred})


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None, s: Optional[avvp_weak.Setup] = None
                        ) -> Dict[str, Any]:
  """Restores `which` (best, latest or a step) and scores `splits` (default
  val, test); writes eval_<which>.json/.md and pred_<split>.npz."""
  s = s or setup(config, train=False)
  state, step = ave_supervised.restore(s, workdir, which)
  results = {}
  for sp in splits or [config.data.val_split, config.data.test_split]:
    ev = make_evaluator(s, sp)
    pred = ev.predict(state)
    results[sp] = ev.score(pred)
    save_predictions(os.path.join(workdir, f"pred_{sp}.npz"), pred,
                     config.model.heads)
  summary = ave_supervised.write_eval(config, workdir, which, step, results)
  summary.update(heads=list(config.model.heads), data_dir=s.data_dir)
  return summary

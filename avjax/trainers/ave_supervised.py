"""AVE event localization: supervised and weakly-supervised (MIL) training.

`config.loss.type`: "segment" (per-segment softmax CE against the dense
labels; paper Sec. 4.1) or "mil" (the segment scores pooled over time by
`config.loss.pooling`, softmax CE against the video labels; paper Sec. 4.4;
`config.data.extra_train_splits` adds e.g. AVE's background-only
`train_noisy` clips). Either way the model is scored per segment (accuracy
of the argmax over the C classes; `acc_event`/`acc_background` split it by
the true label). On the synthetic dataset, models with audio-guided
attention also report how much attention falls on the sounding object's
regions (`att_mass`) against a uniform map (`att_uniform`).

The loop is `avvp_weak.fit` (resume, jit data-parallel steps, checkpoints,
finite-loss guard); this module supplies the setup, loss and evaluator.
"""

import dataclasses
import functools
import os
from typing import Any, Dict, Optional

import jax
import numpy as np

from avjax.data import datasets
from avjax.data import pipeline
from avjax.data.synthetic import ave as synthetic_ave
from avjax.data import tfrecord
from avjax.evaluators import avvp_f1
from avjax.losses import ave as ave_losses
from avjax.metrics import ave as ave_metrics
from avjax.models import ave_net
from avjax.trainers import avvp_weak
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import sharding
from avjax.utils import writers

LOSS_TYPES = ("segment", "mil")
METRIC_KEYS = ("acc", "acc_event", "acc_background")


@dataclasses.dataclass
class UnionSource(pipeline.Source):
  """A training source over several splits of one dataset (their shards
  together); label keys are those of the first split, which every other
  split must also carry."""
  extra_splits: tuple = ()

  def __post_init__(self):
    self.info = tfrecord.read_info(self.data_dir)
    files, counts = [], []
    keys = set(self.info["splits"][self.split]["label_keys"]) if (
        self.split in self.info["splits"]) else set()
    for sp in (self.split,) + tuple(self.extra_splits):
      files += tfrecord.split_files(self.data_dir, self.info, sp)
      counts += self.info["splits"][sp]["file_counts"]
      missing = keys - set(self.info["splits"][sp]["label_keys"])
      if missing:
        raise ValueError(f"split {sp!r} of {self.data_dir} lacks label keys "
                         f"{sorted(missing)} of split {self.split!r}")
    self.files, self.host_counts = pipeline.host_shards(
        files, counts, self.process_index, self.process_count)
    self.num_clips = sum(counts)


def validate_config(config, model_errors, loss_types=LOSS_TYPES,
                    metric_keys=METRIC_KEYS) -> None:
  checks = [
      (config.num_epochs > 0, "num_epochs", "a positive number"),
      (config.optim.lr > 0, "optim.lr", "a positive float"),
      (0 < config.optim.decay_factor <= 1, "optim.decay_factor", "in (0, 1]"),
      (config.loss.type in loss_types, "loss.type", f"one of {loss_types}"),
      (config.loss.get("pooling", "mean") in ("mean", "max"), "loss.pooling",
       "'mean' or 'max'"),
      (config.eval.best_metric in metric_keys, "eval.best_metric",
       f"one of {metric_keys}"),
      (config.log_every_steps > 0, "log_every_steps", "a positive integer"),
  ]
  bad = [f"config.{k}={avvp_weak._get(config, k)!r}: expected {want}"  # pylint: disable=protected-access
         for ok, k, want in checks if not ok] + model_errors
  if bad:
    raise ValueError("invalid config:\n  " + "\n  ".join(bad))


def setup(config, train: bool = True, *, model_lib=ave_net,
          loss_types=LOSS_TYPES, metric_keys=METRIC_KEYS) -> avvp_weak.Setup:
  """Validates, resolves data, builds the model with `model_lib` (a module
  with check(model_cfg), build(model_cfg, num_classes) and
  input_features(model_cfg)); nothing is compiled here."""
  validate_config(config, model_lib.check(config.model), loss_types,
                  metric_keys)
  local_batch = sharding.check_batch_size(config.batch_size, "batch_size")
  local_eval = sharding.check_batch_size(config.eval_batch_size,
                                         "eval_batch_size")
  data_dir = datasets.resolve(config.data)
  features = model_lib.input_features(config.model)
  info = tfrecord.read_info(data_dir)
  extra = tuple(s for s in config.data.get("extra_train_splits", ())
                if s in info["splits"] or config.data.get(
                    "require_extra_splits", False))
  src = UnionSource(data_dir, config.data.train_split, features,
                    jax.process_index(), jax.process_count(),
                    extra_splits=extra)
  spe = src.steps_per_epoch(local_batch)
  total = int(config.num_epochs * spe)
  if config.get("max_steps"):
    total = min(total, config.max_steps)
  model = model_lib.build(config.model, len(src.info["classes"]))
  return avvp_weak.Setup(config, data_dir, src.info, sharding.make_mesh(),
                         model, features, local_batch, local_eval, spe, total,
                         src if train else None)


def loss_fn(out, batch, *, loss_cfg, step=None) -> Dict[str, Any]:
  """Segment CE or MIL CE, summed over DMRFE branches when present."""
  del step
  branches = out.get("branch_logits", out["logits"][None])
  mask = batch["segment_mask"]
  if loss_cfg.type == "segment":
    per = [ave_losses.segment_ce(b, batch["seg_audio"], mask)
           for b in branches]
  else:
    per = [ave_losses.mil_ce(b, batch["labels"], mask, loss_cfg.pooling)
           for b in branches]
  return {"loss": sum(per)}


class Evaluator(avvp_f1.Evaluator):
  """Segment accuracy of `prob` (argmax) against `seg_audio`."""

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


def make_evaluator(s: avvp_weak.Setup, split: str,
                   keys=("prob", "attention"), cls=Evaluator):
  src = pipeline.Source(s.data_dir, split, s.features, jax.process_index(),
                        jax.process_count())
  fn = jax.jit(functools.partial(train_lib.predict_step, keys=keys),
               out_shardings=sharding.data_sharding(s.mesh))
  return cls(fn, src, s.local_eval_batch, s.mesh)


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


def train_and_evaluate(config, workdir: str) -> Dict[str, Any]:
  """Trains, validates every epoch, keeps the best, scores it (val, test).

  Returns the summary written to `workdir/results.json`.
  """
  s = setup(config)
  state = avvp_weak.fit(
      s, workdir, functools.partial(loss_fn, loss_cfg=config.loss),
      make_evaluator(s, config.data.val_split))
  summary = evaluate_checkpoint(config, workdir, "best", s=s)
  summary["final_params_sha256"] = train_lib.params_digest(state.params)
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def restore(s: avvp_weak.Setup, workdir: str, which: str):
  """(state, step) of checkpoint `which` (best, latest or a step number)."""
  state, _ = avvp_weak.make_state(s)
  fp = avvp_weak.fingerprint(s, state.params)
  latest, best = avvp_weak.managers(workdir, s.config)
  mgr = best if which == "best" else latest
  step = None if which in ("best", "latest") else int(which)
  state, _, step = checkpointing.restore(mgr, step, state, fp)
  return state, step


def write_eval(config, workdir: str, which: str, step, results) -> dict:
  """Writes eval_<which>.json/.md; returns the summary."""
  summary = {"checkpoint": which, "step": step, "results": results}
  writers.write_json(os.path.join(workdir, f"eval_{which}.json"), summary)
  keys = sorted({k for r in results.values() for k in r})
  lines = ["| run | " + " | ".join(keys) + " |",
           "|---|" + "---|" * len(keys)]
  for sp, r in results.items():
    lines.append(f"| {config.experiment_name} {sp} (step {step}) | " +
                 " | ".join(f"{r[k]:.1f}" if k in r else "" for k in keys)
                 + " |")
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"eval_{which}.md"), "w") as f:
      f.write("\n".join(lines) + "\n")
  writers.log("\n" + "\n".join(lines))
  return summary


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None, s: Optional[avvp_weak.Setup] = None
                        ) -> Dict[str, Any]:
  """Restores `which` and scores `splits` (default val, test); writes
  eval_<which>.json/.md and pred_<split>.npz (prob, attention)."""
  s = s or setup(config, train=False)
  state, step = restore(s, workdir, which)
  results = {}
  for sp in splits or [config.data.val_split, config.data.test_split]:
    ev = make_evaluator(s, sp)
    pred = ev.predict(state)
    results[sp] = dict(ev.score(pred), **attention_scores(s.info, sp, pred))
    if jax.process_index() == 0:
      np.savez_compressed(os.path.join(workdir, f"pred_{sp}.npz"), **{
          k: pred[k] for k in ("ids", "prob", "attention", "segment_mask")
          if k in pred})
  return write_eval(config, workdir, which, step, results)

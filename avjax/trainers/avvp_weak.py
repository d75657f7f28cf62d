"""Weakly-supervised AVVP training (HAN and its family) and evaluation."""

import dataclasses
import functools
import os
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avjax.data import datasets
from avjax.data import pipeline
from avjax.evaluators import avvp_f1
from avjax.evaluators import veba as veba_eval
from avjax.losses import adversarial
from avjax.losses import bce
from avjax.losses import nce
from avjax.losses import veba
from avjax.models import build
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import optim
from avjax.utils import pretrained
from avjax.utils import sharding
from avjax.utils import writers


@dataclasses.dataclass
class Setup:
  """Everything a run needs besides its state."""
  config: Any
  data_dir: str
  info: dict
  mesh: Any
  model: Any
  features: tuple
  local_batch: int
  local_eval_batch: int
  steps_per_epoch: int
  total_steps: int
  train_src: Optional[pipeline.Source]


LOSS_TYPES = ("han", "han_nce", "crossmodal") + veba.LOSS_TYPES
# loss.dropped_target -> bce.han_loss(dropped_target=...).
DROPPED_TARGETS = {"zero": 0.0, "negative": None}


def validate_config(config) -> None:
  """Rejects impossible values before any data is read or code compiled."""
  checks = [
      (config.num_epochs > 0, "num_epochs", "a positive number"),
      (config.optim.lr > 0, "optim.lr", "a positive float"),
      (0 < config.optim.decay_factor <= 1, "optim.decay_factor", "in (0, 1]"),
      (config.eval.gating in ("global", "modality"), "eval.gating",
       "'global' or 'modality'"),
      (config.eval.best_metric in _best_metrics(config), "eval.best_metric",
       f"one of {_best_metrics(config)}"),
      (config.eval.get("evaluator", "avvp") in ("avvp", "veba"),
       "eval.evaluator", "'avvp' or 'veba'"),
      (config.model.input_modalities in ("av", "a", "v"),
       "model.input_modalities", "'av', 'a' or 'v'"),
      (config.model.dtype in ("float32", "bfloat16"), "model.dtype",
       "'float32' or 'bfloat16'"),
      (config.model.d_model % config.model.num_heads == 0, "model.num_heads",
       f"a divisor of model.d_model={config.model.d_model}"),
      (config.log_every_steps > 0, "log_every_steps", "a positive integer"),
      (config.get("checkpoint_every_steps", 0) >= 0,
       "checkpoint_every_steps", "0 (epoch ends only) or a positive integer"),
      (0.0 <= config.model.dropout < 1.0, "model.dropout", "in [0, 1)"),
      (config.loss.get("type", "han") in LOSS_TYPES, "loss.type",
       f"one of {LOSS_TYPES}"),
      (config.loss.get("dropped_target", "negative") in DROPPED_TARGETS,
       "loss.dropped_target", f"one of {tuple(DROPPED_TARGETS)}"),
      (not config.model.get("adversarial", False)
       or config.loss.get("type", "han") == "crossmodal", "loss.type",
       "'crossmodal' when model.adversarial=True (else the discriminator "
       "is never trained)"),
  ] + pretrained.validate(config.model)
  bad = [f"config.{k}={_get(config, k)!r}: expected {want}"
         for ok, k, want in checks if not ok]
  if bad:
    raise ValueError("invalid config:\n  " + "\n  ".join(bad))


def _best_metrics(config):
  if config.eval.get("evaluator", "avvp") == "veba":
    return veba_eval.METRIC_KEYS
  return avvp_f1.METRIC_KEYS + ("map",)


def _get(config, dotted):
  for part in dotted.split("."):
    config = config[part]
  return config


def setup(config, train: bool = True) -> Setup:
  """Validates the config and batch sizes, resolves data, builds the model.

  Nothing is compiled here, so every refusal comes before compilation.
  """
  validate_config(config)
  local_batch = sharding.check_batch_size(config.batch_size, "batch_size")
  local_eval = sharding.check_batch_size(config.eval_batch_size,
                                         "eval_batch_size")
  data_dir = datasets.resolve(config.data)
  features = build.input_features(config.model)
  pi, pc = jax.process_index(), jax.process_count()
  src = pipeline.Source(data_dir, config.data.train_split, features, pi, pc)
  missing = [k for k in ("audio_labels", "visual_labels")
             if k not in src.info["splits"][src.split]["label_keys"]]
  if config.loss.get("use_modality_labels", False) and missing:
    raise ValueError(f"config.loss.use_modality_labels=True but split "
                     f"{src.split!r} of {data_dir} has no {missing}")
  spe = src.steps_per_epoch(local_batch)
  total = int(config.num_epochs * spe)
  if config.get("max_steps"):
    total = min(total, config.max_steps)
  model = build.build(config.model, src.info)
  return Setup(config, data_dir, src.info, sharding.make_mesh(), model,
               features, local_batch, local_eval, spe, total,
               src if train else None)


def loss_fn(out, batch, *, loss_cfg, step=None,
            total_steps: int = 1) -> Dict[str, jnp.ndarray]:
  """`loss_cfg.type`: "han" (HAN's guided loss), "han_nce" (plus MA's
  temporal contrastive term) or "crossmodal" (Lamba et al. 2021: modality
  terms weighted by `modality_weight`, plus `adv_weight` times the
  discriminator BCE when the model returns `disc_logits`, its reversal scale
  scheduled by step / total_steps); `use_modality_labels` trains the modality
  heads on the batch's `audio_labels`/`visual_labels` (MA's refined labels),
  a dropped weak label with target `DROPPED_TARGETS[loss_cfg.dropped_target]`
  ("zero": 0 as MA's reference; "negative", the default: smoothed like an
  absent class) and, with `global_drops_with_audio`, the global head's
  target 0 where the audio label was dropped (the reference's stage 3, whose
  audio target array is the video label array itself).
  "veba"/"veba_shared": `losses.veba` (VEBA's audio/video labels)."""
  if loss_cfg.get("type", "han") in veba.LOSS_TYPES:
    return veba.veba_loss(out, batch, loss_type=loss_cfg.type,
                          video_label_fraction=loss_cfg.get(
                              "video_label_fraction", 1.0))
  per_modality = {}
  if loss_cfg.get("use_modality_labels", False):
    per_modality = {"audio_labels": batch["audio_labels"],
                    "visual_labels": batch["visual_labels"],
                    "dropped_target": DROPPED_TARGETS[
                        loss_cfg.get("dropped_target", "negative")]}
    if loss_cfg.get("global_drops_with_audio", False):
      per_modality["global_labels"] = batch["labels"] * (
          batch["audio_labels"] > 0)
  terms = bce.han_loss(out, batch["labels"],
                       audio_smoothing=loss_cfg.audio_smoothing,
                       visual_smoothing=loss_cfg.visual_smoothing,
                       **per_modality)
  if loss_cfg.get("type", "han") == "han_nce":
    terms["loss_nce"] = nce.temporal_nce(
        out["audio_emb"], out["visual_in"], batch.get("segment_mask"),
        tau=loss_cfg.nce_tau, label_smoothing=loss_cfg.nce_smoothing)
    terms["loss"] = terms["loss"] + loss_cfg.nce_weight * terms["loss_nce"]
  if loss_cfg.get("type", "han") == "crossmodal":
    terms["loss"] = terms["loss_global"] + loss_cfg.modality_weight * (
        terms["loss_audio"] + terms["loss_visual"])
    if "disc_logits" in out:
      terms.update(adversarial.adversarial_terms(
          out, step, total_steps, batch.get("segment_mask"),
          max_scale=loss_cfg.get("grl_scale", 1.0)))
      terms["loss"] = terms["loss"] + loss_cfg.adv_weight * terms["loss_disc"]
  return terms


def batch_shapes(s: Setup) -> Dict[str, jax.ShapeDtypeStruct]:
  t = int(s.info["max_segments"])
  specs = {x.name: x for x in s.info["feature_specs"]}
  shapes = {"segment_mask": jax.ShapeDtypeStruct((1, t), jnp.float32)}
  for f in s.features:
    sp = specs[f]
    shapes[f] = jax.ShapeDtypeStruct(
        (1, t * sp.frames_per_segment) + sp.shape, jnp.float32)
  return shapes


def make_state(s: Setup, rng=None):
  tx, sched = optim.make_optimizer(s.config.optim, s.steps_per_epoch)
  tx = pretrained.maybe_freeze(tx, s.config.model)
  rng = jax.random.PRNGKey(s.config.seed) if rng is None else rng
  state = train_lib.create_train_state(s.model, tx, batch_shapes(s), rng,
                                       s.mesh)
  return state, sched


def fingerprint(s: Setup, params) -> Dict[str, Any]:
  """Fields that must match between a checkpoint and the current config."""
  return {"model": s.config.model.to_dict(),
          "classes": len(s.info["classes"]),
          "features": {f["name"]: f for f in s.info["features"]
                       if f["name"] in s.features},
          "param_shapes": train_lib.param_shapes(params)}


def make_evaluator(s: Setup, split: str) -> avvp_f1.Evaluator:
  if s.config.eval.get("evaluator", "avvp") == "veba":
    return veba_eval.make(s, split)
  src = pipeline.Source(s.data_dir, split, s.features, jax.process_index(),
                        jax.process_count())
  return avvp_f1.Evaluator(train_lib.jit_predict_step(s.mesh), src,
                           s.local_eval_batch, s.mesh,
                           gating=s.config.eval.gating,
                           threshold=s.config.eval.threshold)


def managers(workdir: str, config):
  return (checkpointing.manager(os.path.join(workdir, "checkpoints"),
                                config.keep_checkpoints),
          checkpointing.manager(os.path.join(workdir, "best"), 1))


def maybe_restore(s: Setup, state, latest, fp):
  """Resumes from the workdir's latest checkpoint if there is one."""
  meta = {"best_metric": -1.0, "best_step": -1, "history": []}
  step = 0
  if not s.config.restart and latest.all_steps():
    state, meta, step = checkpointing.restore(latest, None, state, fp)
    writers.log("resumed from %s at step %d", latest.directory, step)
  else:  # a fresh run: `config.model.init_from` (if set) initialises it
    state = pretrained.init_params(state, s.config.model)
  # Metrics logged after the restored step (or by a run killed before its
  # first checkpoint) are written again by this run: drop them.
  writers.truncate_jsonl(os.path.dirname(latest.directory), step)
  return state, meta, step


def maybe_validate(s: Setup, state, step, evaluator, latest, best, meta, fp,
                   writer):
  """End-of-epoch validation, latest save, best save by the eval metric."""
  res = evaluator.run(state)
  writer.write_scalars(step, {f"val/{k}": v for k, v in res.items()})
  key = s.config.eval.best_metric
  meta["history"].append({"step": step, **res})
  # ">=": a later epoch that ties the best replaces it, as in the reference
  # code (`if F >= best_F`).
  if res[key] >= meta["best_metric"]:
    meta.update(best_metric=res[key], best_step=step)
    checkpointing.save(best, step, state, dict(meta, fingerprint=fp))
  checkpointing.save(latest, step, state, dict(meta, fingerprint=fp))
  keys = [k for k in avvp_f1.METRIC_KEYS if k in res] or sorted(
      k for k, v in res.items() if isinstance(v, float))
  writers.log("step %d val: %s", step, " ".join(
      f"{k}={res[k]:.1f}" for k in keys))
  return meta


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> Dict[str, Any]:
  """Trains, validates every epoch, keeps the best, scores it on test.

  Returns the summary written to `workdir/results.json`.
  """
  s = setup(config)
  state = fit(s, workdir, functools.partial(
      loss_fn, loss_cfg=config.loss, total_steps=s.total_steps),
              make_evaluator(s, config.data.val_split))
  summary = evaluate_checkpoint(config, workdir, "best", s=s)
  summary["final_params_sha256"] = train_lib.params_digest(state.params)
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def fit(s: Setup, workdir: str, loss, val):
  """The training loop of any trainer built on `Setup`: resumes from the
  workdir, runs `loss` (see `train_lib.train_step`) to `s.total_steps`,
  validates with the evaluator `val` (`run(state)` -> {metric: float}) at
  epoch ends, keeps latest/best checkpoints; returns the final state."""
  config = s.config
  os.makedirs(workdir, exist_ok=True)
  state, sched = make_state(s)
  fp = fingerprint(s, state.params)
  writers.log("%s: %d params, %d devices on %d host(s), %d steps/epoch, %d "
              "steps", config.experiment_name,
              train_lib.param_count(state.params), jax.device_count(),
              jax.process_count(), s.steps_per_epoch, s.total_steps)
  latest, best = managers(workdir, config)
  state, meta, start = maybe_restore(s, state, latest, fp)
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  step_fn = train_lib.jit_train_step(loss, s.mesh, state_sharding)
  writer = writers.Writer(workdir)
  prog = writers.Progress(s.total_steps, start, config.batch_size)
  batches = sharding.prefetch_to_mesh(pipeline.train_batches(
      s.train_src, s.local_batch, config.seed, start,
      config.data.shuffle_buffer, s.total_steps), s.mesh)
  acc, every = [], config.get("checkpoint_every_steps", 0)
  for step in range(start + 1, s.total_steps + 1):
    state, metrics = step_fn(state, next(batches))
    acc.append(metrics)
    if step == start + 1:
      prog.reset(step)
    if step % config.log_every_steps == 0 or step % s.steps_per_epoch == 0:
      m = {k: float(np.mean([x[k] for x in jax.device_get(acc)]))
           for k in acc[0]}
      acc = []
      writers.check_finite(m, step)
      m["lr"] = float(sched(step))
      writer.write_scalars(step, {f"train/{k}": v for k, v in m.items()})
      writers.log(prog.line(step, m))
    if step % s.steps_per_epoch == 0 or step == s.total_steps:
      meta = maybe_validate(s, state, step, val, latest, best, meta, fp,
                            writer)
      prog.reset(step)
    elif every and step % every == 0:
      checkpointing.save(latest, step, state, dict(meta, fingerprint=fp))
  latest.wait_until_finished()
  best.wait_until_finished()
  writer.close()
  return state


def save_predictions(path: str, ev: avvp_f1.Evaluator, pred) -> None:
  """Writes decisions in `avjax.score`'s format plus the probabilities."""
  if jax.process_index() != 0:
    return
  a, v = ev.decisions(pred)
  np.savez_compressed(path, ids=pred["ids"], audio=a, visual=v, **{
      k: pred[k] for k in ("frame_prob", "global_prob", "audio_prob",
                           "visual_prob", "segment_mask") if k in pred})


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None, s: Optional[Setup] = None
                        ) -> Dict[str, Any]:
  """Restores `which` (best, latest or a step number) and scores splits.

  Writes `eval_<which>.json` and `eval_<which>.md` into the workdir.
  """
  s = s or setup(config, train=False)
  state, _ = make_state(s)
  fp = fingerprint(s, state.params)
  latest, best = managers(workdir, config)
  mgr = best if which == "best" else latest
  step = None if which in ("best", "latest") else int(which)
  state, meta, step = checkpointing.restore(mgr, step, state, fp)
  splits = splits or [config.data.val_split, config.data.test_split]
  results = {}
  for sp in splits:
    ev = make_evaluator(s, sp)
    pred = ev.predict(state)
    results[sp] = ev.score(pred)
    save_predictions(os.path.join(workdir, f"pred_{sp}.npz"), ev, pred)
  summary = {"checkpoint": which, "step": step, "results": results}
  writers.write_json(os.path.join(workdir, f"eval_{which}.json"), summary)
  table = avvp_f1.to_markdown(
      {f"{config.experiment_name} {sp} (step {step})": r
       for sp, r in results.items()})
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"eval_{which}.md"), "w") as f:
      f.write(table + "\n")
  writers.log("\n" + table)
  return summary

"""The one training loop of avjax, and the trainer contract.

A trainer is a module `avjax/trainers/<name>.py` chosen by
`config.trainer`. A loop trainer defines `TRAINER = loop.Trainer(...)` and
exposes its `train_and_evaluate`/`evaluate_checkpoint`. What it supplies,
each chosen by name in its config (one signature per kind):

  model      `config.model.name` -> `avjax.models.build`:
             build(model_cfg, info) -> flax Module (+ input_features, check)
  loss       `config.loss.type` -> `avjax.losses.registry`:
             loss_fn(out, batch, *, config, step, total_steps) -> {"loss",..}
  evaluator  `config.eval.evaluator` -> `avjax.evaluators.<name>`:
             make(s, split) -> Evaluator (run(state) -> {metric: float};
             the base class and contract in `avjax.evaluators.common`)
  validate   optional `Trainer.validate(config) -> [(ok, key, expectation)]`,
             checks across components (e.g. a model output a loss needs).

Each name is a registered short name or a full module path, so a new
model, loss or evaluator is one module plus a config naming it.

What the loop guarantees to every trainer:

  * Refusals first: every config error (loop, evaluator, loss, model and
    trainer checks, all listed at once), batch sizes against the device
    count, missing data or label keys, a workdir of another model: all
    before anything is compiled or trained.
  * Resume without losing or repeating data: a workdir with checkpoints
    resumes from its latest readable one (its fingerprint, model block and
    parameter shapes, must match); the input stream is a pure function of
    (seed, global step), so the resumed run sees exactly the batches an
    uninterrupted run would have, and metrics logged after the restored
    step are dropped. A fresh run is initialised by the model's
    `init_params` hook (`config.model.init_from`), else from scratch.
  * Finite-loss guard: a step whose loss or gradient norm is not finite
    leaves the state unchanged (`train_lib.train_step`), and the run stops
    with `writers.NonFiniteLossError` at the next log.
  * Best on validation: the evaluator runs at every epoch end (and the
    last step), or with `config.eval.every_epochs=k > 1` after epochs
    1, 1+k, 1+2k, ... only (AVE's reference: `if epoch % 5 == 0` over
    0-based epochs); `best/` keeps the step with the best `config.eval.
    best_metric` (a tie replaces it, as the AVVP reference code's
    `F >= best`; `config.eval.tie_replaces_best=False` keeps the earlier
    one, as AVE's `val_acc > best_val_acc`), `checkpoints/` the latest
    `config.keep_checkpoints` (saved at every epoch end, validated or not,
    and every `config.checkpoint_every_steps`). The run reports the best
    one, or the final one with `config.eval.checkpoint="final"`.
  * Batches: `config.batch_size` clips, or single segments with
    `config.data.batch_unit="segment"` (`pipeline.segment_batches`), in
    a new permutation each epoch or, with `config.data.order="fixed"`, in
    the written order every epoch (`pipeline.train_batches`).
  * Writers: `config.json`, `metrics.jsonl` and TensorBoard (`train/*`,
    `val/*`), `eval_<which>.json/.md` and `pred_<split>.npz` of a scored
    checkpoint, `results.json` (the best checkpoint on val and test, plus
    the final parameters' SHA-256).

Paper pipelines that chain several runs (`avjax.projects.ma.pipeline`,
`avjax.projects.crossmodal.pipeline`) call these functions; `maybe_run` is
their resumable stage.
"""

import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avjax import errors
from avjax.data import datasets
from avjax.data import pipeline
from avjax.data import tfrecord
from avjax.losses import registry as losses
from avjax.models import build as models
from avjax.trainers import run_checkpoints
from avjax.trainers import run_config
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import optim
from avjax.utils import registry
from avjax.utils import sharding
from avjax.utils import writers

# The config.json of a run, upgraded to the fields this code reads.
read_config = run_config.read_config


@dataclasses.dataclass(frozen=True)
class Trainer:
  """A trainer run by the loop (see the module docstring).

  Attributes:
    name: its `config.trainer` name.
    validate: optional config -> [(ok, dotted key, expectation)] checks.
  """
  name: str
  validate: Optional[Callable[[Any], List[tuple]]] = None

  def train_and_evaluate(self, config: ml_collections.ConfigDict,
                         workdir: str) -> Dict[str, Any]:
    return train_and_evaluate(config, workdir, self)

  def evaluate_checkpoint(self, config, workdir: str, which: str = "best",
                          splits=None) -> Dict[str, Any]:
    return evaluate_checkpoint(config, workdir, which, splits, trainer=self)


DEFAULT = Trainer("loop")


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


BATCH_UNITS = ("clip", "segment", "segment_split")
REPORTED = ("best", "final")


def batch_unit(config) -> str:
  """`config.data.batch_unit`: "clip" (a batch of `batch_size` clips),
  "segment" (`batch_size` single segments, permuted within groups of
  `batch_size` clips; `pipeline.segment_batches`) or "segment_split"
  (single segments permuted over the whole split, as the AVE cross-modality
  reference; `pipeline.split_segment_batches`)."""
  return config.data.get("batch_unit", "clip")


def reported_checkpoint(config) -> str:
  """`config.eval.checkpoint`: the checkpoint a run reports, "best" (on
  validation) or "final" (the last step, as reference code that keeps the
  final model)."""
  return config.eval.get("checkpoint", "best")


def eval_every_epochs(config) -> int:
  """`config.eval.every_epochs`: validate after epochs 1, 1+k, 1+2k, ..."""
  return int(config.eval.get("every_epochs", 1))


def data_order(config) -> str:
  """`config.data.order`: "shuffle" (a permutation per epoch) or "fixed"
  (the written order every epoch)."""
  return config.data.get("order", "shuffle")


def validate_config(config, trainer: Trainer = DEFAULT) -> None:
  """Rejects impossible values before any data is read or code compiled:
  one ValueError listing the loop's, the evaluator's, the loss's, the
  model's and the trainer's errors."""
  bad = errors.failed_checks(config, [
      (config.num_epochs > 0, "num_epochs", "a positive number"),
      (config.optim.lr > 0, "optim.lr", "a positive float"),
      (0 < config.optim.decay_factor <= 1, "optim.decay_factor", "in (0, 1]"),
      (config.log_every_steps > 0, "log_every_steps", "a positive integer"),
      (config.checkpoint_every_steps >= 0, "checkpoint_every_steps",
       "0 (epoch ends only) or a positive integer"),
      (batch_unit(config) in BATCH_UNITS, "data.batch_unit",
       f"one of {BATCH_UNITS}"),
      (reported_checkpoint(config) in REPORTED, "eval.checkpoint",
       f"one of {REPORTED}"),
      (eval_every_epochs(config) >= 1, "eval.every_epochs",
       "a positive integer"),
      (data_order(config) in pipeline.ORDERS, "data.order",
       f"one of {pipeline.ORDERS}"),
      (config.optim.get("adam_form", "optax") in optim.ADAM_FORMS,
       "optim.adam_form", f"one of {optim.ADAM_FORMS}"),
      (config.optim.get("decay_every_steps", 0) >= 0,
       "optim.decay_every_steps", "0 (decay by epochs) or a positive "
       "integer"),
  ])
  for component_errors in (_evaluator_errors, losses.check,
                           lambda c: models.check(c.model)):
    try:
      bad += component_errors(config)
    except ValueError as e:  # an unknown component name
      bad.append(str(e))
  if trainer.validate:
    bad += errors.failed_checks(config, trainer.validate(config))
  errors.raise_invalid(bad)


def evaluator_module(config):
  """The evaluator module of `config.eval.evaluator` (`avjax.evaluators.
  <name>` or a full module path; looked up by name: evaluators sit above
  the trainers)."""
  return registry.load("config.eval.evaluator", config.eval.evaluator,
                       package="avjax.evaluators")


def make_evaluator(s: "Setup", split: str):
  """The config's evaluator of `split`: make(s, split) of its module."""
  return evaluator_module(s.config).make(s, split)


def _evaluator_errors(config) -> list:
  module = evaluator_module(config)
  best = tuple(module.BEST_METRICS)
  return errors.failed_checks(config, [
      (config.eval.best_metric in best, "eval.best_metric",
       f"one of {best}")]) + (
           module.check(config) if hasattr(module, "check") else [])


def setup(config, train: bool = True, trainer: Trainer = DEFAULT) -> Setup:
  """Validates the config and batch sizes, resolves data, builds the model.

  Nothing is compiled here, so every refusal comes before compilation.
  """
  validate_config(config, trainer)
  local_batch = sharding.check_batch_size(config.batch_size, "batch_size")
  local_eval = sharding.check_batch_size(config.eval_batch_size,
                                         "eval_batch_size")
  data_dir = datasets.resolve(config.data)
  info = tfrecord.read_info(data_dir)
  absent = [s for s in config.data.extra_train_splits
            if s not in info["splits"]]
  if absent:  # never train without a split the config names, silently
    extra = tuple(config.data.extra_train_splits)
    raise ValueError(
        f"config.data.extra_train_splits={extra}: {data_dir} has no split "
        f"{absent} (it has "
        f"{sorted(info['splits'])}); convert the data with it (AVE: the "
        "background-only clips audio_feature_noisy.h5, visual_feature_noisy"
        ".h5, labels_noisy.h5; `python -m avjax.prepare ave --noisy=yes`), "
        "or train without it: --config.data.extra_train_splits='()'")
  features = models.input_features(config.model, info)
  src = pipeline.Source(
      data_dir, config.data.train_split, features, jax.process_index(),
      jax.process_count(), extra_splits=tuple(config.data.extra_train_splits))
  missing = [k for k in losses.label_keys(config)
             if k not in src.info["splits"][src.split]["label_keys"]]
  if missing:
    raise ValueError(f"config.loss (type {config.loss.type!r}) reads "
                     f"{missing}, which split {src.split!r} of {data_dir} "
                     "does not have")
  # Evaluation only (train=False) needs no full training batch.
  spe = src.steps_per_epoch(local_batch) if train else 1
  if batch_unit(config) != "clip":  # batches of single segments
    spe *= int(src.info["max_segments"])
  total = int(config.num_epochs * spe)
  if config.max_steps:
    total = min(total, config.max_steps)
  model = models.build(config.model, src.info)
  return Setup(config, data_dir, src.info, sharding.make_mesh(), model,
               features, local_batch, local_eval, spe, total,
               src if train else None)


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
  """(fresh train state, learning-rate schedule) of a run."""
  tx, sched = optim.make_optimizer(s.config.optim, s.steps_per_epoch)
  tx = models.optimizer(tx, s.config.model)
  rng = jax.random.PRNGKey(s.config.seed) if rng is None else rng
  state = train_lib.create_train_state(s.model, tx, batch_shapes(s), rng,
                                       s.mesh)
  return state, sched


def restore(s: Setup, workdir: str, which: str = "best"):
  """(state, meta, step) of checkpoint `which` of a workdir: "best",
  "latest" or a step number (of `checkpoints/`)."""
  return run_checkpoints.restore(s, make_state(s)[0], workdir, which)


def maybe_validate(s: Setup, state, step, evaluator, latest, best, meta, fp,
                   writer):
  """End-of-epoch validation, latest save, best save by the eval metric."""
  res = evaluator.run(state)
  writer.write_scalars(step, {f"val/{k}": v for k, v in res.items()})
  key = s.config.eval.best_metric
  meta["history"].append({"step": step, **res})
  # A later epoch that ties the best replaces it, as in the AVVP reference
  # code (`if F >= best_F`), unless eval.tie_replaces_best is False (AVE's
  # `if val_acc > best_val_acc`).
  if (res[key] > meta["best_metric"] or (
      res[key] == meta["best_metric"] and
      s.config.eval.get("tie_replaces_best", True))):
    meta.update(best_metric=res[key], best_step=step)
    checkpointing.save(best, step, state, dict(meta, fingerprint=fp))
  checkpointing.save(latest, step, state, dict(meta, fingerprint=fp))
  writers.log("step %d val: %s", step, " ".join(
      f"{k}={res[k]:.1f}" for k in evaluator.log_keys(res)))
  return meta


def _validates(s: Setup, step: int, meta: dict) -> bool:
  """Whether step (an epoch end or the last step) is validated: every epoch
  end and the last step, or with eval.every_epochs=k > 1 the ends of
  0-based epochs 0, k, 2k, ... (and the last step only if nothing was
  validated before it, so a run always has a best checkpoint)."""
  k = eval_every_epochs(s.config)
  if step % s.steps_per_epoch == 0 and (
      (step // s.steps_per_epoch - 1) % k == 0):
    return True
  return step == s.total_steps and (k == 1 or not meta["history"])


def fit(s: Setup, workdir: str):
  """Trains to `s.total_steps` (see the module docstring: resume,
  finite-loss guard, validation and checkpoints); returns the final
  state."""
  config = s.config
  os.makedirs(workdir, exist_ok=True)
  state, sched = make_state(s)
  fp = run_checkpoints.fingerprint(s, state.params)
  writers.log("%s: %d params, %d devices on %d host(s), %d steps/epoch, %d "
              "steps", config.experiment_name,
              train_lib.param_count(state.params), jax.device_count(),
              jax.process_count(), s.steps_per_epoch, s.total_steps)
  latest, best = run_checkpoints.managers(workdir, config)
  state, meta, start = run_checkpoints.maybe_restore(s, state, latest, fp)
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  state_sharding = jax.tree.map(lambda x: x.sharding, state)
  step_fn = train_lib.jit_train_step(losses.make(config, s.total_steps),
                                     s.mesh, state_sharding)
  val = make_evaluator(s, config.data.val_split)
  writer = writers.Writer(workdir)
  prog = writers.Progress(s.total_steps, start, config.batch_size)
  if batch_unit(config) == "segment_split":
    host = pipeline.split_segment_batches(s.train_src, s.local_batch,
                                          config.seed, start, s.total_steps,
                                          data_order(config))
  elif batch_unit(config) == "segment":
    t = int(s.info["max_segments"])
    host = pipeline.segment_batches(pipeline.train_batches(
        s.train_src, s.local_batch, config.seed, start // t,
        config.data.shuffle_buffer, -(-s.total_steps // t),
        data_order(config)), s.info, s.features, config.seed, start)
  else:
    host = pipeline.train_batches(
        s.train_src, s.local_batch, config.seed, start,
        config.data.shuffle_buffer, s.total_steps, data_order(config))
  batches = sharding.prefetch_to_mesh(host, s.mesh)
  acc, every = [], config.checkpoint_every_steps
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
      if _validates(s, step, meta):
        meta = maybe_validate(s, state, step, val, latest, best, meta, fp,
                              writer)
      else:
        checkpointing.save(latest, step, state, dict(meta, fingerprint=fp))
      prog.reset(step)
    elif every and step % every == 0:
      checkpointing.save(latest, step, state, dict(meta, fingerprint=fp))
  latest.wait_until_finished()
  best.wait_until_finished()
  writer.close()
  return state


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None, s: Optional[Setup] = None,
                        trainer: Trainer = DEFAULT) -> Dict[str, Any]:
  """Restores `which` (best, latest or a step number) and scores `splits`
  (default: val and test) with the config's evaluator.

  Writes `eval_<which>.json`/`.md` and `pred_<split>.npz` into the workdir;
  returns the summary {checkpoint, step, results: {split: metrics}}.
  """
  s = s or setup(config, train=False, trainer=trainer)
  state, _, step = restore(s, workdir, which)
  results, ev = {}, None
  if splits is None:
    splits = [config.data.val_split, config.data.test_split]
  for sp in splits:
    ev = make_evaluator(s, sp)
    results[sp] = ev.evaluate(state, os.path.join(workdir, f"pred_{sp}.npz"))
  summary = {"checkpoint": which, "step": step, "results": results}
  if ev is not None:
    summary.update(ev.summary_fields())
  writers.write_json(os.path.join(workdir, f"eval_{which}.json"), summary)
  table = ev.markdown({f"{config.experiment_name} {sp} (step {step})": r
                       for sp, r in results.items()}) if ev else ""
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"eval_{which}.md"), "w") as f:
      f.write(table + "\n")
  writers.log("\n" + table)
  return summary


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       trainer: Trainer = DEFAULT) -> Dict[str, Any]:
  """Trains, validates every epoch, keeps the best, scores the reported
  checkpoint (`config.eval.checkpoint`: the best on val, or the final one)
  on val and test; returns the summary written to `workdir/results.json`."""
  s = setup(config, trainer=trainer)
  state = fit(s, workdir)
  which = {"best": "best", "final": "latest"}[reported_checkpoint(config)]
  summary = evaluate_checkpoint(config, workdir, which, s=s)
  summary["final_params_sha256"] = train_lib.params_digest(state.params)
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def maybe_run(workdir: str, final_file: str,
              fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
  """A resumable pipeline stage: runs `fn` unless `workdir/final_file`
  exists (then loads it)."""
  path = os.path.join(workdir, final_file)
  if os.path.exists(path):
    writers.log("%s: done already (%s), skipped", workdir, final_file)
    return writers.read_json(path)
  writers.log("running %s", workdir)
  return fn()

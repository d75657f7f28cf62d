"""Orbax checkpoints: latest (for resume) and best (for evaluation).

Layout in a workdir:
  checkpoints/<step>/{state,meta}   latest `keep` steps (async saves)
  best/<step>/{state,meta}          the single best step by the eval metric
Each `meta` holds the step, bookkeeping (best metric so far, epoch) and the
run's fingerprint (model/data fields and parameter shapes), which is checked
before a restore so a workdir of a different model is refused clearly.
A save first checks that the disk has room for it (`check_free_space`): a
full disk stops the run with a DiskFullError before anything is written, so
the previous checkpoints stay complete and the run resumes from them.
"""

import os
import shutil
from typing import Any, Callable, Dict, Optional, Tuple
import weakref

from absl import logging
import jax
import orbax.checkpoint as ocp

from avjax import errors
from avjax.utils import cli


class CheckpointMismatchError(errors.UserError, ValueError):
  """The workdir holds a checkpoint of a different model or data shape."""


_MANAGERS = weakref.WeakSet()


def wait_for_saves() -> None:
  """Finishes the checkpoint writes in flight (async saves) of every manager:
  run before a command exits on an error, so what was saved stays whole."""
  for mgr in list(_MANAGERS):
    mgr.wait_until_finished()


def manager(directory: str, keep: int, async_save: bool = True
            ) -> ocp.CheckpointManager:
  opts = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True,
      enable_async_checkpointing=async_save)
  mgr = ocp.CheckpointManager(os.path.abspath(directory), options=opts,
                              item_names=("state", "meta"))
  _MANAGERS.add(mgr)
  cli.before_error_exit(wait_for_saves)
  return mgr


MARGIN_BYTES = 4 << 20


def check_free_space(mgr: ocp.CheckpointManager, step: int,
                     state: Any) -> None:
  """Raises DiskFullError if the disk of `mgr` lacks room for `state`.

  Local paths only; the need is the state's array bytes (what Orbax writes,
  uncompressed) plus a small margin.
  """
  directory = str(mgr.directory)
  if "://" in directory:
    return
  need = sum(int(getattr(x, "nbytes", 0)) for x in jax.tree.leaves(state))
  path = directory
  while not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  try:
    usage = shutil.disk_usage(path)
  except OSError:
    return
  if usage.total and usage.free < need + MARGIN_BYTES:
    wait_for_saves()
    last = mgr.latest_step()
    mib = lambda b: f"{b / 2**20:.1f} MiB"
    raise errors.DiskFullError(
        f"no space left for the checkpoint of step {step} in {directory}: "
        f"it needs about {mib(need + MARGIN_BYTES)}, the disk has "
        f"{mib(usage.free)} free. Nothing was written; free some space (or "
        "use another --workdir) and run the same command again: training "
        "resumes from its last complete checkpoint" + (
            f" ({directory} holds step {last})." if last is not None else
            " (none yet: from the start)."))


def save(mgr: ocp.CheckpointManager, step: int, state: Any,
         meta: Dict[str, Any]) -> None:
  check_free_space(mgr, step, state)
  mgr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
           force=True)
  if jax.process_count() > 1:
    # Multi-host: Orbax's commit barriers of two managers (latest, best)
    # must not overlap ("barrier ... is already ongoing" deadlocks once
    # steps are fast), so each save completes before the next one starts.
    mgr.wait_until_finished()


def read_meta(mgr: ocp.CheckpointManager, step: int) -> Dict[str, Any]:
  return mgr.restore(step, args=ocp.args.Composite(
      meta=ocp.args.JsonRestore()))["meta"]


def check_fingerprint(stored: Dict[str, Any], current: Dict[str, Any],
                      path: str) -> None:
  """Raises CheckpointMismatchError naming every differing field."""
  diffs = []
  for key in sorted(set(stored) | set(current)):
    a, b = stored.get(key), current.get(key)
    if key == "param_shapes" and a != b:
      a, b = a or {}, b or {}
      names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
      for n in names[:8]:
        diffs.append(f"  param {n}: checkpoint {a.get(n)} vs config {b.get(n)}")
      if len(names) > 8:
        diffs.append(f"  ... and {len(names) - 8} more parameters")
    elif a != b:
      diffs.append(f"  {key}: checkpoint {a!r} vs config {b!r}")
  if diffs:
    raise CheckpointMismatchError(
        f"the checkpoint in {path} was made by a different model or data "
        "configuration:\n" + "\n".join(diffs) + "\nPass the --config it was "
        "trained with (its settings are in the workdir's config.json), use "
        "another --workdir, or, to train, pass --config.restart=True to "
        "discard it and start from scratch.")


def restore(mgr: ocp.CheckpointManager, step: Optional[int],
            abstract_state: Any, fingerprint: Dict[str, Any],
            upgrade: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]]
            = None) -> Tuple[Any, Dict[str, Any], int]:
  """Restores (state, meta, step), newest first, skipping unreadable steps.

  A step whose files are incomplete or corrupt (e.g. a kill during a write)
  is reported and the previous one is tried, unless a step was requested.
  `upgrade` maps a stored fingerprint to the form the current code writes
  (e.g. fields added to the config since, with the value they had).
  """
  steps = [step] if step is not None else sorted(mgr.all_steps(),
                                                 reverse=True)
  if not steps:
    raise FileNotFoundError(f"no checkpoint in {mgr.directory}")
  errors = []
  for s in steps:
    try:
      meta = read_meta(mgr, s)
    except Exception as e:  # pylint: disable=broad-except
      errors.append(f"step {s}: {type(e).__name__}: {e}")
      logging.warning("checkpoint %s/%s unreadable (%s); trying an older one",
                      mgr.directory, s, e)
      continue
    stored = meta.get("fingerprint", {})
    check_fingerprint(upgrade(stored) if upgrade else stored, fingerprint,
                      f"{mgr.directory}/{s}")
    try:
      state = mgr.restore(s, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state)))["state"]
    except Exception as e:  # pylint: disable=broad-except
      errors.append(f"step {s}: {type(e).__name__}: {e}")
      logging.warning("checkpoint %s/%s unreadable (%s); trying an older one",
                      mgr.directory, s, e)
      continue
    if errors:
      logging.warning("restored step %d after skipping: %s", s, errors)
    return state, meta, s
  raise RuntimeError(f"no readable checkpoint in {mgr.directory}:\n" +
                     "\n".join(errors))

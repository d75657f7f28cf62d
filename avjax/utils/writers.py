"""TensorBoard/JSON metric writing, progress lines and the finite-loss guard."""

import json
import os
import time
from typing import Dict

from absl import logging
import jax
import numpy as np


class NonFiniteLossError(FloatingPointError):
  """The training loss or gradient became NaN/Inf."""


class Writer:
  """Scalars to TensorBoard (`workdir/tb`) and `workdir/metrics.jsonl`.

  Only host 0 writes; other hosts get a writer that does nothing.
  """

  def __init__(self, workdir: str):
    self._on = jax.process_index() == 0
    if not self._on:
      return
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
    self._tb = metric_writers.AsyncWriter(
        metric_writers.SummaryWriter(os.path.join(workdir, "tb")))
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")

  def write_scalars(self, step: int, scalars: Dict[str, float]) -> None:
    if not self._on:
      return
    self._tb.write_scalars(step, scalars)
    self._jsonl.write(json.dumps({"step": int(step), **{
        k: float(v) for k, v in scalars.items()}}) + "\n")
    self._jsonl.flush()

  def close(self) -> None:
    if self._on:
      self._tb.close()
      self._jsonl.close()


def truncate_jsonl(workdir: str, step: int) -> None:
  """Drops records after `step` (a resumed run rewrites them)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if jax.process_index() != 0 or not os.path.exists(path):
    return
  keep = [r for r in read_jsonl(workdir) if r["step"] <= step]
  with open(path + ".tmp", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in keep)
  os.replace(path + ".tmp", path)


def read_jsonl(workdir: str):
  """All records of `workdir/metrics.jsonl` (resumed runs append)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f if line.strip()]


def check_finite(metrics: Dict[str, float], step: int) -> None:
  if metrics.get("nonfinite", 0.0) > 0 or not np.isfinite(metrics["loss"]):
    raise NonFiniteLossError(
        f"non-finite loss/gradient at or before step {step} (loss="
        f"{metrics['loss']}, grad_norm={metrics.get('grad_norm')}); the update "
        "was skipped and training stopped. Check the inputs (NaN features?), "
        "lower config.optim.lr or set config.optim.grad_clip.")


class Progress:
  """Formats `step k/N | loss | clips/s | ETA` lines."""

  def __init__(self, total_steps: int, start_step: int, batch_size: int):
    self.total, self.batch_size = total_steps, batch_size
    self.t0, self.s0 = time.time(), start_step

  def reset(self, step: int) -> None:
    """Restarts the rate clock (e.g. after compilation or evaluation)."""
    self.t0, self.s0 = time.time(), step

  def rate(self, step: int) -> float:
    dt = max(time.time() - self.t0, 1e-9)
    return (step - self.s0) / dt

  def line(self, step: int, metrics: Dict[str, float]) -> str:
    r = self.rate(step)
    eta = (self.total - step) / r if r > 0 else float("nan")
    m, s = divmod(int(eta), 60) if np.isfinite(eta) else (0, 0)
    return (f"step {step}/{self.total} ({100 * step / self.total:.0f}%) | "
            f"loss {metrics['loss']:.4f} | {r * self.batch_size:.0f} clips/s "
            f"| ETA {m}m{s:02d}s")


def write_json(path: str, obj) -> None:
  if jax.process_index() != 0:
    return
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)


def read_json(path: str):
  with open(path) as f:
    return json.load(f)


def log(msg: str, *args) -> None:
  """Prints progress/results on host 0 (other hosts log them)."""
  if jax.process_index() > 0:
    logging.info(msg, *args)
  else:
    print(msg % args if args else msg, flush=True)

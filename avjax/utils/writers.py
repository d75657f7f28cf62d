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


def make_writer(workdir: str):
  """clu writer: TensorBoard events + log on host 0, logging only elsewhere."""
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  return metric_writers.create_default_writer(
      os.path.join(workdir, "tb"), just_logging=jax.process_index() > 0,
      asynchronous=True)


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


def log(msg: str, *args) -> None:
  logging.info(msg, *args)
  if jax.process_index() == 0:
    print(msg % args if args else msg, flush=True)

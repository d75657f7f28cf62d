r"""Throughput of the visual extractors (a benchmark, not a test).

  python -m avjax.models.extractors.benchmark --batch_sizes=8,32 --steps=3

Per model and batch size: jit compile time, the median wall time and the
median process CPU time (all threads) of --steps blocking forward passes
after one warm-up (`per_s`: items per wall second; `per_cpu_s`: items per
CPU second, which on a shared, loaded machine times the core count bounds
what the machine would do alone), on random weights in the
torchvision layout (`checkpoints.random_state_dict`; speed does not depend
on the values, so no download is needed) and random normalised inputs:
ResNet-152 per 224x224 frame (frames/s), R(2+1)D-18 per 1 s LLP clip of
8x112x112 (clips/s), VGG-19 pool5 per 224x224 frame (frames/s). Then the
estimated extraction time of LLP's visual features, 11,849 ten-second videos
of 80 ResNet-152 frames + 10 R(2+1)D clips each (best batch size; decoding
and resizing not included). Prints one JSON object.
"""

import json
import os
import statistics
import time
from typing import Dict, List, Sequence

from absl import app
from absl import flags
import jax
import numpy as np

from avjax.models.extractors import checkpoints
from avjax.models.extractors import r2plus1d
from avjax.models.extractors import resnet
from avjax.models.extractors import vgg

LLP_VIDEOS = 11_849
LLP_FRAMES, LLP_CLIPS = 80, 10  # per 10 s video
# name -> (module, arch, input shape of one item, unit)
MODELS = {
    "resnet152": (resnet, "resnet152", (224, 224, 3), "frames"),
    "r2plus1d_18": (r2plus1d, "r2plus1d_18", (8, 112, 112, 3), "clips"),
    "vgg19": (vgg, "vgg19", (224, 224, 3), "frames"),
}

_MODELS = flags.DEFINE_list("models", list(MODELS), "models to time")
_BATCH = flags.DEFINE_list("batch_sizes", ["8", "32"], "batch sizes")
_STEPS = flags.DEFINE_integer("steps", 3, "timed steps per batch size")


def time_model(name: str, batch_sizes: Sequence[int], steps: int
               ) -> List[Dict[str, float]]:
  """[{batch, compile_s, step_s, per_s, cpu_s, per_cpu_s}] for one model."""
  module, arch, shape, _ = MODELS[name]
  model = module.build(arch)
  variables = jax.device_put(module.convert_torchvision(
      checkpoints.random_state_dict(module.torchvision_keys(arch, head=False)),
      arch))
  rows = []
  for b in batch_sizes:
    x = jax.device_put(np.random.default_rng(0).standard_normal(
        (b, *shape), dtype=np.float32))
    t0 = time.perf_counter()
    fn = jax.jit(model.apply).lower(variables, x).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(fn(variables, x))  # warm-up
    walls, cpus = [], []
    for _ in range(steps):
      t0, c0 = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn(variables, x))
      walls.append(time.perf_counter() - t0)
      cpus.append(time.process_time() - c0)
    step, cpu = statistics.median(walls), statistics.median(cpus)
    rows.append({"batch": b, "compile_s": round(compile_s, 2),
                 "step_s": round(step, 4), "per_s": round(b / step, 3),
                 "cpu_s": round(cpu, 4), "per_cpu_s": round(b / cpu, 3)})
    print(name, rows[-1], flush=True)
  return rows


def llp_estimate(best: Dict[str, float]) -> Dict[str, float]:
  """Seconds per video and hours for LLP from the best items/s per model."""
  per_video = (LLP_FRAMES / best["resnet152"]
               + LLP_CLIPS / best["r2plus1d_18"])
  return {"s_per_video": round(per_video, 3),
          "videos_per_s": round(1 / per_video, 4),
          "llp_hours": round(per_video * LLP_VIDEOS / 3600, 2)}


def main(argv):
  del argv
  batch_sizes = [int(b) for b in _BATCH.value]
  out = {"device": str(jax.devices()[0].device_kind),
         "devices": jax.device_count(), "cpus": os.cpu_count(),
         "load_avg_1m": round(os.getloadavg()[0], 2), "models": {}}
  for name in _MODELS.value:
    rows = time_model(name, batch_sizes, _STEPS.value)
    unit = MODELS[name][3]
    out["models"][name] = {
        "unit": f"{unit}/s", "rows": rows,
        "best_per_s": max(r["per_s"] for r in rows),
        "best_per_cpu_s": max(r["per_cpu_s"] for r in rows)}
  if {"resnet152", "r2plus1d_18"} <= set(out["models"]):
    m = out["models"]
    out["llp_visual"] = llp_estimate({k: v["best_per_s"]
                                      for k, v in m.items()})
    out["llp_visual_all_cores_unloaded"] = llp_estimate(
        {k: v["best_per_cpu_s"] * os.cpu_count() for k, v in m.items()})
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  app.run(main)

r"""Train/eval throughput of an AVVP config at LLP shapes (HAN by default).

  python -m avjax.benchmark --devices=1 --batch_sizes=16,64,256 --steps=20
  python -m avjax.benchmark --devices=8 --config.model.pool_first=False \
      --config.model.dtype=bfloat16 --out=/tmp/bench.json

Builds the run as the loop does (`trainers.loop`: `setup`, `make_state`,
the config's loss, `train_lib.jit_train_step`, its evaluator) from --config
(default configs/avvp_han.py: HAN, d=512) on a temporary TFRecord dataset of
LLP shape with random features (audio [T, 128], visual [T*8, 2048], motion
[T, 512], T = 10, 25 classes). Per global batch size: `lower_s`, `compile_s`
of the train step; `gflop`: XLA cost analysis of the compiled step (per-device
program) times the device count; per source, over --steps blocking steps after
--warmup: `step_ms` (median wall), `cpu_ms` (median process CPU, all threads),
`clips_per_s` (batch / mean wall, input stalls included), `gflop_per_s`.
Sources: `synthetic_arrays` (one device-resident batch: the model alone) and
`tfrecord` (`pipeline.train_batches` + `sharding.prefetch_to_mesh`, as the
trainer feeds it). Eval: `predict_step` over --num_eval_clips clips in padded
batches of config.eval_batch_size, gathered and scored by the trainer's AVVP
evaluator (segment/event F1 + mAP). Also: jax version, device kind and count,
CPU count and load, peak host RSS, device-0 memory stats (None on CPU).

--devices=N forces N host (CPU) devices with the `jax_num_cpu_devices` option
(it overrides XLA_FLAGS=--xla_force_host_platform_device_count). It must be
set before JAX starts its backend, which no import does: run() sets it first.
"""

import dataclasses
import functools
import itertools
import json
import os
import resource
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np

from avjax.data import classes
from avjax.data import pipeline
from avjax.data import schema
from avjax.data import tfrecord
from avjax.evaluators import avvp_f1
from avjax.evaluators import common as evaluators
from avjax.losses import registry as losses
from avjax.trainers import loop
from avjax.trainers import registry as trainers
from avjax.trainers import train_lib
from avjax.utils import cli
from avjax.utils import runtime
from avjax.utils import sharding

SOURCES = ("synthetic_arrays", "tfrecord")
NUM_SEGMENTS = 10
TRAIN_KEYS = schema.LABEL_KEYS
EVAL_KEYS = schema.LABEL_KEYS + schema.DENSE_KEYS
DEFAULT_CONFIG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
    "avvp_han.py")


def define_flags(fv=flags.FLAGS, argv: Optional[List[str]] = None) -> None:
  """Defines the flags on `fv`; config_flags reads the --config.* overrides
  from `argv` (default: sys.argv)."""
  config_flags.DEFINE_config_file(
      "config", DEFAULT_CONFIG, "Experiment config; override fields with "
      "--config.<field>=<value> (e.g. --config.model.pool_first=False).",
      flag_values=fv, lock_config=True, sys_argv=argv)
  flags.DEFINE_list("batch_sizes", ["16", "64", "256"],
                    "Global train batch sizes.", flag_values=fv)
  flags.DEFINE_integer("devices", 0, "Force this many host (CPU) devices; 0 "
                       "keeps JAX's default.", flag_values=fv)
  flags.DEFINE_integer("steps", 20, "Timed steps per batch size and source.",
                       flag_values=fv)
  flags.DEFINE_integer("warmup", 3, "Untimed steps before the timed ones.",
                       flag_values=fv)
  flags.DEFINE_list("source", list(SOURCES), "Input sources to time, from "
                    f"{list(SOURCES)}.", flag_values=fv)
  flags.DEFINE_integer("num_train_clips", 1024, "Clips in the temporary "
                       "train split (tfrecord source).", flag_values=fv)
  flags.DEFINE_integer("num_classes", len(classes.LLP_CLASSES), "Classes of "
                       "the temporary dataset (LLP: 25, VEBA: 376).",
                       flag_values=fv)
  flags.DEFINE_integer("num_eval_clips", 1849, "Clips to evaluate (LLP val + "
                       "test = 1849); 0 skips the eval.", flag_values=fv)
  flags.DEFINE_bool("pooled_visual", False, "Store the visual frames "
                    "pre-pooled per segment ([T, 2048] instead of [T*8, "
                    "2048], `prepare --pool_frames=visual`).", flag_values=fv)
  flags.DEFINE_string("tmp_dir", None, "Parent of the temporary dataset "
                      "directory (default: the system temp dir).",
                      flag_values=fv)
  flags.DEFINE_string("out", None, "Also write the results to this JSON "
                      "file.", flag_values=fv)


def force_devices(n: int) -> None:
  """Makes JAX run on n host devices (call before any JAX computation)."""
  if n <= 0:
    return
  try:
    jax.config.update("jax_num_cpu_devices", n)
  except RuntimeError:  # backend already started (e.g. under pytest)
    pass
  if jax.device_count() != n:
    raise ValueError(
        f"--devices={n}, but JAX runs on {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s): --devices only forces CPU "
        "devices and must take effect before JAX starts; use --devices=0 on "
        "accelerators")


def env_info() -> Dict[str, Any]:
  d = jax.devices()[0]
  return {"jax": jax.__version__, "platform": d.platform,
          "device_kind": d.device_kind, "device_count": jax.device_count(),
          "process_count": jax.process_count(), "cpu_count": os.cpu_count(),
          "cpu_affinity": len(os.sched_getaffinity(0)),
          "loadavg_1m": os.getloadavg()[0]}


def memory_info() -> Dict[str, Any]:
  """Peak host RSS so far and device-0 memory stats (None where unknown)."""
  stats = jax.local_devices()[0].memory_stats()
  keep = ("bytes_in_use", "peak_bytes_in_use", "bytes_limit")
  return {"peak_rss_mib":
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "device_memory": ({k: stats[k] for k in keep if k in stats}
                            if stats else None)}


def class_names(num_classes: int) -> Sequence[str]:
  """LLP's classes for 25, else class_000, class_001, ..."""
  if num_classes == len(classes.LLP_CLASSES):
    return classes.LLP_CLASSES
  return tuple(f"class_{i:03d}" for i in range(num_classes))


def features(pooled_visual: bool = False) -> Sequence[schema.FeatureSpec]:
  """LLP's streams; `pooled_visual`: visual pre-pooled to one row per
  segment (`prepare --pool_frames=visual`)."""
  return tuple(dataclasses.replace(s, frames_per_segment=1)
               if pooled_visual and s.name == "visual" else s
               for s in schema.LLP_FEATURES)


def _clips(split: str, n: int, dense: bool, seed: int, pool: int = 8,
           num_classes: int = len(classes.LLP_CLASSES),
           specs: Sequence[schema.FeatureSpec] = schema.LLP_FEATURES
           ) -> Iterator[dict]:
  """n LLP-shaped clips; random features cycled from a small pool."""
  rng = np.random.default_rng(seed)
  c = num_classes
  feats = [{s.name: rng.standard_normal(
      (NUM_SEGMENTS * s.frames_per_segment,) + s.shape, np.float32)
            for s in specs} for _ in range(min(pool, n))]
  for i in range(n):
    seg_a, seg_v = (rng.random((2, NUM_SEGMENTS, c)) < 0.1).astype(np.uint8)
    clip = dict(feats[i % len(feats)], id=f"{split}{i:06d}",
                audio_labels=seg_a.max(0).astype(np.float32),
                visual_labels=seg_v.max(0).astype(np.float32))
    clip["labels"] = np.maximum(clip["audio_labels"], clip["visual_labels"])
    if dense:
      clip.update(seg_audio=seg_a, seg_visual=seg_v)
    yield clip


def write_dataset(out_dir: str, data_cfg, num_train: int, num_eval: int,
                  num_classes: int = len(classes.LLP_CLASSES),
                  pooled_visual: bool = False) -> Dict[str, Any]:
  """Writes the LLP-shaped train (and eval) split; returns a summary."""
  t0 = time.perf_counter()
  specs = features(pooled_visual)
  w = tfrecord.DatasetWriter(out_dir, "benchmark", class_names(num_classes),
                             specs)
  w.write_split(data_cfg.train_split, _clips(
      "train", num_train, False, 0, num_classes=num_classes, specs=specs),
                TRAIN_KEYS, data_cfg.num_shards)
  if num_eval:
    w.write_split(data_cfg.val_split, _clips(
        "val", num_eval, True, 1, num_classes=num_classes, specs=specs),
                  EVAL_KEYS, data_cfg.num_shards)
  w.finish()
  size = sum(os.path.getsize(os.path.join(out_dir, f))
             for f in os.listdir(out_dir))
  return {"train_clips": num_train, "eval_clips": num_eval,
          "num_classes": num_classes, "pooled_visual": pooled_visual,
          "mib": size / 2**20, "write_s": time.perf_counter() - t0}


def make_run(config, data_dir: str, batch_size: int):
  """The trainer's setup, state and jitted train step on `data_dir`."""
  config = config.copy_and_resolve_references()
  config.data.name, config.data.data_dir = "benchmark", data_dir
  config.batch_size = batch_size
  s = loop.setup(config, trainer=trainers.get(config.trainer).TRAINER)
  state, _ = loop.make_state(s)
  step_fn = train_lib.jit_train_step(
      losses.make(config, s.total_steps), s.mesh,
      jax.tree.map(lambda x: x.sharding, state))
  return s, state, step_fn


def fake_batch(s, keys: Sequence[str], n: int, rng,
               start: int = 0) -> Dict[str, np.ndarray]:
  """Random host batch with the keys and dtypes `pipeline` yields."""
  specs = {x.name: x for x in s.info["feature_specs"]}
  t, c = int(s.info["max_segments"]), len(s.info["classes"])
  b = {"clip_id": np.array([b"fake%07d" % (start + i) for i in range(n)],
                           object),
       "segment_mask": np.ones((n, t), np.float32)}
  for f in s.features:
    sp = specs[f]
    b[f] = rng.standard_normal((n, t * sp.frames_per_segment) + sp.shape,
                               np.float32)
  for k in keys:
    dense = k in schema.DENSE_KEYS
    y = rng.random((n, t, c) if dense else (n, c)) < 0.1
    b[k] = y.astype(np.uint8 if dense else np.float32)
  return b


def step_gflop(compiled) -> Optional[float]:
  """XLA's FLOP count of a compiled SPMD step over all devices, in GFLOP."""
  cost = compiled.cost_analysis()  # a list of dicts in older JAX versions
  cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost
  flops = (cost or {}).get("flops")
  return None if flops is None else float(flops) * jax.device_count() / 1e9


def time_steps(step, state, batches: Iterator, warmup: int, steps: int):
  """Runs warmup + steps blocking steps; returns state, wall and CPU secs."""
  wall, cpu = [], []
  for i in range(warmup + steps):
    t0, c0 = time.perf_counter(), time.process_time()
    state, metrics = step(state, next(batches))
    jax.block_until_ready((state, metrics))
    if i >= warmup:
      wall.append(time.perf_counter() - t0)
      cpu.append(time.process_time() - c0)
  return state, wall, cpu


def timing(wall: List[float], cpu: List[float], batch_size: int,
           gflop: Optional[float]) -> Dict[str, float]:
  med, mean = float(np.median(wall)), float(np.mean(wall))
  return {"step_ms": 1e3 * med, "step_ms_mean": 1e3 * mean,
          "step_ms_max": 1e3 * max(wall),
          "cpu_ms": 1e3 * float(np.median(cpu)),
          "clips_per_s": batch_size / mean,
          "gflop_per_s": gflop / med if gflop else None}


def read_rate(s, local: int, steps: int) -> float:
  """Clips/s of the TFRecord input pipeline alone (parse + host batches, no
  device copy, no model): the ceiling it puts on training throughput."""
  it = pipeline.train_batches(s.train_src, local, s.config.seed, 0,
                              s.config.data.shuffle_buffer, 2 * steps)
  for _ in range(steps):  # warm up (file open, tf.data start)
    next(it)
  t0 = time.perf_counter()
  for _ in range(steps):
    next(it)
  return steps * local / (time.perf_counter() - t0)


def bench_batch(s, state, step_fn, batch_size: int, sources: Sequence[str],
                warmup: int, steps: int):
  """Compile time, FLOPs and step times of one global batch size."""
  local = sharding.check_batch_size(batch_size)
  batch = sharding.to_global(fake_batch(
      s, TRAIN_KEYS, local, np.random.default_rng(batch_size)), s.mesh)
  t0 = time.perf_counter()
  lowered = step_fn.lower(state, batch)
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  gflop = step_gflop(compiled)
  row = {"batch_size": batch_size, "lower_s": t1 - t0, "compile_s": t2 - t1,
         "gflop": gflop}
  if "synthetic_arrays" in sources:
    state, *times = time_steps(compiled, state, itertools.repeat(batch),
                               warmup, steps)
    row["synthetic_arrays"] = timing(*times, batch_size, gflop)
  del batch
  if "tfrecord" in sources:
    row["read_clips_per_s"] = read_rate(s, local, warmup + steps)
    batches = sharding.prefetch_to_mesh(pipeline.train_batches(
        s.train_src, local, s.config.seed, 0, s.config.data.shuffle_buffer,
        warmup + steps), s.mesh)
    state, *times = time_steps(compiled, state, batches, warmup, steps)
    row["tfrecord"] = dict(timing(*times, batch_size, gflop),
                           steps_per_epoch=s.train_src.steps_per_epoch(local))
  row.update(memory_info())
  return state, row


def eval_arrays(s, num_clips: int) -> List[Dict[str, jax.Array]]:
  """Device-resident padded eval batches (with `_mask`) of num_clips clips."""
  rng, n, out = np.random.default_rng(0), s.local_eval_batch, []
  for start in range(0, num_clips, n):
    b = fake_batch(s, EVAL_KEYS, n, rng, start)
    b["_mask"] = (np.arange(n) < num_clips - start).astype(np.float32)
    out.append(sharding.to_global(b, s.mesh))
  return out


def time_eval(evaluator, predict) -> Dict[str, float]:
  """Times predict() (forward + gather) and the scoring of its result."""
  t0 = time.perf_counter()
  pred = predict()
  t1 = time.perf_counter()
  scores = evaluator.score(pred)
  t2 = time.perf_counter()
  return {"num_clips": int(scores["num_clips"]), "forward_s": t1 - t0,
          "score_s": t2 - t1, "total_s": t2 - t0,
          "clips_per_s": scores["num_clips"] / (t2 - t0)}


def bench_eval(s, state, sources: Sequence[str],
               num_clips: int) -> Dict[str, Any]:
  """Eval compile time and throughput from arrays and/or TFRecords."""
  if "tfrecord" in sources:
    evaluator = loop.make_evaluator(s, s.config.data.val_split)
  else:  # no split on disk: predict() is fed device arrays
    evaluator = avvp_f1.Evaluator(
        evaluators.jit_predict_step(s.mesh), None, s.local_eval_batch, s.mesh,
        gating=s.config.eval.gating, threshold=s.config.eval.threshold)
  batches = eval_arrays(s, num_clips if "synthetic_arrays" in sources else 1)
  t0 = time.perf_counter()
  evaluator.predict_fn.lower(state, batches[0]).compile()
  res = {"batch_size": s.local_eval_batch * jax.process_count(),
         "compile_s": time.perf_counter() - t0}
  jax.block_until_ready(evaluator.predict_fn(state, batches[0]))  # warm jit
  if "synthetic_arrays" in sources:
    res["synthetic_arrays"] = time_eval(
        evaluator, functools.partial(evaluator.predict, state, batches))
  del batches
  if "tfrecord" in sources:
    res["tfrecord"] = time_eval(evaluator, lambda: evaluator.predict(state))
  return res


def run(fv) -> Dict[str, Any]:
  """Runs the whole benchmark for parsed flags `fv`; returns the results."""
  sizes = [int(b) for b in fv.batch_sizes]
  sources = list(fv.source)
  if not sizes or not sources or set(sources) - set(SOURCES):
    raise ValueError(f"need --batch_sizes and --source from {SOURCES}, got "
                     f"{fv.batch_sizes} and {sources}")
  force_devices(fv.devices)
  runtime.initialize()
  tfr = "tfrecord" in sources
  res = {"env": env_info(), "sources": sources, "steps": fv.steps,
         "warmup": fv.warmup, "config": fv.config.to_dict()}
  with tempfile.TemporaryDirectory(prefix="avjax_bench_",
                                   dir=fv.tmp_dir) as tmp:
    num_train = fv.num_train_clips if tfr else max(sizes)
    res["data"] = write_dataset(tmp, fv.config.data, num_train,
                                fv.num_eval_clips if tfr else 0,
                                fv.num_classes, fv.pooled_visual)
    s, state, step_fn = make_run(fv.config, tmp, sizes[0])
    res["model"] = {"params": train_lib.param_count(state.params),
                    **{k: fv.config.model[k] for k in (
                        "d_model", "d_ff", "pool_first", "dtype")}}
    res["train"] = []
    for b in sizes:
      state, row = bench_batch(s, state, step_fn, b, sources, fv.warmup,
                               fv.steps)
      res["train"].append(row)
    if fv.num_eval_clips:
      res["eval"] = bench_eval(s, state, sources, fv.num_eval_clips)
  res.update(memory_info(), loadavg_1m_end=os.getloadavg()[0])
  return res


def _fmt(x, spec: str = ".1f") -> str:
  return "-" if x is None else format(x, spec)


def format_tables(res: Dict[str, Any]) -> str:
  """Markdown tables of the results (train per batch size, then eval)."""
  e, m = res["env"], res["model"]
  lines = [f"jax {e['jax']}, {e['device_count']} x {e['device_kind']} "
           f"({e['platform']}), {e['process_count']} process(es), "
           f"{e['cpu_count']} CPUs ({e['cpu_affinity']} usable, load "
           f"{e['loadavg_1m']:.1f} -> {res['loadavg_1m_end']:.1f}); model "
           f"d={m['d_model']} pool_first={m['pool_first']} dtype={m['dtype']}"
           f", {m['params']:,} params, {res['data'].get('num_classes', 25)} "
           f"classes; visual frames "
           f"{'pre-pooled' if res['data'].get('pooled_visual') else 'x8'}; "
           f"median of {res['steps']} steps", ""]
  srcs = [x for x in SOURCES if x in res["sources"]]
  lines += ["| batch | compile s | GFLOP/step | " + " | ".join(
      f"{x} ms | {x} CPU ms | {x} clips/s | {x} GFLOP/s" for x in srcs) +
            (" | read-only clips/s" if "tfrecord" in srcs else "") +
            " | RSS MiB |", "|---" * (4 + 4 * len(srcs) + (
                "tfrecord" in srcs)) + "|"]
  for r in res["train"]:
    cells = [r["batch_size"], _fmt(r["lower_s"] + r["compile_s"], ".2f"),
             _fmt(r["gflop"], ".2f")]
    for x in srcs:
      cells += [_fmt(r[x][k]) for k in ("step_ms", "cpu_ms")]
      cells += [_fmt(r[x]["clips_per_s"], ".0f"), _fmt(r[x]["gflop_per_s"])]
    if "tfrecord" in srcs:
      cells.append(_fmt(r.get("read_clips_per_s"), ".0f"))
    cells.append(_fmt(r["peak_rss_mib"], ".0f"))
    lines.append("| " + " | ".join(map(str, cells)) + " |")
  if "eval" in res:
    ev = res["eval"]
    lines += ["", f"eval: batch {ev['batch_size']}, compile "
              f"{ev['compile_s']:.2f} s", "",
              "| source | clips | forward s | score s | total s | clips/s |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {x} | {r['num_clips']} | {r['forward_s']:.2f} | "
              f"{r['score_s']:.2f} | {r['total_s']:.2f} | "
              f"{r['clips_per_s']:.0f} |" for x, r in
              ((x, ev[x]) for x in srcs)]
  lines += ["", f"peak host RSS {res['peak_rss_mib']:.0f} MiB; device 0 "
            f"memory stats: {res['device_memory']}"]
  return "\n".join(lines)


def main(argv, fv=flags.FLAGS) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  res = run(fv)
  print(format_tables(res), flush=True)
  if fv.out:
    with open(fv.out, "w") as f:
      json.dump(res, f, indent=1)
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)

"""Converts datasets in their published layouts to avjax TFRecords.

  python -m avjax.prepare <llp|ave|veba|single_label|own> --root=DIR --out=DIR
      [--num_shards=16] [--workers=K] [--strict] [--overwrite] [options]
  python -m avjax.prepare own --videos=DIR --out=DIR [--labels=CSV]
      [--weights=files --vggish_weights=F --resnet_weights=F
       --r2plus1d_weights=F | --weights=random] [extraction options]

`own --videos=DIR` first extracts features from every video file in DIR
(`avjax.extract`: VGGish, ResNet-152, R(2+1)D-18) into --root (default
OUT/features: one <id>.npz per video, resumable, videos already there are
skipped; bad videos are reported with the file and reason and left out),
then converts that folder as `own --root` does. The extraction settings are
kept in dataset_info.json (`extra.extraction`), where `avjax.parse` finds
them.

`python -m avjax.prepare <dataset> --help` describes the layout that dataset
must have on disk (the authors' published one for LLP and AVE) and its options.

Output, readable by `avjax.data.tfrecord.read_info` / `pipeline.Source`:
  OUT/<split>-<i>-of-<n>.tfrecord    the clips (n = min(--num_shards, clips))
  OUT/dataset_info.json              classes, features, splits (written last)
  OUT/prepare_report.json            clips written and skipped per split, each
                                     skipped clip with its reason and error, and
                                     the reader's annotation-irregularity report
  OUT/.prepare/                      run fingerprint + one record per shard

Clip i of a split (reader order) goes to shard i % n, so the output does not
depend on --workers. Workers write whole shards (to .tmp, then renamed) and
record each completed shard; re-running the same command skips the complete
shards, so an interrupted conversion resumes (after editing feature files,
pass --overwrite to rewrite everything; to rebuild a damaged shard, delete
it and re-run the command). A clip whose feature file is missing, misshapen
or non-finite, or whose annotation row names an unknown class or none, is
skipped with its reason (missing_file, wrong_shape, non_finite, invalid,
bad_annotation) and reported; --strict turns that into an error naming the
file and field or line, and also refuses annotation irregularities the
readers otherwise handle by their documented policy (e.g. LLP eval rows with
onset >= offset or times outside the clip). Progress (clips/s) goes to
stderr. Errors print one `avjax.prepare: error: ...` line and exit with 2
(--debug or AVJAX_DEBUG=1: with the traceback).

Readers (`avjax.data.<module>`) provide: name, classes, features (FeatureSpecs),
splits {split: [keys]} in a fixed order, label_keys {split: keys}, report and
extra (JSON), clip_id(split, key) and load(split, key) -> clip dict, which
raises FileNotFoundError/ValueError naming the file and field.
"""

import argparse
import hashlib
import importlib
import json
import multiprocessing
import os
import shlex
import shutil
import sys
import time
from typing import Dict, List, Optional

from avjax import errors
from avjax import extract as extract_lib
from avjax.data.readers import pooled
from avjax.data import tfrecord
from avjax.utils import cli

DATASETS = {"llp": "avjax.data.readers.llp", "ave": "avjax.data.readers.ave",
            "veba": "avjax.data.readers.veba",
            "single_label": "avjax.data.readers.single_label",
            "own": "avjax.data.readers.own_videos"}
STATE_DIR = ".prepare"
REPORT_FILE = "prepare_report.json"
REASONS = ("missing_file", "wrong_shape", "non_finite", "invalid",
           "bad_annotation")


class StrictError(errors.UserError, RuntimeError):
  """A clip that would have been skipped, under --strict."""


class OutputInUseError(errors.UserError):
  """--out holds a conversion of other inputs or options."""


def skip_reason(error: Exception) -> str:
  msg = str(error)
  if isinstance(error, errors.AnnotationError):
    return "bad_annotation"
  if isinstance(error, FileNotFoundError):
    return "missing_file"
  if "unreadable" in msg:
    return "invalid"
  if "non-finite" in msg:
    return "non_finite"
  if "shape" in msg or "rows" in msg or "segments" in msg:
    return "wrong_shape"
  return "invalid"


def _write_json(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(path + ".tmp", path)


def write_shard(dataset, split: str, index: int, num_shards: int,
                out_dir: str, strict: bool = False, tick=None) -> Dict:
  """Writes clips index, index + n, ... of `split`; returns the shard record."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  name = tfrecord.shard_name(split, index, num_shards)
  path = os.path.join(out_dir, name)
  label_keys = dataset.label_keys[split]
  ids, skipped, max_t = [], [], 0
  with tf.io.TFRecordWriter(path + ".tmp") as writer:
    for key in dataset.splits[split][index::num_shards]:
      try:
        clip = dataset.load(split, key)
        t = tfrecord.validate_clip(clip, dataset.features,
                                   len(dataset.classes), f"split {split!r}")
        missing = [k for k in label_keys if k not in clip]
        if missing:
          raise ValueError(f"clip {clip['id']!r} lacks label keys {missing}")
        # Re-serialised with sorted map keys: identical bytes in any process.
        writer.write(tf.train.Example.FromString(tfrecord.encode_clip(
            clip, dataset.features, label_keys)).SerializeToString(
                deterministic=True))
        ids.append(clip["id"])
        max_t = max(max_t, t)
      except (OSError, ValueError) as e:
        cid = dataset.clip_id(split, key)
        if strict:
          raise StrictError(f"--strict: split {split!r}, clip {cid!r}: {e}"
                            ) from None
        skipped.append({"id": cid, "reason": skip_reason(e), "error": str(e)})
      if tick:
        tick()
  os.replace(path + ".tmp", path)
  record = {"split": split, "index": index, "num_shards": num_shards,
            "file": name, "bytes": os.path.getsize(path), "ids": ids,
            "num_clips": len(ids), "max_segments": max_t, "skipped": skipped}
  _write_json(os.path.join(out_dir, STATE_DIR, name + ".json"), record)
  return record


def _read_record(out_dir: str, name: str) -> Optional[Dict]:
  """The completion record of a shard, if the shard is complete."""
  try:
    with open(os.path.join(out_dir, STATE_DIR, name + ".json")) as f:
      record = json.load(f)
    if os.path.getsize(os.path.join(out_dir, name)) == record["bytes"]:
      return record
  except (OSError, ValueError, KeyError):
    pass
  return None


def plan(dataset, num_shards: int) -> Dict[str, int]:
  """Number of shards per non-empty split."""
  return {s: max(1, min(num_shards, len(k)))
          for s, k in dataset.splits.items() if k}


def fingerprint(dataset, shards: Dict[str, int]) -> str:
  desc = {"name": dataset.name, "classes": list(dataset.classes),
          "features": [f.to_json() for f in dataset.features],
          "label_keys": {s: list(k) for s, k in dataset.label_keys.items()},
          "shards": shards, "extra": dataset.extra,
          "clips": {s: hashlib.sha1("\n".join(
              dataset.clip_id(s, k) for k in keys).encode()).hexdigest()
                    for s, keys in dataset.splits.items()}}
  return hashlib.sha1(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def _clear(out_dir: str) -> None:
  shutil.rmtree(os.path.join(out_dir, STATE_DIR), ignore_errors=True)
  for n in os.listdir(out_dir):
    if n.endswith((".tfrecord", ".tfrecord.tmp")) or n in (
        tfrecord.INFO_FILE, REPORT_FILE):
      os.remove(os.path.join(out_dir, n))


def _check_state(out_dir: str, key: str, overwrite: bool) -> None:
  """Creates OUT/.prepare; refuses to mix runs with different inputs."""
  state = os.path.join(out_dir, STATE_DIR, "state.json")
  old = None
  if os.path.exists(state):
    with open(state) as f:
      old = json.load(f).get("fingerprint")
  elif os.path.exists(os.path.join(out_dir, tfrecord.INFO_FILE)):
    old = "unknown"
  if old not in (None, key):
    if not overwrite:
      raise OutputInUseError(
          f"{out_dir} holds a conversion with other inputs or options; pass "
          "--overwrite to replace it, or choose another --out")
    _clear(out_dir)
  os.makedirs(os.path.join(out_dir, STATE_DIR), exist_ok=True)
  _write_json(state, {"fingerprint": key})


class Progress:
  """Clips done / total, clips/s and ETA on stderr."""

  def __init__(self, total: int, enabled: bool = True, label: str = ""):
    self.total, self.enabled, self.label = total, enabled, label
    self.value, self.last, self.first = 0, time.time(), None
    self.tty = sys.stderr.isatty()

  def tick(self) -> None:
    self.value += 1
    self.draw(self.value)

  def draw(self, done: int, final: bool = False) -> None:
    now = time.time()
    if done and self.first is None:  # rate from the first clip: no startup
      self.first = (now, done)
    if not self.enabled or (not final and now - self.last < (
        0.5 if self.tty else 10.0)):
      return
    self.last = now
    t0, d0 = self.first or (now, done)
    rate = (done - d0) / (now - t0) if now > t0 else 0.0
    eta = (self.total - done) / rate if rate else 0
    bar = "#" * int(30 * done / max(self.total, 1))
    line = (f"{self.label} [{bar:<30}] {done}/{self.total} clips "
            f"{rate:.1f} clips/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")
    end = "\n" if final or not self.tty else ""
    sys.stderr.write(("\r" if self.tty else "") + line + end)
    sys.stderr.flush()


_WORKER = {}


def _init_worker(dataset, counter) -> None:
  _WORKER.update(dataset=dataset, counter=counter)


def _tick() -> None:
  with _WORKER["counter"].get_lock():
    _WORKER["counter"].value += 1


def _run_task(task) -> Dict:
  return write_shard(_WORKER["dataset"], *task, tick=_tick)


def _run_pool(dataset, tasks, workers: int, progress: Progress) -> List:
  ctx = multiprocessing.get_context("spawn")
  counter = ctx.Value("q", 0)
  with ctx.Pool(min(workers, len(tasks)), initializer=_init_worker,
                initargs=(dataset, counter)) as pool:
    pending = [pool.apply_async(_run_task, (t,)) for t in tasks]
    while not all(r.ready() for r in pending):
      for r in pending:
        if r.ready() and not r.successful():
          r.get()  # re-raises the worker's error; the pool is terminated
      progress.draw(counter.value)
      time.sleep(0.2)
    return [r.get() for r in pending]


def merge(dataset, records: List[Dict]) -> Dict:
  """dataset_info.json content from the shard records."""
  info = {"name": dataset.name, "classes": list(dataset.classes),
          "features": [f.to_json() for f in dataset.features],
          "max_segments": max([r["max_segments"] for r in records] + [0]),
          "splits": {}, "extra": dict(dataset.extra)}
  for split in dataset.splits:
    mine = sorted((r for r in records if r["split"] == split),
                  key=lambda r: r["index"])
    if not mine:
      continue
    ids = [i for r in mine for i in r["ids"]]
    if len(set(ids)) != len(ids):
      raise ValueError(f"split {split!r}: the reader produced duplicate "
                       "clip ids")
    info["splits"][split] = {
        "num_clips": len(ids), "files": [r["file"] for r in mine],
        "file_counts": [r["num_clips"] for r in mine],
        "label_keys": list(dataset.label_keys[split])}
  return info


def build_report(dataset, records: List[Dict], seconds: float,
                 processed: int) -> Dict:
  """Written/skipped clips of all shards; the rate of this run's clips."""
  written = {s: v["num_clips"] for s, v in merge(
      dataset, records)["splits"].items()}
  skipped = {}
  for split in dataset.splits:
    clips = [c for r in records if r["split"] == split for c in r["skipped"]]
    by_reason = {}
    for c in clips:
      by_reason[c["reason"]] = by_reason.get(c["reason"], 0) + 1
    skipped[split] = {"count": len(clips), "by_reason": by_reason,
                      "clips": clips}
  return {"dataset": dataset.name, "written": written, "skipped": skipped,
          "seconds": round(seconds, 2), "clips_processed": processed,
          "clips_per_s": round(processed / max(seconds, 1e-9), 2),
          "annotations": dataset.report}


def convert(dataset, out_dir: str, num_shards: int = 16, workers: int = 1,
            strict: bool = False, overwrite: bool = False,
            progress: bool = True, command: Optional[Dict] = None) -> Dict:
  """Converts every split of `dataset`; returns the report (see module doc).

  command: {"argv": the command line, "cwd": its folder}, kept in
  dataset_info.json so that errors reading a shard can say how to rebuild it.
  """
  os.makedirs(out_dir, exist_ok=True)
  shards = plan(dataset, num_shards)
  _check_state(out_dir, fingerprint(dataset, shards), overwrite)
  done, tasks = [], []
  for split, n in shards.items():
    for i in range(n):
      record = _read_record(out_dir, tfrecord.shard_name(split, i, n))
      if record:
        done.append(record)
      else:
        tasks.append((split, i, n, out_dir, strict))
  total = sum(len(dataset.splits[t[0]][t[1]::t[2]]) for t in tasks)
  bar = Progress(total, progress, dataset.name)
  start = time.time()
  if workers > 1 and len(tasks) > 1:
    done += _run_pool(dataset, tasks, workers, bar)
  else:
    done += [write_shard(dataset, *t, tick=bar.tick) for t in tasks]
    if hasattr(dataset, "close"):
      dataset.close()
  bar.draw(total, final=True)
  report = build_report(dataset, done, time.time() - start, total)
  report["resumed_shards"] = len(done) - len(tasks)
  _write_json(os.path.join(out_dir, REPORT_FILE), report)
  info = merge(dataset, done)
  info["extra"]["prepare"] = {"report": REPORT_FILE, "num_shards": shards}
  if command:
    info["extra"]["prepare"]["command"] = command
  _write_json(os.path.join(out_dir, tfrecord.INFO_FILE), info)
  return report


def read_clips(out_dir: str, split: str, batch_size: int = 16):
  """Yields the clip dicts of a converted split (`pipeline.read_clips`)."""
  from avjax.data import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.read_clips(out_dir, split, batch_size)


def summary_lines(report: Dict, out_dir: str) -> List[str]:
  written = report["written"]
  lines = [f"{report['dataset']}: wrote {sum(written.values())} clips "
           f"({', '.join(f'{s} {n}' for s, n in written.items())}); "
           f"processed {report['clips_processed']} in {report['seconds']} s "
           f"({report['clips_per_s']} clips/s); {report['resumed_shards']} "
           "shard(s) were already complete"]
  for split, s in report["skipped"].items():
    if s["count"]:
      reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["by_reason"].items()))
      lines.append(f"  skipped {s['count']} {split} clip(s): {reasons}; "
                   f"e.g. {s['clips'][0]['error']}")
  for key, value in report["annotations"].get("summary", {}).items():
    lines.append(f"  annotations: {key}: {json.dumps(value)}")
  for warning in report["annotations"].get("warnings", []):
    lines.append(f"  warning: {warning}")
  lines.append(f"  report: {os.path.join(out_dir, REPORT_FILE)}")
  return lines


def make_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m avjax.prepare", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="dataset", required=True,
                              metavar="{" + ",".join(DATASETS) + "}")
  for name, module_name in DATASETS.items():
    module = importlib.import_module(module_name)
    p = sub.add_parser(name, description=module.__doc__,
                       help=module.__doc__.split("\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=None, help="dataset folder (layout "
                   "above); required" + (
                       " unless --videos is given (then the features "
                       "folder, default OUT/features)" if name == "own"
                       else ""))
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num_shards", type=int, default=16,
                   help="shards per split (fewer if a split is smaller)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="processes writing shards in parallel")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first bad clip or annotation row instead "
                   "of skipping it, and refuse annotation irregularities "
                   "instead of applying the reader's policy")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a conversion with other inputs in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show the traceback "
                   "of input errors too (also: AVJAX_DEBUG=1)")
    p.add_argument("--pool_frames", default="", help="comma-separated "
                   "streams to store as per-segment frame means (e.g. "
                   "visual: LLP's [80, 2048] -> [10, 2048]; the same HAN "
                   "outputs, 8x less to read; see avjax.data.readers.pooled)")
    module.add_arguments(p)
    if name == "own":
      p.add_argument("--videos", default=None, help="folder of video files:"
                     " extract their features into --root first "
                     "(avjax.extract)")
      extract_lib.add_arguments(p)
  return parser


def check_args(args) -> None:
  if getattr(args, "videos", None):
    if not os.path.isdir(args.videos):
      raise FileNotFoundError(f"--videos={args.videos}: no such folder")
    if not args.root:
      args.root = os.path.join(args.out, "features")
    os.makedirs(args.root, exist_ok=True)
  if not args.root:
    raise ValueError(f"--root is required for {args.dataset}" + (
        " (or --videos=DIR)" if args.dataset == "own" else ""))
  if not os.path.exists(args.root):
    raise FileNotFoundError(f"--root={args.root}: no such folder")
  if not os.path.isdir(args.root):
    raise NotADirectoryError(f"--root={args.root} is a file; expected the "
                             "dataset folder (layout: --help)")
  if os.path.exists(args.out) and not os.path.isdir(args.out):
    raise NotADirectoryError(f"--out={args.out} is a file; expected a folder "
                             "(it is created if missing)")
  for flag in ("num_shards", "workers"):
    if getattr(args, flag) < 1:
      raise ValueError(f"--{flag}={getattr(args, flag)}: must be >= 1")


def _main(argv: List[str]) -> int:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  args = make_parser().parse_args(argv)
  check_args(args)
  extraction = None
  if getattr(args, "videos", None):
    extraction = extract_videos(args)
  dataset = importlib.import_module(DATASETS[args.dataset]).from_args(args)
  if extraction:
    dataset.extra["extraction"] = extraction["settings"]
  if args.pool_frames:
    dataset = pooled.PooledFrames(dataset, args.pool_frames.split(","))
  command = {"argv": shlex.join(["python", "-m", "avjax.prepare"] + [
      a for a in argv if a != "--debug"]), "cwd": os.getcwd()}
  report = convert(dataset, args.out, args.num_shards, args.workers,
                   args.strict, args.overwrite, not args.quiet, command)
  if extraction:
    report["extraction"] = extraction
    _write_json(os.path.join(args.out, REPORT_FILE), report)
  sys.stderr.write("\n".join(summary_lines(report, args.out)) + "\n")
  if not sum(report["written"].values()):
    cli.report(PROG, "no clip was written; see the reasons above")
    return errors.EXIT_USER_ERROR
  return 0


PROG = "avjax.prepare"


def extract_videos(args) -> Dict:
  """`own --videos`: features of every video into args.root (resumable)."""
  cfg = extract_lib.config_from_args(args)
  res = extract_lib.extract_folder(args.videos, args.root, cfg,
                                   progress=not args.quiet)
  n = res["done"] + res["skipped_existing"]
  sys.stderr.write(
      f"extract: {res['done']} video(s) in {res['seconds']} s "
      f"({res['videos_per_s']} videos/s), {res['skipped_existing']} already "
      f"in {args.root}, {len(res['failed'])} failed\n")
  for f in res["failed"]:
    sys.stderr.write(f"  skipped video: {f['error']}\n")
  if cfg.weights == "random":
    sys.stderr.write(f"  note: {extract_lib.RANDOM_NOTE}\n")
  if not n:
    raise ValueError(f"--videos={args.videos}: no video could be read; see "
                     "the reasons above")
  res["settings"] = cfg.describe()
  return res


def main(argv: Optional[List[str]] = None) -> int:
  """The command; 2 on input errors (printed as one line, see cli)."""
  return cli.call(_main, sys.argv[1:] if argv is None else argv, PROG)


if __name__ == "__main__":
  sys.exit(main())

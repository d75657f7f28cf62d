r"""From video files to parsed events, end to end, on generated demo videos.

  python -m avjax.projects.demo.video_parse --workdir=/tmp/video_demo

1. writes demo videos with known events (`avjax.data.synthetic.videos`):
   WORKDIR/videos/train (--num_train + --num_val, seed 0) and
   WORKDIR/videos/test (--num_test, seed 1, named test_XXX), each with its
   ground_truth.jsonl;
2. `python -m avjax.prepare own --videos=WORKDIR/videos/train
   --labels=WORKDIR/labels.csv --out=WORKDIR/data` (weak labels = the classes
   of each video's events; the last --num_val videos are the val split);
   features with --weights (default random: no download needed, and the
   features are not meaningful ones, see `avjax.extract`);
3. trains HAN on it: `python -m avjax.main --config=configs/avvp_han.py:data=own
   --config.data.data_dir=WORKDIR/data ...` (`data=own`: weak labels only, so
   the best checkpoint is chosen by validation tagging mAP; the demo parses
   the final one, --checkpoint);
4. `python -m avjax.parse WORKDIR/videos/test --workdir=WORKDIR/run
   --ground_truth=.../ground_truth.jsonl --out=WORKDIR/parsed`: a JSON and a
   timeline PNG per video, events.jsonl, index.html and scores.json
   (segment-level audio / visual / audio-visual F1 against the known events);
5. writes WORKDIR/demo_report.json (scores, extraction videos/s, timings).

Every step is skipped when its output exists (re-run to resume). Smaller
extraction settings than LLP's (--resnet_arch, --frame_size, ...) keep it to
minutes on a CPU; pass --resnet_arch=resnet152 --resize=256 --frame_size=224
--motion_size=112 for LLP's.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from absl import flags

from avjax import errors
from avjax import prepare
from avjax.data.synthetic import videos
from avjax.utils import cli

flags.DEFINE_string("workdir", None, "Output folder (resumable).")
flags.DEFINE_integer("num_train", 80, "Training videos.")
flags.DEFINE_integer("num_val", 16, "Validation videos.")
flags.DEFINE_integer("num_test", 16, "Test videos (parsed and scored).")
flags.DEFINE_integer("epochs", 60, "HAN training epochs.")
flags.DEFINE_string("checkpoint", "latest", "The checkpoint parsed: latest "
                    "(the final model) or best (by val tagging mAP, which "
                    "saturates within the first epochs on the demo set: "
                    "measured audio F1 51.6 best vs 74.8 final).")
flags.DEFINE_integer("batch_size", 16, "HAN batch size.")
flags.DEFINE_string("weights", "random", "Extractor weights: random (demo) "
                    "or files (then give the --*_weights flags).")
flags.DEFINE_string("vggish_weights", "", "VGGish weights (--weights=files).")
flags.DEFINE_string("resnet_weights", "", "ResNet weights (--weights=files).")
flags.DEFINE_string("r2plus1d_weights", "", "R(2+1)D-18 weights "
                    "(--weights=files).")
flags.DEFINE_string("resnet_arch", "resnet50", "ResNet of the frames.")
flags.DEFINE_integer("resize", 64, "Frames' shorter side before the crop.")
flags.DEFINE_integer("frame_size", 48, "ResNet crop.")
flags.DEFINE_integer("motion_size", 32, "R(2+1)D frame size.")
flags.DEFINE_integer("extract_workers", 2, "Decoder processes.")
flags.DEFINE_string("han_args", "", "Extra `avjax.main` flags, "
                    "space-separated (e.g. --config.model.d_model=128).")
FLAGS = flags.FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def make_videos(out: str, num: int, seed: int, prefix: str = "") -> None:
  """Demo videos + ground_truth.jsonl (ids renamed to prefix + index)."""
  if os.path.exists(os.path.join(out, "ground_truth.jsonl")):
    return
  tmp = out + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  truth = videos.make_demo_set(tmp, num, seed)
  if prefix:
    for r in truth:
      new = prefix + r["video"].split("_")[-1]
      os.replace(os.path.join(tmp, r["video"] + ".mp4"),
                 os.path.join(tmp, new + ".mp4"))
      r["video"] = new
    with open(os.path.join(tmp, "ground_truth.jsonl"), "w") as f:
      for r in truth:
        f.write(json.dumps(r) + "\n")
  os.replace(tmp, out)


def write_labels(path: str, truth_file: str, num_val: int) -> None:
  """id,labels,split from the ground truth (weak labels: event classes)."""
  truth = videos.read_ground_truth(truth_file)
  ids = sorted(truth)
  with open(path, "w") as f:
    f.write("id,labels,split\n")
    for i, vid in enumerate(ids):
      names = ";".join(sorted({e["event"] for e in truth[vid]}))
      split = "val" if i >= len(ids) - num_val else "train"
      f.write(f"{vid},{names},{split}\n")


def _run(cmd, log: str, ok=(0,)) -> None:
  print("+ " + " ".join(cmd), flush=True)
  with open(log, "a") as f:
    p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
                       check=False)
  if p.returncode not in ok:
    with open(log) as f:
      tail = f.read()[-3000:]
    raise RuntimeError(f"{' '.join(cmd[:4])} failed ({p.returncode}); end "
                       f"of {log}:\n{tail}")


def extraction_flags():
  out = [f"--weights={FLAGS.weights}", f"--resnet_arch={FLAGS.resnet_arch}",
         f"--extract_resize={FLAGS.resize}",
         f"--extract_frame_size={FLAGS.frame_size}",
         f"--extract_motion_size={FLAGS.motion_size}",
         f"--extract_workers={FLAGS.extract_workers}"]
  for k in ("vggish_weights", "resnet_weights", "r2plus1d_weights"):
    if FLAGS[k].value:
      out.append(f"--{k}={FLAGS[k].value}")
  return out


def main(argv):
  del argv
  wd = FLAGS.workdir
  if not wd:
    raise ValueError("--workdir is required")
  os.makedirs(wd, exist_ok=True)
  times = {}
  t0 = time.time()
  train_dir = os.path.join(wd, "videos", "train")
  test_dir = os.path.join(wd, "videos", "test")
  make_videos(train_dir, FLAGS.num_train + FLAGS.num_val, 0)
  make_videos(test_dir, FLAGS.num_test, 1, prefix="test_")
  times["videos_s"] = round(time.time() - t0, 1)

  data = os.path.join(wd, "data")
  labels = os.path.join(wd, "labels.csv")
  write_labels(labels, os.path.join(train_dir, "ground_truth.jsonl"),
               FLAGS.num_val)
  t0 = time.time()
  if not os.path.exists(os.path.join(data, "dataset_info.json")):
    code = prepare.main(["own", f"--videos={train_dir}", f"--labels={labels}",
                         f"--out={data}", "--num_shards=2", "--workers=1",
                         "--quiet"] + extraction_flags())
    if code:
      raise RuntimeError(f"avjax.prepare failed ({code})")
  times["prepare_s"] = round(time.time() - t0, 1)
  with open(os.path.join(data, prepare.REPORT_FILE)) as f:
    extraction = json.load(f).get("extraction", {})

  run = os.path.join(wd, "run")
  t0 = time.time()
  if not os.path.exists(os.path.join(run, "results.json")):
    _run([sys.executable, "-m", "avjax.main",
          "--config=configs/avvp_han.py:data=own",
          f"--config.data.data_dir={data}",
          f"--config.num_epochs={FLAGS.epochs}",
          f"--config.optim.decay_every_epochs={max(1, FLAGS.epochs * 2 // 3)}",
          f"--config.batch_size={FLAGS.batch_size}",
          "--config.log_every_steps=20", f"--workdir={run}"]
         + FLAGS.han_args.split(), os.path.join(wd, "train.log"))
  times["train_s"] = round(time.time() - t0, 1)

  parsed = os.path.join(wd, "parsed")
  t0 = time.time()
  if not os.path.exists(os.path.join(parsed, "scores.json")):
    _run([sys.executable, "-m", "avjax.parse", test_dir, f"--workdir={run}",
          f"--checkpoint={FLAGS.checkpoint}",
          f"--out={parsed}", "--ground_truth=" + os.path.join(
              test_dir, "ground_truth.jsonl"), "--noprogress"]
         + [f for f in extraction_flags() if "weights" in f],
         os.path.join(wd, "parse.log"), ok=(0, errors.EXIT_SOME_FAILED))
  times["parse_s"] = round(time.time() - t0, 1)
  with open(os.path.join(parsed, "scores.json")) as f:
    scores = json.load(f)
  report = {"scores": scores, "times": times,
            "extraction": {k: extraction.get(k) for k in (
                "done", "seconds", "videos_per_s", "failed", "settings")},
            "videos": {"train": FLAGS.num_train, "val": FLAGS.num_val,
                       "test": FLAGS.num_test},
            "outputs": {"index": os.path.join(parsed, "index.html"),
                        "events": os.path.join(parsed, "events.jsonl")}}
  with open(os.path.join(wd, "demo_report.json"), "w") as f:
    json.dump(report, f, indent=1)
  print(f"test videos: segment-level F1 audio {scores.get('seg_a')}, visual "
        f"{scores.get('seg_v')}, audio-visual {scores.get('seg_av')}; "
        f"extraction {extraction.get('videos_per_s')} videos/s; "
        f"{report['outputs']['index']}")
  return 0


if __name__ == "__main__":
  cli.run(main)

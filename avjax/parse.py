r"""Parses video files into audio / visual / audio-visual events.

  python -m avjax.parse VIDEO_OR_DIR... --workdir=TRAINED_RUN \
      [--checkpoint=best|latest|STEP] [--out=DIR] [--threshold=P] \
      [--ground_truth=FILE] [extraction flags: --weights, --*_weights, ...]

TRAINED_RUN is the workdir of any AVVP-family run (HAN, MA, cross-modal,
VEBA: the same AVVPNet heads; an MA workdir's `stage3/` and a pretrained
cross-modal workdir's `finetune/` are used when given the top folder). Each
video is cut into the model's windows of T segments (T = the trained data's
`max_segments`, 10 for LLP-shaped data); the last window is padded and
masked. A segment is heard (seen) exactly as in evaluation: the run's own
evaluator decides (`Evaluator.decisions` of `avjax.evaluators.avvp_f1`, the
rule of `avjax.metrics.avvp.segment_predictions`: its audio (visual) frame
probability and the window's video-level probability -- global, or per
modality with the run's `eval.gating=modality` -- are both >= the
threshold; VEBA's shared heads: `avjax.evaluators.veba`), with the run's
`eval.threshold` unless --threshold is given.

Output under --out (default ./parsed):
  <id>.json     {"video": id, "file", "duration_s", "num_segments",
                 "events": [{"event", "modality": "audio"|"visual"|"both",
                 "start", "end", "confidence"}], "notes", "model"}: per class,
                maximal runs of 1 s segments with the same state; "both"
                where the class is heard and seen in the same segments (the
                AVVP audio-visual event), "audio"/"visual" where only one
                holds; end = min(segment end, duration); confidence = mean
                probability of the event's modality (both: of the two) over
                its segments.
  <id>.png      timeline: one row per class present, audio and visual bars
                (ground truth drawn beside, hatched, with --ground_truth).
  events.jsonl, index.html  for several videos or a folder (every <id>.json
                record, a page of the timelines).
  scores.json   with --ground_truth: segment-level audio / visual / AV F1
                (`avjax.metrics.avvp.avvp_scores` on 1 s segments; a truth
                segment is positive when the event covers >= 0.5 s of it).

--ground_truth: a JSON record {"video", "events"} (as above, without
confidence), a JSON list of them, or JSON lines (e.g. the demo set's
ground_truth.jsonl); videos are matched by id (file name without extension).

Extraction uses the settings the run's dataset was extracted with when
`avjax.prepare own --videos` recorded them (weights mode, seed, sizes;
weight files from the flags); flags given explicitly override them.

A file that cannot be parsed gets one `avjax.parse: error: <file>: <reason>`
line and the rest are parsed. Exit code: 0 all parsed, 1 some failed (the
rest were written), 2 nothing parsed or a usage/input error.
"""

import dataclasses
import html
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import flags
from absl import logging
import numpy as np

from avjax import errors
from avjax import extract as extract_lib
from avjax.metrics import avvp
from avjax.utils import cli

PROG = "avjax.parse"
EXIT_SOME_FAILED = errors.EXIT_SOME_FAILED
TRUTH_MIN_OVERLAP_S = 0.5
AUDIO_COLOUR, VISUAL_COLOUR = "#1f77b4", "#ff7f0e"

flags.DEFINE_string("workdir", None, "Trained AVVP-family run.")
flags.DEFINE_string("checkpoint", "best", "'best', 'latest' or a step.")
flags.DEFINE_string("out", "parsed", "Output folder.")
flags.DEFINE_float("threshold", None, "Decision threshold (default: the "
                   "run's config.eval.threshold).")
flags.DEFINE_string("ground_truth", None, "Known events (JSON / JSON lines) "
                    "to draw beside the predictions and score against.")
flags.DEFINE_bool("progress", True, "Progress (videos/s, ETA) on stderr.")
flags.DEFINE_string("feature_cache", None, "Folder of extracted features "
                    "to reuse: a video whose file and extraction settings are "
                    "unchanged is not decoded or extracted again (e.g. when "
                    "parsing the same videos with several trained runs).")
extract_lib.define_flags()
FLAGS = flags.FLAGS


class ParseError(errors.UserError, ValueError):
  """Bad arguments or a run parse cannot use."""


# ------------------------------------------------------------ the trained run


@dataclasses.dataclass
class Run:
  """What parse needs from a trained run (see `load_run`)."""
  workdir: str
  checkpoint: str
  step: int
  classes: Tuple[str, ...]
  window: int                        # T segments per model call
  features: Dict[str, Tuple[int, int]]  # stream -> (rows per segment, dim)
  predict: Any                       # batch dict (numpy) -> outputs (numpy)
  decide: Any                        # (outputs, threshold) -> (a, v) bool
  threshold: float
  gating: str
  extraction: Optional[Dict[str, Any]]
  batch_size: int


def _run_dir(workdir: str) -> str:
  if not os.path.isdir(workdir):
    raise ParseError(f"--workdir={workdir}: no such folder")
  if os.path.exists(os.path.join(workdir, "checkpoints")) or os.path.exists(
      os.path.join(workdir, "best")):
    return workdir
  for sub in ("stage3", "finetune"):  # MA / pretrained cross-modal runs
    if os.path.exists(os.path.join(workdir, sub, "config.json")):
      return os.path.join(workdir, sub)
  raise ParseError(f"--workdir={workdir}: not a trained run (no "
                   "checkpoints/ or best/ and no config.json); give the "
                   "--workdir of `python -m avjax.main`")


def load_run(workdir: str, checkpoint: str = "best") -> Run:
  """THE adapter to the trainer API: restores a run and its predict step.

  Everything parse knows about trainers is in this function (the loop's
  `read_config` / `setup` / `restore` with the AVVP trainer, the
  evaluators' jitted predict step and the AVVP evaluator's decision rule).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from avjax.trainers import avvp_weak  # pylint: disable=g-import-not-at-top
  from avjax.trainers import loop  # pylint: disable=g-import-not-at-top
  from avjax.utils import sharding  # pylint: disable=g-import-not-at-top
  run_dir = _run_dir(workdir)
  path = os.path.join(run_dir, "config.json")
  if not os.path.exists(path):
    raise ParseError(f"{path} not found: --workdir must be a trained run")
  config = loop.read_config(run_dir)
  if config.model.name != "avvp_net":
    raise ParseError(f"{run_dir}: model {config.model.name!r} is not an "
                     "AVVP-family network (HAN, MA, cross-modal, VEBA)")
  s = loop.setup(config, train=False, trainer=avvp_weak.TRAINER)
  state, _, step = loop.restore(s, run_dir, checkpoint)
  # The run's own evaluator (HAN/MA/cross-modal: avvp_f1, VEBA: veba) gives
  # the predict step (its output keys) and the segment decision rule.
  ev = loop.make_evaluator(s, config.data.val_split)
  dsh = sharding.data_sharding(s.mesh)

  def predict(batch):
    out = ev.predict_fn(state, jax.device_put(batch, dsh))
    return {k: np.asarray(v) for k, v in out.items()}

  gating = config.eval.gating

  def decide(pred, threshold):
    ev.threshold = threshold
    return ev.decisions(pred)

  specs = {sp.name: (sp.frames_per_segment, sp.row_size)
           for sp in s.info["feature_specs"] if sp.name in s.features}
  return Run(workdir=run_dir, checkpoint=checkpoint, step=int(step),
             classes=tuple(s.info["classes"]),
             window=int(s.info["max_segments"]), features=specs,
             predict=predict, decide=decide,
             threshold=float(config.eval.threshold), gating=gating,
             extraction=s.info.get("extra", {}).get("extraction"),
             batch_size=jax.device_count())


# ------------------------------------------------------------ windows, events


def model_batches(feats: Dict[str, np.ndarray], run: Run
                  ) -> Dict[str, np.ndarray]:
  """Features of a whole video -> [N windows, ...] inputs + segment_mask."""
  t = len(feats["audio"])
  w = run.window
  n = max(1, -(-t // w))
  batch = {"segment_mask": np.zeros((n, w), np.float32)}
  batch["segment_mask"].reshape(-1)[:t] = 1
  for name, (f, dim) in run.features.items():
    if name not in feats:
      raise ParseError(f"the run reads a {name!r} stream, which extraction "
                       "does not produce")
    x = np.asarray(feats[name], np.float32)
    rows = len(x) // t
    if f != rows:
      if f == 1:  # a run trained on pooled frames (prepare --pool_frames)
        x = x.reshape(t, rows, -1).mean(1)
      else:
        raise ParseError(f"the run expects {f} {name} rows per segment; "
                         f"extraction gives {rows}")
    x = x.reshape(t * f, -1)
    if x.shape[1] != dim:
      raise ParseError(f"the run expects {name} features of size {dim}; "
                       f"extraction gives {x.shape[1]} (other extractor "
                       "settings?)")
    pad = np.zeros((n * w * f, dim), np.float32)
    pad[:t * f] = x
    batch[name] = pad.reshape(n, w * f, dim)
  return batch


def predict_video(run: Run, feats: Dict[str, np.ndarray],
                  threshold: float) -> Dict[str, np.ndarray]:
  """Segment decisions audio/visual bool [T, C] and frame_prob [T, 2, C]."""
  t = len(feats["audio"])
  batch = model_batches(feats, run)
  n = len(batch["segment_mask"])
  b = run.batch_size * -(-n // run.batch_size)  # multiple of the devices
  padded = {k: np.concatenate([v, np.zeros((b - n,) + v.shape[1:], v.dtype)])
            for k, v in batch.items()}
  out = {k: v[:n] for k, v in run.predict(padded).items()}
  out["segment_mask"] = batch["segment_mask"]
  a, v = run.decide(out, threshold)
  c = a.shape[-1]
  return {"audio": a.reshape(-1, c)[:t], "visual": v.reshape(-1, c)[:t],
          "frame_prob": out["frame_prob"].reshape(-1, 2, c)[:t]}


def _runs(x: np.ndarray) -> List[Tuple[int, int]]:
  """[start, end) of the runs of True in a bool vector."""
  d = np.diff(np.concatenate([[0], x.astype(np.int8), [0]]))
  return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def decisions_to_events(audio: np.ndarray, visual: np.ndarray,
                        frame_prob: np.ndarray, classes: Sequence[str],
                        duration_s: float) -> List[Dict[str, Any]]:
  """Events of the module doc from segment decisions [T, C]."""
  events = []
  for c, name in enumerate(classes):
    a, v = audio[:, c], visual[:, c]
    for modality, mask, probs in (
        ("both", a & v, frame_prob[:, :, c].mean(1)),
        ("audio", a & ~v, frame_prob[:, 0, c]),
        ("visual", v & ~a, frame_prob[:, 1, c])):
      for s, e in _runs(mask):
        events.append({"event": name, "modality": modality,
                       "start": float(s),
                       "end": round(float(min(e, duration_s)), 3),
                       "confidence": round(float(probs[s:e].mean()), 4)})
  return sorted(events, key=lambda e: (e["start"], e["event"],
                                       e["modality"]))


def truth_to_segments(events: Sequence[Dict[str, Any]], t: int,
                      classes: Sequence[str]) -> Tuple[np.ndarray, ...]:
  """Dense truth (audio, visual) bool [T, C]: a segment is positive when the
  event covers >= TRUTH_MIN_OVERLAP_S of it; unknown classes are ignored."""
  index = {n: i for i, n in enumerate(classes)}
  a, v = np.zeros((t, len(classes)), bool), np.zeros((t, len(classes)), bool)
  starts = np.arange(t)
  for e in events:
    if e["event"] not in index:
      continue
    overlap = (np.minimum(starts + 1, e["end"]) -
               np.maximum(starts, e["start"]))
    on = overlap >= TRUTH_MIN_OVERLAP_S - 1e-9
    c = index[e["event"]]
    if e["modality"] in ("audio", "both"):
      a[on, c] = True
    if e["modality"] in ("visual", "both"):
      v[on, c] = True
  return a, v


def score(records: Sequence[Dict[str, Any]], truth: Dict[str, list],
          classes: Sequence[str]) -> Dict[str, Any]:
  """Segment/event-level AVVP scores of parsed videos with known events."""
  rows = [r for r in records if r["video"] in truth]
  if not rows:
    return {"num_videos": 0}
  t = max(r["num_segments"] for r in rows)
  arrays = [[], [], [], []]
  for r in rows:
    pa, pv = truth_to_segments(r["events"], r["num_segments"], classes)
    ga, gv = truth_to_segments(truth[r["video"]], r["num_segments"], classes)
    for lst, x in zip(arrays, (pa, pv, ga, gv)):
      lst.append(np.pad(x, ((0, t - len(x)), (0, 0))))
  res = avvp.avvp_scores(*(np.stack(x) for x in arrays))
  out = {k: round(float(v), 2) for k, v in res.items()
         if k.startswith(("seg_", "ev_"))}
  out["num_videos"] = len(rows)
  unknown = sorted({e["event"] for r in rows for e in truth[r["video"]]
                    if e["event"] not in classes})
  if unknown:
    out["unknown_truth_classes"] = unknown
  return out


def read_truth(path: str) -> Dict[str, list]:
  """{video id: events} from a JSON record, a JSON list or JSON lines."""
  if os.path.isdir(path):
    path = os.path.join(path, "ground_truth.jsonl")
  try:
    with open(path) as f:
      text = f.read()
  except FileNotFoundError:
    raise ParseError(f"--ground_truth={path}: no such file") from None
  try:
    data = json.loads(text)
    recs = data if isinstance(data, list) else [data]
  except json.JSONDecodeError:
    recs = []
    for i, line in enumerate(text.splitlines(), 1):
      if line.strip():
        try:
          recs.append(json.loads(line))
        except json.JSONDecodeError as e:
          raise ParseError(f"{path}:{i}: not JSON ({e})") from None
  out = {}
  for i, r in enumerate(recs, 1):
    if not isinstance(r, dict) or "video" not in r or "events" not in r:
      raise ParseError(f"{path}: record {i} has no 'video' and 'events'")
    for e in r["events"]:
      missing = [k for k in ("event", "modality", "start", "end")
                 if k not in e]
      if missing or e["modality"] not in ("audio", "visual", "both"):
        raise ParseError(f"{path}: video {r['video']!r}: bad event {e} "
                         "(needs event, modality audio|visual|both, start, "
                         "end)")
    out[str(r["video"])] = r["events"]
  return out


# ------------------------------------------------------------ pictures, pages


def plot_timeline(path: str, record: Dict[str, Any],
                  truth: Optional[Sequence[Dict[str, Any]]] = None) -> None:
  """A timeline PNG of one video's events (module doc)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import patches  # pylint: disable=g-import-not-at-top
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  events = record["events"]
  names = sorted({e["event"] for e in events} |
                 {e["event"] for e in (truth or [])})
  duration = max([record["duration_s"]] + [e["end"] for e in truth or []])
  lanes = 4 if truth is not None else 2
  fig, ax = plt.subplots(figsize=(10, 0.9 + 0.32 * lanes * max(len(names), 1)))
  h = 0.8 / lanes

  def bars(evs, row, offset, hatch):
    for e in evs:
      if e["event"] != names[row]:
        continue
      for lane, colour, on in ((0, AUDIO_COLOUR, ("audio", "both")),
                               (1, VISUAL_COLOUR, ("visual", "both"))):
        if e["modality"] not in on:
          continue
        y = row + 0.1 + (lane * (lanes // 2) + offset) * h
        ax.add_patch(patches.Rectangle(
            (e["start"], y), e["end"] - e["start"], h * 0.9,
            facecolor="none" if hatch else colour, edgecolor=colour,
            hatch="////" if hatch else None, linewidth=1))

  for row in range(len(names)):
    bars(events, row, 0, False)
    if truth is not None:
      bars(truth, row, 1, True)
  ax.set_xlim(0, max(duration, 1))
  ax.set_ylim(max(len(names), 1), 0)
  ax.set_yticks([i + 0.5 for i in range(len(names))])
  ax.set_yticklabels(names)
  ax.set_xlabel("time (s)")
  for x in range(int(np.ceil(duration)) + 1):
    ax.axvline(x, color="#dddddd", linewidth=0.5, zorder=0)
  legend = [patches.Patch(facecolor=AUDIO_COLOUR, label="audio (predicted)"),
            patches.Patch(facecolor=VISUAL_COLOUR, label="visual (predicted)")]
  if truth is not None:
    legend += [patches.Patch(facecolor="none", edgecolor="black",
                             hatch="////", label="ground truth")]
  for row in range(1, len(names)):
    ax.axhline(row, color="#999999", linewidth=0.5)
  ax.legend(handles=legend, loc="lower right", ncol=3, fontsize=8,
            bbox_to_anchor=(1.0, 1.0), frameon=False)
  ax.set_title(record["video"] + ("" if names else " (no events found)"),
               loc="left")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_index(out_dir: str, records: Sequence[Dict[str, Any]],
                failed: Sequence[Dict[str, str]],
                scores: Optional[Dict[str, Any]] = None) -> str:
  """out_dir/index.html: every video's timeline and events; failures."""
  esc = html.escape
  parts = ["<!doctype html><html><head><meta charset='utf-8'>",
           "<title>avjax.parse</title><style>body{font-family:sans-serif}"
           "td,th{padding:2px 8px;text-align:left}</style></head><body>",
           f"<h1>Parsed videos ({len(records)})</h1>"]
  if scores:
    parts.append("<p>Scores vs ground truth: " + esc(", ".join(
        f"{k} {v}" for k, v in scores.items())) + "</p>")
  if failed:
    parts.append("<h2>Failed</h2><ul>" + "".join(
        f"<li>{esc(f['error'])}</li>" for f in failed) + "</ul>")
  for r in records:
    rows = "".join(
        f"<tr><td>{esc(e['event'])}</td><td>{e['modality']}</td>"
        f"<td>{e['start']:.1f}</td><td>{e['end']:.1f}</td>"
        f"<td>{e['confidence']:.2f}</td></tr>" for e in r["events"])
    parts.append(
        f"<h2 id='{esc(r['video'])}'>{esc(r['video'])}</h2>"
        f"<p>{esc(r['file'])}, {r['duration_s']:.2f} s</p>"
        f"<img src='{esc(r['video'])}.png' alt='timeline'>"
        "<table><tr><th>event</th><th>modality</th><th>start</th>"
        f"<th>end</th><th>confidence</th></tr>{rows}</table>")
  parts.append("</body></html>")
  path = os.path.join(out_dir, "index.html")
  with open(path, "w") as f:
    f.write("\n".join(parts))
  return path


# ------------------------------------------------------------ the command


def collect_videos(args: Sequence[str]) -> Tuple[List[str], bool]:
  """(video paths, whether a folder or several were given)."""
  if not args:
    raise ParseError("give one or more video files or folders")
  paths, many = [], len(args) > 1
  for a in args:
    if os.path.isdir(a):
      many = True
      found = extract_lib.list_videos(a)
      if not found:
        raise ParseError(f"{a}: no video files (extensions "
                         f"{', '.join(extract_lib.VIDEO_EXTENSIONS)})")
      paths += found
    else:
      paths.append(a)  # a missing or bad file fails alone, below
  return paths, many


def unique_ids(paths: Sequence[str]) -> List[str]:
  ids, seen = [], {}
  for p in paths:
    i = extract_lib.video_id(p)
    seen[i] = seen.get(i, 0) + 1
    ids.append(i if seen[i] == 1 else f"{i}_{seen[i]}")
  return ids


def extraction_config(run: Run) -> extract_lib.ExtractConfig:
  """The run's recorded extraction settings, overridden by explicit flags."""
  cfg = extract_lib.ExtractConfig()
  known = {f.name for f in dataclasses.fields(cfg)}
  for k, v in (run.extraction or {}).items():
    if k in known:
      setattr(cfg, k, v)
  for f in dataclasses.fields(cfg):
    flag = FLAGS[extract_lib._flag_name(f.name)]  # pylint: disable=protected-access
    if flag.present:
      setattr(cfg, f.name, flag.value)
  return cfg.check()


def parse_videos(paths: Sequence[str], run: Run, out_dir: str,
                 cfg: extract_lib.ExtractConfig, *, threshold: float,
                 truth: Optional[Dict[str, list]] = None,
                 many: bool = True, extractor=None,
                 progress: bool = True,
                 feature_cache: Optional[str] = None) -> Dict[str, Any]:
  """Parses every video; writes the outputs (module doc); returns
  {"records", "failed", "scores"}."""
  os.makedirs(out_dir, exist_ok=True)
  ids = dict(zip(paths, unique_ids(paths)))
  records, failed = [], []
  model = {"workdir": run.workdir, "checkpoint": run.checkpoint,
           "step": run.step, "threshold": threshold, "gating": run.gating}
  for path, feats in extract_lib.extract_many_cached(
      list(paths), cfg, feature_cache, extractor, progress):
    if isinstance(feats, Exception):
      failed.append({"video": path, "error": str(feats)})
      cli.report(PROG, str(feats))
      continue
    vid, info = ids[path], feats["info"]
    dec = predict_video(run, feats, threshold)
    record = {"video": vid, "file": path,
              "duration_s": round(float(info["duration_s"]), 3),
              "num_segments": int(len(feats["audio"])),
              "events": decisions_to_events(
                  dec["audio"], dec["visual"], dec["frame_prob"],
                  run.classes, info["duration_s"]),
              "notes": info.get("notes", []), "model": model}
    with open(os.path.join(out_dir, vid + ".json"), "w") as f:
      json.dump(record, f, indent=1)
    plot_timeline(os.path.join(out_dir, vid + ".png"), record,
                  truth.get(vid) if truth is not None else None)
    records.append(record)
  scores = score(records, truth, run.classes) if truth else None
  if scores:
    with open(os.path.join(out_dir, "scores.json"), "w") as f:
      json.dump(scores, f, indent=1)
  if many:
    with open(os.path.join(out_dir, "events.jsonl"), "w") as f:
      for r in records:
        f.write(json.dumps(r) + "\n")
    write_index(out_dir, records, failed, scores)
  return {"records": records, "failed": failed, "scores": scores}


def main(argv):
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.set_verbosity(logging.WARNING)  # no checkpoint-library chatter
  if not FLAGS.workdir:
    raise ParseError("--workdir=TRAINED_RUN is required (the workdir of "
                     "`python -m avjax.main`)")
  ck = FLAGS.checkpoint
  if ck not in ("best", "latest") and not ck.isdigit():
    raise ParseError(f"--checkpoint={ck!r}: best, latest or a step number")
  paths, many = collect_videos(argv[1:])
  truth = read_truth(FLAGS.ground_truth) if FLAGS.ground_truth else None
  run = load_run(FLAGS.workdir, ck)
  threshold = run.threshold if FLAGS.threshold is None else FLAGS.threshold
  if not 0.0 < threshold < 1.0:
    raise ParseError(f"--threshold={threshold}: must be in (0, 1)")
  cfg = extraction_config(run)
  res = parse_videos(paths, run, FLAGS.out, cfg, threshold=threshold,
                     truth=truth, many=many, progress=FLAGS.progress,
                     feature_cache=FLAGS.feature_cache)
  n, bad = len(res["records"]), len(res["failed"])
  line = f"{PROG}: parsed {n} of {n + bad} video(s) into {FLAGS.out}"
  if res["scores"]:
    s = res["scores"]
    line += (f"; vs ground truth ({s['num_videos']} videos): segment-level "
             f"F1 audio {s.get('seg_a', 0):.1f}, visual {s.get('seg_v', 0):.1f}"
             f", audio-visual {s.get('seg_av', 0):.1f}")
  if cfg.weights == "random":
    line += f" [{extract_lib.RANDOM_NOTE}]"
  print(line)
  if bad:
    return EXIT_SOME_FAILED if n else errors.EXIT_USER_ERROR
  return 0


if __name__ == "__main__":
  cli.run(main)

"""LLP (Look, Listen and Parse; AVVP benchmark) in its published layout.

Layout (`python -m avjax.prepare llp --root=DIR [--annotations=ADIR]`):

  DIR/feats/vggish/<id>.npy        float32 [10, 128]   -> `audio`
  DIR/feats/res152/<id>.npy        float32 [80, 2048]  -> `visual` (8 fps)
  DIR/feats/r2plus1d_18/<id>.npy   float32 [10, 512]   -> `motion`
  ADIR/AVVP_train.csv, AVVP_val_pd.csv, AVVP_test_pd.csv   (default ADIR=DIR)
  ADIR/AVVP_eval_audio.csv, AVVP_eval_visual.csv  (other names: --eval_audio)
  ADIR/LLP_categories.txt          optional; class order (default: LLP_CLASSES)

`<id>` is the first 11 characters of `filename`; the TFRecord clip id is the
full `filename`. Splits: train 10,000, val 649, test 1,200 clips.

Labels:
  train:    `labels` = the weak labels of AVVP_train.csv.
  val/test: `labels` = the weak labels of AVVP_<split>_pd.csv (video_labels=
            "weak", default) or the union of the dense labels ("dense");
            `seg_audio`/`seg_visual` [10, 25] = dense ground truth built by
            `llp_annotations.read_dense` from the eval files, whose policy
            (unmatched rows ignored, empty intervals skipped, out-of-range
            intervals clipped, clips without rows all-negative) applies;
            `audio_labels`/`visual_labels` = union over segments of that
            modality's dense labels.

Every irregularity is counted with examples in `report` (written by
`avjax.prepare` into `prepare_report.json`, key "annotations"); `summary` there
gives the totals. A clip whose feature file is missing, has the wrong shape or
holds NaN/Inf raises from `load` (FileNotFoundError / ValueError naming file
and field); `avjax.prepare` skips and reports it (or stops with --strict).
So does a clip with a bad annotation row (an unknown or empty class list, in
its weak-label row or one of its eval rows): `load` raises an AnnotationError
naming file and line (skip reason `bad_annotation`).

--strict refuses, before anything is written: bad annotation rows, eval rows
of the converted clips with an empty or out-of-range interval (instead of the
policy above) and clips listed in several splits (kept in each by default).
"""

import collections
import os
from typing import Dict, Optional, Sequence

import numpy as np

from avjax import errors
from avjax.data import classes as classes_lib
from avjax.data.readers import llp_annotations as annotations
from avjax.data.readers import single_label

NUM_SEGMENTS = annotations.NUM_SEGMENTS
SPLITS = ("train", "val", "test")
STREAMS = {s.spec.name: s for s in single_label.LLP_STREAMS}
DENSE_KEYS = ("labels", "audio_labels", "visual_labels", "seg_audio",
              "seg_visual")
POLICY = {
    "unmatched_rows": "ignored (as in the HAN evaluation)",
    "empty_interval_rows": "skipped: the row adds no segment",
    "clipped_rows": "interval clipped to [0, 10]",
    "duplicate_rows": "harmless: labels are a union",
    "clips_without_audio_rows": "all-negative audio ground truth",
    "clips_without_visual_rows": "all-negative visual ground truth",
    "weak_dense_mismatch": "labels = the published weak labels "
                           "(video_labels=weak) or the dense union (dense); "
                           "audio_labels/visual_labels = the dense union",
    "duplicate_weak_labels": "deduplicated (multi-hot)",
    "bad_rows": "a clip with an unknown or empty class in one of its rows is "
                "skipped and reported (an error with --strict)",
    "ids_in_several_splits": "kept in every split and reported (an error "
                             "with --strict)",
    "features": "a clip with a missing, misshapen or non-finite feature "
                "file is skipped and reported (an error with --strict)",
}


def feature_id(filename: str) -> str:
  """Stem of a clip's feature files: the 11-character YouTube id."""
  return filename[:11]


def read_classes(annotations_dir: str):
  path = os.path.join(annotations_dir, "LLP_categories.txt")
  if os.path.isfile(path):
    return tuple(single_label.read_lines(path))
  return classes_lib.LLP_CLASSES


class LLPDataset:
  """Clips of the LLP splits; `load(split, index)` reads one clip's files."""

  def __init__(self, root: str, annotations_dir: Optional[str] = None,
               eval_audio: str = "AVVP_eval_audio.csv",
               eval_visual: str = "AVVP_eval_visual.csv",
               features: Sequence[str] = ("audio", "visual", "motion"),
               splits: Sequence[str] = SPLITS, video_labels: str = "weak",
               strict: bool = False):
    if video_labels not in ("weak", "dense"):
      raise ValueError(f"video_labels must be 'weak' or 'dense', got "
                       f"{video_labels!r}")
    unknown = [f for f in features if f not in STREAMS]
    if unknown:
      raise ValueError(f"unknown LLP feature(s) {unknown}; have "
                       f"{sorted(STREAMS)}")
    self.name, self.root = "llp", root
    self.annotations_dir = adir = annotations_dir or root
    self.classes = read_classes(adir)
    self.streams = tuple(STREAMS[f] for f in features)
    self.features = tuple(s.spec for s in self.streams)
    single_label.check_stream_folders(root, self.streams)
    self.video_labels, self.strict = video_labels, strict
    self.ids, self.labels, self.dense = {}, {}, {}
    self.bad = {}  # {split: {clip index: error of its bad annotation row}}
    self.report = {"annotations_dir": adir, "video_labels": video_labels,
                   "policy": POLICY, "warnings": []}
    for split in splits:
      try:
        if split in annotations.DENSE_SPLITS:
          self._read_dense(split, eval_audio, eval_visual)
        elif split == "train":
          self._read_train()
        else:
          raise ValueError(f"unknown LLP split {split!r}; have {SPLITS}")
      except errors.AnnotationError as e:  # only with strict
        raise errors.AnnotationError(
            f"{e} [--strict: without it the row's clip is skipped and "
            "reported]") from None
      if not self.ids[split]:
        raise ValueError(f"{self.report[split]['files']['weak']} lists no "
                         f"clip (only its header): the {split} split would "
                         "be empty; restore the file or pass --splits "
                         "without it")
    self._check_ids()
    self._warn_rows()
    self.report["summary"] = summarize(self.report)
    self.splits = {s: list(range(len(self.ids[s]))) for s in self.ids}
    self.label_keys = {s: ("labels",) if s == "train" else DENSE_KEYS
                       for s in self.ids}
    self.extra = {"source": "llp", "annotations_dir": adir,
                  "eval_files": [eval_audio, eval_visual],
                  "video_labels": video_labels}

  def _multi_hot(self, names) -> np.ndarray:
    y = np.zeros(len(self.classes), np.float32)
    y[[self.classes.index(n) for n in names]] = 1
    return y

  def _bad_rows(self, split: str, rows) -> None:
    """Marks the clips of bad annotation rows; reports the rows."""
    index = {f: i for i, f in enumerate(self.ids[split])}
    bad, issue = self.bad.setdefault(split, {}), single_label.new_issue()
    for row in rows:
      bad.setdefault(index[row["filename"]], row["error"])
      single_label.add_issue(issue, row)
    self.report[split]["bad_rows"] = issue

  def _read_train(self):
    path = os.path.join(self.annotations_dir, annotations.SPLIT_FILES["train"])
    bad_rows = None if self.strict else []
    weak = annotations.read_weak(path, self.classes, bad_rows)
    self.ids["train"] = [f for f, _ in weak]
    self.labels["train"] = np.stack([self._multi_hot(n) for _, n in weak])
    dupes = single_label.new_issue()
    for filename, names in weak:
      if len(set(names)) != len(names):
        single_label.add_issue(dupes, {"filename": filename,
                                       "event_labels": names})
    self.report["train"] = {"split": "train", "num_clips": len(weak),
                            "files": {"weak": path},
                            "duplicate_weak_labels": dupes}
    self._bad_rows("train", bad_rows or [])

  def _read_dense(self, split, eval_audio, eval_visual):
    bad_rows = None if self.strict else []
    ids, gt_a, gt_v, report = annotations.read_dense(
        self.annotations_dir, split, eval_audio, eval_visual,
        NUM_SEGMENTS, self.classes, bad_rows, self.strict)
    self.ids[split] = ids
    if self.video_labels == "weak" and ids:
      path = report["files"]["weak"]
      self.labels[split] = np.stack([
          self._multi_hot(n) for _, n in annotations.read_weak(
              path, self.classes, [])])
    else:
      self.labels[split] = (gt_a | gt_v).any(1).astype(np.float32)
    self.dense[split] = (gt_a, gt_v)
    self.report[split] = report
    self._bad_rows(split, bad_rows or [])

  def _check_ids(self):
    """Reports ids in several splits and feature-file stems shared by clips."""
    splits_of = collections.defaultdict(list)
    for split, ids in self.ids.items():
      for f in ids:
        splits_of[f].append(split)
      if len(set(ids)) != len(ids):
        dupes = [f for f, n in collections.Counter(ids).items() if n > 1]
        raise ValueError(f"{self.report[split]['files']['weak']} lists "
                         f"{dupes[:5]} more than once; keep one row per clip")
    several, shared = single_label.new_issue(), single_label.new_issue()
    by_stem = collections.defaultdict(list)
    for f, s in splits_of.items():
      by_stem[feature_id(f)].append(f)
      if len(s) > 1:
        single_label.add_issue(several, {"filename": f, "splits": s})
    for stem, names in by_stem.items():
      if len(names) > 1:
        single_label.add_issue(shared, {"feature_id": stem,
                                        "filenames": names})
    self.report["ids_in_several_splits"] = several
    self.report["clips_sharing_feature_files"] = shared
    if several["count"]:
      e = several["examples"][0]
      text = (f"{several['count']} clip(s) are listed in several splits, e.g. "
              f"{e['filename']!r} in " + " and ".join(
                  self.report[s]["files"]["weak"] for s in e["splits"]))
      if self.strict:
        raise ValueError(f"--strict: {text}; a clip must be in one split "
                         "(without --strict it is kept in each and reported)")
      self.report["warnings"].append(f"{text}: kept in each (see "
                                     "ids_in_several_splits in the report)")

  def _warn_rows(self) -> None:
    """Warnings for the eval rows the policy skips or clips."""
    dense = [s for s in annotations.DENSE_SPLITS if s in self.report]
    for key, what in (("empty_interval_rows", "have offset <= onset: "
                       "skipped (no segment)"),
                      ("clipped_rows", "reach outside [0, 10] s: clipped")):
      issue = self.report[dense[0]][key] if dense else {"count": 0}
      if issue["count"]:
        e = issue["examples"][0]
        self.report["warnings"].append(
            f"{issue['count']} eval row(s) {what}, e.g. {e['file']}:"
            f"{e['line']} ({e['filename']}, onset {e['onset']}, offset "
            f"{e['offset']}); --strict refuses them")

  def clip_id(self, split: str, index: int) -> str:
    return self.ids[split][index]

  def load(self, split: str, index: int) -> Dict[str, np.ndarray]:
    filename = self.ids[split][index]
    if index in self.bad.get(split, {}):
      raise errors.AnnotationError(self.bad[split][index])
    clip = {"id": filename, **single_label.load_streams(
        self.root, self.streams, feature_id(filename), NUM_SEGMENTS)}
    clip["labels"] = self.labels[split][index]
    if split in self.dense:
      gt_a, gt_v = self.dense[split]
      clip["seg_audio"] = gt_a[index].astype(np.uint8)
      clip["seg_visual"] = gt_v[index].astype(np.uint8)
      clip["audio_labels"] = gt_a[index].any(0).astype(np.float32)
      clip["visual_labels"] = gt_v[index].any(0).astype(np.float32)
    return clip


def summarize(report: Dict) -> Dict:
  """Totals of the irregularities over the splits read."""
  dense = [report[s] for s in annotations.DENSE_SPLITS if s in report]
  out = {"num_clips": {s: report[s]["num_clips"] for s in SPLITS
                       if s in report}}
  if dense:  # row issues are counted over the whole eval files
    for key in annotations.ROW_ISSUES:
      out[key] = {"count": dense[0][key]["count"],
                  "by_file": dense[0][key]["by_file"]}
  for key in annotations.CLIP_ISSUES:
    per = {r["split"]: r[key]["count"] for r in dense + (
        [report["train"]] if key == "duplicate_weak_labels" and
        "train" in report else [])}
    out[key] = dict(per, total=sum(per.values()))
  mismatch = out["weak_dense_mismatch"]
  mismatch["total_if_empty_rows_kept"] = sum(
      r["weak_dense_mismatch"]["count_if_empty_rows_kept"] for r in dense)
  for key in ("ids_in_several_splits", "clips_sharing_feature_files"):
    out[key] = report[key]["count"]
  per = {s: report[s]["bad_rows"]["count"] for s in SPLITS if s in report}
  out["bad_rows"] = dict(per, total=sum(per.values()))
  return out


def add_arguments(parser) -> None:
  parser.add_argument("--annotations", default=None, help="folder of the "
                      "AVVP_*.csv files (default: --root)")
  parser.add_argument("--eval_audio", default="AVVP_eval_audio.csv",
                      help="audio eval file name (e.g. an older release)")
  parser.add_argument("--eval_visual", default="AVVP_eval_visual.csv")
  parser.add_argument("--features", default="audio,visual,motion",
                      help="streams to convert (audio=vggish, visual=res152,"
                      " motion=r2plus1d_18)")
  parser.add_argument("--splits", default=",".join(SPLITS))
  parser.add_argument("--video_labels", default="weak",
                      choices=("weak", "dense"), help="val/test `labels`: "
                      "published weak labels or union of the dense labels")


def from_args(args) -> LLPDataset:
  return LLPDataset(args.root, args.annotations, args.eval_audio,
                    args.eval_visual, args.features.split(","),
                    args.splits.split(","), args.video_labels,
                    getattr(args, "strict", False))

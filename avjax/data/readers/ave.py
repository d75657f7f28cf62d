"""AVE (Audio-Visual Event dataset) in its published layout.

Layout (`python -m avjax.prepare ave --root=DIR [--h5_dir=H]`):

  DIR/AVE_Annotations.txt    header + 4,143 rows `Category&VideoID&Quality&
                             StartTime&EndTime` (also accepted: Annotations.txt)
  DIR/AVE_trainSet.txt, AVE_valSet.txt, AVE_testSet.txt  same rows, no header
                             (3,339 / 402 / 402; also trainSet.txt, ...)
  DIR/AVE_categories.txt     optional: the 28 classes (default: order of first
                             appearance in the annotations); background = 28
  H/audio_feature.h5         `avadataset` [4143, 10, 128]       -> `audio`
  H/visual_feature.h5        `avadataset` [4143, 10, 7, 7, 512] -> `visual_map`
  H/visual_feature_vec.h5    optional [4143, 10, 512]           -> `visual_vec`
  H/labels.h5                optional [4143, 10, 29] per-segment one-hot
  H/{train,val,test}_order.h5  optional, key `order`: annotation row indices
  H/audio_feature_noisy.h5 [178, 10, 128], visual_feature_noisy.h5
                             [178, 10, 7, 7, 512], labels_noisy.h5 [178, 29]:
                             the release's background-only clips -> split
                             `train_noisy` (weakly-supervised setting). The
                             release ships no visual_feature_vec_noisy.h5:
                             their `visual_vec` is the mean over the 7x7
                             regions of visual_feature_noisy.h5 (the official
                             README: the vectors are "global average pooling"
                             of the maps); a visual_feature_vec_noisy.h5, when
                             present, is read instead. The conversion report
                             counts them (summary `background_only_clips`);
                             when they are missing it says so in its warnings
                             (--noisy=yes refuses to convert without them).

H/... files are looked up in --h5_dir, else DIR/h5, DIR/data, DIR. Feature rows
follow the annotation rows and are read one row at a time.

Labels (classes = AVE_categories.txt order + "background"):
  seg_audio = seg_visual [10, 29]: the class on segments [start, end), the
      background elsewhere (from labels.h5 with --labels_source=h5; "auto"
      uses labels.h5 when present; disagreements are reported).
  labels [29]: video_labels="event" (default): the event class only, as in
      the reference's mil_labels.h5 (background only for a clip with no
      event segment); "union": every class of some segment (the event class,
      plus background when the event is shorter than 10 s, which a MIL loss
      turns into a 0.5/0.5 target: the weak model then learns background
      from the event clips instead of from the background-only ones).

Policy for the irregularities (all reported, with examples): a row with
end <= start (one in the release) has no event segment (all background);
intervals outside [0, 10] are clipped; a VideoID on several rows (45 in the
release, e.g. male and female speech) gives clip ids `<VideoID>#<row>`;
videos in several splits are kept and reported; split rows missing from the
annotations are dropped; where the split txt and *_order.h5 disagree, the
order file wins. Files are read as UTF-8 (BOM allowed; Latin-1 fallback,
reported), CRLF or LF. An annotation row whose Category is empty or not in
AVE_categories.txt is reported and its clip skipped (reason bad_annotation).
--strict refuses such rows, and rows with end <= start or times outside
[0, 10], before anything is written.
"""

import collections
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from avjax import errors
from avjax.data import schema
from avjax.data.readers import single_label

NUM_SEGMENTS = 10
SPLITS = ("train", "val", "test")
NOISY = "train_noisy"
BACKGROUND = "background"
H5_KEY = "avadataset"
FEATURES = {"audio": ("audio_feature.h5", schema.FeatureSpec(
    "audio", 1, (128,))), "visual_map": ("visual_feature.h5",
                                        schema.FeatureSpec(
                                            "visual_map", 1, (7, 7, 512))),
            "visual_vec": ("visual_feature_vec.h5", schema.FeatureSpec(
                "visual_vec", 1, (512,)))}
Row = collections.namedtuple("Row", "category video_id quality start end")
POLICY = {
    "empty_event_rows": "end <= start: no event segment (all background)",
    "clipped_event_rows": "interval clipped to [0, 10]",
    "duplicate_video_ids": "clip id <VideoID>#<row> for each such row",
    "videos_in_several_splits": "kept in each split",
    "rows_in_no_split": "not written", "rows_in_several_splits": "kept",
    "split_rows_not_in_annotations": "dropped",
    "split_order_mismatch": "*_order.h5 wins over the split txt",
    "labels_h5_mismatch": "labels.h5 used (labels_source=auto|h5), else "
                          "the annotations",
    "features": "a row with NaN/Inf is skipped and reported (an error with "
                "--strict)",
    "bad_rows": "a row with an empty or unknown Category: its clip is skipped "
                "and reported (an error with --strict)",
}
STRICT = " [--strict: without it {}]"
_add = single_label.add_issue


def _find(names: Sequence[str], dirs: Sequence[str]) -> Optional[str]:
  for d in dirs:
    for n in names:
      if os.path.isfile(os.path.join(d, n)):
        return os.path.join(d, n)
  return None


def read_rows(path: str, report: Dict,
              lines: Optional[List[int]] = None) -> List[Row]:
  """Rows of an annotation/split file (`&`-separated; header optional);
  `lines` (a list) receives the 1-based line number of each row."""
  try:
    with open(path, encoding="utf-8-sig", newline="") as f:
      text = f.read()
  except UnicodeDecodeError:
    with open(path, encoding="latin-1", newline="") as f:
      text = f.read()
    report.setdefault("latin1_files", []).append(path)
  rows = []
  for line_no, line in enumerate(text.splitlines(), start=1):
    if not line.strip() or (line_no == 1 and line.startswith("Category&")):
      continue
    fields = [x.strip() for x in line.split("&")]
    if len(fields) != 5:
      raise ValueError(f"{path}:{line_no}: expected 5 '&'-separated fields "
                       f"Category&VideoID&Quality&StartTime&EndTime, got "
                       f"{len(fields)}: {line!r}")
    try:
      rows.append(Row(*fields[:3], int(fields[3]), int(fields[4])))
      if lines is not None:
        lines.append(line_no)
    except ValueError:
      raise ValueError(f"{path}:{line_no}: StartTime/EndTime must be integer"
                       f" seconds: {line!r}") from None
  return rows


def read_classes(ann_dir: str, rows: Sequence[Row],
                 where=lambda i: f"annotation row {i}",
                 bad: Optional[Dict[int, str]] = None) -> tuple:
  """Classes + background. A row with an empty or unknown Category raises
  an AnnotationError naming `where(row)`, or, with `bad` (a dict), is
  recorded there as {row: error}."""
  path = _find(["AVE_categories.txt", "categories.txt"], [ann_dir])
  if path:
    names = single_label.read_lines(path)
  else:
    names = list(dict.fromkeys(r.category for r in rows if r.category))
  for i, r in enumerate(rows):
    try:
      if not r.category:
        raise ValueError(f"{where(i)}: empty Category")
      single_label.class_index(names, r.category, where(i))
    except ValueError as e:
      if bad is None:
        raise errors.AnnotationError(str(e)) from None
      bad[i] = str(e)
  return tuple(names) + (BACKGROUND,)


def dense_labels(rows: Sequence[Row], classes, report: Dict,
                 bad=(), strict: bool = False,
                 where=lambda i: f"annotation row {i}") -> np.ndarray:
  """uint8 [N, 10, C]: the event class on [start, end), background elsewhere
  (all background for the rows in `bad`). strict: a row with end <= start or
  times outside [0, 10] raises a ValueError naming `where(row)`."""
  y = np.zeros((len(rows), NUM_SEGMENTS, len(classes)), np.uint8)
  y[:, :, len(classes) - 1] = 1
  for i, r in enumerate(rows):
    if i in bad:
      continue
    start, end = max(r.start, 0), min(r.end, NUM_SEGMENTS)
    example = {"row": i, **r._asdict()}
    if strict and ((start, end) != (r.start, r.end) or r.end <= r.start):
      raise ValueError(
          f"{where(i)}: --strict: StartTime {r.start}, EndTime {r.end}: "
          + ("an empty event (end <= start), which the default policy "
             "treats as all background" if r.end <= r.start else
             f"outside [0, {NUM_SEGMENTS}], which the default policy clips")
          + "; fix the row, or convert without --strict")
    if r.end <= r.start:
      _add(report["empty_event_rows"], example)
    elif (start, end) != (r.start, r.end):
      _add(report["clipped_event_rows"], example)
    y[i, start:end] = 0
    y[i, start:end, classes.index(r.category)] = 1
  return y


def read_splits(ann_dir: str, h5_dirs, rows: Sequence[Row], report: Dict
                ) -> Dict[str, List[int]]:
  """Annotation row indices of each split, in the published order."""
  import h5py  # pylint: disable=g-import-not-at-top
  index = collections.defaultdict(list)
  for i, r in enumerate(rows):
    index[r].append(i)
  splits = {}
  for split in SPLITS:
    order_path = _find([f"{split}_order.h5"], h5_dirs)
    txt = _find([f"AVE_{split}Set.txt", f"{split}Set.txt"], [ann_dir])
    from_txt = None
    if txt:
      pool = {k: list(v) for k, v in index.items()}
      from_txt = []
      for r in read_rows(txt, report):
        if pool.get(r):
          from_txt.append(pool[r].pop(0))
        else:
          _add(report["split_rows_not_in_annotations"],
               {"file": txt, **r._asdict()})
    if order_path:
      with h5py.File(order_path, "r") as f:
        splits[split] = [int(i) for i in f["order"][()]]
      if from_txt is not None and from_txt != splits[split]:
        _add(report["split_order_mismatch"], {"split": split, "txt": txt,
                                              "order": order_path})
    elif from_txt is not None:
      splits[split] = from_txt
    report["files"][split] = order_path or txt
  seen = collections.defaultdict(list)
  for split, idx in splits.items():
    bad = [i for i in idx if not 0 <= i < len(rows)]
    if bad:
      raise ValueError(f"{report['files'][split]}: row indices {bad[:5]} "
                       f"outside the {len(rows)} annotation rows")
    for i in idx:
      seen[i].append(split)
  for i, r in enumerate(rows):
    if len(seen[i]) != 1:
      key = "rows_in_no_split" if not seen[i] else "rows_in_several_splits"
      _add(report[key], {"row": i, "splits": seen[i], **r._asdict()})
  return splits


def clip_ids(rows: Sequence[Row], splits, report: Dict) -> List[str]:
  counts = collections.Counter(r.video_id for r in rows)
  splits_of = collections.defaultdict(set)
  for split, idx in splits.items():
    for i in idx:
      splits_of[rows[i].video_id].add(split)
  for vid, n in counts.items():
    if n > 1:
      _add(report["duplicate_video_ids"], {"video_id": vid, "rows": [
          i for i, r in enumerate(rows) if r.video_id == vid]})
    if len(splits_of[vid]) > 1:
      _add(report["videos_in_several_splits"],
           {"video_id": vid, "splits": sorted(splits_of[vid])})
  return [r.video_id if counts[r.video_id] == 1 else f"{r.video_id}#{i}"
          for i, r in enumerate(rows)]


def _h5_shape(path: str) -> tuple:
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, "r") as f:
    if H5_KEY not in f:
      raise ValueError(f"{path}: no dataset {H5_KEY!r} (has {list(f)})")
    return f[H5_KEY].shape


def new_report() -> Dict:
  keys = ("empty_event_rows", "clipped_event_rows", "duplicate_video_ids",
          "videos_in_several_splits", "rows_in_no_split",
          "rows_in_several_splits", "split_rows_not_in_annotations",
          "split_order_mismatch", "labels_h5_mismatch", "bad_rows")
  return {"files": {}, "policy": POLICY,
          **{k: single_label.new_issue() for k in keys}}


def read_annotations(root: str, h5_dirs=None, strict: bool = False,
                     bad: Optional[Dict[int, str]] = None):
  """(rows, classes, splits, clip ids, dense labels, report) of the dataset.

  bad: None (a row with an empty or unknown Category raises) or a dict that
  receives {row: error} for such rows. strict: also refuse rows with an
  empty or out-of-range interval (see `dense_labels`).
  """
  report = new_report()
  path = _find(["AVE_Annotations.txt", "Annotations.txt"], [root])
  if not path:
    raise FileNotFoundError(
        f"{root}: no AVE_Annotations.txt (nor Annotations.txt); --root must "
        "be the AVE folder holding it (layout: `python -m avjax.prepare ave "
        "--help`)")
  report["files"]["annotations"] = path
  lines = []
  rows = read_rows(path, report, lines)
  where = lambda i: f"{path}:{lines[i]}"
  classes = read_classes(root, rows, where, bad)
  for i in sorted(bad or ()):
    _add(report["bad_rows"], {"row": i, "line": lines[i], "error": bad[i]})
  h5_dirs = h5_dirs or [os.path.join(root, "h5"), os.path.join(root, "data"),
                        root]
  splits = read_splits(root, h5_dirs, rows, report)
  ids = clip_ids(rows, splits, report)
  dense = dense_labels(rows, classes, report, bad or (), strict, where)
  report.update(num_rows=len(rows), num_classes=len(classes) - 1,
                num_clips={s: len(v) for s, v in splits.items()})
  return rows, classes, splits, ids, dense, report


class AVEDataset:
  """AVE clips; `load(split, row)` reads one feature row of each h5 file."""

  def __init__(self, root: str, h5_dir: Optional[str] = None,
               visual_vec: str = "auto", noisy: str = "auto",
               labels_source: str = "auto", video_labels: str = "event",
               strict: bool = False):
    for arg, v, ok in (("visual_vec", visual_vec, ("auto", "yes", "no")),
                       ("noisy", noisy, ("auto", "yes", "no")),
                       ("labels_source", labels_source,
                        ("auto", "h5", "annotations")),
                       ("video_labels", video_labels, ("union", "event"))):
      if v not in ok:
        raise ValueError(f"{arg} must be one of {ok}, got {v!r}")
    self.name, self.root = "ave", root
    self.h5_dirs = [h5_dir] if h5_dir else [
        os.path.join(root, "h5"), os.path.join(root, "data"), root]
    self.bad = None if strict else {}  # {annotation row: error}
    try:
      (self.rows, self.classes, splits, self.ids, dense,
       self.report) = read_annotations(root, self.h5_dirs, strict, self.bad)
    except errors.AnnotationError as e:  # only with strict
      raise errors.AnnotationError(str(e) + STRICT.format(
          "the row's clip is skipped and reported")) from None
    self.bad = self.bad or {}
    names = ["audio", "visual_map"]
    if visual_vec == "yes" or (visual_vec == "auto" and _find(
        [FEATURES["visual_vec"][0]], self.h5_dirs)):
      names.append("visual_vec")
    self.features = tuple(FEATURES[n][1] for n in names)
    self.paths = {n: self._feature_file(FEATURES[n][0], FEATURES[n][1],
                                        len(self.rows)) for n in names}
    self.dense = self._labels(dense, labels_source)
    c = len(self.classes)
    if video_labels == "union":
      self.video = self.dense.any(1).astype(np.float32)
    else:
      event = self.dense[:, :, :c - 1].any(1)
      self.video = np.concatenate([event, ~event.any(1, keepdims=True)],
                                  1).astype(np.float32)
    self.splits = {s: splits[s] for s in SPLITS if s in splits}
    self._setup_noisy(noisy, names)
    self.label_keys = {s: ("labels", "seg_audio", "seg_visual")
                       for s in self.splits}
    self.report["summary"] = {k: v["count"] for k, v in self.report.items()
                              if isinstance(v, dict) and "count" in v}
    self.report["summary"]["background_only_clips"] = self.report["noisy"].get(
        "num_clips", 0)
    self.extra = {"source": "ave", "background_index": c - 1,
                  "video_labels": video_labels,
                  "files": {n: p for n, p in self.paths.items()}}
    self._open = {}

  def __getstate__(self):
    return {k: v for k, v in self.__dict__.items() if k != "_open"}

  def __setstate__(self, state):
    self.__dict__.update(state, _open={})

  def _feature_file(self, name: str, spec, n: int, noisy: bool = False):
    path = _find([name], self.h5_dirs)
    if not path:
      raise FileNotFoundError(f"{name} not found in {self.h5_dirs} (see "
                              "`python -m avjax.prepare ave --help`)")
    shape = _h5_shape(path)
    expected = (n, NUM_SEGMENTS) + spec.shape
    if shape != expected and not (noisy and shape[1:] == expected[1:]):
      raise ValueError(f"{path}: {H5_KEY!r} has shape {list(shape)}, "
                       f"expected {list(expected)} (rows = annotation rows)")
    return path

  def _labels(self, dense: np.ndarray, source: str) -> np.ndarray:
    """Cross-checks labels.h5 against the annotations; returns the choice."""
    import h5py  # pylint: disable=g-import-not-at-top
    path = _find(["labels.h5"], self.h5_dirs)
    if source == "h5" and not path:
      raise FileNotFoundError(f"labels.h5 not found in {self.h5_dirs}")
    if not path or source == "annotations":
      return dense
    with h5py.File(path, "r") as f:
      y = (np.asarray(f[H5_KEY][()]) > 0.5).astype(np.uint8)
    if y.shape != dense.shape:
      raise ValueError(f"{path}: shape {list(y.shape)}, expected "
                       f"{list(dense.shape)}")
    for i in np.flatnonzero((y != dense).any((1, 2))):
      _add(self.report["labels_h5_mismatch"], {
          "row": int(i), "video_id": self.rows[i].video_id,
          "labels_h5": [self.classes[k] for k in y[i].argmax(1)]})
    self.report["files"]["labels"] = path
    return y

  def _setup_noisy(self, noisy: str, names) -> None:
    """Adds split `train_noisy` (the background-only clips) from the files
    the release ships; `visual_vec` is pooled from the maps when the release
    has no vec file for them (see the module docstring)."""
    import h5py  # pylint: disable=g-import-not-at-top
    files = {"audio": "audio_feature_noisy.h5",
             "visual_map": "visual_feature_noisy.h5"}
    found = {n: _find([f], self.h5_dirs) for n, f in files.items()}
    missing = [files[n] for n, p in found.items() if not p]
    self.report["noisy"] = {"included": False, "missing": missing}
    self.report.setdefault("warnings", [])
    if noisy == "no":
      self.report["noisy"]["reason"] = "--noisy=no"
      return
    if missing:
      text = (f"background-only clips: {missing} not found in "
              f"{self.h5_dirs}; split {NOISY} is NOT written, and a weakly-"
              "supervised config (which trains on it) will refuse this "
              "directory")
      if noisy == "yes":
        raise FileNotFoundError(text + " (--noisy=yes)")
      self.report["warnings"].append(text)
      return
    self.noisy_paths = {n: self._feature_file(files[n], FEATURES[n][1], 0,
                                              noisy=True) for n in files}
    n = _h5_shape(self.noisy_paths["audio"])[0]
    if _h5_shape(self.noisy_paths["visual_map"])[0] != n:
      raise ValueError(f"{self.noisy_paths['visual_map']}: "
                       f"{_h5_shape(self.noisy_paths['visual_map'])[0]} rows,"
                       f" but {self.noisy_paths['audio']} has {n}")
    self.noisy_vec = None
    if "visual_vec" in names:
      vec = _find(["visual_feature_vec_noisy.h5"], self.h5_dirs)
      if vec:
        self.noisy_paths["visual_vec"] = self._feature_file(
            "visual_feature_vec_noisy.h5", FEATURES["visual_vec"][1], 0,
            noisy=True)
      self.noisy_vec = vec or "mean over the 7x7 regions of " + (
          self.noisy_paths["visual_map"])
    labels = np.zeros((n, len(self.classes)), np.float32)
    labels[:, -1] = 1
    path = _find(["labels_noisy.h5"], self.h5_dirs)
    if path:
      with h5py.File(path, "r") as f:
        labels = (np.asarray(f[H5_KEY][()]) > 0.5).astype(np.float32)
      if labels.shape != (n, len(self.classes)):
        raise ValueError(f"{path}: shape {list(labels.shape)}, expected "
                         f"{[n, len(self.classes)]}")
    self.noisy_labels = labels
    self.splits[NOISY] = list(range(n))
    self.report["noisy"] = {
        "included": True, "num_clips": n,
        "labels": path or "background (no labels_noisy.h5)",
        "files": dict(self.noisy_paths),
        **({"visual_vec": self.noisy_vec} if self.noisy_vec else {})}

  def _row(self, path: str, name: str, row: int) -> np.ndarray:
    import h5py  # pylint: disable=g-import-not-at-top
    if path not in self._open:
      self._open[path] = h5py.File(path, "r")
    x = np.asarray(self._open[path][H5_KEY][row], np.float32)
    return single_label.check_finite(x, f"{path} row {row}", name)

  def clip_id(self, split: str, key: int) -> str:
    return f"noisy_{key:03d}" if split == NOISY else self.ids[key]

  def load(self, split: str, key: int) -> Dict[str, np.ndarray]:
    noisy = split == NOISY
    if not noisy and key in self.bad:
      raise errors.AnnotationError(self.bad[key])
    paths = self.noisy_paths if noisy else self.paths
    clip = {"id": self.clip_id(split, key)}
    for name, path in paths.items():
      clip[name] = self._row(path, name, key)
    if noisy and self.noisy_vec and "visual_vec" not in clip:
      clip["visual_vec"] = clip["visual_map"].mean((1, 2))  # [10, 512]
    if noisy:
      seg = np.zeros((NUM_SEGMENTS, len(self.classes)), np.uint8)
      seg[:, -1] = 1
      clip["labels"] = self.noisy_labels[key]
    else:
      seg = self.dense[key]
      clip["labels"] = self.video[key]
    clip["seg_audio"] = clip["seg_visual"] = seg
    return clip

  def close(self) -> None:
    for f in self._open.values():
      f.close()
    self._open = {}


def add_arguments(parser) -> None:
  parser.add_argument("--h5_dir", default=None, help="folder of the .h5 files"
                      " (default: ROOT/h5, ROOT/data, ROOT)")
  parser.add_argument("--visual_vec", default="auto",
                      choices=("auto", "yes", "no"))
  parser.add_argument("--noisy", default="auto", choices=("auto", "yes", "no"),
                      help="write the 178 background-only clips (audio_/"
                      "visual_feature_noisy.h5, labels_noisy.h5) as split "
                      "train_noisy (auto: when present, with a warning when "
                      "not; yes: refuse without them)")
  parser.add_argument("--labels_source", default="auto",
                      choices=("auto", "h5", "annotations"))
  parser.add_argument("--video_labels", default="event",
                      choices=("event", "union"),
                      help="video-level labels: the event class only (event,"
                      " the reference's mil_labels) or every segment's class"
                      " (union: event + background for events under 10 s)")


def from_args(args) -> AVEDataset:
  return AVEDataset(args.root, args.h5_dir, args.visual_vec, args.noisy,
                    args.labels_source, args.video_labels,
                    getattr(args, "strict", False))

"""Readers for the LLP (AVVP benchmark) annotation files as published.

Files (tab-separated, one header row; see `shared/data/README.md`):

* `AVVP_train.csv`, `AVVP_val_pd.csv`, `AVVP_test_pd.csv`: columns `filename`
  and `event_labels` (comma-separated class names): weak, video-level labels.
* `AVVP_eval_audio.csv`, `AVVP_eval_visual.csv`: columns `filename`, `onset`,
  `offset`, `event_labels` (ONE class); integer seconds, the event covers the
  segments `onset .. offset - 1`.

`read_dense` builds per-segment ground truth exactly as the HAN reference
evaluation does (`GT[onset:offset, c] = 1` for the rows of each clip of the
split) and reports every irregularity of the published files instead of
crashing or hiding it. Policy:

* `unmatched_rows`: eval rows whose filename is in neither `AVVP_val_pd.csv`
  nor `AVVP_test_pd.csv` (e.g. a missing leading character): ignored, as in
  the HAN evaluation; `similar` maps such filenames to the split filename
  they probably mean, where one is found.
* `empty_interval_rows`: `offset <= onset`: skipped (adds no segment).
* `clipped_rows`: onset < 0 or offset > T: the interval is clipped to [0, T].
* `duplicate_rows`: a row repeated verbatim: harmless (labels are a union).
* `clips_without_audio_rows` / `clips_without_visual_rows`: clips of the split
  with no row at all in that file: their ground truth is all False.
* `weak_dense_mismatch`: clips whose weak labels differ from the union of the
  classes present in the dense ground truth (`count_if_empty_rows_kept` counts
  the same with the labels of empty-interval rows included).
* `duplicate_weak_labels`: a class listed twice in one weak-label row.
* Unknown class names (and an empty class list) raise an AnnotationError
  (a ValueError) naming the file, line and name; with `bad_rows` (a list)
  such rows are recorded there instead (`avjax.data.readers.llp` skips their clips).
* `strict=True` refuses (ValueError naming file and line) the rows of the
  split's clips with an empty or out-of-range interval instead of applying
  the policy above.

Row-level issues are counted over the whole eval files (`count`, `by_file`)
and over the rows of the split's clips (`count_in_split`); clip-level issues
over the split. Every issue lists at most `MAX_EXAMPLES` examples.
"""

import collections
import dataclasses
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from avjax import errors
from avjax.data import classes as classes_lib

NUM_SEGMENTS = 10
MAX_EXAMPLES = 10
SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv",
               "test": "AVVP_test_pd.csv"}
DENSE_SPLITS = ("val", "test")
WEAK_COLUMNS = ("filename", "event_labels")
EVAL_COLUMNS = ("filename", "onset", "offset", "event_labels")
ROW_ISSUES = ("unmatched_rows", "empty_interval_rows", "clipped_rows",
              "duplicate_rows")
CLIP_ISSUES = ("clips_without_audio_rows", "clips_without_visual_rows",
               "weak_dense_mismatch", "duplicate_weak_labels")


@dataclasses.dataclass(frozen=True)
class EvalRow:
  """One row of an eval (dense) annotation file; `line` is 1-based."""
  file: str
  line: int
  filename: str
  onset: int
  offset: int
  event_label: str

  def to_json(self) -> Dict:
    return dataclasses.asdict(self)


def _read_table(path: str, columns: Sequence[str]) -> Iterator[Tuple[int,
                                                                    Dict]]:
  """Yields (line number, {column: text}) for every non-blank data line."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"LLP annotation file not found: {path}")
  with open(path, encoding="utf-8") as f:
    first = f.readline()
    if not first.strip():
      raise ValueError(f"{path}: empty file; expected a header line with "
                       f"the tab-separated columns {list(columns)}, then one "
                       "row per line")
    header = first.rstrip("\r\n").split("\t")
    missing = [c for c in columns if c not in header]
    if missing:
      raise ValueError(f"{path}:1: header {header} lacks column(s) {missing}; "
                       f"expected tab-separated columns {list(columns)}")
    for line_no, line in enumerate(f, start=2):
      line = line.rstrip("\r\n")
      if not line.strip():
        continue
      fields = line.split("\t")
      if len(fields) != len(header):
        raise ValueError(f"{path}:{line_no}: expected {len(header)} "
                         f"tab-separated fields {header}, got {len(fields)}")
      yield line_no, dict(zip(header, fields))


def _class_names(text: str, where: str, classes) -> List[str]:
  """The class names of an `event_labels` field; AnnotationError if empty or
  unknown."""
  if not text.strip():
    raise errors.AnnotationError(f"{where}: empty event_labels; a clip needs "
                                 "at least one class")
  names = [n.strip() for n in text.split(",")]
  for name in names:
    try:
      classes_lib.index_of(tuple(classes), name, where=where)
    except ValueError as e:
      raise errors.AnnotationError(str(e)) from None
  return names


def _bad_row(bad_rows, e, path, line, row):
  """Records a bad row in `bad_rows`, or raises if that is None."""
  if bad_rows is None:
    raise e
  bad_rows.append({"file": path, "line": line, "filename": row["filename"],
                   "error": str(e)})


def read_weak(path: str, classes=classes_lib.LLP_CLASSES,
              bad_rows: Optional[List[Dict]] = None
              ) -> List[Tuple[str, List[str]]]:
  """Reads a weak-label file: [(filename, [class names as listed])].

  A row with an unknown or empty class list raises an AnnotationError, or,
  with `bad_rows` (a list), is appended there as {file, line, filename,
  error} and returned with no class names.
  """
  out = []
  for line, row in _read_table(path, WEAK_COLUMNS):
    try:
      names = _class_names(row["event_labels"], f"{path}:{line}", classes)
    except errors.AnnotationError as e:
      _bad_row(bad_rows, e, path, line, row)
      names = []
    out.append((row["filename"], names))
  return out


def read_eval(path: str, classes=classes_lib.LLP_CLASSES,
              bad_rows: Optional[List[Dict]] = None) -> List[EvalRow]:
  """Reads an eval file (`AVVP_eval_{audio,visual}.csv`) as published.

  A row with an unknown or empty class raises an AnnotationError, or, with
  `bad_rows` (a list), is left out and appended there (see `read_weak`).
  """
  rows = []
  for line, row in _read_table(path, EVAL_COLUMNS):
    where = f"{path}:{line}"
    try:
      onset, offset = int(row["onset"]), int(row["offset"])
    except ValueError:
      raise ValueError(f"{where}: onset/offset must be integer seconds, got "
                       f"{row['onset']!r}, {row['offset']!r}") from None
    label = row["event_labels"].strip()
    try:
      if "," in label:
        raise errors.AnnotationError(f"{where}: event_labels {label!r} holds "
                                     "several classes; eval rows have one")
      _class_names(label, where, classes)
    except errors.AnnotationError as e:
      _bad_row(bad_rows, e, path, line, row)
      continue
    rows.append(EvalRow(os.path.basename(path), line, row["filename"], onset,
                        offset, label))
  return rows


def _new_issue(**extra) -> Dict:
  return dict(count=0, **extra, examples=[])


def _add(issue: Dict, example) -> None:
  issue["count"] += 1
  if len(issue["examples"]) < MAX_EXAMPLES:
    issue["examples"].append(example)


class _Known:
  """Filenames of the dense splits, with a lookup for near misses."""

  def __init__(self, names: Sequence[str]):
    self.names = set(names)
    self.hints = {}
    by_id = collections.defaultdict(list)
    for name in names:
      by_id[name[:11]].append(name)
      for k in (1, 2):  # the unmatched name lost leading characters
        self.hints.setdefault(name[k:], name)
    self.hints.update((i, g[0]) for i, g in by_id.items() if len(g) == 1)

  def __contains__(self, filename: str) -> bool:
    return filename in self.names

  def similar(self, filename: str) -> Optional[str]:
    """The known filename an unknown `filename` probably means, or None."""
    for k in (1, 2):  # extra leading characters
      if filename[k:] in self.names:
        return filename[k:]
    return self.hints.get(filename) or self.hints.get(filename[:11])


def _new_report(split, ids, num_segments, files) -> Dict:
  report = {"split": split, "num_clips": len(ids),
            "num_segments": num_segments, "files": files}
  for key in ROW_ISSUES:
    report[key] = _new_issue(count_in_split=0, by_file={})
  for key in CLIP_ISSUES:
    report[key] = _new_issue()
  report["weak_dense_mismatch"]["count_if_empty_rows_kept"] = 0
  report["unmatched_rows"]["similar"] = {}
  return report


def _row_issues(row: EvalRow, known, seen, num_segments) -> List[str]:
  """Names of the row-level issues of one eval row."""
  issues = []
  if row.filename not in known:
    issues.append("unmatched_rows")
  if row.offset <= row.onset:
    issues.append("empty_interval_rows")
  elif row.onset < 0 or row.offset > num_segments:
    issues.append("clipped_rows")
  key = (row.filename, row.onset, row.offset, row.event_label)
  if key in seen:
    issues.append("duplicate_rows")
  seen.add(key)
  return issues


STRICT_ROW_ISSUES = {
    "empty_interval_rows": "an empty interval (offset <= onset), which the "
                           "default policy skips",
    "clipped_rows": "an interval outside [0, {t}], which the default policy "
                    "clips"}


def _fill(modality, rows, index, known, report, classes,
          strict: bool = False) -> Tuple:
  """Dense `[N, T, C]` ground truth of one modality; records row issues.

  Returns:
    (gt, clips with >= 1 row, {clip index: set of labels of all its rows}).
  """
  num_segments = report["num_segments"]
  gt = np.zeros((len(index), num_segments, len(classes)), bool)
  has_rows, raw_labels = set(), collections.defaultdict(set)
  seen = set()
  for row in rows:
    i = index.get(row.filename)
    issues = _row_issues(row, known, seen, num_segments)
    for key in STRICT_ROW_ISSUES:
      if strict and i is not None and key in issues:
        why = STRICT_ROW_ISSUES[key].format(t=num_segments)
        raise ValueError(
            f"{report['files'][modality]}:{row.line}: --strict: clip "
            f"{row.filename!r} has onset {row.onset}, offset {row.offset}: "
            f"{why}; fix the row, or convert without --strict")
    for key in issues:
      issue = report[key]
      issue["by_file"][modality] = issue["by_file"].get(modality, 0) + 1
      issue["count_in_split"] += i is not None
      _add(issue, row.to_json())
      if key == "unmatched_rows" and len(issue["similar"]) < MAX_EXAMPLES:
        similar = known.similar(row.filename)
        if similar:
          issue["similar"][row.filename] = similar
    if i is None:
      continue
    has_rows.add(i)
    raw_labels[i].add(row.event_label)
    if row.offset > row.onset:
      onset, offset = max(row.onset, 0), min(row.offset, num_segments)
      gt[i, onset:offset, classes.index(row.event_label)] = True
  return gt, has_rows, raw_labels


def _clip_issues(report, weak, filled, classes) -> None:
  """Records the clip-level issues of the split."""
  (gt_a, has_a, raw_a), (gt_v, has_v, raw_v) = filled
  present = (gt_a | gt_v).any(1)  # [N, C]
  mismatch = report["weak_dense_mismatch"]
  for i, (filename, names) in enumerate(weak):
    if i not in has_a:
      _add(report["clips_without_audio_rows"], filename)
    if i not in has_v:
      _add(report["clips_without_visual_rows"], filename)
    if len(set(names)) != len(names):
      _add(report["duplicate_weak_labels"], {"filename": filename,
                                             "event_labels": names})
    dense = {classes[c] for c in np.flatnonzero(present[i])}
    if set(names) != dense:
      _add(mismatch, {"filename": filename, "weak": sorted(set(names)),
                      "dense": sorted(dense)})
    mismatch["count_if_empty_rows_kept"] += set(names) != (raw_a[i] | raw_v[i])


def read_dense(directory: str, split: str,
               eval_audio: str = "AVVP_eval_audio.csv",
               eval_visual: str = "AVVP_eval_visual.csv",
               num_segments: int = NUM_SEGMENTS,
               classes=classes_lib.LLP_CLASSES,
               bad_rows: Optional[List[Dict]] = None, strict: bool = False):
  """Dense per-segment ground truth of the val or test split.

  Args:
    directory: folder holding the LLP annotation files.
    split: "val" or "test"; its clips (and their order) come from
      `AVVP_{split}_pd.csv`.
    eval_audio, eval_visual: eval file names (or paths) inside `directory`.
    num_segments: T, segments per clip.
    classes: class names in index order.
    bad_rows: None (rows with an unknown or empty class list raise an
      AnnotationError) or a list that collects them (see `read_weak`); rows
      of other splits' files are not collected.
    strict: refuse the split's rows with an empty or out-of-range interval.

  Returns:
    (ids, gt_audio, gt_visual, report): the split's filenames in file order,
    bool `[N, T, C]` ground truth per modality, and the JSON-serialisable
    irregularity report described in the module docstring.
  """
  if split not in DENSE_SPLITS:
    raise ValueError(f"split must be one of {DENSE_SPLITS}, got {split!r}")
  classes = tuple(classes)
  weak_path = os.path.join(directory, SPLIT_FILES[split])
  weak = read_weak(weak_path, classes, bad_rows)
  ids = [filename for filename, _ in weak]
  dupes = [f for f, n in collections.Counter(ids).items() if n > 1]
  if dupes:
    raise ValueError(f"{weak_path} lists clips more than once: "
                     f"{dupes[:MAX_EXAMPLES]}; keep one row per clip")
  known = list(ids)
  for other in DENSE_SPLITS:
    path = os.path.join(directory, SPLIT_FILES[other])
    if other != split and os.path.isfile(path):
      known += [filename for filename, _ in read_weak(
          path, classes, None if bad_rows is None else [])]
  known = _Known(known)
  paths = {"audio": os.path.join(directory, eval_audio),
           "visual": os.path.join(directory, eval_visual)}
  report = _new_report(split, ids, num_segments,
                       {"weak": os.path.join(directory, SPLIT_FILES[split]),
                        **paths})
  index = {f: i for i, f in enumerate(ids)}
  eval_bad = None if bad_rows is None else []
  filled = [_fill(m, read_eval(paths[m], classes, eval_bad), index, known,
                  report, classes, strict) for m in ("audio", "visual")]
  if bad_rows is not None:  # only the rows of this split's clips
    bad_rows += [r for r in eval_bad if r["filename"] in index]
  _clip_issues(report, weak, filled, classes)
  return ids, filled[0][0], filled[1][0], report


def summary_lines(report: Dict) -> List[str]:
  """One human-readable line per non-empty issue of a `read_dense` report."""
  lines = []
  for key in ROW_ISSUES + CLIP_ISSUES:
    issue = report[key]
    if not issue["count"]:
      continue
    extra = ""
    if "count_in_split" in issue:
      extra = (f" ({issue['count_in_split']} of them for {report['split']} "
               f"clips; by file {issue['by_file']})")
    examples = [e if isinstance(e, str) else e.get("filename")
                for e in issue["examples"][:3]]
    if issue.get("similar"):
      extra += f"; probably meant: {issue['similar']}"
    lines.append(f"{key}: {issue['count']}{extra}; e.g. {examples}")
  return lines

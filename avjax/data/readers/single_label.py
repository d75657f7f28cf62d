"""Single-label datasets (VGGSound, Kinetics-Sounds, AVE as classification).

Layout (`python -m avjax.prepare single_label --root=DIR ...`):

  DIR/clips.csv          header `id,label,split` (csv quoting allowed, so class
                         names may contain commas); one row per clip.
  DIR/classes.txt        optional: class names, one a line, in index order
                         (default: the sorted distinct labels of clips.csv).
  DIR/features.json      optional: the feature streams (see `parse_streams`);
                         default: the LLP streams `feats/vggish` [T, 128],
                         `feats/res152` [8T, 2048],
                         `feats/r2plus1d_18` [T, 512].
  DIR/<folder>/<id>.npy  one float array per clip and stream.

Each clip gets one-hot `labels`. Policy: a row repeating an (id, split)
already seen is ignored and reported (`duplicate_rows`); an id listed in
several splits is kept in each and reported (`ids_in_several_splits`); a row
with an unknown or empty class name is reported (`bad_rows`) and its clip
skipped (reason bad_annotation; with --strict: an error naming file and
line).

This module also holds the per-clip `.npy` stream layer shared by the folder
readers (`llp`, `veba`): `Stream`, `parse_streams`, `load_npy`, `read_csv`.
"""

import collections
import csv
import dataclasses
import json
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from avjax import errors
from avjax.data import schema

MAX_EXAMPLES = 10
STREAMS_FILE = "features.json"


@dataclasses.dataclass(frozen=True)
class Stream:
  """A feature stream stored as `<root>/<folder>/<stem>.npy` per clip."""
  spec: schema.FeatureSpec
  folder: str

  def to_json(self) -> Dict:
    return dict(self.spec.to_json(), folder=self.folder)

  @classmethod
  def from_json(cls, d: Dict) -> "Stream":
    return cls(schema.FeatureSpec.from_json(d), d["folder"])


LLP_STREAMS = (
    Stream(schema.FeatureSpec("audio", 1, (128,)), "feats/vggish"),
    Stream(schema.FeatureSpec("visual", 8, (2048,)), "feats/res152"),
    Stream(schema.FeatureSpec("motion", 1, (512,)), "feats/r2plus1d_18"),
)


def parse_streams(text: str) -> Tuple[Stream, ...]:
  """Parses `name=folder:F:d1xd2,...`, e.g. `audio=feats/vggish:1:128`."""
  streams = []
  for item in filter(None, (s.strip() for s in text.split(","))):
    try:
      name, rest = item.split("=", 1)
      folder, fps, shape = rest.rsplit(":", 2)
      spec = schema.FeatureSpec(name.strip(), int(fps),
                                tuple(int(d) for d in shape.split("x")))
    except ValueError:
      raise ValueError(f"bad stream {item!r}: expected name=folder:F:shape, "
                       "e.g. visual=feats/res152:8:2048 or "
                       "visual_map=maps:1:7x7x512") from None
    streams.append(Stream(spec, folder.strip()))
  if not streams:
    raise ValueError(f"no stream in {text!r}")
  return tuple(streams)


def resolve_streams(root: str, text: Optional[str] = None,
                    default=LLP_STREAMS) -> Tuple[Stream, ...]:
  """Streams from `text`, else `<root>/features.json`, else `default`."""
  if text:
    return parse_streams(text)
  path = os.path.join(root, STREAMS_FILE)
  if os.path.isfile(path):
    with open(path, encoding="utf-8-sig") as f:
      return tuple(Stream.from_json(d) for d in json.load(f))
  return tuple(default)


def write_streams(root: str, streams: Sequence[Stream]) -> None:
  with open(os.path.join(root, STREAMS_FILE), "w") as f:
    json.dump([s.to_json() for s in streams], f, indent=1)


def load_npy(path: str, spec: schema.FeatureSpec,
             num_segments: Optional[int] = None) -> np.ndarray:
  """Loads one feature file as float32 [T * F, *shape], checked.

  Raises:
    FileNotFoundError or ValueError naming the file and the field.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: feature {spec.name!r}: file not found")
  try:
    x = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise ValueError(f"{path}: feature {spec.name!r}: unreadable .npy ({e})"
                     ) from None
  return check_array(x, spec, path, num_segments)


def check_array(x, spec: schema.FeatureSpec, where: str,
                num_segments: Optional[int] = None) -> np.ndarray:
  """x as float32 [T * F, *shape]; ValueError naming `where` and the field."""
  field = f"feature {spec.name!r}"
  if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
    raise ValueError(f"{where}: {field}: expected a float array, got "
                     f"{getattr(x, 'dtype', type(x))}")
  f = spec.frames_per_segment
  if num_segments is not None:
    rows = str(num_segments * f)
  else:
    rows = "T" if f == 1 else f"T*{f}"
  bad_rows = (x.ndim >= 1 and (x.shape[0] % f or not x.shape[0] or (
      num_segments is not None and x.shape[0] != num_segments * f)))
  if x.ndim != 1 + len(spec.shape) or x.shape[1:] != spec.shape or bad_rows:
    raise ValueError(f"{where}: {field} has shape {list(x.shape)}, expected "
                     f"[{rows}, {', '.join(map(str, spec.shape))}]")
  return check_finite(x.astype(np.float32, copy=False), where, spec.name)


def check_finite(x: np.ndarray, where: str, name: str) -> np.ndarray:
  """Returns x; raises a ValueError naming `where` and the first NaN/Inf."""
  if not np.all(np.isfinite(x)):
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
    raise ValueError(f"{where}: feature {name!r} has a non-finite value "
                     f"({x[bad]}) at index {bad}")
  return x


def check_stream_folders(root: str, streams: Sequence[Stream]) -> None:
  """Refuses a stream folder (or a folder above it) that is a file: every
  clip would be skipped as missing_file."""
  for s in streams:
    parts = os.path.normpath(s.folder).split(os.sep)
    for k in range(1, len(parts) + 1):
      path = os.path.join(root, *parts[:k])
      if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UserError(
            f"{path} is a file, where feature {s.spec.name!r} needs a folder: "
            f"expected {os.path.join(root, s.folder, '<id>.npy')} (see "
            "`python -m avjax.prepare <dataset> --help` for the layout)")


def load_streams(root: str, streams: Sequence[Stream], stem: str,
                 num_segments: Optional[int] = None) -> Dict[str, np.ndarray]:
  return {s.spec.name: load_npy(os.path.join(root, s.folder, stem + ".npy"),
                                s.spec, num_segments) for s in streams}


def read_csv(path: str, columns: Sequence[str]
             ) -> Iterator[Tuple[int, Dict[str, str]]]:
  """Yields (line number, row) of a comma-separated file with a header.

  Accepts a UTF-8 BOM and CRLF line ends; blank lines are skipped.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"file not found: {path}")
  with open(path, encoding="utf-8-sig", newline="") as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in columns if c not in header]
    if missing:
      raise ValueError(f"{path}:1: header {header} lacks column(s) {missing};"
                       f" expected columns {list(columns)}")
    for fields in reader:
      if not any(x.strip() for x in fields):
        continue
      if len(fields) != len(header):
        raise ValueError(f"{path}:{reader.line_num}: expected {len(header)} "
                         f"fields {header}, got {len(fields)}")
      yield reader.line_num, {h: x.strip() for h, x in zip(header, fields)}


def read_lines(path: str) -> List[str]:
  """Non-blank stripped lines of a text file (class lists)."""
  with open(path, encoding="utf-8-sig") as f:
    return [line.strip() for line in f if line.strip()]


def class_index(classes: Sequence[str], name: str, where: str) -> int:
  try:
    return classes.index(name)
  except ValueError:
    raise ValueError(f"{where}: unknown class {name!r}; expected one of the "
                     f"{len(classes)} classes (first: {list(classes[:5])})"
                     ) from None


def new_issue() -> Dict:
  return {"count": 0, "examples": []}


def add_issue(issue: Dict, example) -> None:
  issue["count"] += 1
  if len(issue["examples"]) < MAX_EXAMPLES:
    issue["examples"].append(example)


class SingleLabelDataset:
  """Reader for the single-label layout above (see `avjax.prepare`)."""

  def __init__(self, root: str, csv_path: Optional[str] = None,
               classes_path: Optional[str] = None,
               streams: Optional[str] = None, name: str = "single_label",
               strict: bool = False):
    self.root, self.name = root, name
    csv_path = csv_path or os.path.join(root, "clips.csv")
    rows = list(read_csv(csv_path, ("id", "label", "split")))
    classes_path = classes_path or os.path.join(root, "classes.txt")
    if os.path.isfile(classes_path):
      self.classes = tuple(read_lines(classes_path))
    else:
      self.classes = tuple(sorted({r["label"] for _, r in rows
                                   if r["label"]}))
    self.streams = resolve_streams(root, streams)
    self.features = tuple(s.spec for s in self.streams)
    check_stream_folders(root, self.streams)
    self.splits: Dict[str, List[Tuple[str, int]]] = collections.defaultdict(
        list)
    self.report = {"csv": csv_path, "duplicate_rows": new_issue(),
                   "ids_in_several_splits": new_issue(),
                   "bad_rows": new_issue()}
    self.bad = {}  # {(id, label index -1): error}
    seen, splits_of = set(), collections.defaultdict(set)
    for line, r in rows:
      where = f"{csv_path}:{line}"
      try:
        if not r["label"]:
          raise ValueError(f"{where}: empty label")
        label = class_index(self.classes, r["label"], where)
      except ValueError as e:
        if strict:
          raise errors.AnnotationError(
              f"{e} [--strict: without it the clip is skipped and reported]"
              ) from None
        add_issue(self.report["bad_rows"], {"line": line, **r})
        label = -1
        self.bad[(r["id"], label)] = str(e)
      if (r["id"], r["split"]) in seen:
        add_issue(self.report["duplicate_rows"], {"line": line, **r})
        continue
      seen.add((r["id"], r["split"]))
      splits_of[r["id"]].add(r["split"])
      self.splits[r["split"]].append((r["id"], label))
    for cid, s in splits_of.items():
      if len(s) > 1:
        add_issue(self.report["ids_in_several_splits"],
                  {"id": cid, "splits": sorted(s)})
    self.splits = dict(self.splits)
    self.label_keys = {s: ("labels",) for s in self.splits}
    self.extra = {"source": "single_label", "csv": csv_path,
                  "streams": [s.to_json() for s in self.streams]}

  def clip_id(self, split: str, key) -> str:
    del split
    return key[0]

  def load(self, split: str, key) -> Dict[str, np.ndarray]:
    del split
    cid, label = key
    if key in self.bad:
      raise errors.AnnotationError(self.bad[key])
    clip = {"id": cid, **load_streams(self.root, self.streams, cid)}
    clip["labels"] = np.eye(len(self.classes), dtype=np.float32)[label]
    return clip


def write_single_label(root: str, classes: Sequence[str],
                       clips: Sequence[Dict],
                       streams: Sequence[Stream] = LLP_STREAMS) -> None:
  """Writes clips {id, label (name), split, <stream name>: array} as above."""
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "classes.txt"), "w") as f:
    f.write("".join(c + "\n" for c in classes))
  write_streams(root, streams)
  with open(os.path.join(root, "clips.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "label", "split"])
    for clip in clips:
      w.writerow([clip["id"], clip["label"], clip["split"]])
      for s in streams:
        os.makedirs(os.path.join(root, s.folder), exist_ok=True)
        np.save(os.path.join(root, s.folder, clip["id"] + ".npy"),
                np.asarray(clip[s.spec.name], np.float32))


def add_arguments(parser) -> None:
  parser.add_argument("--csv", default=None, help="id,label,split file "
                      "(default: ROOT/clips.csv)")
  parser.add_argument("--classes", default=None, help="class list (default: "
                      "ROOT/classes.txt, else the sorted labels of the csv)")
  parser.add_argument("--streams", default=None, help="override features.json"
                      ": name=folder:F:shape,... e.g. audio=feats/vggish:1:128")
  parser.add_argument("--name", default="single_label",
                      help="dataset name in dataset_info.json")


def from_args(args) -> SingleLabelDataset:
  return SingleLabelDataset(args.root, args.csv, args.classes, args.streams,
                            args.name, getattr(args, "strict", False))

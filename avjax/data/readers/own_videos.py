"""Your own clips: a folder of per-clip `.npz` feature files.

Layout (`python -m avjax.prepare own --root=DIR [--labels=CSV]
[--classes=FILE|llp]`):

  DIR/<id>.npz   arrays `audio` [T, Da], `visual` [T*F, Dv], optional
                 `motion` [T, Dm]; any T >= 1 per clip (e.g. from
                 avjax's own feature extraction or any other tool)
  CSV            optional, header `id,labels[,split]`: `labels` holds
                 `;`-separated class names (may be empty)
  FILE           optional class list, one name a line; `llp` means the 25
                 LLP classes; default: the sorted class names of the CSV

Da, Dv, Dm, F and whether `motion` is present come from the first clip in
sorted id order (F = visual rows / audio rows, or --frames_per_segment);
a clip that does not match them is skipped with the reason. Split: the CSV's
`split` column when present, else --split (default "test"). Labels: `labels`
= multi-hot of the clip's CSV row. Policy: clips without a CSV row get
all-zero labels (reported: `unlabeled_clips`); CSV rows without a `.npz`
are skipped as missing_file; a CSV row with an unknown class name is
reported (`bad_rows`) and its clip skipped (reason bad_annotation; with
--strict: an error naming file and line).
"""

import collections
import os
from typing import Dict, Optional

import numpy as np

from avjax import errors
from avjax.data import classes as classes_lib
from avjax.data import schema
from avjax.data.readers import single_label

STREAMS = ("audio", "visual", "motion")


def _load_npz(path: str) -> Dict[str, np.ndarray]:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: file not found")
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files if k in STREAMS}
  except (ValueError, OSError, EOFError) as e:
    raise ValueError(f"{path}: unreadable .npz ({e})") from None


def infer_features(path: str, frames_per_segment: Optional[int] = None):
  """FeatureSpecs of the streams in one clip file."""
  arrays = _load_npz(path)
  for k in ("audio", "visual"):
    if k not in arrays or arrays[k].ndim < 2 or not len(arrays[k]):
      raise ValueError(f"{path}: needs arrays 'audio' [T, Da] and 'visual' "
                       f"[T*F, Dv]; has {sorted(arrays)}")
  t = len(arrays["audio"])
  f = frames_per_segment or len(arrays["visual"]) // t
  if f < 1 or len(arrays["visual"]) != t * f:
    raise ValueError(f"{path}: 'visual' has {len(arrays['visual'])} rows, "
                     f"not a multiple F >= 1 of the {t} audio rows")
  return tuple(schema.FeatureSpec(k, f if k == "visual" else 1,
                                  tuple(arrays[k].shape[1:]))
               for k in STREAMS if k in arrays)


class OwnVideosDataset:
  """Reader of the layout above."""

  def __init__(self, root: str, labels_csv: Optional[str] = None,
               classes: Optional[str] = None, split: str = "test",
               frames_per_segment: Optional[int] = None, name: str = "own",
               strict: bool = False):
    self.root, self.name = root, name
    if not os.path.isdir(root):
      raise FileNotFoundError(f"clip folder not found: {root}")
    stems = sorted(n[:-4] for n in os.listdir(root) if n.endswith(".npz"))
    rows = []
    if labels_csv:
      rows = list(single_label.read_csv(labels_csv, ("id", "labels")))
    self.classes = self._classes(classes, rows)
    self.labels, splits = {}, collections.defaultdict(list)
    self.bad, bad_rows = {}, single_label.new_issue()
    for line, r in rows:
      names = [n.strip() for n in r["labels"].split(";") if n.strip()]
      try:
        idx = [single_label.class_index(self.classes, n,
                                        f"{labels_csv}:{line}") for n in names]
      except ValueError as e:
        if strict:
          raise errors.AnnotationError(
              f"{e} [--strict: without it the clip is skipped and reported]"
              ) from None
        single_label.add_issue(bad_rows, {"line": line, **r})
        self.bad.setdefault(r["id"], str(e))
        idx = []
      if r["id"] not in self.labels:
        self.labels[r["id"]] = idx
        splits[r.get("split") or split].append(r["id"])
    unlabeled = single_label.new_issue()
    for stem in stems:
      if stem not in self.labels:
        single_label.add_issue(unlabeled, stem)
        splits[split].append(stem)
    if not stems:
      raise ValueError(f"no .npz clip in {root}")
    self.features = infer_features(os.path.join(root, stems[0] + ".npz"),
                                   frames_per_segment)
    self.splits = dict(splits)
    self.label_keys = {s: ("labels",) for s in self.splits}
    self.report = {"num_clips": {s: len(v) for s, v in self.splits.items()},
                   "unlabeled_clips": unlabeled, "bad_rows": bad_rows,
                   "labels_csv": labels_csv,
                   "features_from": stems[0] + ".npz"}
    self.extra = {"source": "own_videos", "labels_csv": labels_csv}

  @staticmethod
  def _classes(classes: Optional[str], rows):
    if classes == "llp":
      return classes_lib.LLP_CLASSES
    if classes:
      return tuple(single_label.read_lines(classes))
    if not rows:
      raise ValueError("own videos need --classes=FILE (or llp) or a --labels"
                       " csv to infer the classes from")
    return tuple(sorted({n.strip() for _, r in rows
                         for n in r["labels"].split(";") if n.strip()}))

  def clip_id(self, split: str, key: str) -> str:
    del split
    return key

  def load(self, split: str, key: str) -> Dict[str, np.ndarray]:
    del split
    if key in self.bad:
      raise errors.AnnotationError(self.bad[key])
    path = os.path.join(self.root, key + ".npz")
    arrays = _load_npz(path)
    clip = {"id": key}
    for spec in self.features:
      if spec.name not in arrays:
        raise ValueError(f"{path}: feature {spec.name!r}: missing array")
      clip[spec.name] = single_label.check_array(arrays[spec.name], spec, path)
    clip["labels"] = np.zeros(len(self.classes), np.float32)
    clip["labels"][self.labels.get(key, [])] = 1
    return clip


def add_arguments(parser) -> None:
  parser.add_argument("--labels", default=None, help="id,labels[,split] csv")
  parser.add_argument("--classes", default=None, help="class list file, or "
                      "'llp'")
  parser.add_argument("--split", default="test", help="split of clips "
                      "without a split column")
  parser.add_argument("--frames_per_segment", type=int, default=None)
  parser.add_argument("--name", default="own")


def from_args(args) -> OwnVideosDataset:
  return OwnVideosDataset(args.root, args.labels, args.classes, args.split,
                          args.frames_per_segment, args.name,
                          getattr(args, "strict", False))

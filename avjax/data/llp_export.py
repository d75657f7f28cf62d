"""Writes an avjax dataset in LLP's published layout (the inverse of
`avjax.data.readers.llp` + `python -m avjax.prepare llp`).

  export(data_dir, root)   # data_dir: any dataset in the TFRecord contract

writes, with the names and formats of the public release (`avjax.data.readers.llp`):

  ROOT/feats/vggish/<id>.npy       float32 [10, 128]   <- `audio`
  ROOT/feats/res152/<id>.npy       float32 [80, 2048]  <- `visual` (a stored
                                   per-segment mean, F=1, is repeated 8 times:
                                   the same HAN inputs)
  ROOT/feats/r2plus1d_18/<id>.npy  float32 [10, 512]   <- `motion`
  ROOT/AVVP_train.csv, AVVP_val_pd.csv, AVVP_test_pd.csv
                                   `filename<TAB>event_labels`: weak labels
  ROOT/AVVP_eval_audio.csv, AVVP_eval_visual.csv
                                   `filename<TAB>onset<TAB>offset<TAB>
                                   event_labels`: one row per run of a class in
                                   `seg_audio`/`seg_visual` (offset exclusive),
                                   val and test clips together
  ROOT/LLP_categories.txt          class order
  ROOT/AVVP_train_audio_visual.csv `filename<TAB>audio_labels<TAB>
                                   visual_labels`: per-modality weak truth of
                                   the train clips, when the dataset has it
                                   (not part of the release; avjax.prepare
                                   ignores it)
  ROOT/export_ids.csv              `filename<TAB>split<TAB>source_id`
  ROOT/export.json                 summary; written last (the done marker)

`filename` is an 11-character id + `_<start>_<end>`. The source ids are kept
when the dataset came from LLP and they have that form; otherwise clip k (in
reading order) of split s is renamed `<s[:2]><k:09d>_0_10`. The official HAN
code hardcodes LLP's 25 class names, 10 segments and these feature shapes, so
anything else is refused with the reason.
"""

import json
import os
import re
import shutil
from typing import Dict, List, Optional, Sequence

import numpy as np

from avjax.data import classes as classes_lib
from avjax.data.readers import llp
from avjax.data.readers import llp_annotations as annotations
from avjax.data import tfrecord

SPLITS = llp.SPLITS
MODALITY_FILE = "AVVP_train_audio_visual.csv"
IDS_FILE = "export_ids.csv"
SUMMARY_FILE = "export.json"
EVAL_FILES = {"seg_audio": "AVVP_eval_audio.csv",
              "seg_visual": "AVVP_eval_visual.csv"}
_LLP_FILENAME = re.compile(r"^[A-Za-z0-9_-]{11}_\d+_\d+$")


def check_info(info: dict, splits: Optional[Dict[str, str]] = None) -> None:
  """Raises ValueError unless the official HAN code can read the dataset
  (`splits`: {LLP split: dataset split}, default the same names)."""
  splits = splits or {s: s for s in SPLITS}
  bad = []
  unknown = [c for c in info["classes"] if c not in classes_lib.LLP_CLASSES]
  if unknown:
    bad.append(f"class names {unknown[:5]} are not LLP classes (the official "
               "code hardcodes the 25 LLP names)")
  specs = {s.name: s for s in info["feature_specs"]}
  for stream in llp.STREAMS.values():
    want, have = stream.spec, specs.get(stream.spec.name)
    if have is None:
      bad.append(f"no `{want.name}` feature (HAN reads all three streams)")
    elif tuple(have.shape) != tuple(want.shape) or (
        have.frames_per_segment not in (1, want.frames_per_segment)):
      bad.append(f"`{want.name}` is {have.frames_per_segment} x "
                 f"{list(have.shape)} per segment; LLP's is "
                 f"{want.frames_per_segment} x {list(want.shape)}")
  if int(info["max_segments"]) != llp.NUM_SEGMENTS:
    bad.append(f"clips have up to {info['max_segments']} segments; LLP "
               f"clips have {llp.NUM_SEGMENTS}")
  for llp_split, split in splits.items():
    if split not in info["splits"]:
      bad.append(f"no split {split!r}")
    elif llp_split != "train":
      keys = info["splits"][split]["label_keys"]
      if not all(k in keys for k in EVAL_FILES):
        bad.append(f"split {split!r} has no dense labels (seg_audio, "
                   "seg_visual)")
  if bad:
    raise ValueError("cannot export the dataset in the LLP layout:\n  " +
                     "\n  ".join(bad))


def label_names(y: np.ndarray, classes: Sequence[str]) -> List[str]:
  return [classes[i] for i in np.flatnonzero(np.asarray(y) > 0.5)]


def event_rows(filename: str, seg: np.ndarray, classes: Sequence[str]):
  """(filename, onset, offset, class) per run of 1s of `seg` [T, C]."""
  seg = np.asarray(seg) > 0
  rows = []
  for c in range(seg.shape[1]):
    padded = np.concatenate([[False], seg[:, c], [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    for onset, offset in zip(edges[::2], edges[1::2]):
      rows.append((filename, int(onset), int(offset), classes[c]))
  return rows


def _write_table(path: str, header, rows) -> None:
  with open(path, "w") as f:
    f.write("\t".join(header) + "\n")
    for row in rows:
      f.write("\t".join(str(x) for x in row) + "\n")


def _keep_ids(info: dict) -> bool:
  return info.get("name") == "llp"


class _Writer:
  """Feature files of one export; a stem shared by clips must hold the same
  arrays (LLP clips cut from one video)."""

  def __init__(self, root: str):
    self.root, self.stems = root, {}
    for s in llp.STREAMS.values():
      os.makedirs(os.path.join(root, s.folder), exist_ok=True)

  def write(self, filename: str, clip: Dict[str, np.ndarray]) -> None:
    stem = llp.feature_id(filename)
    arrays = {}
    for name, stream in llp.STREAMS.items():
      x = np.asarray(clip[name], np.float32)
      want = llp.NUM_SEGMENTS * stream.spec.frames_per_segment
      if x.shape[0] != want:  # stored per-segment means: repeat the frames
        x = np.repeat(x, want // x.shape[0], axis=0)
      arrays[name] = x
    if stem in self.stems:
      same = all(np.array_equal(np.load(self._path(stem, n)), a)
                 for n, a in arrays.items())
      if not same:
        raise ValueError(f"clips {self.stems[stem]!r} and {filename!r} share "
                         f"the feature id {stem!r} but not their features")
      return
    self.stems[stem] = filename
    for name, x in arrays.items():
      np.save(self._path(stem, name), x)

  def _path(self, stem, name):
    return os.path.join(self.root, llp.STREAMS[name].folder, stem + ".npy")


def export(data_dir: str, root: str, splits: Optional[Dict[str, str]] = None,
           batch_size: int = 16, log=None) -> Dict:
  """Writes the dataset at `data_dir` into `root` (see the module doc).

  `splits` maps the LLP splits (train, val, test) to the dataset's split
  names (default: the same names).

  Returns the summary also written to `root/export.json`. An existing
  complete export is returned as is; a partial one is replaced.
  """
  from avjax.data import pipeline  # pylint: disable=g-import-not-at-top
  done = os.path.join(root, SUMMARY_FILE)
  if os.path.exists(done):
    with open(done) as f:
      return json.load(f)
  splits = dict(splits or {s: s for s in SPLITS})
  unknown = sorted(set(splits) - set(SPLITS))
  if unknown:
    raise ValueError(f"unknown LLP split(s) {unknown}; have {SPLITS}")
  info = tfrecord.read_info(data_dir)
  check_info(info, splits)
  classes = tuple(info["classes"])
  tmp = root.rstrip("/") + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  writer = _Writer(tmp)
  keep = _keep_ids(info)
  weak, ids, dense, modality = {}, [], {k: [] for k in EVAL_FILES}, []
  for split, source_split in splits.items():
    keys = info["splits"][source_split]["label_keys"]
    has_modality = split == "train" and all(
        k in keys for k in ("audio_labels", "visual_labels"))
    weak[split] = []
    for k, clip in enumerate(pipeline.read_clips(data_dir, source_split,
                                                batch_size)):
      filename = clip["id"]
      if not (keep and _LLP_FILENAME.match(filename)):
        filename = f"{split[:2]}{k:09d}_0_10"
      if int(clip["audio"].shape[0]) != llp.NUM_SEGMENTS:
        raise ValueError(f"clip {clip['id']!r} of split {split!r} has "
                         f"{clip['audio'].shape[0]} segments, not "
                         f"{llp.NUM_SEGMENTS}")
      names = label_names(clip["labels"], classes)
      if not names:
        raise ValueError(f"clip {clip['id']!r} of split {split!r} has no "
                         "weak label; the official data loader cannot read "
                         "an empty event_labels field")
      writer.write(filename, clip)
      ids.append((filename, split, clip["id"]))
      weak[split].append((filename, ",".join(names)))
      if split != "train":
        for key in EVAL_FILES:
          dense[key] += event_rows(filename, clip[key], classes)
      if has_modality:
        modality.append((filename, ",".join(label_names(
            clip["audio_labels"], classes)), ",".join(label_names(
                clip["visual_labels"], classes))))
    if log:
      log("exported %d %s clips", len(weak[split]), split)
  for split, rows in weak.items():
    _write_table(os.path.join(tmp, annotations.SPLIT_FILES[split]),
                 annotations.WEAK_COLUMNS, rows)
  for key, name in EVAL_FILES.items():
    _write_table(os.path.join(tmp, name), annotations.EVAL_COLUMNS,
                 dense[key])
  with open(os.path.join(tmp, "LLP_categories.txt"), "w") as f:
    f.write("".join(c + "\n" for c in classes))
  _write_table(os.path.join(tmp, IDS_FILE), ("filename", "split",
                                             "source_id"), ids)
  if modality:
    _write_table(os.path.join(tmp, MODALITY_FILE),
                 ("filename", "audio_labels", "visual_labels"), modality)
  summary = {"source": data_dir, "source_name": info.get("name"),
             "source_splits": splits,
             "classes": list(classes),
             "num_clips": {s: len(r) for s, r in weak.items()},
             "renamed": any(f != s for f, _, s in ids),
             "modality_labels": MODALITY_FILE if modality else None,
             "ids": IDS_FILE}
  with open(os.path.join(tmp, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=1)
  shutil.rmtree(root, ignore_errors=True)
  os.replace(tmp, root)
  return summary


def read_ids(root: str) -> Dict[str, str]:
  """{exported filename: source clip id} of an export."""
  rows = annotations._read_table(  # pylint: disable=protected-access
      os.path.join(root, IDS_FILE), ("filename", "split", "source_id"))
  return {r["filename"]: r["source_id"] for _, r in rows}


def read_modality_labels(root: str) -> Optional[Dict[str, tuple]]:
  """{filename: (audio names, visual names)} of the train clips, or None."""
  path = os.path.join(root, MODALITY_FILE)
  if not os.path.exists(path):
    return None
  out = {}
  for _, r in annotations._read_table(  # pylint: disable=protected-access
      path, ("filename", "audio_labels", "visual_labels")):
    out[r["filename"]] = tuple(
        [n for n in r[k].split(",") if n] for k in ("audio_labels",
                                                     "visual_labels"))
  return out

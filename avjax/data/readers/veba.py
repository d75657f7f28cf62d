"""VEBA (Video-Enhanced Balanced AudioSet; Li et al., ICASSP 2022) layout.

VEBA's files are not public. This module defines a layout that follows the
paper (10-s AudioSet clips, 376 classes; every clip has audible labels and,
per label, whether it is visible; test clips have on/offsets per modality at
1-s resolution) and a reader AND writer for it, so VEBA or any other
AudioSet-derived set can be converted (`python -m avjax.prepare veba`):

  DIR/classes.txt     class names in index order, one a line (376 for VEBA)
  DIR/clips.csv       header `clip_id,split,audible,visible` (csv quoting):
                      audible = `;`-separated class names heard in the clip
                      (the AudioSet labels), visible = the `;`-separated
                      subset of them that is also seen; either may be empty
  DIR/events.csv      header `clip_id,label,modality,onset,offset`: one row
                      per event of a dense split (default: test); modality
                      `a` or `v`; integer seconds, the event covers segments
                      onset .. offset-1
  DIR/features.json   the feature streams: [{"name", "folder",
                      "frames_per_segment", "shape"}, ...]; default: LLP's
                      feats/vggish [T,128], feats/res152 [8T,2048],
                      feats/r2plus1d_18 [T,512]
  DIR/<folder>/<clip_id>.npy   one float32 array per clip and stream

Contract labels: audio_labels = audible, visual_labels = visible, labels =
audible | visible; for the dense splits seg_audio / seg_visual [T, C] from
events.csv (T = the clip's feature length; intervals clipped to [0, T]).

Policy (each case reported with examples): a visible label that is not
audible is kept (`visible_not_audible`); events of clips not in clips.csv or
not in a dense split are ignored (`events_unknown_clip`,
`events_not_dense_split`); events with offset <= onset are skipped
(`empty_events`); an event class missing from the clip's weak labels of that
modality is kept (`events_not_in_weak`); a repeated clip_id keeps the first
row (`duplicate_clips`). A clips.csv row with an unknown class name, or an
events.csv row with an unknown class, modality or non-integer time, is
reported (`bad_rows`) and the clip skipped (reason bad_annotation).
--strict refuses those rows, and events with offset <= onset or times
outside the clip, instead (an error naming file and line).
"""

import collections
import csv
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from avjax import errors
from avjax.data.readers import single_label

DENSE_SPLITS = ("test",)
_add = single_label.add_issue
ISSUES = ("visible_not_audible", "events_unknown_clip",
          "events_not_dense_split", "empty_events", "events_not_in_weak",
          "duplicate_clips", "bad_rows")
STRICT = " [--strict: without it the clip is skipped and reported]"


@dataclasses.dataclass
class VebaClip:
  """One clip to write: weak labels, events (label, "a"|"v", on, off)."""
  clip_id: str
  split: str
  audible: Sequence[str]
  visible: Sequence[str]
  features: Dict[str, np.ndarray]
  events: Sequence[Tuple[str, str, int, int]] = ()


def _names(text: str, classes, where: str) -> List[int]:
  return [single_label.class_index(classes, n.strip(), where)
          for n in text.split(";") if n.strip()]


class VebaDataset:
  """Reader of the layout above."""

  def __init__(self, root: str, dense_splits: Sequence[str] = DENSE_SPLITS,
               streams: Optional[str] = None, name: str = "veba",
               strict: bool = False):
    self.root, self.name, self.strict = root, name, strict
    path = os.path.join(root, "classes.txt")
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path} not found: the layout needs the class "
                              "list (see `python -m avjax.prepare veba "
                              "--help`)")
    self.classes = tuple(single_label.read_lines(path))
    self.streams = single_label.resolve_streams(root, streams)
    self.features = tuple(s.spec for s in self.streams)
    single_label.check_stream_folders(root, self.streams)
    self.report = {k: single_label.new_issue() for k in ISSUES}
    self.report["policy"] = {
        "visible_not_audible": "kept as visual label", "events_unknown_clip":
        "ignored", "events_not_dense_split": "ignored", "empty_events":
        "skipped", "events_not_in_weak": "kept", "duplicate_clips":
        "first row kept", "bad_rows": "the clip is skipped"}
    self.bad = {}  # {clip_id: error of its first bad row}
    self.clips, splits = {}, collections.defaultdict(list)
    path = os.path.join(root, "clips.csv")
    for line, r in single_label.read_csv(
        path, ("clip_id", "split", "audible", "visible")):
      where = f"{path}:{line}"
      cid = r["clip_id"]
      if cid in self.clips:
        _add(self.report["duplicate_clips"], {"line": line, "clip_id": cid})
        continue
      if not cid or "/" in cid or cid.startswith("."):
        raise ValueError(f"{where}: clip_id {cid!r} is not a file name")
      try:
        audible = set(_names(r["audible"], self.classes, where))
        visible = set(_names(r["visible"], self.classes, where))
      except ValueError as e:
        self._bad_row(cid, str(e), {"line": line, **r}, "clips.csv")
        audible, visible = set(), set()
      if visible - audible:
        _add(self.report["visible_not_audible"], {"line": line, "clip_id": cid,
                                                  "labels": sorted(
                                                      self.classes[i] for i in
                                                      visible - audible)})
      self.clips[cid] = (r["split"], sorted(audible), sorted(visible))
      splits[r["split"]].append(cid)
    self.splits = dict(splits)
    self.dense_splits = tuple(s for s in dense_splits if s in self.splits)
    self.events = self._read_events()
    self.label_keys = {s: ("labels", "audio_labels", "visual_labels") + (
        ("seg_audio", "seg_visual") if s in self.dense_splits else ())
                       for s in self.splits}
    self.report["summary"] = {k: self.report[k]["count"] for k in ISSUES}
    self.report["num_clips"] = {s: len(v) for s, v in self.splits.items()}
    self.extra = {"source": name, "dense_splits": list(self.dense_splits),
                  "streams": [s.to_json() for s in self.streams]}

  def _bad_row(self, cid: str, error: str, example: Dict, file: str) -> None:
    if self.strict:
      raise errors.AnnotationError(error + STRICT)
    single_label.add_issue(self.report["bad_rows"], dict(example, file=file))
    self.bad.setdefault(cid, error)

  def _read_events(self) -> Dict[str, List[Tuple[int, int, int, int]]]:
    """{clip_id: [(modality 0|1, onset, offset, class)]} of dense clips."""
    events = collections.defaultdict(list)
    path = os.path.join(self.root, "events.csv")
    if not os.path.isfile(path):
      return events
    for line, r in single_label.read_csv(
        path, ("clip_id", "label", "modality", "onset", "offset")):
      where = f"{path}:{line}"
      example = {"line": line, **r}
      clip = self.clips.get(r["clip_id"])
      try:
        c = single_label.class_index(self.classes, r["label"], where)
        if r["modality"] not in ("a", "v"):
          raise ValueError(f"{where}: modality must be 'a' or 'v', got "
                           f"{r['modality']!r}")
        try:
          onset, offset = int(r["onset"]), int(r["offset"])
        except ValueError:
          raise ValueError(f"{where}: onset/offset must be integer seconds, "
                           f"got {r['onset']!r}, {r['offset']!r}") from None
      except ValueError as e:
        if clip is None or clip[0] not in self.dense_splits:
          if self.strict:
            raise errors.AnnotationError(str(e) + STRICT) from None
          continue  # ignored anyway (policy)
        self._bad_row(r["clip_id"], str(e), example, "events.csv")
        continue
      if self.strict and clip is not None and clip[0] in self.dense_splits and (
          offset <= onset or onset < 0):
        raise ValueError(f"{where}: --strict: event of {r['clip_id']!r} with "
                         f"onset {onset}, offset {offset}: "
                         + ("empty (offset <= onset), which the default "
                            "policy skips" if offset <= onset else
                            "starts before 0, which the default policy clips")
                         + "; fix the row, or convert without --strict")
      if clip is None:
        _add(self.report["events_unknown_clip"], example)
      elif clip[0] not in self.dense_splits:
        _add(self.report["events_not_dense_split"], example)
      elif offset <= onset:
        _add(self.report["empty_events"], example)
      else:
        m = "av".index(r["modality"])
        if c not in clip[1 + m]:
          _add(self.report["events_not_in_weak"], example)
        events[r["clip_id"]].append((m, onset, offset, c, line))
    return events

  def clip_id(self, split: str, key: str) -> str:
    del split
    return key

  def load(self, split: str, key: str) -> Dict[str, np.ndarray]:
    if key in self.bad:
      raise errors.AnnotationError(self.bad[key])
    _, audible, visible = self.clips[key]
    clip = {"id": key, **single_label.load_streams(
        self.root, self.streams, key)}
    c = len(self.classes)
    clip["audio_labels"] = np.zeros(c, np.float32)
    clip["audio_labels"][audible] = 1
    clip["visual_labels"] = np.zeros(c, np.float32)
    clip["visual_labels"][visible] = 1
    clip["labels"] = np.maximum(clip["audio_labels"], clip["visual_labels"])
    if split in self.dense_splits:
      spec = self.streams[0].spec
      t = len(clip[spec.name]) // spec.frames_per_segment
      seg = np.zeros((2, t, c), np.uint8)
      for m, onset, offset, k, line in self.events.get(key, ()):
        if self.strict and offset > t:
          raise errors.AnnotationError(
              f"{os.path.join(self.root, 'events.csv')}:{line}: --strict: "
              f"event of {key!r} ends at {offset} s, after the clip's {t} "
              "segments (the default policy clips it)")
        seg[m, max(onset, 0):min(offset, t), k] = 1
      clip["seg_audio"], clip["seg_visual"] = seg[0], seg[1]
    return clip


def write_veba(root: str, classes: Sequence[str], clips: Sequence[VebaClip],
               streams=single_label.LLP_STREAMS) -> None:
  """Writes `clips` in the layout above (class names must not hold ';')."""
  bad = [c for c in classes if ";" in c or not c.strip()]
  if bad:
    raise ValueError(f"class names must be non-empty without ';': {bad}")
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "classes.txt"), "w") as f:
    f.write("".join(c + "\n" for c in classes))
  single_label.write_streams(root, streams)
  for s in streams:
    os.makedirs(os.path.join(root, s.folder), exist_ok=True)
  with open(os.path.join(root, "clips.csv"), "w", newline="") as fc, open(
      os.path.join(root, "events.csv"), "w", newline="") as fe:
    wc, we = csv.writer(fc), csv.writer(fe)
    wc.writerow(["clip_id", "split", "audible", "visible"])
    we.writerow(["clip_id", "label", "modality", "onset", "offset"])
    for clip in clips:
      wc.writerow([clip.clip_id, clip.split, ";".join(clip.audible),
                   ";".join(clip.visible)])
      for label, modality, onset, offset in clip.events:
        we.writerow([clip.clip_id, label, modality, onset, offset])
      for s in streams:
        np.save(os.path.join(root, s.folder, clip.clip_id + ".npy"),
                np.asarray(clip.features[s.spec.name], np.float32))


def add_arguments(parser) -> None:
  parser.add_argument("--dense_splits", default=",".join(DENSE_SPLITS),
                      help="splits whose clips get seg_audio/seg_visual")
  parser.add_argument("--streams", default=None, help="override features.json"
                      ": name=folder:F:shape,... e.g. audio=feats/lcdur:1:512")


def from_args(args) -> VebaDataset:
  return VebaDataset(args.root, args.dense_splits.split(","), args.streams,
                     strict=getattr(args, "strict", False))

"""The avjax clip contract shared by every dataset, converter and model.

A *clip* is a plain dict of NumPy arrays (T = number of one-second segments,
which may differ from clip to clip):

  id:            str, unique clip id (LLP: the full `filename` column).
  <feature>:     float32 [T * F, *shape], one entry per feature stream named in
                 the dataset's `FeatureSpec`s, e.g. audio [T, 128],
                 visual [T * 8, 2048], motion [T, 512], visual_map [T, 7, 7, 512].
  labels:        float32 [C] video-level (weak) multi-hot labels.
  audio_labels:  float32 [C] optional weak audio labels.
  visual_labels: float32 [C] optional weak visual labels.
  seg_audio:     uint8 [T, C] optional dense per-segment audio labels.
  seg_visual:    uint8 [T, C] optional dense per-segment visual labels.
  primary_labels: float32 [C] optional one-hot single (dominant) label of a
                 clip whose `labels` are multi-hot (single-label accuracy).
  onsets:        optional feature stream float32 [T, 1]: 1 where an audio
                 onset falls in the segment (`ONSETS_FEATURE`, written by
                 `avjax.data.onsets`).

Batches produced by `avjax.data.pipeline` carry the same keys padded to the
dataset's `max_segments`, plus `segment_mask` [B, T] and `_mask` [B] (0 for
padding clips added so that evaluation covers every clip exactly once).
"""

import dataclasses
from typing import Tuple

LABEL_KEYS = ("labels", "audio_labels", "visual_labels")
DENSE_KEYS = ("seg_audio", "seg_visual")
# Clip-level [C] label keys beyond LABEL_KEYS (same encoding, never required).
EXTRA_LABEL_KEYS = ("primary_labels",)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """One feature stream of a clip.

  Attributes:
    name: key in the clip dict and TFRecord, e.g. "audio".
    frames_per_segment: F, rows per one-second segment (8 for LLP res152).
    shape: trailing shape of one row, e.g. (2048,) or (7, 7, 512).
  """
  name: str
  frames_per_segment: int
  shape: Tuple[int, ...]

  @property
  def row_size(self) -> int:
    n = 1
    for d in self.shape:
      n *= d
    return n

  def to_json(self):
    return {"name": self.name, "frames_per_segment": self.frames_per_segment,
            "shape": list(self.shape)}

  @classmethod
  def from_json(cls, d):
    return cls(d["name"], int(d["frames_per_segment"]),
               tuple(int(x) for x in d["shape"]))


LLP_FEATURES = (
    FeatureSpec("audio", 1, (128,)),
    FeatureSpec("visual", 8, (2048,)),
    FeatureSpec("motion", 1, (512,)),
)

# Per-segment 0/1 audio-onset indicator, stored like any feature stream.
ONSETS_FEATURE = FeatureSpec("onsets", 1, (1,))


# Batch keys that are targets or bookkeeping, never model inputs.
NON_INPUT_KEYS = (LABEL_KEYS + DENSE_KEYS + EXTRA_LABEL_KEYS +
                  ("_mask", "clip_id_bytes"))


def model_inputs(batch: dict) -> dict:
  """A batch without its labels and bookkeeping keys (what a model reads)."""
  return {k: v for k, v in batch.items() if k not in NON_INPUT_KEYS}

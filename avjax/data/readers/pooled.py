"""Pre-pooled frame features: a reader with some streams averaged per segment.

HAN averages the F frames of each one-second segment of the visual stream
(LLP: 8 ResNet-152 frames, [80, 2048]) and that mean commutes with the
affine visual projection, so storing the per-segment mean ([10, 2048], F = 1)
gives the same model outputs up to float rounding, with 8x less data to
store, parse and copy to the device per clip (`pool_first=True` makes the
model's own pooling a no-op for F = 1).

  python -m avjax.prepare llp --root=DIR --out=OUT --pool_frames=visual

`PooledFrames(reader, names)` wraps any reader of `avjax.prepare` (same
splits, ids and labels); the pooled streams are listed in
`dataset_info.json` extra["pooled_frames"] as {name: original F}.
"""

import dataclasses
from typing import Dict, Sequence

import numpy as np


def pool_frames(x: np.ndarray, frames_per_segment: int,
                where: str = "") -> np.ndarray:
  """[T*F, ...] -> [T, ...]: the mean of each segment's F frames (float32,
  accumulated in float64)."""
  f = int(frames_per_segment)
  if x.shape[0] % f:
    raise ValueError(f"{where}: {x.shape[0]} frames is not a multiple of "
                     f"{f} frames per segment")
  y = x.reshape((x.shape[0] // f, f) + x.shape[1:]).astype(np.float64)
  return y.mean(1).astype(np.float32)


class PooledFrames:
  """`dataset` with the streams `names` stored as per-segment means."""

  def __init__(self, dataset, names: Sequence[str]):
    specs = {s.name: s for s in dataset.features}
    unknown = [n for n in names if n not in specs]
    if unknown:
      raise ValueError(f"--pool_frames: unknown stream(s) {unknown}; the "
                       f"{dataset.name} reader has {sorted(specs)}")
    single = [n for n in names if specs[n].frames_per_segment == 1]
    if single:
      raise ValueError(f"--pool_frames: stream(s) {single} already have one "
                       "row per segment")
    self._dataset = dataset
    self._frames = {n: specs[n].frames_per_segment for n in names}
    self.features = tuple(
        dataclasses.replace(s, frames_per_segment=1) if s.name in names
        else s for s in dataset.features)
    self.extra = dict(dataset.extra, pooled_frames=dict(self._frames))

  def __getattr__(self, name):
    if name.startswith("_"):  # unpickling (spawned workers) sets no _dataset
      raise AttributeError(name)
    return getattr(self._dataset, name)

  def load(self, split: str, key) -> Dict[str, np.ndarray]:
    clip = self._dataset.load(split, key)
    for name, f in self._frames.items():
      clip[name] = pool_frames(np.asarray(clip[name]), f,
                               f"clip {clip['id']!r}, field {name!r}")
    return clip

  def close(self) -> None:
    if hasattr(self._dataset, "close"):
      self._dataset.close()

"""TFRecord encoding of the clip contract (see `avjax.data.schema`).

A dataset directory holds `dataset_info.json` and, per split, shards named
`<split>-<i:05d>-of-<n:05d>.tfrecord`. Each record is one `tf.train.Example`
per clip:

  clip_id       bytes
  num_segments  int64   T
  <feature>     bytes   float32 [T * F, *shape], little endian, row major
  labels, audio_labels, visual_labels     bytes  uint8 [C]
  seg_audio, seg_visual                   bytes  uint8 [T, C]

Raw bytes (instead of FloatList) keep parsing vectorised: a batch of records is
parsed with one `tf.io.parse_example` and decoded with `tf.io.decode_raw`,
which also zero-pads variable-length clips to the dataset's `max_segments`.

`dataset_info.json` records the class names, the feature specs, which label
keys each split carries, and per-shard clip counts, so readers never guess.
"""

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from avjax.data import schema

INFO_FILE = "dataset_info.json"


def shard_name(split: str, index: int, num_shards: int) -> str:
  return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def validate_clip(clip: dict, features: Sequence[schema.FeatureSpec],
                  num_classes: int, where: str = "") -> int:
  """Checks one clip dict against the contract; returns its T.

  Raises:
    ValueError naming the clip, the field and what was expected.
  """
  cid = clip.get("id")
  name = f"clip {cid!r}" + (f" ({where})" if where else "")
  if not isinstance(cid, str) or not cid:
    raise ValueError(f"{name}: field 'id' must be a non-empty str, got {cid!r}")
  t = None
  for spec in features:
    if spec.name not in clip:
      raise ValueError(f"{name}: missing feature {spec.name!r}")
    x = np.asarray(clip[spec.name])
    if x.ndim != 1 + len(spec.shape) or tuple(x.shape[1:]) != spec.shape:
      raise ValueError(
          f"{name}: feature {spec.name!r} has shape {x.shape}, expected "
          f"[T*{spec.frames_per_segment}, {', '.join(map(str, spec.shape))}]")
    if x.shape[0] % spec.frames_per_segment:
      raise ValueError(
          f"{name}: feature {spec.name!r} has {x.shape[0]} rows, not a "
          f"multiple of frames_per_segment={spec.frames_per_segment}")
    ti = x.shape[0] // spec.frames_per_segment
    if t is not None and ti != t:
      raise ValueError(f"{name}: feature {spec.name!r} covers {ti} segments "
                       f"but an earlier feature covers {t}")
    t = ti
    if not np.all(np.isfinite(x)):
      bad = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
      raise ValueError(f"{name}: feature {spec.name!r} has a non-finite "
                       f"value ({x[bad]}) at index {bad}")
  if t is None or t < 1:
    raise ValueError(f"{name}: no segments (T={t})")
  for key in schema.LABEL_KEYS + schema.EXTRA_LABEL_KEYS:
    if key in clip and np.shape(clip[key]) != (num_classes,):
      raise ValueError(f"{name}: {key!r} has shape {np.shape(clip[key])}, "
                       f"expected [{num_classes}]")
  if "labels" not in clip:
    raise ValueError(f"{name}: missing weak 'labels'")
  for key in schema.DENSE_KEYS:
    if key in clip and np.shape(clip[key]) != (t, num_classes):
      raise ValueError(f"{name}: {key!r} has shape {np.shape(clip[key])}, "
                       f"expected [T={t}, {num_classes}]")
  return t


def encode_clip(clip: dict, features: Sequence[schema.FeatureSpec],
                label_keys: Sequence[str]) -> bytes:
  """Serialises a validated clip dict to a tf.train.Example."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  t = np.asarray(clip[features[0].name]).shape[0] // features[0].frames_per_segment
  f = {
      "clip_id": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[clip["id"].encode("utf-8")])),
      "num_segments": tf.train.Feature(int64_list=tf.train.Int64List(
          value=[t])),
  }
  for spec in features:
    raw = np.ascontiguousarray(clip[spec.name], dtype="<f4").tobytes()
    f[spec.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw]))
  for key in label_keys:
    raw = np.asarray(clip[key]).astype(np.uint8).tobytes()
    f[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[raw]))
  return tf.train.Example(features=tf.train.Features(
      feature=f)).SerializeToString(deterministic=True)


class DatasetWriter:
  """Writes clips into sharded TFRecords plus `dataset_info.json`.

  Usage:
    w = DatasetWriter(out_dir, "llp", LLP_CLASSES, LLP_FEATURES)
    w.write_split("train", clips, label_keys=("labels",), num_shards=8)
    w.finish()
  """

  def __init__(self, out_dir: str, name: str, classes: Sequence[str],
               features: Sequence[schema.FeatureSpec], extra: Optional[dict] = None):
    self.out_dir = out_dir
    self.info = {
        "name": name,
        "classes": list(classes),
        "features": [s.to_json() for s in features],
        "max_segments": 0,
        "splits": {},
        "extra": dict(extra or {}),
    }
    self.features = tuple(features)
    os.makedirs(out_dir, exist_ok=True)

  def write_split(self, split: str, clips: Iterable[dict],
                  label_keys: Sequence[str], num_shards: int = 1,
                  shards: Optional[Sequence[int]] = None) -> int:
    """Writes all clips of a split round-robin into `num_shards` files, or
    clip n into file `shards[n]` (to keep another dataset's layout: a
    rewritten split whose clips sit in the same files at the same positions
    is read in the same order by the same seed)."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    label_keys = tuple(label_keys)
    for key in label_keys:
      if key not in (schema.LABEL_KEYS + schema.DENSE_KEYS +
                     schema.EXTRA_LABEL_KEYS):
        raise ValueError(f"unknown label key {key!r}")
    names = [shard_name(split, i, num_shards) for i in range(num_shards)]
    tmp = [os.path.join(self.out_dir, n + ".tmp") for n in names]
    writers = [tf.io.TFRecordWriter(p) for p in tmp]
    counts = [0] * num_shards
    seen = set()
    n = 0
    try:
      for clip in clips:
        t = validate_clip(clip, self.features, len(self.info["classes"]),
                          where=f"split {split!r}")
        missing = [k for k in label_keys if k not in clip]
        if missing:
          raise ValueError(f"clip {clip['id']!r}: split {split!r} promises "
                           f"label keys {missing} that the clip lacks")
        if clip["id"] in seen:
          raise ValueError(f"duplicate clip id {clip['id']!r} in split {split!r}")
        seen.add(clip["id"])
        if shards is None:
          k = n % num_shards
        elif n < len(shards) and 0 <= shards[n] < num_shards:
          k = shards[n]
        else:
          raise ValueError(f"split {split!r}: clip {n} ({clip['id']!r}) has "
                           f"no shard in 0..{num_shards - 1} (shards lists "
                           f"{len(shards)})")
        writers[k].write(encode_clip(clip, self.features, label_keys))
        counts[k] += 1
        self.info["max_segments"] = max(self.info["max_segments"], t)
        n += 1
    finally:
      for w in writers:
        w.close()
    for src, name in zip(tmp, names):
      os.replace(src, os.path.join(self.out_dir, name))
    self.info["splits"][split] = {
        "num_clips": n, "files": names, "file_counts": counts,
        "label_keys": list(label_keys)}
    return n

  def finish(self) -> dict:
    path = os.path.join(self.out_dir, INFO_FILE)
    with open(path + ".tmp", "w") as f:
      json.dump(self.info, f, indent=1)
    os.replace(path + ".tmp", path)
    return self.info


def read_info(data_dir: str) -> dict:
  """Loads and checks `dataset_info.json` of a dataset directory."""
  path = os.path.join(data_dir, INFO_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: a dataset directory must hold {INFO_FILE} written "
        "by avjax.data.tfrecord.DatasetWriter (see `python -m avjax.prepare "
        "--help`)")
  with open(path) as f:
    info = json.load(f)
  for key in ("classes", "features", "splits", "max_segments"):
    if key not in info:
      raise ValueError(f"{path}: missing field {key!r}")
  info["feature_specs"] = tuple(
      schema.FeatureSpec.from_json(d) for d in info["features"])
  return info


def split_files(data_dir: str, info: dict, split: str) -> List[str]:
  if split not in info["splits"]:
    raise ValueError(f"split {split!r} not in {data_dir} (has "
                     f"{sorted(info['splits'])})")
  files = [os.path.join(data_dir, n) for n in info["splits"][split]["files"]]
  for p in files:
    if not os.path.exists(p):
      raise FileNotFoundError(f"shard {p} listed in {INFO_FILE} is missing")
  return files


def _assert_all(tf, ok, ids, message):
  """Fails the input pipeline naming the clips where `ok` [B] is False."""
  with tf.control_dependencies([tf.debugging.Assert(
      tf.reduce_all(ok), [message, tf.boolean_mask(ids, tf.logical_not(ok))],
      summarize=5)]):
    return tf.identity(ok)


def parse_batch(serialized, info: dict, split: str,
                features: Sequence[str]) -> Dict[str, Any]:
  """Parses a batch of serialized examples into padded dense tensors.

  Args:
    serialized: tf.string [B].
    info: from `read_info`.
    split: which split (decides the label keys present).
    features: names of the feature streams to decode.

  Returns:
    dict with `clip_id` [B] string, `segment_mask` [B, T] float32, each
    feature [B, T*F, *shape] float32 and each label key, padded to T =
    info["max_segments"]. Raises InvalidArgumentError naming the clip when a
    record's byte size disagrees with its declared shape or holds NaN/Inf.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  specs = {s.name: s for s in info["feature_specs"]}
  label_keys = info["splits"][split]["label_keys"]
  c = len(info["classes"])
  tmax = int(info["max_segments"])
  desc = {"clip_id": tf.io.FixedLenFeature([], tf.string),
          "num_segments": tf.io.FixedLenFeature([], tf.int64)}
  for k in list(features) + list(label_keys):
    desc[k] = tf.io.FixedLenFeature([], tf.string)
  ex = tf.io.parse_example(serialized, desc)
  ids = ex["clip_id"]
  nseg = tf.cast(ex["num_segments"], tf.int32)
  out = {"clip_id": ids,
         "segment_mask": tf.cast(tf.sequence_mask(nseg, tmax), tf.float32)}

  def check_size(key, raw, expected, what):
    ok = tf.equal(tf.strings.length(raw), expected)
    _assert_all(tf, ok, ids, f"record size mismatch for {key!r}: expected "
                f"{what}; offending clip ids:")

  for k in features:
    if k not in specs:
      raise ValueError(f"feature {k!r} not in dataset (has {sorted(specs)})")
    s = specs[k]
    rows = nseg * s.frames_per_segment
    check_size(k, ex[k], rows * s.row_size * 4,
               f"T*{s.frames_per_segment} rows of {list(s.shape)} float32")
    x = tf.io.decode_raw(ex[k], tf.float32,
                         fixed_length=tmax * s.frames_per_segment * s.row_size * 4)
    x = tf.reshape(x, [-1, tmax * s.frames_per_segment, *s.shape])
    finite = tf.reduce_all(tf.math.is_finite(
        tf.reshape(x, [tf.shape(x)[0], -1])), axis=1)
    _assert_all(tf, finite, ids, f"non-finite values in feature {k!r}; "
                "offending clip ids:")
    out[k] = x
  for k in label_keys:
    if k in schema.DENSE_KEYS:
      check_size(k, ex[k], nseg * c, f"[T, {c}] uint8")
      y = tf.io.decode_raw(ex[k], tf.uint8, fixed_length=tmax * c)
      out[k] = tf.reshape(y, [-1, tmax, c])
    else:
      check_size(k, ex[k], c, f"[{c}] uint8")
      out[k] = tf.cast(tf.io.decode_raw(ex[k], tf.uint8), tf.float32)
  return out

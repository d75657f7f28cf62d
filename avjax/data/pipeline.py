"""tf.data input pipelines over the TFRecord contract.

Training (`train_batches`): each host reads a disjoint subset of the split's
shards, and the stream is a pure function of (seed, global step): epoch e is
a uniform random permutation of the host's clips seeded by (seed, e) (read by
record offset, as PyTorch's `DataLoader(shuffle=True)` of the AVVP-family
reference code (HAN, MA, cross-modal) orders an epoch; `order="fixed"`
keeps the written order every epoch, as AVE's supervised_main.py, which
never shuffles; `shuffle_buffer > 0` selects the older, cheaper order: the
shards in a seeded order through a shuffle buffer of that size), so a run
resumed at step s continues with exactly the batches an uninterrupted run
would have seen. Every host yields the same number of batches per epoch.

Evaluation (`eval_batches`): every clip exactly once; batches are padded to the
local batch size with `_mask` = 0 rows, and every host yields the same number
of batches, so jitted steps see one shape on any device/host count.
"""

import bisect
import dataclasses
import math
import os
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from avjax import errors
from avjax.data import tfrecord


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  return tf


def host_shards(files: Sequence[str], counts: Sequence[int],
                process_index: int, process_count: int):
  """Disjoint files of this host and the clip count of every host."""
  if len(files) < process_count:
    raise ValueError(
        f"{len(files)} shard file(s) cannot be split over {process_count} "
        "hosts: rewrite the dataset with at least one shard per host "
        "(`python -m avjax.prepare ... --num_shards N`)")
  mine = list(files[process_index::process_count])
  per_host = [sum(counts[h::process_count]) for h in range(process_count)]
  return mine, per_host


@dataclasses.dataclass
class Source:
  """One split of a TFRecord dataset as seen by one host.

  `extra_splits` adds the shards of other splits of the dataset (e.g. AVE's
  background-only `train_noisy` for weak training); their clips count as
  the split's. The label keys are the split's, which every extra split must
  also carry.
  """
  data_dir: str
  split: str
  features: Sequence[str]
  process_index: int = 0
  process_count: int = 1
  extra_splits: Sequence[str] = ()

  def __post_init__(self):
    self.info = tfrecord.read_info(self.data_dir)
    files = tfrecord.split_files(self.data_dir, self.info, self.split)
    counts = list(self.info["splits"][self.split]["file_counts"])
    keys = set(self.info["splits"][self.split]["label_keys"])
    for sp in self.extra_splits:
      files += tfrecord.split_files(self.data_dir, self.info, sp)
      counts += self.info["splits"][sp]["file_counts"]
      missing = keys - set(self.info["splits"][sp]["label_keys"])
      if missing:
        raise ValueError(f"split {sp!r} of {self.data_dir} lacks label keys "
                         f"{sorted(missing)} of split {self.split!r}")
    self.files, self.host_counts = host_shards(
        files, counts, self.process_index, self.process_count)
    # clips per file of this host, aligned with self.files
    self.file_counts = list(counts[self.process_index::self.process_count])
    self.num_clips = (sum(counts) if self.extra_splits else
                      self.info["splits"][self.split]["num_clips"])

  @property
  def rebuild(self) -> str:
    """How to rebuild a damaged shard (for error messages)."""
    return rebuild_hint(self.data_dir, self.info)

  def steps_per_epoch(self, local_batch_size: int) -> int:
    steps = min(self.host_counts) // local_batch_size
    if steps < 1:
      raise ValueError(
          f"split {self.split!r} of {self.data_dir} has {min(self.host_counts)}"
          f" clips on its smallest host, fewer than the per-host batch size "
          f"{local_batch_size}")
    return steps

  def _parse(self, tf, ds, batch_size, drop_remainder):
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(lambda s: tfrecord.parse_batch(
        s, self.info, self.split, self.features),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class DataError(errors.UserError, RuntimeError):
  """Raised for unreadable or invalid input records; names files and clips."""


def rebuild_hint(data_dir: str, info: Dict) -> str:
  """How to rewrite a damaged shard of the dataset in `data_dir`."""
  extra = info.get("extra", {})
  command = extra.get("prepare", {}).get("command")
  if command:
    return ("To rebuild it, delete the damaged file and run the command that "
            f"wrote the dataset again (from {command['cwd']}): "
            f"{command['argv']} -- it rewrites only missing or incomplete "
            "shards.")
  if "prepare" in extra:
    return ("To rebuild it, delete the damaged file and run the `python -m "
            f"avjax.prepare` command that wrote {data_dir} again: it rewrites "
            "only missing or incomplete shards.")
  return (f"To rebuild it, delete {data_dir}: a built-in synthetic dataset "
          "is written again by the next run (otherwise rewrite it the way it "
          "was made).")


def _corrupt(path: str, detail: str, hint: str) -> str:
  return f"corrupt TFRecord file(s): {path} ({detail}). {hint}".rstrip()


def _find_corrupt(tf, files: Sequence[str]) -> List[str]:
  bad = []
  for f in files:
    try:
      for _ in tf.data.TFRecordDataset(f):
        pass
    except tf.errors.DataLossError as e:
      bad.append(f"{f} ({e.message.splitlines()[0]})")
  return bad


def _iterate(tf, ds, files: Sequence[str], hint: str = ""):
  """as_numpy_iterator with errors that name the offending files/clips."""
  try:
    yield from ds.as_numpy_iterator()
  except tf.errors.DataLossError as e:
    bad = _find_corrupt(tf, files) or list(files)
    raise DataError(f"corrupt TFRecord file(s): {'; '.join(bad)}. {hint}"
                    .rstrip()) from e
  except tf.errors.InvalidArgumentError as e:
    msg = e.message.replace("\\'", "'")
    if "assertion failed:" in msg:
      msg = msg.split("assertion failed:", 1)[1].split("\n", 1)[0].strip()
    raise DataError(f"invalid record in {', '.join(files)}: {msg}") from e


def _crc32c_table() -> List[int]:
  table = []
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    table.append(c)
  return table


_CRC32C = _crc32c_table()


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC-32C (Castagnoli) of `data` (short inputs)."""
  crc = 0xFFFFFFFF
  for b in data:
    crc = _CRC32C[(crc ^ b) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_frames(path: str, hint: str = "") -> List[Tuple[int, int]]:
  """(offset, data length) of every record of a TFRecord file (the framing,
  with the CRC of each record's length; data CRCs: `verify_data_crcs`)."""
  frames, pos = [], 0
  with open(path, "rb") as f:
    size = f.seek(0, 2)
    while pos < size:
      f.seek(pos)
      head = f.read(12)
      where = f"clip {len(frames) + 1} of the file, at byte {pos}"
      if len(head) < 12:
        raise DataError(_corrupt(path, f"{where}: truncated record header",
                                 hint))
      n = int.from_bytes(head[:8], "little")
      if int.from_bytes(head[8:], "little") != masked_crc32c(head[:8]):
        raise DataError(_corrupt(path, f"{where}: the record header is "
                                 "damaged, its length CRC does not match",
                                 hint))
      if pos + 16 + n > size:
        raise DataError(_corrupt(path, f"{where}: the record declares {n} "
                                 "bytes, past the end of the file", hint))
      frames.append((pos, n))
      pos += 16 + n
  return frames


def record_offsets(path: str, hint: str = "") -> List[int]:
  """Byte offsets of every record of a TFRecord file (see record_frames)."""
  return [o for o, _ in record_frames(path, hint)]


def verify_data_crcs(tf, path: str, offsets: Sequence[int],
                     hint: str = "") -> None:
  """Checks the data CRC of every record of a file with TensorFlow's own
  sequential reader; a mismatch names the clip (1-based) and its offset."""
  try:
    for _ in tf.data.TFRecordDataset(path, buffer_size=8 << 20):
      pass
  except tf.errors.DataLossError as e:
    m = re.search(r"corrupted record at (\d+)", e.message)
    if not m:
      raise DataError(_corrupt(path, e.message.splitlines()[0], hint)) from e
    at = int(m.group(1))  # where the record's data starts, or its header
    j = max(bisect.bisect_right(list(offsets), at) - 1, 0)
    raise DataError(_corrupt(path, f"clip {j + 1} of the file, at byte "
                             f"{offsets[j]}: its data CRC does not match",
                             hint)) from e


class _RecordReader:
  """Random access to the records of a list of TFRecord files.

  Each file's framing and data CRCs are checked once, when the reader is
  made (one sequential pass with TensorFlow's reader, as
  `tf.data.TFRecordDataset` checks them); records are then read by offset
  with `os.pread` (thread-safe, ~0.05 ms per clip: TensorFlow's own random
  reader costs ~2-3 ms of CPU per seek). A file changed after the check
  (size or modification time) is refused, so nothing unchecked is read.
  """

  def __init__(self, files: Sequence[str], hint: str = ""):
    tf = _tf()
    self.files, self.hint = list(files), hint
    self.index, self._fds, self._stats = [], [], []
    for i, f in enumerate(self.files):
      frames = record_frames(f, hint)
      verify_data_crcs(tf, f, [o for o, _ in frames], hint)
      fd = os.open(f, os.O_RDONLY)
      self._fds.append(fd)
      st = os.fstat(fd)
      self._stats.append((st.st_size, st.st_mtime_ns))
      self.index.extend((i, j, o, n) for j, (o, n) in enumerate(frames))

  def read(self, k: int) -> bytes:
    i, j, offset, n = self.index[k]
    st = os.fstat(self._fds[i])
    if (st.st_size, st.st_mtime_ns) != self._stats[i]:
      raise DataError(_corrupt(self.files[i], "the file changed while it was "
                               "being read for training", self.hint))
    data = os.pread(self._fds[i], n, offset + 12)
    if len(data) != n:
      raise DataError(_corrupt(self.files[i], f"clip {j + 1} of the file, at "
                               f"byte {offset}: truncated", self.hint))
    return data

  def close(self) -> None:
    for fd in self._fds:
      os.close(fd)
    self._fds = []

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
  """The order of a host's n clips in epoch `epoch`: a uniform permutation."""
  return np.random.default_rng([seed, epoch, 2]).permutation(n)


_SHARD_NAME = re.compile(r"^(.*)-\d{5}-of-\d{5}\.tfrecord$")


def written_order(src: Source) -> np.ndarray:
  """The host's clips, as indices in file order (the order `_RecordReader`
  and `eval_batches` read them), sorted into the order they were written.

  `tfrecord.Writer` puts clip n of a split into shard n % S at position
  n // S, so the written order is by (position, shard); the clips of
  `src.split` come first, then each extra split's (AVE's weak reference
  appends the background-only clips after the training clips)."""
  splits = [src.split, *src.extra_splits]
  keys = []
  for i, (f, n) in enumerate(zip(src.files, src.file_counts)):
    m = _SHARD_NAME.match(os.path.basename(f))
    split = m.group(1) if m else ""
    rank = splits.index(split) if split in splits else len(splits)
    keys += [(rank, j, i) for j in range(n)]
  return np.array(sorted(range(len(keys)), key=keys.__getitem__),
                  dtype=np.int64)


ORDERS = ("shuffle", "fixed")


def _check_order(order: str) -> None:
  if order not in ORDERS:
    raise ValueError(f"order={order!r}; valid: {ORDERS}")


def _permuted_batches(tf, src: Source, local_batch_size: int, seed: int,
                      start_step: int, num_steps: Optional[int],
                      order: str = "shuffle"):
  """train_batches with each epoch a full permutation of the host's clips
  (order="shuffle") or the written order every epoch ("fixed")."""
  spe = src.steps_per_epoch(local_batch_size)
  reader = _RecordReader(src.files, src.rebuild)
  n = len(reader.index)
  fixed = written_order(src) if order == "fixed" else None
  step = start_step
  while num_steps is None or step < num_steps:
    epoch, offset = divmod(step, spe)
    perm = fixed if fixed is not None else epoch_permutation(n, seed, epoch)
    stop = spe if num_steps is None else min(spe, offset + num_steps - step)
    ks = perm[offset * local_batch_size:stop * local_batch_size]
    failed = []

    def read_batch(i, ks=ks, failed=failed):
      # An exception raised in here would reach the caller wrapped by
      # tf.data; it is kept and an empty batch ends the stream instead.
      try:
        return np.array([reader.read(int(k)) for k in
                         ks[i * local_batch_size:(i + 1) * local_batch_size]],
                        dtype=object)
      except DataError as e:
        failed.append(e)
        return np.array([b""] * local_batch_size, dtype=object)

    ds = tf.data.Dataset.range(len(ks) // local_batch_size).map(
        lambda i: tf.ensure_shape(tf.numpy_function(
            read_batch, [i], tf.string, stateful=False), [local_batch_size]),
        num_parallel_calls=2, deterministic=True)
    ds = ds.map(lambda s: tfrecord.parse_batch(
        s, src.info, src.split, src.features),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    try:
      for batch in _iterate(tf, ds.prefetch(2), src.files, src.rebuild):
        if failed:
          break
        yield batch
        step += 1
    except DataError:
      if not failed:
        raise
    if failed:
      raise failed[0]


def _epoch_files(files: List[str], seed: int, epoch: int) -> List[str]:
  order = np.random.default_rng([seed, epoch]).permutation(len(files))
  return [files[i] for i in order]


def train_batches(src: Source, local_batch_size: int, seed: int,
                  start_step: int = 0, shuffle_buffer: int = 0,
                  num_steps: Optional[int] = None, order: str = "shuffle"
                  ) -> Iterator[Dict[str, np.ndarray]]:
  """Yields host-local training batches for global steps start_step, ...

  Each batch holds the parsed features, labels, `segment_mask` and `clip_id`.
  order "shuffle": shuffle_buffer 0 orders each epoch as a uniform
  permutation of the host's clips; N > 0 reads the shards in a seeded order
  through an N-clip buffer. order "fixed": every epoch the host's clips in
  their written order (`written_order`; the last incomplete batch is
  dropped, as AVE's supervised_main.py never uses it).
  """
  _check_order(order)
  tf = _tf()
  if not shuffle_buffer or order == "fixed":
    yield from _permuted_batches(tf, src, local_batch_size, seed, start_step,
                                 num_steps, order)
    return
  spe = src.steps_per_epoch(local_batch_size)
  step = start_step
  while num_steps is None or step < num_steps:
    epoch, offset = divmod(step, spe)
    files = _epoch_files(src.files, seed, epoch)
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=None)
    ds = ds.shuffle(shuffle_buffer, seed=int(
        np.random.default_rng([seed, epoch, 1]).integers(2**31)))
    ds = ds.take(spe * local_batch_size).skip(offset * local_batch_size)
    ds = src._parse(tf, ds, local_batch_size, True).prefetch(2)  # pylint: disable=protected-access
    for batch in _iterate(tf, ds, files, src.rebuild):
      yield batch
      step += 1
      if num_steps is not None and step >= num_steps:
        return


def _segment_rows(batch: Dict[str, np.ndarray], info: dict,
                  features: Sequence[str]) -> Dict[str, np.ndarray]:
  """B clips -> B*T rows of one segment each (row b*T + t is clip b's
  segment t): features [B*T, fps, ...], `segment_mask` and `seg_*`
  [B*T, 1, ...], clip-level keys repeated."""
  t = int(info["max_segments"])
  fps = {x.name: x.frames_per_segment for x in info["feature_specs"]}
  b = len(batch["clip_id"])
  rows = {}
  for k, v in batch.items():
    if k in features:
      rows[k] = v.reshape((b * t, fps[k]) + v.shape[2:])
    elif k == "segment_mask" or k.startswith("seg_"):
      rows[k] = v.reshape((b * t, 1) + v.shape[2:])
    else:
      rows[k] = np.repeat(v, t, axis=0)
  return rows


def segment_batches(clip_batches: Iterator[Dict[str, np.ndarray]],
                    info: dict, features: Sequence[str], seed: int,
                    start_step: int = 0) -> Iterator[Dict[str, np.ndarray]]:
  """Training batches of single segments (`config.data.batch_unit=
  "segment"`): each batch of B clips becomes T batches of B (clip, segment)
  rows, each row a clip of one segment (features [B, fps, ...],
  `segment_mask` [B, 1], `seg_*` [B, 1, C]; clip-level keys repeated), in
  a seeded order over the batch's B*T rows. So a step sees B pairs, as the
  AVE cross-modality reference (Keras fit on segment pairs, batch 8), and
  an epoch has T times the steps; the order is a permutation within each
  group of B clips (`split_segment_batches` permutes all pairs of the
  split, as the reference).
  start_step (in segment batches) skips the first start_step % T batches of
  the first clip batch (the caller starts the clips at start_step // T)."""
  t = int(info["max_segments"])
  step = (start_step // t) * t
  for batch in clip_batches:
    b = len(batch["clip_id"])
    rows = _segment_rows(batch, info, features)
    order = np.random.default_rng([seed, step, 7]).permutation(b * t)
    for i in range(t):
      if step >= start_step:
        yield {k: v[order[i * b:(i + 1) * b]] for k, v in rows.items()}
      step += 1


# `split_segment_batches` holds a host's whole split in memory; above this
# it refuses (batch_unit="segment" permutes within groups of clips instead).
SPLIT_ROWS_MAX_BYTES = 4 << 30


def split_segment_bytes(src: "Source") -> int:
  """Host memory of `split_segment_batches`' rows for `src` (features only,
  float32)."""
  specs = {x.name: x for x in src.info["feature_specs"]}
  per_segment = sum(specs[f].frames_per_segment * int(np.prod(
      specs[f].shape)) for f in src.features) * 4
  return max(src.host_counts) * int(src.info["max_segments"]) * per_segment


def split_segment_batches(src: "Source", local_batch_size: int, seed: int,
                          start_step: int = 0,
                          num_steps: Optional[int] = None,
                          order: str = "shuffle"
                          ) -> Iterator[Dict[str, np.ndarray]]:
  """Training batches of single segments, each epoch a uniform permutation
  of ALL (clip, segment) rows of the host's split (`config.data.batch_unit=
  "segment_split"`: the AVE cross-modality reference's Keras `fit(shuffle=
  True)` over the split's segment pairs). Rows as `segment_batches`; the
  split is read once into memory (its features must fit in
  `SPLIT_ROWS_MAX_BYTES`). An epoch has as many steps as with
  `segment_batches` (T x the clip batches), and the stream is a pure
  function of (seed, step), so a resumed run continues it exactly.
  order="fixed": every epoch the clips in their written order
  (`written_order`), each clip's segments in time order (Keras
  `fit(shuffle=False)`)."""
  _check_order(order)
  need = split_segment_bytes(src)
  if need > SPLIT_ROWS_MAX_BYTES:
    raise ValueError(
        f"data.batch_unit='segment_split' holds split {src.split!r} of "
        f"{src.data_dir} in memory: {need / 2**30:.1f} GiB of features "
        f"{tuple(src.features)}, over {SPLIT_ROWS_MAX_BYTES / 2**30:.0f} GiB;"
        " use --config.data.batch_unit=segment (pairs permuted within "
        "groups of batch_size clips)")
  parts = []
  for batch in eval_batches(src, local_batch_size):
    keep = batch["_mask"] > 0
    parts.append({k: v[keep] for k, v in batch.items() if k != "_mask"})
  clips = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  rows = _segment_rows(clips, src.info, src.features)
  n = len(rows["clip_id"])
  t = int(src.info["max_segments"])
  spe = src.steps_per_epoch(local_batch_size) * t
  fixed = None
  if order == "fixed":  # clip-major rows (clip k: rows k*t .. k*t+t-1)
    fixed = (written_order(src)[:, None] * t + np.arange(t)).reshape(-1)
  step, perm, perm_epoch = start_step, None, None
  while num_steps is None or step < num_steps:
    epoch, offset = divmod(step, spe)
    if fixed is not None:
      perm = fixed
    elif epoch != perm_epoch:  # one permutation per epoch, not per step
      perm = np.random.default_rng([seed, epoch, 3]).permutation(n)
      perm_epoch = epoch
    idx = perm[offset * local_batch_size:(offset + 1) * local_batch_size]
    yield {k: v[idx] for k, v in rows.items()}
    step += 1


def num_eval_batches(src: Source, local_batch_size: int) -> int:
  return max(1, math.ceil(max(src.host_counts) / local_batch_size))


def _pad(batch: Dict[str, np.ndarray], n: int) -> Dict[str, np.ndarray]:
  """Pads every array to n rows with zeros; adds `_mask`."""
  b = len(batch["clip_id"])
  out = {"_mask": np.concatenate([np.ones(b, np.float32),
                                  np.zeros(n - b, np.float32)])}
  for k, v in batch.items():
    pad = np.zeros((n - b,) + v.shape[1:], v.dtype)
    out[k] = np.concatenate([v, pad])
  return out


def eval_batches(src: Source, local_batch_size: int
                 ) -> Iterator[Dict[str, np.ndarray]]:
  """Yields every clip of this host once, padded; same count on all hosts."""
  tf = _tf()
  ds = tf.data.TFRecordDataset(src.files)
  ds = src._parse(tf, ds, local_batch_size, False).prefetch(2)  # pylint: disable=protected-access
  n, template = 0, None
  for batch in _iterate(tf, ds, src.files, src.rebuild):
    template = batch
    n += 1
    yield _pad(batch, local_batch_size)
  total = num_eval_batches(src, local_batch_size)
  if template is None:  # this host has no clip at all: build an empty batch
    template = next(iter(src._parse(  # pylint: disable=protected-access
        tf, tf.data.TFRecordDataset(
            tfrecord.split_files(src.data_dir, src.info, src.split)[:1]),
        1, False).as_numpy_iterator()))
  empty = {k: v[:0] for k, v in template.items()}
  for _ in range(total - n):
    yield _pad(empty, local_batch_size)


def read_clips(out_dir: str, split: str, batch_size: int = 16):
  """Yields the clip dicts of a converted split, unpadded (inspection/tests)."""
  info = tfrecord.read_info(out_dir)
  specs = info["feature_specs"]
  src = Source(out_dir, split, [s.name for s in specs])
  for batch in eval_batches(src, batch_size):
    for i in range(int(batch["_mask"].sum())):
      t = int(batch["segment_mask"][i].sum())
      clip = {"id": batch["clip_id"][i].decode()}
      for s in specs:
        clip[s.name] = batch[s.name][i, :t * s.frames_per_segment]
      for k in info["splits"][split]["label_keys"]:
        clip[k] = batch[k][i, :t] if k.startswith("seg_") else batch[k][i]
      yield clip

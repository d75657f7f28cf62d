"""MA stage 2: modality-aware label refinement by swapping tracks.

Wu & Yang 2021, Sec. 3.2 (Eqs. 4-7) and the reference code
(step2_find_exchange): every training clip i is paired with a clip j whose
weak label set is disjoint from its own. The frozen stage-1 model (by default
its final-epoch checkpoint, `config.ma.checkpoint`) scores the assembled clips
(A_i, V_j) and (A_j, V_i); any evidence of a class of clip i can then only
come from the track of i that was kept. Predictions are divided by the class's
normalised training error E_c = err_c / max err (per modality, err_c = mean
over training clips of [p_c > 0.5] != y_c on the original clips, in the
reference's float32 form 1 - accuracy), and the
label of class c is dropped

  visual: when both heads on (A_j, V_i) give p / E^v_c < 0.5,
  audio:  when both heads on (A_i, V_j) give p / E^a_c < 0.5.

A class with E_c = 0 (no training error) is never dropped (the reference's
p / 0 is inf or nan, never < 0.5).

Partners (`config.ma.partners`):
  "global" (default, the reference's dataloader): j is drawn uniformly from
    every clip of the train split whose label set is disjoint from i's (the
    reference's rejection sampling), one partner per clip for both swaps;
    the pairs are then read by record offset and scored in batches of
    `config.ma.batch_size`.
  "batch": j is drawn inside each refinement batch (`config.ma.batch_size`
    clips in file order), vectorised on device with no extra reads; a clip
    whose batch holds no disjoint clip keeps its labels.
Either way a clip with no disjoint partner keeps its labels (`no_partner` in
the summary; the reference would loop forever). The two assembled clips and
the original are scored by one jitted function (three forward passes, vmapped)
over the mesh. Assembled clips of different lengths use the segments valid in
both.

Outputs in the refinement directory: `dataset/` (a copy of the dataset whose
train split carries the refined `audio_labels`/`visual_labels`; the other
splits are linked), `refined_labels.csv` (clip, class, audio_kept,
visual_kept for every weak label), `swap_predictions.npz` and `summary.json`
(written last: the stage is complete when it exists). When the source train
split carries true per-modality labels (the synthetic dataset), the summary
reports precision and recall of the dropped labels against them.
"""

import csv
import functools
import os
import shutil
from typing import Dict, Iterator, Optional, Tuple

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np

from avjax.data import pipeline
from avjax.data import schema
from avjax.data import tfrecord
from avjax.trainers import avvp_weak
from avjax.trainers import loop
from avjax.utils import sharding
from avjax.utils import writers

AUDIO_KEYS = ("audio",)
VISUAL_KEYS = ("visual", "motion")
# Variant axis of the predictions: original clip, (A_i, V_j), (A_j, V_i).
ORIG, SWAP_VISUAL, SWAP_AUDIO = 0, 1, 2
MODALITIES = ("audio", "visual", "both")
PARTNER_MODES = ("global", "batch")
# config.ma.checkpoint -> the stage-1 checkpoint manager it restores.
# "final" (the reference: step 1 saves its last epoch) and "latest" (its
# older name) are the same checkpoint.
CHECKPOINTS = {"final": "latest", "latest": "latest", "best": "best"}
SUMMARY_FILE = "summary.json"
# Prefix of the partner's streams in a pair batch (`pair_batches`).
PARTNER = "partner_"


def pick_partners(labels: jnp.ndarray, rng: jax.Array,
                  valid: Optional[jnp.ndarray] = None
                  ) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """A random partner with a disjoint label set for every clip of a batch
  (`ma.partners="batch"`).

  Args:
    labels: [B, C] multi-hot weak labels.
    rng: PRNG key.
    valid: optional [B]; rows with 0 (padding) are never partners.

  Returns:
    partner [B] int32 indices into the batch (never the clip itself) and ok
    [B] bool, False where no valid disjoint clip exists (partner meaningless).
  """
  b = labels.shape[0]
  y = (labels > 0).astype(jnp.float32)
  cand = (y @ y.T == 0) & ~jnp.eye(b, dtype=bool)
  if valid is not None:
    cand &= (valid > 0)[None, :]
  scores = jnp.where(cand, jax.random.uniform(rng, (b, b)), -1.0)
  return jnp.argmax(scores, axis=1).astype(jnp.int32), cand.any(axis=1)


def draw_partners(labels: np.ndarray, rng: np.random.Generator
                  ) -> Tuple[np.ndarray, np.ndarray]:
  """A partner for every clip of a split (`ma.partners="global"`).

  As the reference dataloader's rejection sampling (draw a clip uniformly,
  redraw until its label set is disjoint): clip i's partner is uniform over
  every clip whose label set is disjoint from i's (i itself only when its
  label set is empty). Exact, grouped by distinct label set.

  Args:
    labels: [N, C] multi-hot weak labels of the whole split.
    rng: NumPy generator.

  Returns:
    partner [N] int64 indices into the split and ok [N] bool, False where
    no clip of the split is disjoint (partner meaningless).
  """
  y = np.asarray(labels) > 0
  n = len(y)
  partner, ok = np.zeros(n, np.int64), np.zeros(n, bool)
  if not n:
    return partner, ok
  sets, inv = np.unique(y, axis=0, return_inverse=True)
  inv = inv.reshape(-1)
  disjoint = ~(sets[:, None, :] & sets[None, :, :]).any(-1)  # [U, U]
  for u in range(len(sets)):
    members = np.flatnonzero(inv == u)
    cand = np.flatnonzero(disjoint[u][inv])
    if cand.size:
      partner[members] = cand[rng.integers(0, cand.size, members.size)]
      ok[members] = True
  return partner, ok


def swap_streams(inputs: Dict[str, jnp.ndarray], other: Dict[str, jnp.ndarray],
                 keys: Tuple[str, ...]) -> Dict[str, jnp.ndarray]:
  """`inputs` with the streams `keys` of `other` (row by row); the segment
  mask becomes the segments valid in both."""
  out = dict(inputs)
  for k in keys:
    if k in inputs:
      out[k] = other[k]
  if "segment_mask" in inputs:
    out["segment_mask"] = inputs["segment_mask"] * other["segment_mask"]
  return out


def assemble(inputs: Dict[str, jnp.ndarray], partner: jnp.ndarray,
             keys: Tuple[str, ...]) -> Dict[str, jnp.ndarray]:
  """Replaces the streams `keys` of every clip by its partner's (an index
  into the same batch)."""
  other = {k: jnp.take(inputs[k], partner, axis=0)
           for k in keys + ("segment_mask",) if k in inputs}
  return swap_streams(inputs, other, keys)


def score_variants(state, x: Dict[str, jax.Array],
                   other: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  """`audio_prob`/`visual_prob` [B, 3, C] of x (ORIG), x with the visual
  streams of `other` (SWAP_VISUAL) and with its audio (SWAP_AUDIO)."""
  variants = (x, swap_streams(x, other, VISUAL_KEYS),
              swap_streams(x, other, AUDIO_KEYS))
  stacked = jax.tree.map(lambda *v: jnp.stack(v), *variants)
  out = jax.vmap(lambda b: state.apply_fn(
      state.variables(), b, train=False))(stacked)
  return {k: jnp.moveaxis(out[k], 0, 1) for k in ("audio_prob", "visual_prob")}


def _bookkeeping(res: dict, batch: Dict[str, jax.Array]) -> dict:
  for k in ("labels", "audio_labels", "visual_labels", "_mask",
            "clip_id_bytes"):
    if k in batch:
      res[k] = batch[k]
  return res


def swap_predict(state, batch: Dict[str, jax.Array], index: jax.Array, *,
                 seed: int) -> Dict[str, jax.Array]:
  """Pairs inside one global batch, assembles and scores it (pure; jit it).

  Returns per clip: `audio_prob`/`visual_prob` [B, 3, C] (variants ORIG,
  SWAP_VISUAL, SWAP_AUDIO), `ok` [B], `partner_id_bytes`, and the batch's
  ids, labels and `_mask`.
  """
  rng = jax.random.fold_in(jax.random.PRNGKey(seed), index)
  partner, ok = pick_partners(batch["labels"], rng, batch.get("_mask"))
  x = schema.model_inputs(batch)
  other = {k: jnp.take(x[k], partner, axis=0)
           for k in AUDIO_KEYS + VISUAL_KEYS + ("segment_mask",) if k in x}
  res = score_variants(state, x, other)
  res["ok"] = ok
  res["partner_id_bytes"] = jnp.take(batch["clip_id_bytes"], partner, axis=0)
  return _bookkeeping(res, batch)


def pair_predict(state, batch: Dict[str, jax.Array]) -> Dict[str, jax.Array]:
  """Scores a batch of `pair_batches` (each clip with its partner's streams
  under `PARTNER`-prefixed keys); same outputs as `swap_predict`."""
  own = {k: v for k, v in batch.items()
         if not k.startswith(PARTNER) and k != "ok"}
  other = {k[len(PARTNER):]: v for k, v in batch.items()
           if k.startswith(PARTNER) and k != PARTNER + "id_bytes"}
  res = score_variants(state, schema.model_inputs(own), other)
  res["ok"] = batch["ok"] > 0
  res["partner_id_bytes"] = batch[PARTNER + "id_bytes"]
  return _bookkeeping(res, batch)


def _gather_sorted(chunks) -> Dict[str, np.ndarray]:
  """Device outputs of every batch -> host arrays of the real clips, by id."""
  chunks = sharding.gather(chunks)
  out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  keep = out.pop("_mask") > 0
  out = {k: v[keep] for k, v in out.items()}
  out["ids"] = np.asarray(sharding.array_to_ids(out.pop("clip_id_bytes")))
  out["partner_ids"] = np.asarray(sharding.array_to_ids(
      out.pop("partner_id_bytes")))
  order = np.argsort(out["ids"], kind="stable")
  return {k: v[order] for k, v in out.items()}


def collect(s: loop.Setup, state, batch_size: int
            ) -> Dict[str, np.ndarray]:
  """Runs `swap_predict` over the train split (`ma.partners="batch"`); host
  arrays sorted by id."""
  local = sharding.check_batch_size(batch_size, "ma.batch_size")
  src = pipeline.Source(s.data_dir, s.config.data.train_split, s.features,
                        jax.process_index(), jax.process_count())
  fn = jax.jit(functools.partial(swap_predict, seed=s.config.seed),
               out_shardings=sharding.data_sharding(s.mesh))
  return _gather_sorted([fn(state, batch, i) for i, batch in enumerate(
      sharding.prefetch_to_mesh(pipeline.eval_batches(src, local), s.mesh))])


class SplitReader:
  """Random access to the parsed clips of one split (every shard, on every
  host), in file order."""

  def __init__(self, data_dir: str, split: str):
    self.info = tfrecord.read_info(data_dir)
    self.split = split
    # pylint: disable=protected-access
    self._reader = pipeline._RecordReader(
        tfrecord.split_files(data_dir, self.info, split))
    self._tf = pipeline._tf()
    # pylint: enable=protected-access

  def __len__(self) -> int:
    return len(self._reader.index)

  def read(self, ks, features) -> Dict[str, np.ndarray]:
    """Clips `ks` (file-order indices) parsed as a batch of `features`."""
    ser = self._tf.constant([self._reader.read(int(k)) for k in ks],
                            self._tf.string)
    out = tfrecord.parse_batch(ser, self.info, self.split, features)
    return {k: v.numpy() for k, v in out.items()}

  def labels(self, chunk: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """(ids [N], weak labels [N, C]) of the whole split."""
    ids, labels = [], []
    for start in range(0, len(self), chunk):
      b = self.read(range(start, min(start + chunk, len(self))), ())
      ids.extend(b["clip_id"])
      labels.append(b["labels"])
    c = len(self.info["classes"])
    return (np.asarray(ids, object),
            np.concatenate(labels) if labels else np.zeros((0, c), np.float32))


def pair_batches(reader: SplitReader, features, partner: np.ndarray,
                 ok: np.ndarray, local_batch: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[Dict[str, np.ndarray]]:
  """Host-local batches of this host's clips, each with its partner's
  streams (`PARTNER` + key), `ok` and `_mask` (0: padding); every host
  yields the same number of batches."""
  n = len(reader)
  if not n:
    raise ValueError(f"split {reader.split!r} has no clip to refine")
  mine = np.array_split(np.arange(n), process_count)[process_index]
  per_host = -(-n // process_count)
  for start in range(0, max(per_host, 1), local_batch):
    ks = mine[start:start + local_batch]
    real = len(ks)
    ks = np.concatenate([ks, np.zeros(local_batch - real, ks.dtype)])
    b = reader.read(ks, features)
    p = reader.read(partner[ks], features)
    for k in tuple(features) + ("segment_mask",):
      b[PARTNER + k] = p[k]
    b[PARTNER + "id_bytes"] = sharding.ids_to_array(p["clip_id"])
    b["ok"] = ok[ks].astype(np.float32)
    b["_mask"] = (np.arange(local_batch) < real).astype(np.float32)
    yield b


def collect_pairs(s: loop.Setup, state, batch_size: int
                  ) -> Dict[str, np.ndarray]:
  """Draws every train clip's partner from the whole split
  (`draw_partners`, seeded by `config.seed`) and runs `pair_predict` over
  the pairs; host arrays sorted by id."""
  local = sharding.check_batch_size(batch_size, "ma.batch_size")
  reader = SplitReader(s.data_dir, s.config.data.train_split)
  _, labels = reader.labels()
  partner, ok = draw_partners(
      labels, np.random.default_rng([int(s.config.seed), 2021]))
  fn = jax.jit(pair_predict, out_shardings=sharding.data_sharding(s.mesh))
  return _gather_sorted([fn(state, batch) for batch in sharding.prefetch_to_mesh(
      pair_batches(reader, s.features, partner, ok, local,
                   jax.process_index(), jax.process_count()), s.mesh)])


def error_rates(prob: np.ndarray, labels: np.ndarray,
                threshold: float = 0.5) -> np.ndarray:
  """Per-class training error err_c / max_c err_c of [N, C] probabilities
  (all 0 when no class errs).

  Bit for bit the reference's float32 arithmetic: accuracy = correct / N
  rounded to float32 (its `.float().mean(0)`; the count is exact), then
  err = 1 - accuracy in float32. The exact k / N differs from that by up to
  ~2e-5 relative (e.g. 1/2000 vs 1 - fl(1999/2000)), enough to flip a
  probability lying that close to 0.5 E_c in `decide`.
  """
  prob, labels = np.asarray(prob), np.asarray(labels)
  correct = ((prob > threshold) == (labels > 0)).sum(axis=0)
  n = np.float32(max(len(prob), 1))
  err = np.float32(1) - correct.astype(np.float32) / n
  top = err.max() if err.size else np.float32(0)
  return err / top if top > 0 else np.zeros_like(err)


def below(prob: np.ndarray, e: np.ndarray, threshold: float) -> np.ndarray:
  """prob / e < threshold per class (float32): a class with e = 0 is never
  below (the reference's p / 0 is inf, or nan for p = 0)."""
  with np.errstate(divide="ignore", invalid="ignore"):
    return (np.asarray(prob, np.float32) /
            np.asarray(e, np.float32)[None, :]) < threshold


def decide(pred: Dict[str, np.ndarray], e_audio: np.ndarray,
           e_visual: np.ndarray, modalities: str = "both",
           threshold: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
  """Which weak labels each modality keeps (Eqs. 6-7): bool [N, C] each."""
  if modalities not in MODALITIES:
    raise ValueError(f"modalities={modalities!r}; valid: {MODALITIES}")
  y = pred["labels"] > 0
  ok = pred["ok"].astype(bool)[:, None]
  a, v = pred["audio_prob"], pred["visual_prob"]
  drop_v = (below(v[:, SWAP_AUDIO], e_visual, threshold) &
            below(a[:, SWAP_AUDIO], e_visual, threshold))
  drop_a = (below(a[:, SWAP_VISUAL], e_audio, threshold) &
            below(v[:, SWAP_VISUAL], e_audio, threshold))
  if modalities == "visual":
    drop_a = np.zeros_like(drop_a)
  if modalities == "audio":
    drop_v = np.zeros_like(drop_v)
  return y & ~(drop_a & ok), y & ~(drop_v & ok)


def drop_quality(labels: np.ndarray, kept: np.ndarray,
                 truth: np.ndarray) -> Dict[str, float]:
  """Precision/recall of the dropped labels vs true per-modality labels."""
  y, t = labels > 0, truth > 0
  dropped, absent = y & ~kept, y & ~t
  hit = float((dropped & absent).sum())
  agree = lambda x: float((x == t)[y].mean()) if y.any() else 1.0
  return {"dropped": int(dropped.sum()), "truly_absent": int(absent.sum()),
          "precision": hit / max(int(dropped.sum()), 1),
          "recall": hit / max(int(absent.sum()), 1),
          "label_accuracy_before": agree(y),
          "label_accuracy_after": agree(kept)}


def read_clips(data_dir: str, split: str, batch_size: int = 64
               ) -> Iterator[dict]:
  """Every clip of a split back as a schema dict (padding removed)."""
  info = tfrecord.read_info(data_dir)
  specs = info["feature_specs"]
  src = pipeline.Source(data_dir, split, [sp.name for sp in specs])
  keys = info["splits"][split]["label_keys"]
  for batch in pipeline.eval_batches(src, batch_size):
    for i in np.flatnonzero(batch["_mask"]):
      t = int(batch["segment_mask"][i].sum())
      clip = {"id": batch["clip_id"][i].decode("utf-8")}
      for sp in specs:
        clip[sp.name] = batch[sp.name][i, :t * sp.frames_per_segment]
      for k in keys:
        clip[k] = batch[k][i, :t] if k in schema.DENSE_KEYS else batch[k][i]
      yield clip


def write_refined_dataset(src_dir: str, out_dir: str, split: str,
                          refined: Dict[str, Tuple[np.ndarray, np.ndarray]]
                          ) -> dict:
  """Copies `src_dir` to `out_dir` with refined labels in `split`.

  `refined` maps clip id -> (audio_labels, visual_labels). Other splits are
  hard-linked (copied where links fail). Written atomically. The split keeps
  the source's layout (every clip in the same file at the same position), so
  stage 3 reads its clips in the order stage 1 read them with the same seed,
  as the official step 3 (same seed, same rows) replays step 1's order.
  """
  info = tfrecord.read_info(src_dir)
  tmp = out_dir + ".tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  w = tfrecord.DatasetWriter(
      tmp, info.get("name", "dataset"), info["classes"],
      info["feature_specs"], extra=dict(info.get("extra", {}),
                                        ma_refined_from=src_dir))

  def clips():
    for clip in read_clips(src_dir, split):
      clip["audio_labels"], clip["visual_labels"] = refined[clip["id"]]
      yield clip

  keys = tuple(info["splits"][split]["label_keys"])
  keys += tuple(k for k in ("audio_labels", "visual_labels") if k not in keys)
  counts = info["splits"][split]["file_counts"]
  w.write_split(split, clips(), keys, num_shards=len(counts),
                shards=[i for i, c in enumerate(counts) for _ in range(c)])
  for other, entry in info["splits"].items():
    if other == split:
      continue
    for name in entry["files"]:
      s, d = os.path.join(src_dir, name), os.path.join(tmp, name)
      try:
        os.link(s, d)
      except OSError:
        shutil.copyfile(s, d)
    w.info["splits"][other] = dict(entry)
  w.info["max_segments"] = max(w.info["max_segments"], info["max_segments"])
  res = w.finish()
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(tmp, out_dir)
  return res


def write_csv(path: str, pred: Dict[str, np.ndarray], classes,
              keep_a: np.ndarray, keep_v: np.ndarray) -> None:
  """One row per weak label: clip, class, audio_kept, visual_kept."""
  with open(path + ".tmp", "w", newline="") as f:
    wr = csv.writer(f)
    wr.writerow(["clip", "class", "audio_kept", "visual_kept"])
    for i, c in zip(*np.nonzero(pred["labels"] > 0)):
      wr.writerow([pred["ids"][i], classes[c], int(keep_a[i, c]),
                   int(keep_v[i, c])])
  os.replace(path + ".tmp", path)


def summarize(pred, e_a, e_v, keep_a, keep_v, classes, extra) -> dict:
  """The JSON summary: counts, per-class error rates, drop quality."""
  y = pred["labels"] > 0
  res = dict(extra, num_clips=int(len(y)), num_labels=int(y.sum()),
             no_partner=int((~pred["ok"].astype(bool)).sum()),
             dropped_audio=int((y & ~keep_a).sum()),
             dropped_visual=int((y & ~keep_v).sum()),
             dropped_both=int((y & ~keep_a & ~keep_v).sum()),
             error_rate_audio=dict(zip(classes, map(float, e_a))),
             error_rate_visual=dict(zip(classes, map(float, e_v))))
  for m, kept in (("audio", keep_a), ("visual", keep_v)):
    if f"{m}_labels" in pred:
      res[f"quality_{m}"] = drop_quality(pred["labels"], kept,
                                         pred[f"{m}_labels"])
  return res


def _sync_hosts(name: str) -> None:
  """Waits for every host (the refined dataset is written by host 0)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def restore_stage1(config, stage1_workdir: str):
  """(Setup, restored state, step) of a trained stage-1 workdir: the
  checkpoint `config.ma.checkpoint` (final, as the reference, or best)."""
  s = loop.setup(config, train=False, trainer=avvp_weak.TRAINER)
  if config.model.input_modalities != "av":
    raise ValueError("MA refinement swaps tracks: it needs "
                     "config.model.input_modalities='av'")
  state, _, step = loop.restore(s, stage1_workdir, checkpoint_name(config))
  return s, state, step


def checkpoint_name(config) -> str:
  """`config.ma.checkpoint` as a checkpoint manager name (latest or best)."""
  which = config.ma.checkpoint
  if which not in CHECKPOINTS:
    raise ValueError(f"config.ma.checkpoint={which!r}; valid: "
                     f"{sorted(CHECKPOINTS)}")
  return CHECKPOINTS[which]


def refine(config, stage1_workdir: str, out_dir: str) -> dict:
  """Runs stage 2 on `stage1_workdir` and writes `out_dir` (see module doc).

  `config` is the stage-1 config; `config.ma` holds `modalities` (audio,
  visual or both), `checkpoint` (final or best), `partners` (global or
  batch), `batch_size` (global clips per refinement batch) and `threshold`.
  """
  partners = config.ma.partners
  if partners not in PARTNER_MODES:
    raise ValueError(f"config.ma.partners={partners!r}; valid: "
                     f"{PARTNER_MODES}")
  s, state, step = restore_stage1(config, stage1_workdir)
  run = collect_pairs if partners == "global" else collect
  pred = run(s, state, config.ma.batch_size)
  th = config.ma.threshold
  e_a = error_rates(pred["audio_prob"][:, ORIG], pred["labels"], th)
  e_v = error_rates(pred["visual_prob"][:, ORIG], pred["labels"], th)
  keep_a, keep_v = decide(pred, e_a, e_v, config.ma.modalities, th)
  classes = s.info["classes"]
  summary = summarize(pred, e_a, e_v, keep_a, keep_v, classes, {
      "stage1_workdir": stage1_workdir,
      "checkpoint": config.ma.checkpoint,
      "partners": partners, "step": int(step),
      "modalities": config.ma.modalities,
      "dataset": os.path.join(out_dir, "dataset")})
  if jax.process_index() == 0:
    os.makedirs(out_dir, exist_ok=True)
    refined = {cid: (a.astype(np.float32), v.astype(np.float32))
               for cid, a, v in zip(pred["ids"], keep_a, keep_v)}
    write_refined_dataset(s.data_dir, summary["dataset"],
                          config.data.train_split, refined)
    write_csv(os.path.join(out_dir, "refined_labels.csv"), pred, classes,
              keep_a, keep_v)
    np.savez_compressed(os.path.join(out_dir, "swap_predictions.npz"),
                        **pred)
  _sync_hosts("ma_refine_written")
  writers.write_json(os.path.join(out_dir, SUMMARY_FILE), summary)
  writers.log("refinement: %s", {k: v for k, v in summary.items()
                                 if not k.startswith("error_rate")})
  return summary

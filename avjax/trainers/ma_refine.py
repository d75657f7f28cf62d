"""MA stage 2: modality-aware label refinement by swapping tracks.

Wu & Yang 2021, Sec. 3.2 (Eqs. 4-7) and the reference code: every training
clip i is paired with a clip j whose weak label set is disjoint from its own.
The frozen stage-1 model scores the assembled clips (A_i, V_j) and (A_j, V_i);
any evidence of a class of clip i can then only come from the track of i that
was kept. Predictions are divided by the class's normalised training error
E_c = err_c / max err (per modality, err_c = mean over training clips of
[p_c > 0.5] != y_c), and the label of class c is dropped

  visual: when both heads on (A_j, V_i) give p / E^v_c < 0.5,
  audio:  when both heads on (A_i, V_j) give p / E^a_c < 0.5.

Partners are drawn inside each refinement batch (`config.ma.batch_size`
clips, a random pool), vectorised on device: the pairing, the two assembled
clips and the three forward passes (original + two swaps) are one jitted
function over the mesh, with no per-clip Python loop. A clip whose pool holds
no disjoint clip keeps its labels (`no_partner` in the summary). Assembled
clips of different lengths use the segments valid in both.

Outputs in the refinement directory: `dataset/` (a copy of the dataset whose
train split carries the refined `audio_labels`/`visual_labels`; the other
splits are linked), `refined_labels.csv` (clip, class, audio_kept,
visual_kept for every weak label) and `summary.json` (written last: the stage
is complete when it exists). When the source train split carries true
per-modality labels (the synthetic dataset), the summary reports precision
and recall of the dropped labels against them.
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
from avjax.trainers import train_lib
from avjax.utils import checkpointing
from avjax.utils import sharding
from avjax.utils import writers

AUDIO_KEYS = ("audio",)
VISUAL_KEYS = ("visual", "motion")
# Variant axis of the predictions: original clip, (A_i, V_j), (A_j, V_i).
ORIG, SWAP_VISUAL, SWAP_AUDIO = 0, 1, 2
MODALITIES = ("audio", "visual", "both")
SUMMARY_FILE = "summary.json"


def pick_partners(labels: jnp.ndarray, rng: jax.Array,
                  valid: Optional[jnp.ndarray] = None
                  ) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """A random partner with a disjoint label set for every clip of a batch.

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


def assemble(inputs: Dict[str, jnp.ndarray], partner: jnp.ndarray,
             keys: Tuple[str, ...]) -> Dict[str, jnp.ndarray]:
  """Replaces the streams `keys` of every clip by its partner's."""
  out = dict(inputs)
  for k in keys:
    if k in inputs:
      out[k] = jnp.take(inputs[k], partner, axis=0)
  if "segment_mask" in inputs:
    m = inputs["segment_mask"]
    out["segment_mask"] = m * jnp.take(m, partner, axis=0)
  return out


def swap_predict(state, batch: Dict[str, jax.Array], index: jax.Array, *,
                 seed: int) -> Dict[str, jax.Array]:
  """Pairs, assembles and scores one global batch (pure; jit it).

  Returns per clip: `audio_prob`/`visual_prob` [B, 3, C] (variants ORIG,
  SWAP_VISUAL, SWAP_AUDIO), `ok` [B], `partner_id_bytes`, and the batch's
  ids, labels and `_mask`.
  """
  rng = jax.random.fold_in(jax.random.PRNGKey(seed), index)
  partner, ok = pick_partners(batch["labels"], rng, batch.get("_mask"))
  x = train_lib.model_inputs(batch)
  variants = (x, assemble(x, partner, VISUAL_KEYS),
              assemble(x, partner, AUDIO_KEYS))
  stacked = jax.tree.map(lambda *v: jnp.stack(v), *variants)
  out = jax.vmap(lambda b: state.apply_fn(
      {"params": state.params}, b, train=False))(stacked)
  res = {k: jnp.moveaxis(out[k], 0, 1) for k in ("audio_prob", "visual_prob")}
  res["ok"] = ok
  res["partner_id_bytes"] = jnp.take(batch["clip_id_bytes"], partner, axis=0)
  for k in ("labels", "audio_labels", "visual_labels", "_mask",
            "clip_id_bytes"):
    if k in batch:
      res[k] = batch[k]
  return res


def collect(s: avvp_weak.Setup, state, batch_size: int
            ) -> Dict[str, np.ndarray]:
  """Runs `swap_predict` over the train split; host arrays sorted by id."""
  local = sharding.check_batch_size(batch_size, "ma.batch_size")
  src = pipeline.Source(s.data_dir, s.config.data.train_split, s.features,
                        jax.process_index(), jax.process_count())
  fn = jax.jit(functools.partial(swap_predict, seed=s.config.seed),
               out_shardings=sharding.data_sharding(s.mesh))
  chunks = [fn(state, batch, i) for i, batch in enumerate(
      sharding.prefetch_to_mesh(pipeline.eval_batches(src, local), s.mesh))]
  chunks = sharding.gather(chunks)
  out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  keep = out.pop("_mask") > 0
  out = {k: v[keep] for k, v in out.items()}
  out["ids"] = np.asarray(sharding.array_to_ids(out.pop("clip_id_bytes")))
  out["partner_ids"] = np.asarray(sharding.array_to_ids(
      out.pop("partner_id_bytes")))
  order = np.argsort(out["ids"], kind="stable")
  return {k: v[order] for k, v in out.items()}


def error_rates(prob: np.ndarray, labels: np.ndarray,
                threshold: float = 0.5) -> np.ndarray:
  """Per-class training error err_c / max_c err_c of [N, C] probabilities."""
  err = np.mean((prob > threshold) != (labels > 0), axis=0)
  return err / max(float(err.max()), 1e-12)


def decide(pred: Dict[str, np.ndarray], e_audio: np.ndarray,
           e_visual: np.ndarray, modalities: str = "both",
           threshold: float = 0.5) -> Tuple[np.ndarray, np.ndarray]:
  """Which weak labels each modality keeps (Eqs. 6-7): bool [N, C] each."""
  if modalities not in MODALITIES:
    raise ValueError(f"modalities={modalities!r}; valid: {MODALITIES}")
  y = pred["labels"] > 0
  ok = pred["ok"].astype(bool)[:, None]
  a, v = pred["audio_prob"], pred["visual_prob"]
  norm = lambda p, e: p / np.maximum(e, 1e-12)[None, :]
  drop_v = ((norm(v[:, SWAP_AUDIO], e_visual) < threshold) &
            (norm(a[:, SWAP_AUDIO], e_visual) < threshold))
  drop_a = ((norm(a[:, SWAP_VISUAL], e_audio) < threshold) &
            (norm(v[:, SWAP_VISUAL], e_audio) < threshold))
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
  hard-linked (copied where links fail). Written atomically.
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
  w.write_split(split, clips(), keys,
                num_shards=len(info["splits"][split]["files"]))
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
  """(Setup, restored state, step) of a trained stage-1 workdir."""
  s = avvp_weak.setup(config, train=False)
  if config.model.input_modalities != "av":
    raise ValueError("MA refinement swaps tracks: it needs "
                     "config.model.input_modalities='av'")
  state, _ = avvp_weak.make_state(s)
  fp = avvp_weak.fingerprint(s, state.params)
  latest, best = avvp_weak.managers(stage1_workdir, config)
  which = config.ma.checkpoint
  state, _, step = checkpointing.restore(
      best if which == "best" else latest, None, state, fp)
  return s, state, step


def refine(config, stage1_workdir: str, out_dir: str) -> dict:
  """Runs stage 2 on `stage1_workdir` and writes `out_dir` (see module doc).

  `config` is the stage-1 config; `config.ma` holds `modalities` (audio,
  visual or both), `checkpoint` (latest or best), `batch_size` (global clips
  per partner pool) and `threshold`.
  """
  s, state, step = restore_stage1(config, stage1_workdir)
  pred = collect(s, state, config.ma.batch_size)
  th = config.ma.threshold
  e_a = error_rates(pred["audio_prob"][:, ORIG], pred["labels"], th)
  e_v = error_rates(pred["visual_prob"][:, ORIG], pred["labels"], th)
  keep_a, keep_v = decide(pred, e_a, e_v, config.ma.modalities, th)
  classes = s.info["classes"]
  summary = summarize(pred, e_a, e_v, keep_a, keep_v, classes, {
      "stage1_workdir": stage1_workdir, "checkpoint": config.ma.checkpoint,
      "step": int(step), "modalities": config.ma.modalities,
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

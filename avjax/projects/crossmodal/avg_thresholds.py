"""How good are the AVG ground-truth pairs? A threshold grid vs dense labels.

  python -m avjax.projects.crossmodal.avg_thresholds \
      --config=configs/avvp_crossmodal.py:variant=avg_pretrain --split=val \
      --audio=0.4,0.5,0.6 --visual=0.65,0.8,0.9

AVG pretraining (Lamba et al. 2021) labels two snippets of a graph positive
when they are in one connected component of the config's link rule
(`avg.link`: "any", cos(audio) >= a_t or cos(visual) >= v_t, the synthetic
default; "all", the official rule of the data=llp default, cos(audio) > a_t
and cos(visual) > v_t and not silent; `losses.grounding.ground_truth`, run
here as is). On a split
with dense labels (`seg_audio`, `seg_visual`) this compares those positives
with the truth "the two snippets share an event class, in either modality"
(off-diagonal pairs of real snippets) and prints, per (a_t, v_t), the
positive rate, the truth rate, precision, recall and F1 of the pairs, plus
the precision of the raw audio and visual edges against the same-modality
truth. That is how `configs/avvp_crossmodal.avg_block`'s synthetic
thresholds were chosen.
"""

import itertools
from typing import Dict, Iterable, List

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avjax.data import datasets
from avjax.data import pipeline
from avjax.data import schema
from avjax.losses import grounding
from avjax.utils import cli
from avjax.utils import runtime


def define_flags():
  """The command's flags (defined when run, not on import)."""
  flags.DEFINE_string("config", None, "Config with an `avg` block, e.g. "
                      "configs/avvp_crossmodal.py:variant=avg_pretrain")
  flags.DEFINE_string("split", "val", "Split with dense labels.")
  flags.DEFINE_list("audio", ["0.3", "0.4", "0.5", "0.6", "0.7"],
                    "Audio cosine thresholds.")
  flags.DEFINE_list("visual", ["0.65", "0.8", "0.85", "0.9", "0.95", "1.01"],
                    "Visual cosine thresholds (> 1: no visual edges).")


def share_class(x: jnp.ndarray) -> jnp.ndarray:
  """[G, N, C] 0/1 -> [G, N, N] bool: the two snippets share a class."""
  x = x.astype(jnp.float32)
  return jnp.einsum("gnc,gmc->gnm", x, x) > 0


def pair_counts(pos, truth, valid) -> Dict[str, jnp.ndarray]:
  """Sums over off-diagonal valid pairs: positives, truths, both, pairs."""
  off = valid * (1.0 - jnp.eye(valid.shape[-1], dtype=valid.dtype))
  pos, truth = pos * off, truth.astype(jnp.float32) * off
  return {"pos": pos.sum(), "truth": truth.sum(), "tp": (pos * truth).sum(),
          "pairs": off.sum()}


def rates(c: Dict[str, float]) -> Dict[str, float]:
  """Percentages from summed `pair_counts`."""
  c = {k: float(v) for k, v in c.items()}
  prec = c["tp"] / max(c["pos"], 1.0)
  rec = c["tp"] / max(c["truth"], 1.0)
  return {"pos_rate": 100 * c["pos"] / max(c["pairs"], 1.0),
          "truth_rate": 100 * c["truth"] / max(c["pairs"], 1.0),
          "precision": 100 * prec, "recall": 100 * rec,
          "f1": 100 * 2 * prec * rec / max(prec + rec, 1e-9)}


def batch_counts(batch, avg_cfg) -> Dict[str, jnp.ndarray]:
  """Pair counts of one padded batch: components vs the union truth, and
  the raw audio / visual edges vs the same-modality truth."""
  pos, valid = grounding.ground_truth(batch, avg_cfg)
  g = lambda x: grounding.to_graphs(x, avg_cfg.scope)
  seg_a, seg_v = g(batch["seg_audio"]), g(batch["seg_visual"])
  out = {f"cc_{k}": v for k, v in pair_counts(
      pos, share_class(jnp.maximum(seg_a, seg_v)), valid).items()}
  for name, thr, feats, seg in (
      ("audio", avg_cfg.audio_threshold, batch["audio"], seg_a),
      ("visual", avg_cfg.visual_threshold, _segment_mean(batch), seg_v)):
    edge = (grounding.cosine(g(feats), g(feats)) >= thr).astype(jnp.float32)
    out.update({f"{name}_{k}": v for k, v in pair_counts(
        edge, share_class(seg), valid).items()})
  return out


def _segment_mean(batch):
  t = batch["audio"].shape[1]
  vis = batch.get("visual", batch.get("motion"))
  return vis.reshape((vis.shape[0], t, -1) + vis.shape[2:]).mean(2)


def grid(batches: List[Dict[str, np.ndarray]], base_cfg,
         audio: Iterable[float], visual: Iterable[float]
         ) -> List[Dict[str, float]]:
  """One row of rates a (audio, visual) threshold pair."""
  rows = []
  for a_t, v_t in itertools.product(audio, visual):
    cfg = ml_collections.ConfigDict(base_cfg.to_dict())
    cfg.audio_threshold, cfg.visual_threshold = float(a_t), float(v_t)
    fn = jax.jit(lambda b, cfg=cfg: batch_counts(b, cfg))
    total = None
    for b in batches:
      c = jax.device_get(fn(b))
      total = c if total is None else {k: total[k] + c[k] for k in c}
    row = {"audio_threshold": float(a_t), "visual_threshold": float(v_t)}
    row.update(rates({k[3:]: v for k, v in total.items()
                      if k.startswith("cc_")}))
    for m in ("audio", "visual"):
      r = rates({k[len(m) + 1:]: v for k, v in total.items()
                 if k.startswith(m + "_")})
      row[f"{m}_edge_rate"], row[f"{m}_edge_prec"] = (r["pos_rate"],
                                                      r["precision"])
    rows.append(row)
  return rows


def markdown(rows: List[Dict[str, float]]) -> str:
  keys = ["audio_threshold", "visual_threshold", "pos_rate", "truth_rate",
          "precision", "recall", "f1", "audio_edge_rate", "audio_edge_prec",
          "visual_edge_rate", "visual_edge_prec"]
  lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
  for r in rows:
    lines.append("| " + " | ".join(f"{r[k]:.2f}" if k.endswith("threshold")
                                   else f"{r[k]:.1f}" for k in keys) + " |")
  return "\n".join(lines)


def load_batches(config, split: str, batch_size: int = 64):
  """Every clip of `split` of the config's data, as padded numpy batches
  with the AVG inputs and the dense labels."""
  data_dir = datasets.resolve(config.data)
  feats = ("audio", "visual", "motion")
  src = pipeline.Source(data_dir, split, feats)
  keep = set(feats) | set(schema.DENSE_KEYS) | {"segment_mask", "_mask"}
  return [{k: v for k, v in b.items() if k in keep}
          for b in pipeline.eval_batches(src, batch_size)]


def main(argv):
  del argv
  from avjax import sweep  # pylint: disable=g-import-not-at-top
  runtime.initialize()
  config = sweep.load_config(flags.FLAGS.config)
  rows = grid(load_batches(config, flags.FLAGS.split), config.avg,
              [float(x) for x in flags.FLAGS.audio],
              [float(x) for x in flags.FLAGS.visual])
  print(markdown(rows))


if __name__ == "__main__":
  define_flags()
  cli.run(main)

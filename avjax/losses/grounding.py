"""Audio-visual grounding (AVG) targets, margin loss and retrieval metrics.

Lamba et al. 2021 (appendix, Algorithm 1): snippets are nodes of a graph,
linked when their input audio (VGGish) or visual (ResNet) embeddings have
cosine similarity >= a threshold; every pair of snippets in the same
connected component is a positive, every other pair a negative. The margin
loss pushes cosine similarities of positives above p and negatives below n:
  uni:   [p - <a_i, a_j>]_+ , [<a_i, a_j> - n]_+  (and the same for v)
  cross: [p - <a_i, v_j>]_+ , [<a_i, v_j> - n]_+  (and <v_i, a_j>)
  multi: uni + cross.
Everything is a pure jittable function of [G, N, ...] arrays: G independent
graphs of N nodes (scope "clip": one graph per clip, N = T; scope "batch":
one graph over all B*T snippets of the batch).
"""

import functools
from typing import Dict, Optional

import jax
import jax.numpy as jnp

from avjax import errors
from avjax.losses import nce
from avjax.utils import masking

KINDS = ("uni", "cross", "multi")
SCOPES = ("clip", "batch")
METRICS = ("a2v_r1", "v2a_r1", "chance_r1", "pair_acc", "uni_acc",
           "pos_rate")


def cosine(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """[G, N, d], [G, M, d] -> [G, N, M] cosine similarities."""
  return jnp.einsum("gnd,gmd->gnm", nce.l2_normalize(x), nce.l2_normalize(y))


def similarity_graph(audio: jnp.ndarray, visual: jnp.ndarray,
                     node_mask: jnp.ndarray, audio_threshold: float,
                     visual_threshold: float) -> jnp.ndarray:
  """Adjacency [G, N, N] bool: cos(a_j, a_k) >= a_t or cos(v_j, v_k) >= v_t,
  only between valid nodes (`node_mask` [G, N], 1 = real snippet)."""
  adj = ((cosine(audio, audio) >= audio_threshold) |
         (cosine(visual, visual) >= visual_threshold))
  m = node_mask.astype(bool)
  return adj & m[:, :, None] & m[:, None, :]


def connected_components(adj: jnp.ndarray) -> jnp.ndarray:
  """Component labels [G, N] int32 of undirected graphs `adj` [G, N, N].

  Min-label propagation: every node starts with its own index and takes the
  smallest label among itself and its neighbours until nothing changes (at
  most N - 1 rounds of O(N^2) work each); a label is the smallest node index
  of its component.
  """
  g, n = adj.shape[:2]
  adj = adj | jnp.swapaxes(adj, 1, 2)
  big = jnp.int32(n)

  def relax(labels):
    nb = jnp.where(adj, labels[:, None, :], big).min(axis=-1)
    return jnp.minimum(labels, nb)

  def cond(c):
    return c[1]

  def body(c):
    new = relax(c[0])
    return new, jnp.any(new != c[0])

  init = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (g, n))
  return jax.lax.while_loop(cond, body, (init, jnp.bool_(True)))[0]


def grounding_targets(labels: jnp.ndarray, node_mask: jnp.ndarray):
  """(positive, valid) [G, N, N] float: same component; both nodes real."""
  m = node_mask.astype(jnp.float32)
  valid = m[:, :, None] * m[:, None, :]
  pos = (labels[:, :, None] == labels[:, None, :]).astype(jnp.float32)
  return pos * valid, valid


def margin_loss(sim: jnp.ndarray, positive: jnp.ndarray, valid: jnp.ndarray,
                pos_margin: float, neg_margin: float) -> jnp.ndarray:
  """Mean over valid pairs of [p - s]_+ (positives) or [s - n]_+ (others).

  The paper sums over candidates j per anchor i; this is that sum divided by
  the number of valid pairs (a constant rescale for a fixed batch shape).
  """
  hinge = (positive * jax.nn.relu(pos_margin - sim) +
           (1.0 - positive) * jax.nn.relu(sim - neg_margin))
  return masking.masked_mean(hinge, valid)


def to_graphs(x: jnp.ndarray, scope: str) -> jnp.ndarray:
  """[B, T, ...] -> [G, N, ...] for scope "clip" (G=B) or "batch" (G=1)."""
  if scope == "clip":
    return x
  if scope == "batch":
    return x.reshape((1, x.shape[0] * x.shape[1]) + x.shape[2:])
  raise ValueError(f"scope={scope!r}; valid: {SCOPES}")


def targets_from_inputs(audio_in: jnp.ndarray, visual_in: jnp.ndarray,
                        node_mask: jnp.ndarray, *, scope: str,
                        audio_threshold: float, visual_threshold: float):
  """Ground truth from input features [B, T, Da], [B, T, Dv], mask [B, T]:
  (positive, valid) [G, N, N] and the component labels [G, N]."""
  a, v, m = (to_graphs(x, scope) for x in (audio_in, visual_in, node_mask))
  labels = connected_components(similarity_graph(
      a, v, m, audio_threshold, visual_threshold))
  pos, valid = grounding_targets(labels, m)
  return pos, valid, labels


def avg_loss(audio: jnp.ndarray, visual: jnp.ndarray, positive, valid, *,
             kind: str, pos_margin: float, neg_margin: float
             ) -> Dict[str, jnp.ndarray]:
  """Grounding loss of embeddings [G, N, d] ("uni", "cross" or "multi").

  Uni-modal pairs exclude the trivial i == j; cross-modal pairs keep it
  (a snippet's own audio and visual are a positive).
  """
  if kind not in KINDS:
    raise ValueError(f"kind={kind!r}; valid: {KINDS}")
  off = valid * (1.0 - jnp.eye(valid.shape[-1], dtype=valid.dtype))
  m = lambda s, w: margin_loss(s, positive, w, pos_margin, neg_margin)
  terms = {}
  if kind in ("uni", "multi"):
    terms["loss_uni"] = 0.5 * (m(cosine(audio, audio), off) +
                               m(cosine(visual, visual), off))
  if kind in ("cross", "multi"):
    av = cosine(audio, visual)
    terms["loss_cross"] = 0.5 * (m(av, valid) +
                                 m(jnp.swapaxes(av, 1, 2), valid))
  terms["loss"] = sum(terms.values())
  return terms


def retrieval_counts(audio: jnp.ndarray, visual: jnp.ndarray, positive,
                     valid, threshold: float) -> Dict[str, jnp.ndarray]:
  """Sums for pretraining metrics over [G, N, d] embeddings.

  a2v_hits / anchors: the visual snippet most similar to an audio snippet is
  a ground-truth positive (R@1); chance_hits: the expected hits of a random
  candidate; pair_correct / pairs: cross-modal pairs on the right side of
  `threshold`; uni_correct / uni_pairs: the same for audio-audio and
  visual-visual pairs (i != j; what the "uni" loss trains); positives /
  pairs: the positive rate.
  """
  sim = cosine(audio, visual)
  anchors = valid.max(-1)
  best = jnp.argmax(jnp.where(valid > 0, sim, -2.0), axis=-1)
  hit = jnp.take_along_axis(positive, best[..., None], -1)[..., 0]
  best_t = jnp.argmax(jnp.where(valid > 0, jnp.swapaxes(sim, 1, 2), -2.0),
                      axis=-1)
  hit_t = jnp.take_along_axis(positive, best_t[..., None], -1)[..., 0]
  chance = positive.sum(-1) / jnp.maximum(valid.sum(-1), 1.0)
  side = lambda s: ((s >= threshold) == (positive > 0)).astype(jnp.float32)
  correct = side(sim)
  off = valid * (1.0 - jnp.eye(valid.shape[-1], dtype=valid.dtype))
  uni = side(cosine(audio, audio)) + side(cosine(visual, visual))
  return {"a2v_hits": jnp.sum(hit * anchors),
          "v2a_hits": jnp.sum(hit_t * anchors),
          "chance_hits": jnp.sum(chance * anchors),
          "anchors": jnp.sum(anchors),
          "pair_correct": jnp.sum(correct * valid),
          "uni_correct": jnp.sum(uni * off), "uni_pairs": 2 * jnp.sum(off),
          "positives": jnp.sum(positive), "pairs": jnp.sum(valid)}


def count_metrics(c: Dict[str, float],
                  prefix: Optional[str] = "") -> Dict[str, float]:
  """Percentages (Python floats) from summed `retrieval_counts`."""
  c = {k: float(v) for k, v in c.items()}
  a, p = max(c["anchors"], 1.0), max(c["pairs"], 1.0)
  return {f"{prefix}a2v_r1": 100.0 * c["a2v_hits"] / a,
          f"{prefix}v2a_r1": 100.0 * c["v2a_hits"] / a,
          f"{prefix}chance_r1": 100.0 * c["chance_hits"] / a,
          f"{prefix}pair_acc": 100.0 * c["pair_correct"] / p,
          f"{prefix}uni_acc": 100.0 * c.get("uni_correct", 0.0) / max(
              c.get("uni_pairs", 0.0), 1.0),
          f"{prefix}pos_rate": 100.0 * c["positives"] / p}


# `config.loss.type="grounding"`: AVG pretraining (Lamba et al. 2021), the
# settings in `config.avg` (loss kind, scope, margins, graph thresholds).
TYPES = ("grounding",)


def check(config) -> list:
  a = config.avg
  return errors.failed_checks(a, [
      (a.loss in KINDS, "loss", f"one of {KINDS}"),
      (a.scope in SCOPES, "scope", f"one of {SCOPES}"),
      (-1.0 <= a.neg_margin < a.pos_margin <= 1.0, "pos_margin",
       f"in (avg.neg_margin={a.neg_margin}, 1]"),
  ], "config.avg.")


def ground_truth(batch: Dict[str, jax.Array], avg_cfg):
  """(positive, valid) [G, N, N] from the batch's input features: VGGish
  audio and the segment mean of the frame features (motion without them)."""
  t = batch["audio"].shape[1]
  vis = batch.get("visual", batch.get("motion"))
  vis = vis.reshape((vis.shape[0], t, -1) + vis.shape[2:]).mean(2)
  mask = batch.get("segment_mask", jnp.ones(batch["audio"].shape[:2]))
  if "_mask" in batch:
    mask = mask * batch["_mask"][:, None]
  pos, valid, _ = targets_from_inputs(
      batch["audio"], vis, mask, scope=avg_cfg.scope,
      audio_threshold=avg_cfg.audio_threshold,
      visual_threshold=avg_cfg.visual_threshold)
  return pos, valid


def loss_fn(out, batch, *, config, step=None, total_steps: int = 1
            ) -> Dict[str, jax.Array]:
  """The grounding loss of the encoder's embeddings (+ the positive rate)."""
  del step, total_steps
  avg_cfg = config.avg
  pos, valid = ground_truth(batch, avg_cfg)
  g = functools.partial(to_graphs, scope=avg_cfg.scope)
  terms = avg_loss(
      g(out["audio_emb"]), g(out["visual_emb"]), pos, valid,
      kind=avg_cfg.loss, pos_margin=avg_cfg.pos_margin,
      neg_margin=avg_cfg.neg_margin)
  terms["pos_rate"] = pos.sum() / jnp.maximum(valid.sum(), 1.0)
  return terms

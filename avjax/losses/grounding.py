"""Audio-visual grounding (AVG) targets, margin loss and retrieval metrics.

Lamba et al. 2021 (appendix, Algorithm 1): snippets are nodes of a graph,
linked by the similarity of their input audio (VGGish) and visual (ResNet,
segment mean) embeddings; every pair of snippets in the same connected
component is a positive, every other pair a negative. Two link rules
(`similarity_graph`):
  "all" (the official compute_gt.py): snippets i < j are linked iff visual
        cosine > v_t AND audio cosine > a_t AND snippet i's audio is not
        silent (cosine to the LLP release's VGGish embedding of silence,
        data/silent_aud_feat.npy, > s_t marks it silent; only i is checked,
        as the reference does). Reference: v_t 0.96, a_t 0.99, s_t 0.99.
  "any" (avjax's earlier rule): cosine(audio) >= a_t OR cosine(visual) >=
        v_t, no silence test. The margin
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
LINKS = ("any", "all")
# The VGGish embedding (128-d, ReLU, no PCA: the LLP release's features) of a
# silent snippet, as shipped with the official code (data/silent_aud_feat.npy
# row 0; numbers only).
LLP_SILENT_AUDIO = (
    0, 0, 0, 0.2957465, 0, 0, 0, 0, 0, 0, 0, 0, 0.5866772, 0.15900975, 0, 0,
    0.2330966, 0.3222829, 0.22957826, 0, 0, 0, 0, 0, 0.22625427, 0, 0,
    0.2597832, 0.4335125, 0, 0, 0, 0.14564757, 0.07832267, 0.2441331, 0, 0,
    0, 0, 0, 0.3767768, 0, 0.051656507, 0, 0.5926883, 0, 0.4093753,
    0.39000928, 0.4690643, 0.27611086, 0, 0, 0, 0, 0.15076086, 0.06404197,
    0, 0, 0.07755923, 0, 0.15266702, 0.38160336, 0, 0, 0, 0, 0, 0.30591655,
    0, 0, 0, 0.13954881, 0.17915225, 0.13650203, 0.2157032, 0.032903574, 0,
    0.55133486, 0, 0.18337563, 0, 0.41820148, 0.41283688, 0, 0.17789808,
    0.32017246, 0.08242145, 0.10550201, 0, 0.22238111, 0, 0.09033641, 0,
    0.41052315, 0.24444738, 0.25398585, 0, 0.1153162, 0, 0.09951916,
    0.11933322, 0.547871, 0, 0.26976642, 0, 0, 0.13706581, 0, 0.01061964, 0,
    0, 0.68314767, 0.07429855, 0, 0, 0.052964628, 0, 0.024923092, 0, 0, 0,
    0, 0, 0, 0.20571736, 0, 0.22877742, 0.17769393)
METRICS = ("a2v_r1", "v2a_r1", "chance_r1", "pair_acc", "uni_acc",
           "pos_rate")


def cosine(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """[G, N, d], [G, M, d] -> [G, N, M] cosine similarities."""
  return jnp.einsum("gnd,gmd->gnm", nce.l2_normalize(x), nce.l2_normalize(y))


def silent(audio: jnp.ndarray, threshold: float) -> jnp.ndarray:
  """[G, N] bool: cosine(audio, `LLP_SILENT_AUDIO`) > threshold."""
  ref = jnp.broadcast_to(jnp.asarray(LLP_SILENT_AUDIO, jnp.float32),
                         (audio.shape[0], 1, len(LLP_SILENT_AUDIO)))
  return cosine(audio, ref)[..., 0] > threshold


def similarity_graph(audio: jnp.ndarray, visual: jnp.ndarray,
                     node_mask: jnp.ndarray, audio_threshold: float,
                     visual_threshold: float, link: str = "any",
                     silence_threshold: float = 2.0) -> jnp.ndarray:
  """Adjacency [G, N, N] bool between valid nodes (`node_mask` [G, N]).

  link "any": cos(a_j, a_k) >= a_t or cos(v_j, v_k) >= v_t.
  link "all" (reference): for j < k, cos(v_j, v_k) > v_t and
  cos(a_j, a_k) > a_t and a_j not `silent` (silence_threshold > 1: none
  is); directed j -> k (`connected_components` symmetrises).
  """
  ca, cv = cosine(audio, audio), cosine(visual, visual)
  if link == "any":
    adj = (ca >= audio_threshold) | (cv >= visual_threshold)
  elif link == "all":
    n = audio.shape[1]
    upper = jnp.arange(n)[:, None] < jnp.arange(n)[None, :]
    loud = ~silent(audio, silence_threshold)
    adj = (cv > visual_threshold) & (ca > audio_threshold) & upper & loud[
        :, :, None]
  else:
    raise ValueError(f"link={link!r}; valid: {LINKS}")
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
                        audio_threshold: float, visual_threshold: float,
                        link: str = "any", silence_threshold: float = 2.0):
  """Ground truth from input features [B, T, Da], [B, T, Dv], mask [B, T]:
  (positive, valid) [G, N, N] and the component labels [G, N]."""
  a, v, m = (to_graphs(x, scope) for x in (audio_in, visual_in, node_mask))
  labels = connected_components(similarity_graph(
      a, v, m, audio_threshold, visual_threshold, link, silence_threshold))
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
      (a.link in LINKS, "link", f"one of {LINKS}"),
      (-1.0 <= a.neg_margin <= a.pos_margin <= 1.0, "pos_margin",
       f"in [avg.neg_margin={a.neg_margin}, 1]"),
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
      visual_threshold=avg_cfg.visual_threshold, link=avg_cfg.link,
      silence_threshold=avg_cfg.silence_threshold)
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

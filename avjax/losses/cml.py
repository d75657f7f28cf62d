"""Cross-modality localization objectives (AVE paper Sec. 5): AVDLN, DCCA.

Training pairs, `config.loss.pairs`:
  same_time    (the reference, cmm_train.py) only same-time pairs
               (A_t, V_t): y = 1 on an event segment, 0 on a background one;
               the loss is the plain mean over the batch's valid pairs (no
               balancing). The reference batches 8 such pairs
               (`config.data.batch_unit="segment"` or "segment_split").
  shifted      (avjax's earlier form) (A_t, V_t) of an event segment is
               synchronized (y = 1); (A_i, V_j), i != j, of the same clip
               with an event segment on either side, and (A_t, V_t) of two
               different clips, are not (y = 0); positives and negatives
               weigh half each.
`config.loss.type`:
  contrastive  AVDLN: contrastive loss with margin `config.loss.margin` on
               the Euclidean distance of the embeddings.
  dcca         minus the canonical correlation of the synchronized pairs
               (`cca.dcca_loss`).
"""

from typing import Any, Dict

import jax.numpy as jnp

from avjax.losses import cca
from avjax.losses import contrastive

TYPES = ("contrastive", "dcca")
PAIRS = ("same_time", "shifted")


def check(config) -> list:
  pairs = config.loss.get("pairs", "shifted")
  return [] if pairs in PAIRS else [
      f"config.loss.pairs={pairs!r}: expected one of {PAIRS}"]


def pair_masks(seg_labels: jnp.ndarray, segment_mask: jnp.ndarray):
  """Positive [B, T] (event segments) and within-clip negative [B, T, T]
  masks (i != j, valid, an event segment on either side)."""
  event = (seg_labels[..., :-1].sum(-1) > 0) & (segment_mask > 0)
  valid = segment_mask > 0
  t = seg_labels.shape[1]
  off = ~jnp.eye(t, dtype=bool)
  neg = (event[:, :, None] | event[:, None, :]) & off & (
      valid[:, :, None] & valid[:, None, :])
  return event.astype(jnp.float32), neg.astype(jnp.float32)


def label_keys(config) -> tuple:
  del config
  return ("seg_audio",)


def loss_fn(out, batch, *, config, step=None,
            total_steps: int = 1) -> Dict[str, Any]:
  del step, total_steps
  loss_cfg = config.loss
  pos, neg = pair_masks(batch["seg_audio"], batch["segment_mask"])
  ea, ev = out["audio_emb"], out["visual_emb"]
  if loss_cfg.type == "dcca":
    b, t, k = ea.shape
    loss = cca.dcca_loss(ea.reshape(b * t, k), ev.reshape(b * t, k),
                         pos.reshape(-1))
    return {"loss": loss}
  diag = jnp.diagonal(out["dist"], axis1=1, axis2=2)
  if loss_cfg.get("pairs", "shifted") == "same_time":
    loss = contrastive.contrastive(diag, pos, loss_cfg.margin,
                                   batch["segment_mask"])
    return {"loss": loss}
  other = contrastive.euclidean(ea, jnp.roll(ev, 1, axis=0))
  l_pos = contrastive.contrastive(diag, jnp.ones_like(diag), loss_cfg.margin,
                                  pos)
  l_in = contrastive.contrastive(out["dist"], jnp.zeros_like(out["dist"]),
                                 loss_cfg.margin, neg)
  l_cross = contrastive.contrastive(other, jnp.zeros_like(other),
                                    loss_cfg.margin, pos)
  return {"loss": l_pos + (l_in + l_cross) / 2, "loss_pos": l_pos,
          "loss_neg_clip": l_in, "loss_neg_cross": l_cross}

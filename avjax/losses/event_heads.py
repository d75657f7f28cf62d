"""Multi-task loss of the event-specific heads (paper Eq. 4)."""

from typing import Dict, Optional, Sequence

import jax
import jax.numpy as jnp


def single_label_targets(labels: jnp.ndarray,
                         clip_id_bytes: Optional[jnp.ndarray] = None
                         ) -> jnp.ndarray:
  """One-hot [B, C] single label of possibly multi-hot labels [B, C].

  One-hot labels are returned unchanged. A multi-hot clip keeps one of its
  labels, chosen by a hash of its clip id (fixed for the clip across epochs:
  "trained with single labels", as the paper does on LLP); without ids, the
  first label in class order. A clip without labels gets all zeros (no loss).
  """
  labels = (labels > 0).astype(jnp.float32)
  count = labels.sum(-1, keepdims=True)
  if clip_id_bytes is None:
    j = jnp.zeros_like(count)
  else:
    w = jnp.arange(1, clip_id_bytes.shape[-1] + 1, dtype=jnp.int32)
    h = (clip_id_bytes.astype(jnp.int32) * w).sum(-1, keepdims=True)
    j = (h % jnp.maximum(count, 1).astype(jnp.int32)).astype(jnp.float32)
  return labels * (jnp.cumsum(labels, -1) == j + 1)


def drop_background(labels: jnp.ndarray) -> jnp.ndarray:
  """Labels [B, C] whose last class is the background (AVE): it is kept only
  on clips with no other label (background-only clips); an event clip's
  label is its event (AVE's union labels add the background to every event
  shorter than 10 s)."""
  labels = (labels > 0).astype(jnp.float32)
  has_event = labels[:, :-1].sum(-1) > 0
  return labels.at[:, -1].set(jnp.where(has_event, 0.0, labels[:, -1]))


def multi_head_loss(logits: jnp.ndarray, targets: jnp.ndarray,
                    heads: Sequence[str], weights: Optional[jnp.ndarray] = None
                    ) -> Dict[str, jnp.ndarray]:
  """Sum over heads of the softmax cross-entropy, equal weights.

  logits [B, H, C]; targets [B, C] one-hot (all-zero rows add nothing);
  weights [B] optional per-clip weights (e.g. `_mask`). Returns the total
  `loss` and `loss_<head>` per head (means over the batch).
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  ce = -(logp * targets[:, None, :]).sum(-1)  # [B, H]
  w = jnp.ones(ce.shape[:1]) if weights is None else weights
  per_head = (ce * w[:, None]).sum(0) / jnp.maximum(w.sum(), 1.0)
  terms = {f"loss_{h}": per_head[i] for i, h in enumerate(heads)}
  terms["loss"] = per_head.sum()
  return terms


# `config.loss.type="event_heads"`: Eq. 4, the sum over the heads of
# `config.model.heads` of the CE with the clip's single label;
# `config.loss.single_label`: "hash" (a multi-label clip keeps one label
# chosen by its id) or "first" (its first label in class order);
# `config.loss.background_last` (AVE): the last class is the background,
# trained only on clips without an event (`drop_background`).
TYPES = ("event_heads",)
SINGLE_LABEL = ("hash", "first")


def check(config) -> list:
  return [f"config.loss.single_label={config.loss.single_label!r}: expected "
          "'hash' or 'first'"] if (
              config.loss.single_label not in SINGLE_LABEL) else []


def loss_fn(out, batch, *, config, step=None, total_steps: int = 1):
  del step, total_steps
  ids = (batch.get("clip_id_bytes") if config.loss.single_label == "hash"
         else None)
  labels = batch["labels"]
  if config.loss.get("background_last", False):
    labels = drop_background(labels)
  targets = single_label_targets(labels, ids)
  return multi_head_loss(out["logits"], targets, tuple(config.model.heads))

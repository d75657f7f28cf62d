"""AVE localization losses: per-segment softmax CE and MIL (weak) CE."""

from typing import Optional

import jax
import jax.numpy as jnp

from avjax.utils import masking


def segment_ce(logits: jnp.ndarray, seg_labels: jnp.ndarray,
               segment_mask: jnp.ndarray,
               clip_mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Mean softmax cross-entropy over valid segments.

  logits [B, T, C]; seg_labels [B, T, C] one-hot (rows summing to 0 are
  ignored); segment_mask [B, T]; clip_mask optional [B].
  """
  y = seg_labels.astype(jnp.float32)
  w = segment_mask * (y.sum(-1) > 0)
  if clip_mask is not None:
    w = w * clip_mask[:, None]
  ce = -(y * jax.nn.log_softmax(logits.astype(jnp.float32))).sum(-1)
  return masking.masked_mean(ce, w)


def mil_pool(logits: jnp.ndarray, segment_mask: jnp.ndarray,
             pooling: str = "mean") -> jnp.ndarray:
  """Video-level scores [B, C] from segment scores [B, T, C]: the mean
  (paper Eq. 7) or the max (reference code) over valid segments."""
  m = segment_mask[..., None]
  if pooling == "mean":
    return masking.masked_mean(logits, m, axis=1)
  if pooling == "max":
    return jnp.where(m > 0, logits, -jnp.inf).max(1)
  raise ValueError(f"pooling={pooling!r}; valid: 'mean', 'max'")


def mil_ce(logits: jnp.ndarray, labels: jnp.ndarray,
           segment_mask: jnp.ndarray, pooling: str = "mean",
           clip_mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
  """Softmax CE of the MIL-pooled scores against the video labels [B, C]
  (multi-hot labels are normalised to a distribution)."""
  y = labels.astype(jnp.float32)
  y = y / jnp.maximum(y.sum(-1, keepdims=True), 1e-6)
  pooled = mil_pool(logits.astype(jnp.float32), segment_mask, pooling)
  ce = -(y * jax.nn.log_softmax(pooled)).sum(-1)
  w = (labels.sum(-1) > 0).astype(jnp.float32)
  if clip_mask is not None:
    w = w * clip_mask
  return masking.masked_mean(ce, w)


def soft_margin(probs: jnp.ndarray, y: jnp.ndarray,
                weights: jnp.ndarray) -> jnp.ndarray:
  """torch's MultiLabelSoftMarginLoss as the reference applies it, to the
  softmax *probabilities*: the mean over classes of -[y log sigmoid(p) +
  (1 - y) log sigmoid(-p)], then the `weights`-mean over the rest."""
  p = probs.astype(jnp.float32)
  y = y.astype(jnp.float32)
  per = -(y * jax.nn.log_sigmoid(p) + (1 - y) * jax.nn.log_sigmoid(-p))
  return masking.masked_mean(per.mean(-1), weights)


# `config.loss.form`: "softmax_ce" (the paper's cross-entropy on the
# softmax; avjax's default off AVE) or "soft_margin" (the reference code:
# nn.MultiLabelSoftMarginLoss on the softmax outputs; for MIL, the softmax
# of the pooled segment scores).
FORMS = ("softmax_ce", "soft_margin")


# `config.loss.type`: "segment" (per-segment softmax CE against the dense
# labels; AVE paper Sec. 4.1) or "mil" (the segment scores pooled over time
# by `config.loss.pooling`, softmax CE against the video labels; Sec. 4.4).
TYPES = ("segment", "mil")
POOLINGS = ("mean", "max")


def check(config) -> list:
  bad = [f"config.loss.pooling={config.loss.pooling!r}: expected 'mean' or "
         "'max'"] if config.loss.pooling not in POOLINGS else []
  form = config.loss.get("form", "softmax_ce")
  return bad + ([f"config.loss.form={form!r}: expected one of {FORMS}"]
                if form not in FORMS else [])


def label_keys(config) -> tuple:
  return ("seg_audio",) if config.loss.type == "segment" else ()


def loss_fn(out, batch, *, config, step=None, total_steps: int = 1):
  """Segment CE or MIL CE, summed over DMRFE branches when present."""
  del step, total_steps
  branches = out.get("branch_logits", out["logits"][None])
  mask = batch["segment_mask"]
  if config.loss.get("form", "softmax_ce") == "soft_margin":
    if config.loss.type == "segment":
      y = batch["seg_audio"]
      w = mask * (y.sum(-1) > 0)
      per = [soft_margin(jax.nn.softmax(b.astype(jnp.float32), -1), y, w)
             for b in branches]
    else:
      w = (batch["labels"].sum(-1) > 0).astype(jnp.float32)
      per = [soft_margin(jax.nn.softmax(mil_pool(
          b.astype(jnp.float32), mask, config.loss.pooling), -1),
                         batch["labels"], w) for b in branches]
    return {"loss": sum(per)}
  if config.loss.type == "segment":
    per = [segment_ce(b, batch["seg_audio"], mask) for b in branches]
  else:
    per = [mil_ce(b, batch["labels"], mask, config.loss.pooling)
           for b in branches]
  return {"loss": sum(per)}

"""AVE cross-modality localization: AVDLN (contrastive) and DCCA training.

Training pairs come from the clips of a batch (paper Sec. 5): (A_t, V_t) of
an event segment is synchronized (y = 1); (A_i, V_j), i != j, of the same
clip with an event segment on either side, and (A_t, V_t) of two different
clips, are not (y = 0). `config.model.kind`:
  avdln  contrastive loss with margin `config.loss.margin` on the Euclidean
         distance of the embeddings; positives and negatives weigh half each.
  dcca   minus the canonical correlation of the synchronized pairs; at
         evaluation a linear CCA (`config.loss.cca_dim` directions) is fitted
         on the training pairs and distances are taken in its space.
Evaluation (paper Table 3): clips whose event is shorter than the clip; the
event's audio (A2V) or visual (V2A) segments slide over the other stream of
the same clip (Eq. 8); accuracy = exact start matches (%); `chance` is the
mean 1 / (T - l + 1).

The loop is `avvp_weak.fit`; setup/restore come from `ave_supervised`.
"""

import functools
import os
from typing import Any, Dict, Optional

import jax.numpy as jnp
import numpy as np

from avjax.evaluators import avvp_f1
from avjax.losses import cca
from avjax.losses import contrastive
from avjax.metrics import ave as ave_metrics
from avjax.models import avdln
from avjax.trainers import ave_supervised
from avjax.trainers import avvp_weak
from avjax.trainers import train_lib
from avjax.utils import writers

LOSS_TYPES = ("contrastive", "dcca")
METRIC_KEYS = ("cml", "a2v", "v2a")
EMB_KEYS = ("audio_emb", "visual_emb")


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


def loss_fn(out, batch, *, loss_cfg, step=None) -> Dict[str, Any]:
  del step
  pos, neg = pair_masks(batch["seg_audio"], batch["segment_mask"])
  ea, ev = out["audio_emb"], out["visual_emb"]
  if loss_cfg.type == "dcca":
    b, t, k = ea.shape
    loss = cca.dcca_loss(ea.reshape(b * t, k), ev.reshape(b * t, k),
                         pos.reshape(-1))
    return {"loss": loss}
  diag = jnp.diagonal(out["dist"], axis1=1, axis2=2)
  other = contrastive.euclidean(ea, jnp.roll(ev, 1, axis=0))
  l_pos = contrastive.contrastive(diag, jnp.ones_like(diag), loss_cfg.margin,
                                  pos)
  l_in = contrastive.contrastive(out["dist"], jnp.zeros_like(out["dist"]),
                                 loss_cfg.margin, neg)
  l_cross = contrastive.contrastive(other, jnp.zeros_like(other),
                                    loss_cfg.margin, pos)
  return {"loss": l_pos + (l_in + l_cross) / 2, "loss_pos": l_pos,
          "loss_neg_clip": l_in, "loss_neg_cross": l_cross}


def event_bounds(seg_labels: np.ndarray, segment_mask: np.ndarray):
  """(start, end) [N] of each clip's (first contiguous) event."""
  event = (seg_labels[..., :-1].sum(-1) > 0) & (segment_mask > 0)
  starts = np.where(event.any(1), event.argmax(1), 0)
  ends = starts.copy()
  for n, (e, s) in enumerate(zip(event, starts)):
    while ends[n] < len(e) and e[ends[n]]:
      ends[n] += 1
  return starts, ends


def distances(pred: Dict[str, np.ndarray], projection=None) -> np.ndarray:
  """[N, T, T] audio-visual distances, optionally in a CCA space."""
  ea, ev = pred["audio_emb"], pred["visual_emb"]
  if projection is not None:
    (ma, wa), (mv, wv) = projection
    ea, ev = (ea - ma) @ wa, (ev - mv) @ wv
  return np.sqrt(((ea[:, :, None] - ev[:, None, :])**2).sum(-1))


class Evaluator(avvp_f1.Evaluator):
  """A2V/V2A exact-match accuracy; `fit` (an evaluator of the training
  split) fits the DCCA projection before scoring."""
  fit: Optional[avvp_f1.Evaluator] = None
  cca_dim: int = 0

  def run(self, state) -> Dict[str, float]:
    return self.score(self.predict(state), self.projection(state))

  def projection(self, state):
    if self.fit is None:
      return None
    p = self.fit.predict(state)
    pos = ((p["seg_audio"][..., :-1].sum(-1) > 0) &
           (p["segment_mask"] > 0))
    return cca.fit_cca(p["audio_emb"][pos], p["visual_emb"][pos],
                       self.cca_dim)

  def score(self, pred, projection=None) -> Dict[str, float]:
    starts, ends = event_bounds(pred["seg_audio"], pred["segment_mask"])
    res = ave_metrics.cross_modal_accuracy(distances(pred, projection),
                                           starts, ends)
    res["cml"] = (res["a2v"] + res["v2a"]) / 2
    res["num_clips"] = float(len(pred["ids"]))
    writers.log("%s: %s", self.source.split, " ".join(
        f"{k}={v:.1f}" for k, v in res.items()))
    return res


def make_evaluator(s, split: str) -> Evaluator:
  ev = ave_supervised.make_evaluator(s, split, EMB_KEYS, Evaluator)
  if s.config.model.kind == "dcca":
    ev.fit = ave_supervised.make_evaluator(s, s.config.data.train_split,
                                           EMB_KEYS, avvp_f1.Evaluator)
    ev.cca_dim = s.config.loss.cca_dim
  return ev


def setup(config, train: bool = True):
  return ave_supervised.setup(config, train, model_lib=avdln,
                              loss_types=LOSS_TYPES, metric_keys=METRIC_KEYS)


def train_and_evaluate(config, workdir: str) -> Dict[str, Any]:
  """Trains, validates every epoch (A2V/V2A), scores the best on test."""
  s = setup(config)
  state = avvp_weak.fit(s, workdir, functools.partial(
      loss_fn, loss_cfg=config.loss), make_evaluator(s, config.data.val_split))
  summary = evaluate_checkpoint(config, workdir, "best", s=s)
  summary["final_params_sha256"] = train_lib.params_digest(state.params)
  writers.write_json(os.path.join(workdir, "results.json"), summary)
  return summary


def evaluate_checkpoint(config, workdir: str, which: str = "best",
                        splits=None, s=None) -> Dict[str, Any]:
  s = s or setup(config, train=False)
  state, step = ave_supervised.restore(s, workdir, which)
  results = {sp: make_evaluator(s, sp).run(state) for sp in (
      splits or [config.data.val_split, config.data.test_split])}
  return ave_supervised.write_eval(config, workdir, which, step, results)

"""The weakly-supervised AVVP objectives of the HAN family.

`config.loss.type`:
  han         HAN's guided loss (`bce.han_loss`): BCE of the global, audio
              and visual clip heads against the weak labels, the modality
              heads' targets label-smoothed (`audio_smoothing`,
              `visual_smoothing`).
  han_nce     han + `nce_weight` x MA's temporal contrastive term
              (`nce.temporal_nce`, `nce_tau`, `nce_smoothing`).
  crossmodal  Lamba et al. 2021: global + `modality_weight` x (audio +
              visual), plus `adv_weight` x the modality discriminator's BCE
              when the model returns `disc_logits` (its gradient-reversal
              scale follows the DANN schedule over step / total_steps, times
              `grl_scale`).
`use_modality_labels` trains the modality heads on the batch's
`audio_labels`/`visual_labels` (MA's refined labels): a dropped weak label's
target is `DROPPED_TARGETS[dropped_target]` ("zero": 0, as MA's reference;
"negative": smoothed like an absent class) and, with
`global_drops_with_audio`, the global head's target is 0 where the audio
label was dropped (the reference's stage 3, whose audio target array is the
video label array itself).
"""

from typing import Dict

import jax.numpy as jnp

from avjax.losses import adversarial
from avjax.losses import bce
from avjax.losses import nce

TYPES = ("han", "han_nce", "crossmodal")
# config.loss.dropped_target -> bce.han_loss(dropped_target=...).
DROPPED_TARGETS = {"zero": 0.0, "negative": None}


def check(config) -> list:
  return [f"config.loss.dropped_target={config.loss.dropped_target!r}: "
          f"expected one of {tuple(DROPPED_TARGETS)}"
          ] if config.loss.dropped_target not in DROPPED_TARGETS else []


def label_keys(config) -> tuple:
  """Train-split label keys read besides `labels`."""
  return (("audio_labels", "visual_labels")
          if config.loss.use_modality_labels else ())


def loss_fn(out, batch, *, config, step=None,
            total_steps: int = 1) -> Dict[str, jnp.ndarray]:
  """The terms of `config.loss.type` and their weighted sum `loss`."""
  cfg = config.loss
  per_modality = {}
  if cfg.use_modality_labels:
    per_modality = {"audio_labels": batch["audio_labels"],
                    "visual_labels": batch["visual_labels"],
                    "dropped_target": DROPPED_TARGETS[cfg.dropped_target]}
    if cfg.global_drops_with_audio:
      per_modality["global_labels"] = batch["labels"] * (
          batch["audio_labels"] > 0)
  terms = bce.han_loss(out, batch["labels"],
                       audio_smoothing=cfg.audio_smoothing,
                       visual_smoothing=cfg.visual_smoothing, **per_modality)
  if cfg.type == "han_nce":
    terms["loss_nce"] = nce.temporal_nce(
        out["audio_emb"], out["visual_in"], batch.get("segment_mask"),
        tau=cfg.nce_tau, label_smoothing=cfg.nce_smoothing)
    terms["loss"] = terms["loss"] + cfg.nce_weight * terms["loss_nce"]
  if cfg.type == "crossmodal":
    terms["loss"] = terms["loss_global"] + cfg.modality_weight * (
        terms["loss_audio"] + terms["loss_visual"])
    if "disc_logits" in out:
      terms.update(adversarial.adversarial_terms(
          out, step, total_steps, batch.get("segment_mask"),
          max_scale=cfg.grl_scale))
      terms["loss"] = terms["loss"] + cfg.adv_weight * terms["loss_disc"]
  return terms

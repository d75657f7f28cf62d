"""VEBA losses (Li et al., ICASSP 2022): clip-level modality mismatch.

"veba": CE(p_a, y_a) + CE(p_v, y_v) + CE(p_av, y_v) with the HAN heads
  p_a = audio_prob, p_v = visual_prob and p_av = global_prob (the attentive
  audio-visual pooling), y_a the audio (AudioSet) labels and y_v the video
  labels (y_v is a subset of y_a: an event is audio-visual at clip level iff
  it is seen).
"veba_shared": the paper's baseline that ignores the mismatch: one output
  p_av for audio, video and audio-visual, trained as CE(p_av, y_a).

`video_label_fraction` f (paper Fig. 5): only a fixed pseudo-random fraction
f of the clips has its new video labels; the others use their audio labels
as video labels (as in plain AudioSet). The choice is a hash of the clip id,
so it is the same every epoch, on any device count, and nested in f.
"""

from typing import Dict

import jax.numpy as jnp
import numpy as np

from avjax.losses import bce

LOSS_TYPES = ("veba", "veba_shared")
_PRIME = 16777619


def clip_uniform(clip_id_bytes: jnp.ndarray) -> jnp.ndarray:
  """[B, L] uint8 zero-padded ids -> [B] float32 in [0, 1): a polynomial
  hash of the bytes (zero padding adds nothing, so any width gives the same
  value) with murmur3's finalizer, all in wrapping uint32 arithmetic."""
  powers = np.ones(clip_id_bytes.shape[1], np.uint64)
  for i in range(1, len(powers)):
    powers[i] = powers[i - 1] * _PRIME % (1 << 32)
  h = (clip_id_bytes.astype(jnp.uint32) * jnp.asarray(
      powers.astype(np.uint32))).sum(1, dtype=jnp.uint32)
  h ^= h >> 16
  h *= jnp.uint32(0x85EBCA6B)
  h ^= h >> 13
  h *= jnp.uint32(0xC2B2AE35)
  h ^= h >> 16
  return (h >> 8).astype(jnp.float32) / float(1 << 24)


def video_targets(batch: Dict[str, jnp.ndarray],
                  fraction: float = 1.0) -> jnp.ndarray:
  """y_v: the video labels of a `fraction` of the clips, else y_a."""
  if fraction >= 1.0:
    return batch["visual_labels"]
  has_video = clip_uniform(batch["clip_id_bytes"]) < fraction
  return jnp.where(has_video[:, None], batch["visual_labels"],
                   batch["audio_labels"])


def veba_loss(out: Dict[str, jnp.ndarray], batch: Dict[str, jnp.ndarray], *,
              loss_type: str = "veba", video_label_fraction: float = 1.0,
              weights=None) -> Dict[str, jnp.ndarray]:
  """The loss terms and their sum ("loss") of `loss_type`."""
  ya = batch["audio_labels"]
  if loss_type == "veba_shared":
    terms = {"loss_av": bce.bce(out["global_prob"], ya, weights)}
  elif loss_type == "veba":
    yv = video_targets(batch, video_label_fraction)
    terms = {"loss_audio": bce.bce(out["audio_prob"], ya, weights),
             "loss_visual": bce.bce(out["visual_prob"], yv, weights),
             "loss_av": bce.bce(out["global_prob"], yv, weights)}
  else:
    raise ValueError(f"loss_type={loss_type!r}; valid: {LOSS_TYPES}")
  terms["loss"] = sum(terms.values())
  return terms


TYPES = LOSS_TYPES


def label_keys(config) -> tuple:
  """Train-split label keys read besides `labels`."""
  return ("audio_labels",) + (
      ("visual_labels",) if config.loss.type == "veba" else ())


def loss_fn(out, batch, *, config, step=None, total_steps: int = 1
            ) -> Dict[str, jnp.ndarray]:
  """`veba_loss` of `config.loss` (type, video_label_fraction)."""
  del step, total_steps
  return veba_loss(out, batch, loss_type=config.loss.type,
                   video_label_fraction=config.loss.video_label_fraction)

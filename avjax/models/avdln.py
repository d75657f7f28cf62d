"""Audio-visual distance learning network (AVDLN, AVE paper Sec. 5) and a
deep-CCA baseline (Andrew et al. 2013) on the same encoders.

Each modality: Dense(hidden) -> LeakyReLU(0.3) -> Dense(out) per segment
(reference: 128 -> 64). `init_scheme`: "keras" (the reference's Keras Dense:
Glorot-uniform kernels, zero biases) or "flax" (LeCun-normal kernels, zero
biases). AVDLN scores a pair by the Euclidean distance of the
two embeddings (trained with the contrastive loss); DCCA trains the
encoders to maximise the canonical correlation of synchronized pairs, and
the distance is taken after a linear CCA fitted on training pairs.
"""

from typing import Dict

import flax.linen as nn
import jax.numpy as jnp

KINDS = ("avdln", "dcca")
INIT_SCHEMES = {"keras": nn.initializers.glorot_uniform(),
                "flax": nn.initializers.lecun_normal()}


# How a distance is kept differentiable at 0 (`model.distance_floor`):
# "add" sqrt(d^2 + 1e-9), or "keras" sqrt(max(d^2, 1e-7)) as the
# reference's euclidean_distance (K.maximum(sum_square, K.epsilon())).
DISTANCE_FLOORS = ("add", "keras")


def euclidean(x: jnp.ndarray, y: jnp.ndarray, eps: float = 1e-9,
              floor: str = "add") -> jnp.ndarray:
  """||x - y||_2 over the last axis (differentiable at 0: `floor`)."""
  sq = jnp.sum(jnp.square(x - y), -1)
  if floor == "keras":
    return jnp.sqrt(jnp.maximum(sq, 1e-7))
  return jnp.sqrt(sq + eps)


class Encoder(nn.Module):
  """[..., D] -> [..., out]: Dense -> LeakyReLU(0.3) -> Dense."""
  hidden: int = 128
  out: int = 64
  init_scheme: str = "flax"

  @nn.compact
  def __call__(self, x):
    init = INIT_SCHEMES[self.init_scheme]
    x = nn.leaky_relu(nn.Dense(self.hidden, kernel_init=init)(x),
                      negative_slope=0.3)
    return nn.Dense(self.out, kernel_init=init)(x)


class AVDLN(nn.Module):
  """Per-segment audio/visual embeddings and their pair distances.

  Attributes:
    hidden, out: encoder widths.
    visual_key: "visual_vec" [B, T, D] or "visual_map" [B, T, h, w, D]
      (averaged over the regions).
  """
  hidden: int = 128
  out: int = 64
  visual_key: str = "visual_vec"
  init_scheme: str = "flax"
  distance_floor: str = "add"

  @nn.compact
  def __call__(self, x: Dict[str, jnp.ndarray], *, train: bool = False):
    """Returns audio_emb, visual_emb [B, T, out] and dist [B, T, T]
    (dist[b, i, j] = ||audio_emb[b, i] - visual_emb[b, j]||)."""
    del train
    v = x[self.visual_key]
    if v.ndim == 5:
      v = v.mean((2, 3))
    ea = Encoder(self.hidden, self.out, self.init_scheme,
                 name="audio")(x["audio"])
    ev = Encoder(self.hidden, self.out, self.init_scheme, name="visual")(v)
    return {"audio_emb": ea, "visual_emb": ev,
            "dist": euclidean(ea[:, :, None], ev[:, None, :],
                              floor=self.distance_floor)}


def check(model_cfg) -> list:
  errors = []
  if model_cfg.kind not in KINDS:
    errors.append(f"model.kind={model_cfg.kind!r}: one of {KINDS}")
  if model_cfg.init_scheme not in INIT_SCHEMES:
    errors.append(f"model.init_scheme={model_cfg.init_scheme!r}: one of "
                  f"{tuple(INIT_SCHEMES)}")
  if model_cfg.distance_floor not in DISTANCE_FLOORS:
    errors.append(f"model.distance_floor={model_cfg.distance_floor!r}: one "
                  f"of {DISTANCE_FLOORS}")
  if model_cfg.visual_key not in ("visual_vec", "visual_map"):
    errors.append(f"model.visual_key={model_cfg.visual_key!r}: "
                  "'visual_vec' or 'visual_map'")
  return errors


def build(model_cfg, info: dict) -> AVDLN:
  del info  # embeddings only: no class count
  return AVDLN(model_cfg.hidden, model_cfg.out, model_cfg.visual_key,
               model_cfg.init_scheme, model_cfg.distance_floor)


def upgrade_fingerprint(model_dict: dict) -> dict:
  """A checkpoint's model block from before `init_scheme` (flax's init)
  and `distance_floor` ("add")."""
  return {"init_scheme": "flax", "distance_floor": "add", **model_dict}


def input_features(model_cfg) -> tuple:
  return ("audio", model_cfg.visual_key)

"""Event-specific audio-visual fusion layers (Senocak et al., WACV 2023).

Two small per-modality backbones give non-negative segment embeddings
z^V, z^A [B, T, d]; five parameter-free pooling layers turn them into clip
features, each followed by its own classifier:

  continuous  mean over valid segments of concat(z^V_t, z^A_t)       (Eq. 1)
  instant     the same mean over the top-k segments by z^V_t . z^A_t (Eq. 2)
  onset       the same mean over the segments holding an audio onset (Eq. 3)
  visual      concat(z^V_t, 0) averaged over valid segments
  audio       concat(0, z^A_t) averaged over valid segments

All pools respect `segment_mask` (variable T). k of the instant layer is
`instant_k` when > 0, else ceil(instant_ratio * T_valid) per clip (the paper:
|K| = 10 of T = 100), at least 1 and at most T_valid. A clip without any onset
gets a zero onset feature (the layer has no evidence; its classifier then
outputs its bias only).
"""

from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax import errors
from avjax.models import encoders
from avjax.utils import masking
from avjax.utils import onsets as onsets_lib

HEADS = ("continuous", "instant", "onset", "visual", "audio")


def masked_mean(x: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
  """x [B, T, D], weights [B, T] (0/1) -> [B, D]; an empty set gives 0."""
  return masking.masked_mean(x, weights.astype(x.dtype)[..., None], axis=1)


def instant_k(valid: jnp.ndarray, k: int, ratio: float) -> jnp.ndarray:
  """Per-clip k [B] for valid [B, T] (see the module docstring)."""
  n = valid.sum(1)
  kk = jnp.full_like(n, k) if k > 0 else jnp.ceil(ratio * n - 1e-6)
  return jnp.clip(kk, jnp.minimum(n, 1.0), n)


def topk_mask(scores: jnp.ndarray, valid: jnp.ndarray,
              k: jnp.ndarray) -> jnp.ndarray:
  """1 for the k [B] highest-scoring valid steps of scores [B, T], else 0."""
  s = jnp.where(valid > 0, scores, -jnp.inf)
  rank = jnp.argsort(jnp.argsort(-s, axis=1), axis=1)  # 0 = best
  return ((rank < k[:, None]) & (valid > 0)).astype(jnp.float32)


def pool_heads(zv: jnp.ndarray, za: jnp.ndarray, valid: jnp.ndarray,
               onsets: jnp.ndarray, heads: Sequence[str] = HEADS,
               k: int = 0, ratio: float = 0.1) -> Dict[str, jnp.ndarray]:
  """The parameter-free layers: {head: [B, 2d] feature} plus `instant_sel`
  and `onset_sel` [B, T] (the selected segments)."""
  both = jnp.concatenate([zv, za], axis=-1)
  out = {}
  if "instant" in heads:
    score = jax.lax.stop_gradient((zv * za).sum(-1).astype(jnp.float32))
    out["instant_sel"] = topk_mask(score, valid, instant_k(valid, k, ratio))
  out["onset_sel"] = (onsets > 0).astype(jnp.float32) * valid
  weights = {"continuous": valid, "instant": out.get("instant_sel"),
             "onset": out["onset_sel"], "visual": valid, "audio": valid}
  zeros = jnp.zeros_like(zv)
  feats = {"visual": jnp.concatenate([zv, zeros], -1),
           "audio": jnp.concatenate([zeros, za], -1)}
  for h in heads:
    out[h] = masked_mean(feats.get(h, both), weights[h])
  return out


class Backbone(nn.Module):
  """Per-segment MLP -> non-negative embedding [B, T, d] (like CNN features).

  Attributes:
    d_model: width d; num_layers: Dense+ReLU layers; dropout: rate.
  """
  d_model: int = 64
  num_layers: int = 2
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    for i in range(self.num_layers):
      x = nn.Dense(self.d_model, dtype=self.dtype, name=f"dense{i}")(x)
      x = nn.relu(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return x


class EventHeadsNet(nn.Module):
  """Backbones + event-specific layers + one classifier per head.

  Attributes:
    num_classes: C.
    heads: subset of HEADS, in output order (one head = a baseline:
      continuous = naive AV, audio = audio only, visual = visual only).
    d_model, num_layers, dropout: backbone settings.
    frames_per_segment: F of the visual stream (frames are averaged).
    instant_k, instant_ratio: k of the instant layer.
    onset_source: "stored" (input `onsets` [B, T, 1]; config "auto" builds
      this when the dataset has an `onsets` stream) or "features" (the
      feature rule of `avjax.data.onsets` on the audio input, in-graph).
    onset_threshold: of the feature rule.
    visual_key: the input stream of the visual backbone ("visual" [B, T*F,
      Dv]; AVE: "visual_map" [B, T, 7, 7, 512], averaged over its spatial
      axes, or "visual_vec" [B, T, 512]).
  """
  num_classes: int
  heads: Sequence[str] = HEADS
  d_model: int = 64
  num_layers: int = 2
  dropout: float = 0.0
  frames_per_segment: int = 1
  instant_k: int = 0
  instant_ratio: float = 0.1
  onset_source: str = "stored"
  onset_threshold: float = 0.25
  visual_key: str = "visual"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs: Dict[str, jnp.ndarray], *,
               train: bool = False) -> Dict[str, jnp.ndarray]:
    """inputs: audio [B, T, Da], visual [B, T*F, Dv], segment_mask [B, T],
    onsets [B, T, 1] (stored onsets).

    Returns:
      logits [B, H, C] (heads in `self.heads` order), instant_sel and
      onset_sel [B, T].
    """
    audio = inputs["audio"]
    visual = inputs[self.visual_key]
    if visual.ndim > 3:  # a spatial map [B, T*F, ..., D]: global average
      visual = visual.reshape(visual.shape[:2] + (-1, visual.shape[-1])
                              ).mean(axis=2)
    visual = encoders.pool_frames(visual, self.frames_per_segment)
    valid = inputs.get("segment_mask")
    if valid is None:
      valid = jnp.ones(audio.shape[:2], jnp.float32)
    if "onset" not in self.heads:
      onsets = jnp.zeros_like(valid)
    elif self.onset_source == "stored":
      onsets = inputs["onsets"][..., 0]
    else:
      onsets = onsets_lib.feature_onsets(audio, valid, self.onset_threshold,
                                         xp=jnp)
    mk = lambda n: Backbone(self.d_model, self.num_layers, self.dropout,
                            self.dtype, name=n)
    zv = mk("visual_backbone")(visual, train=train)
    za = mk("audio_backbone")(audio, train=train)
    pooled = pool_heads(zv, za, valid, onsets, self.heads, self.instant_k,
                        self.instant_ratio)
    logits = [nn.Dense(self.num_classes, dtype=self.dtype, name=f"fc_{h}")(
        pooled[h]).astype(jnp.float32) for h in self.heads]
    return {"logits": jnp.stack(logits, axis=1),
            "instant_sel": pooled.get("instant_sel",
                                      jnp.zeros_like(valid)),
            "onset_sel": pooled["onset_sel"]}


def check(model_cfg) -> list:
  """Config errors of a `config.model` block for EventHeadsNet."""
  m = model_cfg
  heads = tuple(m.heads)
  bad = [h for h in heads if h not in HEADS]
  return errors.failed_checks(m, [
      (heads and not bad and len(set(heads)) == len(heads), "heads",
       f"distinct names from {HEADS}"),
      (m.onset_source in ONSET_SOURCES, "onset_source",
       "'stored' or 'features'"),
      (m.dtype in ("float32", "bfloat16"), "dtype",
       "'float32' or 'bfloat16'"),
      (0.0 <= m.dropout < 1.0, "dropout", "in [0, 1)"),
      (m.instant_k >= 0, "instant_k", ">= 0 (0: use instant_ratio)"),
      (0.0 < m.instant_ratio <= 1.0, "instant_ratio", "in (0, 1]"),
  ], "config.model.")


# config.model.onset_source: "auto" reads the dataset's stored `onsets`
# (`avjax.data.onsets`: from the raw audio where a clip's WAV was there)
# when it has them, else the feature rule in the graph.
ONSET_SOURCES = ("stored", "features", "auto")


def onset_source(model_cfg, info: Optional[dict] = None) -> str:
  """`model.onset_source` with "auto" resolved against the dataset `info`
  (without info: "features")."""
  src = model_cfg.onset_source
  if src != "auto":
    return src
  names = {s.name for s in (info or {}).get("feature_specs", ())}
  return "stored" if "onsets" in names else "features"


def build(model_cfg, info: dict) -> EventHeadsNet:
  """EventHeadsNet sized for a dataset (`config.model`, dataset info)."""
  heads = tuple(model_cfg.heads)
  specs = {s.name: s for s in info["feature_specs"]}
  source = onset_source(model_cfg, info)
  if "onset" in heads and source == "stored" and "onsets" not in specs:
    raise ValueError(
        "config.model.onset_source='stored' but the dataset has no 'onsets' "
        "stream: add it with `python -m avjax.data.onsets --data_dir=... "
        "--out=... [--audio_dir=WAVS]` or set "
        "--config.model.onset_source=features")
  return EventHeadsNet(
      num_classes=len(info["classes"]), heads=heads,
      d_model=model_cfg.d_model, num_layers=model_cfg.num_layers,
      dropout=model_cfg.dropout,
      frames_per_segment=specs[visual_key(model_cfg)].frames_per_segment,
      instant_k=model_cfg.instant_k, instant_ratio=model_cfg.instant_ratio,
      onset_source=source,
      onset_threshold=model_cfg.onset_threshold,
      visual_key=visual_key(model_cfg), dtype=getattr(jnp, model_cfg.dtype))


def input_features(model_cfg, info: Optional[dict] = None) -> tuple:
  """Dataset streams the model reads (`info`: resolves onset_source auto)."""
  uses_onsets = ("onset" in tuple(model_cfg.heads)
                 and onset_source(model_cfg, info) == "stored")
  return ("audio", visual_key(model_cfg)) + (
      ("onsets",) if uses_onsets else ())


def visual_key(model_cfg) -> str:
  """The visual stream read (`model.visual_key`; older configs: "visual")."""
  return model_cfg.get("visual_key", "visual")


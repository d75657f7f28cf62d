"""AVVP network: projections -> hybrid attention -> attentive MMIL heads.

HAN (Tian et al. 2020) is the default configuration; later methods (MA,
cross-modal learning, VEBA) are configurations of the same pieces.
"""

from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax import errors
from avjax.models import attention
from avjax.models import avg
from avjax.models import discriminator
from avjax.models import encoders
from avjax.models import inits
from avjax.models import pooling
from avjax.utils import pretrained


def _apply_both_ways(layer, a, v, mask, train):
  """(layer(a, ctx=v), layer(v, ctx=a)) as ONE call on the concatenated batch.

  Same weights and, without dropout, the same outputs as two calls, but twice
  the rows per matmul (faster on CPU at small batches).
  """
  b = a.shape[0]
  m = None if mask is None else jnp.concatenate([mask, mask])
  y = layer(jnp.concatenate([a, v]), jnp.concatenate([v, a]), m, train=train)
  return y[:b], y[b:]


class AVVPNet(nn.Module):
  """Hybrid attention network for audio-visual video parsing.

  Attributes:
    num_classes: C.
    d_model: stream width d.
    num_layers: stacked hybrid attention layers (HAN: 1).
    num_heads, d_ff, dropout: hybrid attention layer settings.
    cross_attention: cross-modal branch on (False: "no hybrid attention").
    input_modalities: "av", "a" (the visual stream is built from audio too)
      or "v" (the audio stream is built from visual features too).
    frames_per_segment: visual frames per segment.
    use_frames, use_motion: which visual features feed the visual stream.
    pool_first: average frames before the visual projection (exact rewrite).
    fused_attention: `HybridAttentionLayer.fused` (exact rewrite: one input
      projection matmul per stream, one batched output projection).
    global_context: global-context-aware attention (`gcaa`) in every
      attention of the hybrid layers (cross-modal learning's "GCAA").
    gcaa_first_segment: with `global_context`, every segment receives
      segment 0's attention output (the official code's `[0]`; reference
      form, the paper's +GCAA numbers); False: the paper's per-segment form.
    separate_self_attention: per-modality self-attention layers `self_a_i`,
      `self_v_i`, then one cross-modal layer `han_i` (no self branch) shared by
      both directions (cross-modal learning's "Base").
    skip: x = LN(layer(x, ctx) + x) around each hybrid layer, one LN per
      modality (cross-modal learning's skip connection).
    shared_fc: one Dense(d) shared by both modalities on the last hybrid
      layer's output, before the skip connection (cross-modal learning's
      reference code applies it in every variant: `shared_fc`).
    adversarial: add a `ModalityDiscriminator` on the attended per-segment
      features through gradient reversal (outputs `disc_logits`).
    disc_norm: the discriminator's normalisation, "layer" or "batch"
      (reference: BatchNorm1d over all B*T*2 rows, `batch_stats`).
    disc_relu: ReLU on the features before the gradient reversal (the
      reference's `x_mod = self.activation(x)`).
    modality_encoder_layers: L >= 0 per-modality multi-head self-attention
      encoder layers (`HybridAttentionLayer` without its cross branch:
      x' = LN(x + Drop(MHSA(x))), then the FFN; own weights per modality,
      `enc_a_i`, `enc_v_i`) between the input projections and the hybrid
      attention (VEBA, Li et al. 2022, Fig. 3); 0: none (HAN).
    modality_encoder_heads: heads of those layers.
    avg_encoder: optional `avg.AVGEncoder` (AVG pretraining's transformer)
      that replaces the input projections; its parameters are the subtree
      `avg_encoder`, initialised from a pretraining run by the trainer.
    avg_frozen: run `avg_encoder` deterministically under stop_gradient
      (frozen pretrained embeddings, the paper's "Pretrained" row).
    init_scheme: parameter initialisers of every layer, `inits.SCHEMES`
      ("torch":
      PyTorch's defaults, as in the official code; "flax": Flax's).
    dtype: computation dtype.
  """
  num_classes: int = 25
  d_model: int = 512
  num_layers: int = 1
  num_heads: int = 1
  d_ff: int = 512
  dropout: float = 0.1
  cross_attention: bool = True
  input_modalities: str = "av"
  frames_per_segment: int = 8
  use_frames: bool = True
  use_motion: bool = True
  pool_first: bool = True
  fused_attention: bool = True
  global_context: bool = False
  gcaa_first_segment: bool = False
  separate_self_attention: bool = False
  modality_encoder_layers: int = 0
  modality_encoder_heads: int = 8
  skip: bool = False
  shared_fc: bool = False
  adversarial: bool = False
  disc_norm: str = "layer"
  disc_relu: bool = False
  avg_encoder: Optional[avg.AVGEncoder] = None
  avg_frozen: bool = False
  init_scheme: str = "torch"
  dtype: Any = jnp.float32

  def _layer(self, name, cross=True, self_attn=True):
    return attention.HybridAttentionLayer(
        self.d_model, self.num_heads, self.d_ff, self.dropout,
        cross_attention=cross, self_attention=self_attn,
        global_context=self.global_context,
        gcaa_first_segment=self.gcaa_first_segment,
        fused=self.fused_attention,
        init_scheme=self.init_scheme, dtype=self.dtype, name=name)

  def _modality_encode(self, a, v, mask, train):
    """The per-modality self-attention encoders (VEBA) on a, v [B, T, d]."""
    for i in range(self.modality_encoder_layers):
      for key in ("a", "v"):
        layer = attention.HybridAttentionLayer(
            self.d_model, self.modality_encoder_heads, self.d_ff,
            self.dropout, cross_attention=False, fused=self.fused_attention,
            init_scheme=self.init_scheme, dtype=self.dtype,
            name=f"enc_{key}_{i}")
        if key == "a":
          a = layer(a, a, mask, train=train)
        else:
          v = layer(v, v, mask, train=train)
    return a, v

  def _encode(self, a, v, mask, train):
    """The stacked hybrid attention layers on streams a, v [B, T, d]."""
    for i in range(self.num_layers):
      a0, v0 = a, v
      if self.separate_self_attention:
        a = self._layer(f"self_a_{i}", cross=False)(a, a, mask, train=train)
        v = self._layer(f"self_v_{i}", cross=False)(v, v, mask, train=train)
        a0, v0 = a, v
        layer = self._layer(f"han_{i}", self_attn=False)
      else:
        layer = self._layer(f"han_{i}", cross=self.cross_attention)
      a, v = _apply_both_ways(layer, a, v, mask, train)
      if self.shared_fc and i == self.num_layers - 1:
        fc = nn.Dense(self.d_model, dtype=self.dtype, name="shared_fc",
                      **inits.linear(self.init_scheme, a.shape[-1]))
        a, v = fc(a), fc(v)
      if self.skip:
        a = nn.LayerNorm(dtype=self.dtype, name=f"skip_a_{i}")(a + a0)
        v = nn.LayerNorm(dtype=self.dtype, name=f"skip_v_{i}")(v + v0)
    return a, v

  def _discriminate(self, a, v, mask, train):
    """Discriminator logits [B, T, 2] on reversed and on detached features
    (one BatchNorm statistics update: the first call's)."""
    x = jnp.stack([a, v], axis=2)
    if self.disc_relu:
      x = nn.relu(x)
    rows = None if mask is None else jnp.stack([mask, mask], axis=2)
    disc = discriminator.ModalityDiscriminator(
        norm=self.disc_norm, init_scheme=self.init_scheme, dtype=self.dtype,
        name="modality_disc")
    return {"disc_logits": disc(discriminator.gradient_reversal(x, 1.0),
                                rows, train=train),
            "disc_logits_detached": disc(jax.lax.stop_gradient(x), rows,
                                         train=train, update_stats=False)}

  def _project(self, batch):
    """HAN's per-segment input projections -> streams a, v [B, T, d]."""
    a = v = None
    if "a" in self.input_modalities:
      a = nn.Dense(self.d_model, dtype=self.dtype, name="audio_proj",
                   **inits.linear(self.init_scheme, batch["audio"].shape[-1]))(
                       batch["audio"])
    if "v" in self.input_modalities:
      v = encoders.VisualProjection(
          self.d_model, self.frames_per_segment, self.pool_first,
          self.dtype, init_scheme=self.init_scheme, name="visual_proj")(
              batch["visual"] if self.use_frames else None,
              batch["motion"] if self.use_motion else None)
    if a is None and v is None:
      raise ValueError(f"input_modalities={self.input_modalities!r} names "
                       "neither 'a' nor 'v'")
    a = v if a is None else a
    v = a if v is None else v
    return a, v

  def _pretrained_streams(self, batch, train):
    """The AVG encoder's streams; frozen: deterministic, no gradient."""
    if self.input_modalities != "av":
      raise ValueError("avg_encoder needs input_modalities='av', not "
                       f"{self.input_modalities!r}")
    if self.avg_frozen:
      return jax.lax.stop_gradient(self.avg_encoder(batch, train=False))
    return self.avg_encoder(batch, train=train)

  @nn.compact
  def __call__(self, batch: Dict[str, jnp.ndarray], *,
               train: bool) -> Dict[str, jnp.ndarray]:
    """batch: audio [B,T,Da], visual [B,T*F,Dv], motion [B,T,Dm],
    segment_mask [B,T]. Returns the heads of `AttentiveMMILPooling` plus the
    streams `audio_emb`, `visual_emb` [B,T,d] (after hybrid attention) and
    `audio_in`, `visual_in` [B,T,d] (before it, after any modality
    encoder); with `adversarial`, also
    `disc_logits` [B,T,2] (audio 0, visual 1; features gradient-reversed with
    scale 1) and `disc_logits_detached` (same values, no feature gradient),
    which `losses.adversarial.adversarial_terms` combines into a scheduled
    reversal."""
    mask = batch.get("segment_mask")
    if self.avg_encoder is not None:
      a, v = self._pretrained_streams(batch, train)
    else:
      a, v = self._project(batch)
    a, v = self._modality_encode(a, v, mask, train)
    a_in, v_in = a, v
    a, v = self._encode(a, v, mask, train)
    x = jnp.stack([a, v], axis=2)
    out = pooling.AttentiveMMILPooling(
        self.num_classes, self.dtype, init_scheme=self.init_scheme,
        name="mmil")(x, mask)
    out.update(audio_emb=a, visual_emb=v, audio_in=a_in, visual_in=v_in)
    if self.adversarial:
      out.update(self._discriminate(a, v, mask, train))
    return out


# The model-module contract (`avjax.models.build`): check, build,
# input_features; optional init_params, optimizer, upgrade_fingerprint.

DTYPES = ("float32", "bfloat16")


def check(model_cfg) -> list:
  """Config errors of a `config.model` block for AVVPNet (empty if fine)."""
  m = model_cfg
  return errors.failed_checks(m, [
      (m.input_modalities in ("av", "a", "v"), "input_modalities",
       "'av', 'a' or 'v'"),
      (m.dtype in DTYPES, "dtype", "'float32' or 'bfloat16'"),
      (m.d_model % m.num_heads == 0, "num_heads",
       f"a divisor of model.d_model={m.d_model}"),
      (m.modality_encoder_layers >= 0, "modality_encoder_layers", ">= 0"),
      (m.modality_encoder_heads > 0
       and m.d_model % m.modality_encoder_heads == 0,
       "modality_encoder_heads", f"a divisor of model.d_model={m.d_model}"),
      (0.0 <= m.dropout < 1.0, "dropout", "in [0, 1)"),
      (m.disc_norm in discriminator.NORMS, "disc_norm",
       f"one of {discriminator.NORMS}"),
      (m.init_scheme in inits.SCHEMES, "init_scheme",
       f"one of {list(inits.SCHEMES)}"),
  ] + pretrained.validate(m), "config.model.")


def build(model_cfg, info: dict) -> AVVPNet:
  """AVVPNet of `config.model` sized for the dataset `info`."""
  m = model_cfg
  return AVVPNet(
      num_classes=len(info["classes"]), d_model=m.d_model,
      num_layers=m.num_layers, num_heads=m.num_heads, d_ff=m.d_ff,
      dropout=m.dropout, cross_attention=m.cross_attention,
      input_modalities=m.input_modalities,
      frames_per_segment=avg.frames_per_segment(info),
      use_frames=m.use_frames, use_motion=m.use_motion,
      pool_first=m.pool_first, fused_attention=m.fused_attention,
      global_context=m.global_context,
      gcaa_first_segment=m.gcaa_first_segment,
      separate_self_attention=m.separate_self_attention,
      modality_encoder_layers=m.modality_encoder_layers,
      modality_encoder_heads=m.modality_encoder_heads, skip=m.skip,
      shared_fc=m.shared_fc, adversarial=m.adversarial,
      disc_norm=m.disc_norm, disc_relu=m.disc_relu,
      avg_encoder=avg.encoder(m, info) if m.avg_layers else None,
      avg_frozen=m.freeze_pretrained, init_scheme=m.init_scheme,
      dtype=getattr(jnp, m.dtype))


def input_features(model_cfg) -> tuple:
  """Feature streams the model reads from the dataset."""
  feats = []
  if "a" in model_cfg.input_modalities:
    feats.append("audio")
  if "v" in model_cfg.input_modalities:
    if model_cfg.use_frames:
      feats.append("visual")
    if model_cfg.use_motion:
      feats.append("motion")
  return tuple(feats)


def init_params(state, model_cfg):
  """A fresh run's state with `model.init_from`'s pretrained subtrees."""
  return pretrained.init_params(state, model_cfg)


def optimizer(tx, model_cfg):
  """`tx` with the pretrained subtrees frozen (`model.freeze_pretrained`)."""
  return pretrained.maybe_freeze(tx, model_cfg)


# Fields added to `config.model` after checkpoints were written without
# them, with the value those runs had (the code's default then).
LEGACY_FIELDS = {"shared_fc": False, "gcaa_first_segment": False,
                 "disc_norm": "layer", "disc_relu": False,
                 "modality_encoder_layers": 0, "modality_encoder_heads": 8}


def upgrade_fingerprint(model_dict: dict) -> dict:
  """A checkpoint's stored `config.model` as this code would write it."""
  return {**LEGACY_FIELDS, **model_dict}

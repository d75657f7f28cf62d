"""AVVP network: projections -> hybrid attention -> attentive MMIL heads.

HAN (Tian et al. 2020) is the default configuration; later methods (MA,
cross-modal learning, VEBA) are configurations of the same pieces.
"""

from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax.models import attention
from avjax.models import avg
from avjax.models import discriminator
from avjax.models import encoders
from avjax.models import inits
from avjax.models import pooling


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
  separate_self_attention: bool = False
  skip: bool = False
  shared_fc: bool = False
  adversarial: bool = False
  avg_encoder: Optional[avg.AVGEncoder] = None
  avg_frozen: bool = False
  init_scheme: str = "torch"
  dtype: Any = jnp.float32

  def _layer(self, name, cross=True, self_attn=True):
    return attention.HybridAttentionLayer(
        self.d_model, self.num_heads, self.d_ff, self.dropout,
        cross_attention=cross, self_attention=self_attn,
        global_context=self.global_context, fused=self.fused_attention,
        init_scheme=self.init_scheme, dtype=self.dtype, name=name)

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

  def _discriminate(self, a, v):
    """Discriminator logits [B, T, 2] on reversed and on detached features."""
    x = jnp.stack([a, v], axis=2)
    disc = discriminator.ModalityDiscriminator(
        init_scheme=self.init_scheme, dtype=self.dtype, name="modality_disc")
    return {"disc_logits": disc(discriminator.gradient_reversal(x, 1.0)),
            "disc_logits_detached": disc(jax.lax.stop_gradient(x))}

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
    `audio_in`, `visual_in` [B,T,d] (before it); with `adversarial`, also
    `disc_logits` [B,T,2] (audio 0, visual 1; features gradient-reversed with
    scale 1) and `disc_logits_detached` (same values, no feature gradient),
    which `losses.adversarial.adversarial_terms` combines into a scheduled
    reversal."""
    mask = batch.get("segment_mask")
    if self.avg_encoder is not None:
      a, v = self._pretrained_streams(batch, train)
    else:
      a, v = self._project(batch)
    a_in, v_in = a, v
    a, v = self._encode(a, v, mask, train)
    x = jnp.stack([a, v], axis=2)
    out = pooling.AttentiveMMILPooling(
        self.num_classes, self.dtype, init_scheme=self.init_scheme,
        name="mmil")(x, mask)
    out.update(audio_emb=a, visual_emb=v, audio_in=a_in, visual_in=v_in)
    if self.adversarial:
      out.update(self._discriminate(a, v))
    return out

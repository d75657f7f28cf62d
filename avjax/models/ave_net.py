"""AVE event localization network (Tian et al. 2018), config-driven.

inputs -> audio-guided visual attention (or global average pooling) ->
per-modality BiLSTMs -> fusion at the early, late or decision stage ->
per-segment classifier over the AVE classes + background.

Stages (Table 2): "early" fuses raw audio with attended visual features and
runs one BiLSTM on the result; "late" (default) fuses the two BiLSTM
outputs; "decision" fuses the two per-modality class scores (before the
softmax). Single-modality models ("a", "v") skip fusion. Fusion "dmrfe" is
the DMRN ensemble: `ensemble` DMRN branches, each with its own classifier,
whose probabilities are averaged (each branch trained with its own loss).
"""

from typing import Dict

import flax.linen as nn
import jax
import jax.numpy as jnp

from avjax.models import ave_fusion
from avjax.models import inits
from avjax.utils import pretrained


class AudioGuidedAttention(nn.Module):
  """Audio-guided visual attention over the k regions (paper Eqs. 2-4).

  U_v, U_a: Dense(dim) + ReLU; x = W_f tanh(W_v U_v(v) + W_a U_a(a) 1^T)
  with W_v, W_a mapping to `hidden` (the reference: 49) per region;
  w = softmax over regions; v_att = sum_i w_i v_i.

  Attributes:
    dim: width of the projected audio/visual features (reference 512).
    hidden: width of the per-region attention MLP (reference 49).
    form: "paper" (Eq. 4: the audio term W_a U_a(a) [hidden] is added to
      every region's hidden vector) or "reference" (the official code,
      `affine_v(v_t) + affine_g(a_t).unsqueeze(2)`: the audio term's i-th
      entry is added to all hidden units of region i, so it needs
      hidden == k, the 49 regions; W_v, W_a, W_f without bias, as the
      reference's affine_v, affine_g, affine_h).
  """
  dim: int = 512
  hidden: int = 49
  form: str = "paper"
  init_scheme: str = "flax"  # "torch": att_Net's init_weights (Xavier)

  @nn.compact
  def __call__(self, audio, regions):
    """audio [B, T, Da], regions [B, T, k, Dv] -> ([B, T, Dv], w [B, T, k])."""
    xav = lambda fan_in: inits.xavier_linear(self.init_scheme, fan_in)
    uv = nn.relu(nn.Dense(self.dim, name="u_v",
                          **xav(regions.shape[-1]))(regions))
    ua = nn.relu(nn.Dense(self.dim, name="u_a", **xav(audio.shape[-1]))(audio))
    bias = self.form == "paper"  # the reference's affine_v/g/h: no bias
    g = nn.Dense(self.hidden, use_bias=bias, name="w_a", **xav(self.dim))(ua)
    if self.form == "reference":
      if self.hidden != regions.shape[-2]:
        raise ValueError(f"model.attention_form='reference' adds the audio "
                         f"term per region: needs model.att_hidden == "
                         f"{regions.shape[-2]} regions, got {self.hidden}")
      g = g[..., :, None]  # [B, T, k, 1]: entry i added to region i
    else:
      g = g[..., None, :]  # [B, T, 1, hidden]: added to every region
    x = jnp.tanh(nn.Dense(self.hidden, use_bias=bias, name="w_v",
                          **xav(self.dim))(uv) + g)
    w = jax.nn.softmax(nn.Dense(1, use_bias=bias, name="w_f",
                                **xav(self.hidden))(x)[..., 0], axis=-1)
    return jnp.einsum("btk,btkd->btd", w, regions), w


class BiLSTM(nn.Module):
  """Bidirectional LSTM over segments: [B, T, D] -> [B, T, 2 * hidden]."""
  hidden: int = 128
  init_scheme: str = "flax"  # "torch": nn.LSTM's defaults

  @nn.compact
  def __call__(self, x, lengths):
    kw = inits.lstm_cell(self.init_scheme, self.hidden)
    rnn = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(self.hidden, **kw)),
                           nn.RNN(nn.OptimizedLSTMCell(self.hidden, **kw)))
    return rnn(x, seq_lengths=lengths)


class Classifier(nn.Module):
  """Head: "mlp" ReLU -> Dense(hidden) -> ReLU -> Dense(C) (the reference
  att_Net's L1/L2) or "linear" Dense(C) (the reference TBMRF_Net's L2:
  DMRN's output straight to the classes, its negative half kept)."""
  num_classes: int
  hidden: int = 64
  kind: str = "mlp"
  init_scheme: str = "flax"  # "torch": L1/L2 Xavier, as init_weights

  @nn.compact
  def __call__(self, x):
    xav = lambda fan_in: inits.xavier_linear(self.init_scheme, fan_in)
    if self.kind == "linear":
      return nn.Dense(self.num_classes, name="Dense_1",
                      **xav(x.shape[-1]))(x)
    x = nn.relu(nn.Dense(self.hidden, **xav(x.shape[-1]))(nn.relu(x)))
    return nn.Dense(self.num_classes, **xav(self.hidden))(x)


class AVENet(nn.Module):
  """Per-segment event classifier.

  Attributes:
    num_classes: C (AVE: 28 events + background).
    modalities: "av", "a" or "v".
    attention: audio-guided visual attention (needs the audio input, also
      for "v"); False pools the 7x7 regions by their mean.
    fusion: a name of `ave_fusion.NAMES` (used when modalities == "av").
    stage: "early", "late" or "decision".
    lstm_hidden, att_dim, att_hidden, fusion_dim, head_hidden: widths.
    num_blocks: stacked MRN/DMRN blocks; ensemble: DMRFE branches.
    fusion_input_norm: the multiplicative fusions (`ave_fusion.NORMED`)
      layer-normalise their inputs (see `ave_fusion`; False: the old form).
    attention_form: "paper" (Eq. 4) or "reference" (`AudioGuidedAttention`).
    head: "mlp" or "linear" (`Classifier`; the reference DMRN: "linear").
    init_scheme: "flax" (flax's defaults) or "torch" (the reference's:
      att_Net/TBMRF_Net re-initialise their Linear weights Xavier-uniform
      in `init_weights`, biases and DMRN's U_a/U_v keep PyTorch's Linear
      defaults, the BiLSTMs nn.LSTM's U(+-1/sqrt(hidden)); `inits`).
    visual_key: the visual feature: "visual_map" [B, T, 7, 7, D] (regions)
      or "visual_vec" [B, T, D] (already pooled; no attention possible).
  """
  num_classes: int
  modalities: str = "av"
  attention: bool = True
  fusion: str = "concat"
  stage: str = "late"
  lstm_hidden: int = 128
  att_dim: int = 512
  att_hidden: int = 49
  fusion_dim: int = 256
  num_blocks: int = 1
  ensemble: int = 2
  head_hidden: int = 64
  visual_key: str = "visual_map"
  fusion_input_norm: bool = True
  fusion_dropout: float = 0.0
  attention_form: str = "paper"
  head: str = "mlp"
  init_scheme: str = "flax"

  def visual(self, x) -> tuple:
    """(visual feature per segment [B, T, D], attention [B, T, k] or None)."""
    v = x[self.visual_key]
    if v.ndim == 3:
      return v, None
    regions = v.reshape(v.shape[:2] + (-1, v.shape[-1]))
    if not self.attention:
      return regions.mean(2), None
    return AudioGuidedAttention(self.att_dim, self.att_hidden,
                                self.attention_form, self.init_scheme,
                                name="attention")(x["audio"], regions)

  def fuse(self, name, a, v, train, tag=""):
    """The fusion's output, with dropout `fusion_dropout` when training."""
    kw = {"init_scheme": self.init_scheme} if name == "dmrn" else {}
    h = ave_fusion.make(name, self.fusion_dim, self.num_blocks,
                        self.fusion_input_norm, name=f"fusion{tag}",
                        **kw)(a, v)
    return nn.Dropout(self.fusion_dropout, deterministic=not train)(h)

  @nn.compact
  def __call__(self, x: Dict[str, jnp.ndarray], *, train: bool = False):
    """Returns logits [B, T, C] (or [K, B, T, C] `branch_logits` for DMRFE),
    prob [B, T, C] and, with attention, attention [B, T, k]."""
    mask = x["segment_mask"]
    lengths = mask.sum(-1).astype(jnp.int32)
    out, att = {}, None
    a = x["audio"] if "a" in self.modalities or self.attention else None
    lstm = lambda h, n: BiLSTM(self.lstm_hidden, self.init_scheme,
                               name=n)(h, lengths)
    head = lambda h, n: Classifier(self.num_classes, self.head_hidden,
                                   self.head, self.init_scheme, name=n)(h)
    if "v" in self.modalities:
      v, att = self.visual(x)
    if self.modalities == "a":
      logits = head(lstm(a, "lstm_a"), "head")
    elif self.modalities == "v":
      logits = head(lstm(v, "lstm_v"), "head")
    elif self.stage == "early":
      logits = head(lstm(self.fuse(self.fusion, a, v, train), "lstm_av"),
                    "head")
    elif self.stage == "late":
      ha, hv = lstm(a, "lstm_a"), lstm(v, "lstm_v")
      if self.fusion == "dmrfe":
        branches = jnp.stack([
            head(self.fuse("dmrn", ha, hv, train, f"_{k}"), f"head_{k}")
            for k in range(self.ensemble)])
        out["branch_logits"] = branches
        out["prob"] = jax.nn.softmax(branches, -1).mean(0)
        logits = jnp.log(out["prob"] + 1e-12)
      else:
        logits = head(self.fuse(self.fusion, ha, hv, train), "head")
    else:  # decision
      ma = head(lstm(a, "lstm_a"), "head_a")
      mv = head(lstm(v, "lstm_v"), "head_v")
      logits = nn.Dense(self.num_classes, name="out")(
          self.fuse(self.fusion, ma, mv, train))
    out["logits"] = logits
    out.setdefault("prob", jax.nn.softmax(logits, -1))
    if att is not None:
      out["attention"] = att
    return out


MODALITIES = ("av", "a", "v")
STAGES = ("early", "late", "decision")
ATTENTION_FORMS = ("paper", "reference")
HEADS = ("mlp", "linear")


def check(model_cfg) -> list:
  """Config errors of a `config.model` block for AVENet (empty if fine)."""
  m, errors = model_cfg, []
  if m.modalities not in MODALITIES:
    errors.append(f"model.modalities={m.modalities!r}: one of {MODALITIES}")
  if m.stage not in STAGES:
    errors.append(f"model.stage={m.stage!r}: one of {STAGES}")
  if m.fusion not in ave_fusion.NAMES:
    errors.append(f"model.fusion={m.fusion!r}: one of {ave_fusion.NAMES}")
  if m.fusion == "dmrfe" and m.stage != "late":
    errors.append(f"model.fusion='dmrfe' needs model.stage='late', got "
                  f"{m.stage!r}")
  if m.num_blocks != 1 and m.fusion not in ave_fusion.STACKABLE + ("dmrfe",):
    errors.append(f"model.num_blocks={m.num_blocks}: only "
                  f"{ave_fusion.STACKABLE} stack blocks")
  if m.get("attention_form", "paper") not in ATTENTION_FORMS:
    errors.append(f"model.attention_form={m.attention_form!r}: one of "
                  f"{ATTENTION_FORMS}")
  if m.init_scheme not in inits.SCHEMES:
    errors.append(f"model.init_scheme={m.init_scheme!r}: one of "
                  f"{inits.SCHEMES}")
  if m.get("head", "mlp") not in HEADS:
    errors.append(f"model.head={m.head!r}: one of {HEADS}")
  if (m.get("attention_form", "paper") == "reference" and m.attention
      and m.att_hidden != 49):
    errors.append(f"model.attention_form='reference' needs model.att_hidden"
                  f"=49 (one per 7x7 region), got {m.att_hidden}")
  if not 0.0 <= m.fusion_dropout < 1.0:
    errors.append(f"model.fusion_dropout={m.fusion_dropout}: in [0, 1)")
  if m.attention and m.visual_key != "visual_map":
    errors.append("model.attention=True needs model.visual_key='visual_map'")
  if m.attention and m.modalities == "a":
    errors.append("model.attention=True with modalities='a' (no visual)")
  return errors


def build(model_cfg, info: dict) -> AVENet:
  """AVENet of `config.model` for the dataset `info` (classes incl. the
  background class)."""
  return AVENet(
      num_classes=len(info["classes"]), modalities=model_cfg.modalities,
      attention=model_cfg.attention, fusion=model_cfg.fusion,
      stage=model_cfg.stage, lstm_hidden=model_cfg.lstm_hidden,
      att_dim=model_cfg.att_dim, att_hidden=model_cfg.att_hidden,
      fusion_dim=model_cfg.fusion_dim, num_blocks=model_cfg.num_blocks,
      ensemble=model_cfg.ensemble, head_hidden=model_cfg.head_hidden,
      visual_key=model_cfg.visual_key,
      fusion_input_norm=model_cfg.fusion_input_norm,
      fusion_dropout=model_cfg.fusion_dropout,
      attention_form=model_cfg.get("attention_form", "paper"),
      head=model_cfg.get("head", "mlp"),
      init_scheme=model_cfg.init_scheme)


# What `model.init_from` (a trained run's workdir, e.g. A+V-att) provides:
# the reference's DMRN "was trained by fine-tuning the AV_att model"
# (supervised_main.py), i.e. from its attention and BiLSTMs.
INIT_SUBTREES = ("attention", "lstm_a", "lstm_v")


def init_params(state, model_cfg):
  """A fresh run's state with `INIT_SUBTREES` of `model.init_from`'s latest
  checkpoint (shapes checked); unchanged when it is empty."""
  return pretrained.init_params(state, model_cfg, INIT_SUBTREES)


def upgrade_fingerprint(model_dict: dict) -> dict:
  """A checkpoint's model block from before `init_scheme` (flax's init)."""
  return {"init_scheme": "flax", **model_dict}


def input_features(model_cfg) -> tuple:
  """Dataset feature streams the model reads."""
  feats = []
  if "a" in model_cfg.modalities or model_cfg.attention:
    feats.append("audio")
  if "v" in model_cfg.modalities:
    feats.append(model_cfg.visual_key)
  return tuple(feats)

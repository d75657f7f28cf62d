"""Official PyTorch `MMIL_Net` weights -> `AVVPNet` params: HAN (AVVP-ECCV20,
`convert_han`) and cross-modal learning (`convert_crossmodal`, below).

The official model's state_dict maps onto `avvp_net.AVVPNet` in its HAN
configuration (`configs.common.avvp_net()`, either attention layout):

  fc_a                          -> audio_proj
  fc_v, fc_st, fc_fusion        -> visual_proj/{frame_proj, motion_proj, fusion}
  hat_encoder.layers.0.cm_attn  -> han_0 cross-modal branch
  hat_encoder.layers.0.self_attn-> han_0 self-attention branch
  hat_encoder.layers.0.{linear1, linear2, norm1, norm2}
                                -> han_0/{ffn1, ffn2, norm1, norm2}
  fc_prob, fc_frame_att, fc_av_att
                                -> mmil/{frame_cls, frame_att, modality_att}

PyTorch Linear weights are [out, in] (flax kernels [in, out]); an
nn.MultiheadAttention `in_proj_weight` stacks the q, k, v rows, each with the
heads contiguous along the feature axis (as flax's [d, heads, d/heads]).
Modules the official forward never runs (`audio_encoder`, `visual_encoder`,
`cmt_encoder`, `hat_encoder.norm1/norm2`: the HAN encoder is built with
norm=None) are accepted and ignored (`Converted.ignored`).

Known differences of the official forward (checked by the golden test
tests/models/test_convert_torch.py, eval mode): PyTorch LayerNorm uses
eps=1e-5, flax 1e-6 (`HybridAttentionLayer` does not expose it): about 1e-6
on the probabilities at realistic feature scales, 10x below the test's 1e-5.
The biases of fc_frame_att / fc_av_att (softmax over time / modality) and the
attention key biases cancel in their softmaxes, so no output checks them.
"""

import logging
from typing import Any, Dict, List, Mapping, NamedTuple, Tuple

import jax.numpy as jnp
import numpy as np

from avjax.models import attention

# State-dict prefixes of modules MMIL_Net builds but never uses in forward.
IGNORED_PREFIXES = ("audio_encoder.", "visual_encoder.", "cmt_encoder.",
                    "hat_encoder.norm1.", "hat_encoder.norm2.")

_LAYER = "hat_encoder.layers.0."
_LINEARS = {  # torch Linear -> (avjax module path, in-dim name, out-dim name)
    "fc_a": (("audio_proj",), "audio_dim", "d_model"),
    "fc_v": (("visual_proj", "frame_proj"), "visual_dim", "d_model"),
    "fc_st": (("visual_proj", "motion_proj"), "motion_dim", "d_model"),
    "fc_fusion": (("visual_proj", "fusion"), "2d_model", "d_model"),
    _LAYER + "linear1": (("han_0", "ffn1"), "d_model", "d_ff"),
    _LAYER + "linear2": (("han_0", "ffn2"), "d_ff", "d_model"),
    "fc_prob": (("mmil", "frame_cls"), "d_model", "num_classes"),
    "fc_frame_att": (("mmil", "frame_att"), "d_model", "num_classes"),
    "fc_av_att": (("mmil", "modality_att"), "d_model", "num_classes"),
}
_NORMS = {_LAYER + "norm1": ("han_0", "norm1"),
          _LAYER + "norm2": ("han_0", "norm2")}
# torch attention module -> flax branch name of HybridAttentionLayer.
_ATTNS = {_LAYER + "cm_attn": "cross_attn", _LAYER + "self_attn": "self_attn"}


def han_state_dict_shapes(d_model: int = 512, d_ff: int = 512,
                          num_classes: int = 25, audio_dim: int = 128,
                          visual_dim: int = 2048, motion_dim: int = 512
                          ) -> Dict[str, Tuple[int, ...]]:
  """The used keys of an MMIL_Net state_dict -> shape (defaults: official)."""
  dims = dict(d_model=d_model, d_ff=d_ff, num_classes=num_classes,
              audio_dim=audio_dim, visual_dim=visual_dim,
              motion_dim=motion_dim, **{"2d_model": 2 * d_model})
  shapes = {}
  for key, (_, din, dout) in _LINEARS.items():
    shapes[key + ".weight"] = (dims[dout], dims[din])
    shapes[key + ".bias"] = (dims[dout],)
  for key in _NORMS:
    shapes[key + ".weight"] = shapes[key + ".bias"] = (d_model,)
  for key in _ATTNS:
    shapes[key + ".in_proj_weight"] = (3 * d_model, d_model)
    shapes[key + ".in_proj_bias"] = (3 * d_model,)
    shapes[key + ".out_proj.weight"] = (d_model, d_model)
    shapes[key + ".out_proj.bias"] = (d_model,)
  return dict(sorted(shapes.items()))


class Converted(NamedTuple):
  params: Dict[str, Any]  # the `AVVPNet` param tree (jnp float32 arrays)
  ignored: List[str]  # state_dict keys of modules the forward never uses


def _numpy(v) -> np.ndarray:
  if hasattr(v, "detach"):  # a torch tensor
    v = v.detach().cpu().numpy()
  return np.asarray(v, np.float32)


def _check(state_dict: Mapping[str, Any], shapes: Mapping[str, tuple],
           ignored_prefixes: Tuple[str, ...] = IGNORED_PREFIXES
           ) -> Tuple[Dict[str, np.ndarray], List[str]]:
  """Used arrays by key and the ignored keys; ValueError on any mismatch."""
  keys = list(state_dict)
  if keys and all(k.startswith("module.") for k in keys):  # DataParallel
    state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
  ignored = sorted(k for k in state_dict if k.startswith(ignored_prefixes))
  unknown = sorted(k for k in state_dict
                   if k not in shapes and k not in ignored)
  if unknown:
    raise ValueError(f"unknown MMIL_Net state_dict key(s) {unknown}; "
                     f"expected the keys {sorted(shapes)} (plus ignored "
                     f"prefixes {ignored_prefixes})")
  missing = [k for k in shapes if k not in state_dict]
  if missing:
    raise ValueError("missing MMIL_Net state_dict key(s): " + ", ".join(
        f"{k} (expected shape {shapes[k]})" for k in missing))
  arrays = {}
  for k, shape in shapes.items():
    a = _numpy(state_dict[k])
    if a.shape != tuple(shape):
      raise ValueError(f"MMIL_Net state_dict key {k}: shape {a.shape}, "
                       f"expected shape {tuple(shape)}")
    arrays[k] = a
  return arrays, ignored


def _unfused_attention(w: Dict[str, np.ndarray], prefix: str,
                       num_heads: int) -> Dict[str, Any]:
  """One nn.MultiheadAttention -> a flax MultiHeadDotProductAttention tree."""
  d = w[prefix + ".out_proj.weight"].shape[0]
  if d % num_heads:
    raise ValueError(f"d_model={d} is not divisible by num_heads="
                     f"{num_heads}")
  dh = d // num_heads
  wq, wk, wv = np.split(w[prefix + ".in_proj_weight"], 3)
  bq, bk, bv = np.split(w[prefix + ".in_proj_bias"], 3)
  proj = lambda wt, b: {"kernel": wt.T.reshape(d, num_heads, dh),
                        "bias": b.reshape(num_heads, dh)}
  return {"query": proj(wq, bq), "key": proj(wk, bk), "value": proj(wv, bv),
          "out": {"kernel": w[prefix + ".out_proj.weight"].T.reshape(
                      num_heads, dh, d),
                  "bias": w[prefix + ".out_proj.bias"]}}


def convert_han(state_dict: Mapping[str, Any], *, fused: bool = True,
                num_heads: int = 1,
                ignored_prefixes: Tuple[str, ...] = IGNORED_PREFIXES,
                **dims) -> Converted:
  """An official MMIL_Net state_dict -> `AVVPNet` params and ignored keys.

  Args:
    state_dict: key -> array (numpy or torch tensors), e.g. from
      `load_torch_checkpoint`; a DataParallel "module." prefix is stripped.
    fused: the `fused_attention` layout of the target model (default True,
      as `configs.common.avvp_net()`); False gives flax's
      MultiHeadDotProductAttention trees `cross_attn`, `self_attn`.
    num_heads: heads of the attention (official HAN: 1).
    **dims: `han_state_dict_shapes` sizes (defaults: the official model's).

  Raises:
    ValueError: naming the key (and its expected shape) of any unknown,
      missing or wrongly shaped entry.
  """
  w, ignored = _check(state_dict, han_state_dict_shapes(**dims),
                      ignored_prefixes)
  params: Dict[str, Any] = {}

  def put(path, leaf):
    node = params
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = leaf

  for key, (path, _, _) in _LINEARS.items():
    put(path, {"kernel": w[key + ".weight"].T, "bias": w[key + ".bias"]})
  for key, path in _NORMS.items():
    put(path, {"scale": w[key + ".weight"], "bias": w[key + ".bias"]})
  for key, name in _ATTNS.items():
    put(("han_0", name), _unfused_attention(w, key, num_heads))
  if fused:
    params["han_0"] = attention.fuse_params(params["han_0"])
  params = _tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
  return Converted(params, ignored)


# MA (Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing, nets/net_audiovisual.py
# MMIL_Net, the same in steps 1-3) is HAN's MMIL_Net plus modules its forward
# never calls (t_att, t_att2, fc1, fc2); its contrastive similarities are
# computed from HAN's tensors (`audio_emb`, `visual_in`; `losses.nce`), so
# the converted params are HAN's: `configs/avvp_ma.py` builds that model.
MA_IGNORED_PREFIXES = IGNORED_PREFIXES + ("t_att.", "t_att2.", "fc1.", "fc2.")


def convert_ma(state_dict: Mapping[str, Any], **kwargs) -> Converted:
  """An official MA MMIL_Net state_dict -> `AVVPNet` params (`convert_han`
  with MA's unused modules ignored)."""
  return convert_han(state_dict, ignored_prefixes=MA_IGNORED_PREFIXES,
                     **kwargs)


def han_state_dict_to_params(state_dict: Mapping[str, Any], **kwargs
                             ) -> Dict[str, Any]:
  """`convert_han(...).params`; logs the ignored (unused) keys."""
  out = convert_han(state_dict, **kwargs)
  if out.ignored:
    logging.info("ignored %d unused MMIL_Net keys: %s", len(out.ignored),
                 out.ignored)
  return out.params


# Cross-modal learning (jayaprakash-a/Cross-Modal-learning-for-Audio-Visual-
# Video-Parsing, nets/net_audiovisual.py: Base + Adv + Skip + GCAA, the model
# of main_avvp.py / main_avvp_adv.py) -> `AVVPNet(separate_self_attention,
# skip, global_context, shared_fc, adversarial, disc_norm="batch",
# disc_relu)`, `configs/avvp_crossmodal.py:data=llp` (`form=reference`: with
# gcaa_first_segment, the official `[0]`; `form=paper` reads the same
# weights). `cma_layer.norm1/norm2` (its Encoder is built with norm=None) and
# the BatchNorms' `num_batches_tracked` are never used: ignored.
_CM_GCAA = {"qx_linear": "query_proj", "qc_linear": "query_ctx",
            "Vqx_linear": "query_gate_tok", "Vqc_linear": "query_gate_ctx",
            "kx_linear": "key_proj", "kc_linear": "key_ctx",
            "Vkx_linear": "key_gate_tok", "Vkc_linear": "key_gate_ctx",
            "vx_linear": "value", "out": "out"}
_CM_LAYERS = {"sa_layer_a.": ("self_a_0", "self_attn", "self_attn"),
              "sa_layer_v.": ("self_v_0", "self_attn", "self_attn"),
              "cma_layer.layers.0.": ("han_0", "cm_attn", "cross_attn")}
CM_IGNORED = ("cma_layer.norm1.", "cma_layer.norm2.")


def _crossmodal_tables(d: int, d_ff: int, num_classes: int, audio_dim: int,
                       visual_dim: int, motion_dim: int):
  """(linears, layer norms, batch norms): torch prefix -> (avjax path, ...)."""
  lin = {"fc_a": (("audio_proj",), audio_dim, d),
         "fc_v": (("visual_proj", "frame_proj"), visual_dim, d),
         "fc_st": (("visual_proj", "motion_proj"), motion_dim, d),
         "fc_fusion": (("visual_proj", "fusion"), 2 * d, d),
         "shared_fc": (("shared_fc",), d, d),
         "fc_prob": (("mmil", "frame_cls"), d, num_classes),
         "fc_frame_att": (("mmil", "frame_att"), d, num_classes),
         "fc_av_att": (("mmil", "modality_att"), d, num_classes),
         "mod_classifier.fc1": (("modality_disc", "dense_0"), d, 128),
         "mod_classifier.fc2": (("modality_disc", "dense_1"), 128, 10),
         "mod_classifier.fc3": (("modality_disc", "logit"), 10, 1)}
  lns = {"norm_a": (("skip_a_0",), d), "norm_v": (("skip_v_0",), d)}
  for prefix, (layer, attn, branch) in _CM_LAYERS.items():
    for t, ours in _CM_GCAA.items():
      lin[prefix + attn + "." + t] = ((layer, branch, ours), d,
                                      1 if t.startswith("V") else d)
    lin[prefix + "linear1"] = ((layer, "ffn1"), d, d_ff)
    lin[prefix + "linear2"] = ((layer, "ffn2"), d_ff, d)
    for n in ("norm1", "norm2"):
      lns[prefix + n] = ((layer, n), d)
  bns = {"mod_classifier.norm1": (("modality_disc", "norm_0"), 128),
         "mod_classifier.norm2": (("modality_disc", "norm_1"), 10)}
  return lin, lns, bns


def crossmodal_state_dict_shapes(d_model: int = 512, d_ff: int = 512,
                                 num_classes: int = 25, audio_dim: int = 128,
                                 visual_dim: int = 2048,
                                 motion_dim: int = 512
                                 ) -> Dict[str, Tuple[int, ...]]:
  """The used keys of the cross-modal MMIL_Net state_dict -> shape."""
  lin, lns, bns = _crossmodal_tables(d_model, d_ff, num_classes, audio_dim,
                                     visual_dim, motion_dim)
  shapes = {}
  for key, (_, din, dout) in lin.items():
    shapes[key + ".weight"], shapes[key + ".bias"] = (dout, din), (dout,)
  for key, (_, n) in list(lns.items()) + list(bns.items()):
    shapes[key + ".weight"] = shapes[key + ".bias"] = (n,)
  for key, (_, n) in bns.items():
    shapes[key + ".running_mean"] = shapes[key + ".running_var"] = (n,)
  return dict(sorted(shapes.items()))


class ConvertedVariables(NamedTuple):
  variables: Dict[str, Any]  # {"params": ..., "batch_stats": ...}
  ignored: List[str]  # state_dict keys of modules the forward never uses


def convert_crossmodal(state_dict: Mapping[str, Any], **dims
                       ) -> ConvertedVariables:
  """An official cross-modal learning MMIL_Net state_dict -> AVVPNet
  variables (params and the discriminator's BatchNorm `batch_stats`).

  Raises:
    ValueError: naming any unknown, missing or wrongly shaped key.
  """
  sd = dict(state_dict)
  if sd and all(k.startswith("module.") for k in sd):  # DataParallel
    sd = {k[len("module."):]: v for k, v in sd.items()}
  extra = sorted(k for k in sd if k.startswith(CM_IGNORED) or
                 k.endswith(".num_batches_tracked"))
  shapes = crossmodal_state_dict_shapes(**dims)
  w, _ = _check({k: v for k, v in sd.items() if k not in extra}, shapes)
  lin, lns, bns = _crossmodal_tables(
      shapes["fc_a.weight"][0], shapes["sa_layer_a.linear1.weight"][0],
      shapes["fc_prob.weight"][0], shapes["fc_a.weight"][1],
      shapes["fc_v.weight"][1], shapes["fc_st.weight"][1])
  params: Dict[str, Any] = {}
  stats: Dict[str, Any] = {}

  def put(tree, path, leaf):
    for p in path[:-1]:
      tree = tree.setdefault(p, {})
    tree[path[-1]] = leaf

  for key, (path, _, _) in lin.items():
    put(params, path, {"kernel": w[key + ".weight"].T,
                       "bias": w[key + ".bias"]})
  for key, (path, _) in list(lns.items()) + list(bns.items()):
    put(params, path, {"scale": w[key + ".weight"], "bias": w[key + ".bias"]})
  for key, (path, _) in bns.items():
    put(stats, path, {"mean": w[key + ".running_mean"],
                      "var": w[key + ".running_var"]})
  f32 = lambda t: _tree_map(lambda a: jnp.asarray(a, jnp.float32), t)
  return ConvertedVariables({"params": f32(params),
                             "batch_stats": f32(stats)}, extra)


def _tree_map(fn, tree):
  if isinstance(tree, dict):
    return {k: _tree_map(fn, v) for k, v in tree.items()}
  return fn(tree)


def _import_torch():
  import torch  # pylint: disable=g-import-not-at-top
  return torch


def load_torch_checkpoint(path: str) -> Dict[str, np.ndarray]:
  """A state_dict as numpy arrays, from a torch `.pt` file or an `.npz`.

  `.npz` files (arrays named by state_dict key) need no torch; any other file
  is read with `torch.load` (CPU, weights only), which needs torch installed.
  """
  if str(path).endswith(".npz"):
    with np.load(path) as f:
      return {k: np.asarray(f[k]) for k in f.files}
  try:
    torch = _import_torch()
  except ImportError as e:
    raise ImportError(
        f"reading the PyTorch checkpoint {path} needs torch (`pip install "
        "torch`); or convert it to .npz where torch is installed: python -c "
        "\"import sys, numpy as np, torch; sd = torch.load(sys.argv[1], "
        "map_location='cpu'); np.savez(sys.argv[2], **{k: v.numpy() for k, "
        f"v in sd.items()}})\" {path} OUT.npz, and load OUT.npz") from e
  sd = torch.load(path, map_location="cpu", weights_only=True)
  if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(
      sd["state_dict"], Mapping):
    sd = sd["state_dict"]
  if not isinstance(sd, Mapping):
    raise ValueError(f"{path} holds a {type(sd).__name__}, not a state_dict "
                     "(key -> tensor mapping)")
  return {k: v.detach().cpu().numpy() for k, v in sd.items()
          if hasattr(v, "detach")}


# AVE (YapengTian/AVE-ECCV18): models.att_Net (A+V-att, `net="att"`) and
# models_fusion.TBMRF_Net with one block (DMRN, `net="dmrn"`) -> `ave_net.
# AVENet` in configs/ave.py's `form=reference` (attention_form=reference,
# late stage; concat + mlp head for att_Net, dmrn + linear head for DMRN;
# lstm_hidden = hidden_dim, att_dim = hidden_size, att_hidden = 49,
# fusion_dim = 2 hidden_dim). Checked by tests/models/test_convert_ave.py.
#   lstm_audio, lstm_video  -> lstm_a, lstm_v: OptimizedLSTMCell_0 (forward)
#       and _1 (`_reverse`); torch's gate rows i, f, g, o -> ii/if/ig/io
#       (input kernels) and hi/hf/hg/ho (b_ih + b_hh as their bias)
#   affine_audio, affine_video, affine_g, affine_v, affine_h
#                           -> attention/u_a, u_v, w_a, w_v, w_f
#   L1, L2 (att_Net)        -> head/Dense_0, Dense_1
#   U_a.0/.2, U_v.0/.2, L2 (TBMRF_Net) -> fusion/block_0/u_a1, u_a2, u_v1,
#       u_v2 and head/Dense_1
# With one block TBMRF_block's swapped residuals (video = tanh(audio +
# merged), audio = tanh(video + merged)) give the same (a' + v') / 2 as
# ave_fusion.DMRN; with more blocks they would differ (not converted).
AVE_NETS = ("att", "dmrn")


def _ave_linear(w, key, bias=True):
  out = {"kernel": w[key + ".weight"].T}
  if bias:
    out["bias"] = w[key + ".bias"]
  return out


def _ave_lstm(w, key):
  cells = {}
  for i, suffix in enumerate(("", "_reverse")):
    wih, whh = w[f"{key}.weight_ih_l0{suffix}"], w[f"{key}.weight_hh_l0{suffix}"]
    b = w[f"{key}.bias_ih_l0{suffix}"] + w[f"{key}.bias_hh_l0{suffix}"]
    h = whh.shape[1]
    cell = {}
    for g, name in enumerate("ifgo"):
      rows = slice(g * h, (g + 1) * h)
      cell["i" + name] = {"kernel": wih[rows].T}
      cell["h" + name] = {"kernel": whh[rows].T, "bias": b[rows]}
    cells[f"OptimizedLSTMCell_{i}"] = cell
  return cells


def convert_ave(state_dict: Mapping[str, Any], net: str = "att"
                ) -> Dict[str, Any]:
  """An official AVE att_Net (`net="att"`) or one-block TBMRF_Net
  (`net="dmrn"`) state_dict -> AVENet params (see the table above).

  Raises:
    ValueError: an unknown `net`, or naming any unknown or missing key.
  """
  if net not in AVE_NETS:
    raise ValueError(f"net={net!r}; valid: {AVE_NETS}")
  w = {k[len("module."):] if k.startswith("module.") else k: _numpy(v)
       for k, v in state_dict.items()}
  lstm = [f"{m}.{p}_l0{s}" for m in ("lstm_audio", "lstm_video")
          for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
          for s in ("", "_reverse")]
  att = ["affine_audio.weight", "affine_audio.bias", "affine_video.weight",
         "affine_video.bias", "affine_v.weight", "affine_g.weight",
         "affine_h.weight"]
  head = (["L1.weight", "L1.bias"] if net == "att" else
          [f"U_{m}.{i}.{p}" for m in "av" for i in (0, 2)
           for p in ("weight", "bias")]) + ["L2.weight", "L2.bias"]
  expected = set(lstm + att + head)
  unknown, missing = sorted(set(w) - expected), sorted(expected - set(w))
  if unknown or missing:
    raise ValueError(f"AVE {net} state_dict: unknown key(s) {unknown}, "
                     f"missing key(s) {missing} (att_Net: models.py; DMRN: "
                     "models_fusion.TBMRF_Net with nb_block=1)")
  params = {
      "lstm_a": _ave_lstm(w, "lstm_audio"),
      "lstm_v": _ave_lstm(w, "lstm_video"),
      "attention": {"u_a": _ave_linear(w, "affine_audio"),
                    "u_v": _ave_linear(w, "affine_video"),
                    "w_a": _ave_linear(w, "affine_g", False),
                    "w_v": _ave_linear(w, "affine_v", False),
                    "w_f": _ave_linear(w, "affine_h", False)}}
  if net == "att":
    params["head"] = {"Dense_0": _ave_linear(w, "L1"),
                      "Dense_1": _ave_linear(w, "L2")}
  else:
    params["fusion"] = {"block_0": {
        f"u_{m}{j}": _ave_linear(w, f"U_{m}.{i}")
        for m in "av" for j, i in ((1, 0), (2, 2))}}
    params["head"] = {"Dense_1": _ave_linear(w, "L2")}
  return _tree_map(lambda a: jnp.asarray(a, jnp.float32), params)


# AVDLN (AVE-ECCV18 cmm_train.py `scmm_net`, Keras 2): the released
# model/cmm_model_weights.h5 stores four Dense layers named in creation order,
# each as group `dense_k/dense_k/{kernel:0, bias:0}` (kernels [in, out], as
# flax's):
#   dense_1 [512, 128], dense_2 [128, 64]  -> visual/Dense_0, Dense_1
#   dense_3 [128, 128], dense_4 [128, 64]  -> audio/Dense_0, Dense_1
# The official distance is sqrt(max(sum of squares, 1e-7)) (Keras's epsilon),
# avjax's sqrt(sum + 1e-9): equal above ~1e-3 (checked by
# tests/models/test_convert_avdln.py against Keras outputs).
AVDLN_LAYERS = {"dense_1": ("visual", "Dense_0"),
                "dense_2": ("visual", "Dense_1"),
                "dense_3": ("audio", "Dense_0"),
                "dense_4": ("audio", "Dense_1")}


def load_keras_h5(path: str) -> Dict[str, np.ndarray]:
  """Weights of a Keras 2 `save_weights` .h5 file as {"layer/name": array}
  (e.g. "dense_1/kernel"), read with h5py (no Keras needed)."""
  import h5py  # pylint: disable=g-import-not-at-top
  out = {}
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise ValueError(f"{path}: not an HDF5 weights file ({e})") from e
  with f:
    root = f["model_weights"] if "model_weights" in f else f
    for layer in root:
      names = root[layer].attrs.get("weight_names", [])
      for name in names:
        name = name.decode() if isinstance(name, bytes) else str(name)
        short = name.split("/")[-1].split(":")[0]
        out[f"{layer}/{short}"] = np.asarray(root[layer][name], np.float32)
  return out


def convert_avdln(weights: Mapping[str, Any]) -> Dict[str, Any]:
  """The official AVDLN weights ({"dense_k/kernel"|"dense_k/bias": array},
  `load_keras_h5` of cmm_model_weights.h5) -> `avdln.AVDLN` params (hidden
  128, out 64, as configs/ave_cml.py).

  Raises:
    ValueError: naming any unknown, missing or misshapen weight.
  """
  shapes = {"dense_1": (512, 128), "dense_2": (128, 64),
            "dense_3": (128, 128), "dense_4": (128, 64)}
  expected = {f"{layer}/{p}": (shape if p == "kernel" else shape[1:])
              for layer, shape in shapes.items() for p in ("kernel", "bias")}
  w = {k: _numpy(v) for k, v in weights.items()}
  unknown = sorted(set(w) - set(expected))
  missing = sorted(set(expected) - set(w))
  bad = sorted(f"{k} {w[k].shape} (expected {expected[k]})" for k in w
               if k in expected and w[k].shape != expected[k])
  if unknown or missing or bad:
    raise ValueError(
        f"AVDLN weights: unknown {unknown}, missing {missing}, misshapen "
        f"{bad} (expected the four Dense layers of AVE-ECCV18's scmm_net: "
        "dense_1/2 video 512->128->64, dense_3/4 audio 128->128->64)")
  params: Dict[str, Any] = {"audio": {}, "visual": {}}
  for layer, (branch, name) in AVDLN_LAYERS.items():
    params[branch][name] = {"kernel": jnp.asarray(w[f"{layer}/kernel"]),
                            "bias": jnp.asarray(w[f"{layer}/bias"])}
  return params

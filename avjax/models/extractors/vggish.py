"""VGGish (Hershey et al., ICASSP 2017) as a Flax module, with AudioSet's
PCA + 8-bit post-processing and converters from both public weight layouts.

Network (as published in tensorflow/models research/audioset/vggish): input
log-mel examples [N, 96, 64] (`avjax.data.video.logmel`), 3x3 SAME convs
with ReLU and 2x2/2 max pools: conv1 64, pool, conv2 128, pool, conv3_1/_2
256, pool, conv4_1/_2 512, pool -> [N, 6, 4, 512] flattened in (H, W, C)
order -> fc1_1 4096, fc1_2 4096 (ReLU) -> fc2 128, the embedding.

Post-processing (AudioSet / LLP / AVE features): PCA with whitening
(emb - pca_means) @ pca_matrix.T, clip to [-2, 2], map to [0, 255] by
(x + 2) * 255 / 4 and make it an integer: 128 values 0..255 per 0.96 s.

The two public implementations differ in two details; each converter sets
them as its source does, and both can be overridden (`load(...)`):

                        TF release (vggish_slim)    PyTorch port
  ReLU on fc2           no (`relu_embedding=False`;  yes (True)
                        before mid-2020 the TF code
                        applied it too)
  to integer            truncation (numpy astype:    round (torch.round)
                        rounding="floor")

Weights (no network at run time; the user downloads them):
  TF:    vggish_model.ckpt + vggish_pca_params.npz (`TF_FILES`)
  torch: vggish-10086976.pth + vggish_pca_params-970ea276.pth
         (harritaylor/torchvggish, `TORCH_FILES`); a .npz of the same keys
         needs no torch.
Put them in the weights folder (`checkpoints.weights_dir`: $AVJAX_WEIGHTS_DIR
or ~/.cache/avjax/weights) or pass --vggish_weights=PATH [--vggish_pca=PATH].
"""

import dataclasses
import functools
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models.extractors import checkpoints

EMBEDDING_SIZE = 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0
TF_FILES = (
    ("vggish_model.ckpt",
     "https://storage.googleapis.com/audioset/vggish_model.ckpt"),
    ("vggish_pca_params.npz",
     "https://storage.googleapis.com/audioset/vggish_pca_params.npz"))
TORCH_FILES = (
    ("vggish-10086976.pth", "https://github.com/harritaylor/torchvggish/"
     "releases/download/v0.1/vggish-10086976.pth"),
    ("vggish_pca_params-970ea276.pth", "https://github.com/harritaylor/"
     "torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth"))

# (Flax name, channels, TF-slim scope, torch module); None = 2x2 max pool.
LAYERS = (
    ("conv1", 64, "vggish/conv1", "features.0"), None,
    ("conv2", 128, "vggish/conv2", "features.3"), None,
    ("conv3_1", 256, "vggish/conv3/conv3_1", "features.6"),
    ("conv3_2", 256, "vggish/conv3/conv3_2", "features.8"), None,
    ("conv4_1", 512, "vggish/conv4/conv4_1", "features.11"),
    ("conv4_2", 512, "vggish/conv4/conv4_2", "features.13"), None,
    ("fc1_1", 4096, "vggish/fc1/fc1_1", "embeddings.0"),
    ("fc1_2", 4096, "vggish/fc1/fc1_2", "embeddings.2"),
    ("fc2", EMBEDDING_SIZE, "vggish/fc2", "embeddings.4"),
)
_FC_INPUTS = {"fc1_1": 6 * 4 * 512, "fc1_2": 4096, "fc2": 4096}
# PCA entries of a torch state_dict (VGGish module or the PCA file).
_TORCH_PCA = (("pproc.pca_matrix", "pproc.pca_means"),
              ("pproc._pca_matrix", "pproc._pca_means"),
              ("pca_eigen_vectors", "pca_means"))


class VGGish(nn.Module):
  """VGGish up to the 128-d embedding (fc2).

  Attributes:
    relu_embedding: apply ReLU to fc2 (the PyTorch port, older TF code).
    precision: of convs and matmuls (HIGHEST: full float32 on GPU/TPU).
  """
  relu_embedding: bool = False
  precision: Any = jax.lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """x: [N, 96, 64] (or [N, 96, 64, 1]) log-mel -> [N, 128] float32."""
    x = jnp.asarray(x, jnp.float32)
    if x.ndim == 3:
      x = x[..., None]
    for layer in LAYERS:
      if layer is None:
        x = nn.max_pool(x, (2, 2), (2, 2), padding="SAME")
        continue
      name, width = layer[:2]
      if name.startswith("conv"):
        x = nn.relu(nn.Conv(width, (3, 3), padding="SAME", name=name,
                            precision=self.precision)(x))
        continue
      if name == "fc1_1":
        x = x.reshape(x.shape[0], -1)
      x = nn.Dense(width, name=name, precision=self.precision)(x)
      if name != "fc2" or self.relu_embedding:
        x = nn.relu(x)
    return x


def postprocess(embedding: jax.Array, pca_matrix: jax.Array,
                pca_means: jax.Array, rounding: str = "floor") -> jax.Array:
  """AudioSet PCA + 8-bit quantisation: [N, 128] -> [N, 128] float32 in
  {0, 1, ..., 255}; rounding "floor" (TF release) or "round" (torch port)."""
  x = jnp.matmul(embedding - jnp.reshape(pca_means, (-1,)), pca_matrix.T,
                 precision=jax.lax.Precision.HIGHEST)
  x = (jnp.clip(x, QUANTIZE_MIN, QUANTIZE_MAX) - QUANTIZE_MIN) * (
      255.0 / (QUANTIZE_MAX - QUANTIZE_MIN))
  if rounding == "floor":
    return jnp.floor(x)
  if rounding == "round":
    return jnp.round(x)
  raise ValueError(f"rounding={rounding!r}: 'floor' or 'round'")


@dataclasses.dataclass(frozen=True)
class Weights:
  """Converted VGGish weights and how to post-process (see module doc)."""
  params: Dict[str, Any]
  pca_matrix: np.ndarray  # [128, 128]
  pca_means: np.ndarray   # [128]
  relu_embedding: bool
  rounding: str
  source: str

  def model(self) -> VGGish:
    return VGGish(relu_embedding=self.relu_embedding)


@functools.partial(jax.jit, static_argnames=("relu_embedding", "rounding",
                                             "raw"))
def _embed(params, pca_matrix, pca_means, examples, *, relu_embedding,
           rounding, raw):
  emb = VGGish(relu_embedding=relu_embedding).apply({"params": params},
                                                    examples)
  return emb if raw else postprocess(emb, pca_matrix, pca_means, rounding)


def embed(weights: Weights, examples, raw: bool = False) -> jax.Array:
  """[N, 96, 64] log-mel examples -> [N, 128] features 0..255 (as LLP/AVE
  audio features), or the raw fc2 embedding with raw=True. Jitted."""
  return _embed(weights.params, weights.pca_matrix, weights.pca_means,
                examples, relu_embedding=weights.relu_embedding,
                rounding=weights.rounding, raw=raw)


def _layers():
  return [l for l in LAYERS if l is not None]


def tf_variable_shapes() -> Dict[str, Tuple[int, ...]]:
  """The TF-slim checkpoint's variable names and shapes."""
  out, cin = {}, 1
  for name, width, scope, _ in _layers():
    fan_in = _FC_INPUTS.get(name)
    out[f"{scope}/weights"] = (3, 3, cin, width) if fan_in is None else (
        fan_in, width)
    out[f"{scope}/biases"] = (width,)
    cin = width
  return out


def torch_shapes() -> Dict[str, Tuple[int, ...]]:
  """The PyTorch port's state_dict keys and shapes (without PCA)."""
  out, cin = {}, 1
  for name, width, _, module in _layers():
    fan_in = _FC_INPUTS.get(name)
    out[f"{module}.weight"] = (width, cin, 3, 3) if fan_in is None else (
        width, fan_in)
    out[f"{module}.bias"] = (width,)
    cin = width
  return out


def _pca(pca: Mapping[str, Any], where: str) -> Tuple[np.ndarray, np.ndarray]:
  for mk, vk in _TORCH_PCA:
    if mk in pca and vk in pca:
      m = np.asarray(pca[mk], np.float64)
      v = np.asarray(pca[vk], np.float64).reshape(-1)
      if m.shape != (EMBEDDING_SIZE,) * 2 or v.shape != (EMBEDDING_SIZE,):
        raise checkpoints.WeightsError(
            f"{where}: PCA {mk} {m.shape} / {vk} {v.shape}, expected "
            "(128, 128) / (128,) or (128, 1)")
      return m, v
  raise checkpoints.WeightsError(
      f"{where}: no PCA parameters (expected pca_eigen_vectors and "
      "pca_means, or pproc.pca_matrix and pproc.pca_means); get "
      f"{TF_FILES[1][1]} and pass --vggish_pca=PATH")


def convert_tf(variables: Mapping[str, Any], pca: Mapping[str, Any],
               where: str = "VGGish TF checkpoint") -> Weights:
  """TF-slim variables (`tf_variable_shapes`) + PCA npz -> Weights."""
  shapes, params = tf_variable_shapes(), {}
  for name, _, scope, _ in _layers():
    for leaf, flax_leaf in (("weights", "kernel"), ("biases", "bias")):
      key = f"{scope}/{leaf}"
      if key not in variables:
        raise checkpoints.WeightsError(
            f"{where}: missing variable {key} (shape {shapes[key]}); is "
            f"this {TF_FILES[0][0]}?")
      a = np.asarray(variables[key], np.float32)
      if a.shape != shapes[key]:
        raise checkpoints.WeightsError(
            f"{where}: {key} has shape {a.shape}, expected {shapes[key]}")
      params.setdefault(name, {})[flax_leaf] = a
  m, v = _pca(pca, where)
  return Weights(params, m, v, relu_embedding=False, rounding="floor",
                 source=where)


def convert_torch(state_dict: Mapping[str, Any],
                  pca: Optional[Mapping[str, Any]] = None,
                  where: str = "VGGish torch state_dict") -> Weights:
  """The PyTorch port's state_dict (+ PCA inside it or in `pca`) -> Weights.

  Conv weights [O, I, 3, 3] -> kernels [3, 3, I, O]; Linear [out, in] ->
  [in, out] (the port flattens in TF's (H, W, C) order, so no permutation).
  """
  sd = _read_torch(state_dict)
  pca_keys = [k for pair in _TORCH_PCA for k in pair]
  pca = dict(_read_torch(pca)) if pca is not None else {}
  pca.update({k: v for k, v in sd.items() if k in pca_keys})
  sd = {k: v for k, v in sd.items() if k not in pca_keys}
  arrays = checkpoints.check_state_dict(sd, torch_shapes(), {}, "vggish")
  params = {}
  for name, _, _, module in _layers():
    w = arrays[f"{module}.weight"]
    kernel = np.transpose(w, (2, 3, 1, 0) if w.ndim == 4 else (1, 0))
    params[name] = {"kernel": np.ascontiguousarray(kernel),
                    "bias": arrays[f"{module}.bias"]}
  m, v = _pca(pca, where)
  return Weights(params, m, v, relu_embedding=True, rounding="round",
                 source=where)


def _read_torch(source) -> Dict[str, np.ndarray]:
  """checkpoints.load_state_dict, with a hint for pickles torch refuses."""
  try:
    return checkpoints.load_state_dict(source)
  except checkpoints.WeightsError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    if isinstance(source, Mapping):
      raise
    raise checkpoints.WeightsError(
        f"{source}: torch.load(weights_only=True) refused it ({e}). If you "
        "trust the file, convert it once to .npz and pass that: python -c "
        "\"import sys, numpy as np, torch; d = torch.load(sys.argv[1], "
        "weights_only=False); np.savez(sys.argv[2], **{k: np.asarray(v) for "
        f"k, v in d.items()}})\" {source} OUT.npz") from None


def read_tf_checkpoint(path: str) -> Dict[str, np.ndarray]:
  """All variables of a TF checkpoint (V1 file or V2 prefix) as numpy."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    reader = tf.train.load_checkpoint(path)
  except (tf.errors.OpError, ValueError) as e:
    raise checkpoints.WeightsError(
        f"{path}: not a readable TensorFlow checkpoint ({e})") from None
  return {k: reader.get_tensor(k)
          for k in reader.get_variable_to_shape_map()}


def _is_tf(path: str) -> bool:
  return (path.endswith(".ckpt") or os.path.exists(path + ".index")
          or os.path.isdir(path))


def missing_weights_message(where: str) -> str:
  tf_, torch_ = TF_FILES, TORCH_FILES
  return (
      f"no VGGish weights: {where}. Download either the TensorFlow release "
      f"({tf_[0][1]} and {tf_[1][1]}) or the PyTorch port ({torch_[0][1]} "
      f"and {torch_[1][1]}; a .npz of the same keys needs no torch) and put "
      f"them in {checkpoints.weights_dir()} (${checkpoints.WEIGHTS_DIR_ENV} "
      "or ~/.cache/avjax/weights), or pass --vggish_weights=PATH and "
      "--vggish_pca=PATH. avjax does not download at run time.")


def find_weights(path: Optional[str] = None, pca_path: Optional[str] = None,
                 directory: Optional[str] = None
                 ) -> Tuple[str, Optional[str]]:
  """(weights, PCA file or None) from the arguments or the weights folder."""
  if path:
    if not (os.path.exists(path) or os.path.exists(path + ".index")):
      raise checkpoints.WeightsError(missing_weights_message(
          f"{path} does not exist"))
    return path, pca_path
  d = checkpoints.weights_dir(directory)
  for (wname, _), (pname, _) in (TF_FILES, TORCH_FILES):
    names = [wname] if wname.endswith(".ckpt") else [
        wname, os.path.splitext(wname)[0] + ".npz"]
    for w in names:
      if os.path.exists(os.path.join(d, w)) or os.path.exists(
          os.path.join(d, w + ".index")):
        found = [os.path.join(d, p) for p in
                 (pname, os.path.splitext(pname)[0] + ".npz")
                 if os.path.exists(os.path.join(d, p))]
        return os.path.join(d, w), pca_path or (found[0] if found else None)
  raise checkpoints.WeightsError(missing_weights_message(
      f"neither {TF_FILES[0][0]} nor {TORCH_FILES[0][0]} in {d}"))


def load(path: Optional[str] = None, pca_path: Optional[str] = None, *,
         directory: Optional[str] = None,
         relu_embedding: Optional[bool] = None,
         rounding: Optional[str] = None) -> Weights:
  """Weights from a TF checkpoint + PCA .npz, or a torch .pth/.npz (+ PCA).

  relu_embedding / rounding override the source's own (see module doc).
  """
  path, pca_path = find_weights(path, pca_path, directory)
  if _is_tf(path):
    if pca_path is None:
      raise checkpoints.WeightsError(missing_weights_message(
          f"{path} needs its PCA file {TF_FILES[1][0]} (--vggish_pca)"))
    w = convert_tf(read_tf_checkpoint(path),
                   checkpoints.load_state_dict(pca_path), where=path)
  else:
    w = convert_torch(path, pca_path, where=path)
  changes = {}
  if relu_embedding is not None:
    changes["relu_embedding"] = relu_embedding
  if rounding is not None:
    changes["rounding"] = rounding
  return dataclasses.replace(w, **changes)

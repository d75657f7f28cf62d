"""Torchvision checkpoints for the extractors: files, loading, strict checks.

A torchvision state_dict maps onto the Flax extractors by module name: the
torch module `layer1.0.conv1` is the Flax path ("layer1_0", "conv1"),
`stem.0` is ("stem_0",), `features.28` is ("features_28",) (the first two
parts joined for `layerN.i`, the rest joined with "_"). Conv weights
[O, I, (kt,) kh, kw] become kernels [(kt,) kh, kw, I, O]; BatchNorm
weight/bias/running_mean/running_var become params scale/bias and
batch_stats mean/var. `num_batches_tracked` entries are accepted and ignored
(older torchvision files lack them), as are the classification heads
(`fc.*`, `classifier.*`): extractors stop at the pooled features.

No network at run time: `weights_file` names the file to download and where
to put it. This module needs only numpy (torch only to read a .pth file).
"""

import os
import zlib
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from avjax import errors

Shapes = Dict[str, Tuple[int, ...]]

# arch -> (file name, URL) of the public torchvision ImageNet/Kinetics weights
# (the IMAGENET1K_V1 / KINETICS400_V1 files; LLP used ResNet-152 V1).
WEIGHTS = {
    "resnet50": ("resnet50-0676ba61.pth",
                 "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    "resnet101": ("resnet101-63fe2227.pth",
                  "https://download.pytorch.org/models/resnet101-63fe2227.pth"),
    "resnet152": ("resnet152-394f9c45.pth",
                  "https://download.pytorch.org/models/resnet152-394f9c45.pth"),
    "r2plus1d_18": ("r2plus1d_18-91a641e6.pth",
                    "https://download.pytorch.org/models/"
                    "r2plus1d_18-91a641e6.pth"),
    "vgg19": ("vgg19-dcbb9e9d.pth",
              "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
}
WEIGHTS_DIR_ENV = "AVJAX_WEIGHTS_DIR"
DEFAULT_WEIGHTS_DIR = os.path.join("~", ".cache", "avjax", "weights")
NPZ_ONE_LINER = (
    "python -c \"import sys, numpy as np, torch; sd = torch.load(sys.argv[1], "
    "map_location='cpu'); np.savez(sys.argv[2], **{k: v.numpy() for k, v in "
    "sd.items()})\" IN.pth OUT.npz")


class WeightsError(errors.UserError, ValueError):
  """A missing, unreadable or wrongly laid out weight file."""


def weights_dir(directory: Optional[str] = None) -> str:
  """`directory`, else $AVJAX_WEIGHTS_DIR, else ~/.cache/avjax/weights."""
  d = directory or os.environ.get(WEIGHTS_DIR_ENV) or DEFAULT_WEIGHTS_DIR
  return os.path.expanduser(d)


def weights_file(arch: str, directory: Optional[str] = None) -> str:
  """The path of `arch`'s weights (.pth, or the same name as .npz).

  Raises:
    WeightsError: no such file; the message names the file to download,
      its URL and the folder to put it in.
  """
  if arch not in WEIGHTS:
    raise WeightsError(f"no published weights known for arch {arch!r}; "
                       f"known: {sorted(WEIGHTS)}")
  name, url = WEIGHTS[arch]
  d = weights_dir(directory)
  for candidate in (name, os.path.splitext(name)[0] + ".npz"):
    path = os.path.join(d, candidate)
    if os.path.exists(path):
      return path
  raise WeightsError(
      f"no {arch} weights: {os.path.join(d, name)} does not exist. Download "
      f"{url} (torchvision's published {arch} weights) and put it in {d} "
      f"(folder: the weights_dir argument, else ${WEIGHTS_DIR_ENV}, else "
      f"{DEFAULT_WEIGHTS_DIR}); a .npz of the same name also works (no torch "
      f"needed to read it; make one with: {NPZ_ONE_LINER}). avjax does not "
      "download at run time.")


def load_state_dict(source: Any) -> Dict[str, np.ndarray]:
  """A state_dict as numpy arrays, from a mapping, an .npz or a .pth file.

  A .pth needs torch; without it the error gives a one-liner that converts
  the file to .npz where torch is installed.
  """
  if isinstance(source, Mapping):
    return {k: _numpy(v) for k, v in source.items()}
  path = os.fspath(source)
  if not os.path.exists(path):
    raise WeightsError(f"weight file {path} does not exist")
  if path.endswith(".npz"):
    with np.load(path) as f:
      return {k: np.asarray(f[k]) for k in f.files}
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise WeightsError(
        f"reading the PyTorch file {path} needs torch, which is not "
        "installed; convert it to .npz where torch is installed and load "
        f"that: {NPZ_ONE_LINER.replace('IN.pth', path)}") from e
  sd = torch.load(path, map_location="cpu", weights_only=True)
  if isinstance(sd, Mapping) and isinstance(sd.get("state_dict"), Mapping):
    sd = sd["state_dict"]
  if not isinstance(sd, Mapping):
    raise WeightsError(f"{path} holds a {type(sd).__name__}, not a "
                       "state_dict (key -> tensor mapping)")
  return {k: _numpy(v) for k, v in sd.items()}


def _numpy(v) -> np.ndarray:
  if hasattr(v, "detach"):  # a torch tensor
    v = v.detach().cpu().numpy()
  return np.asarray(v)


def check_state_dict(state_dict: Mapping[str, Any], expected: Shapes,
                     optional: Shapes, arch: str) -> Dict[str, np.ndarray]:
  """The `expected` arrays (float32) of a state_dict, checked strictly.

  Every expected key must be present with its shape; `optional` keys (heads)
  and `*.num_batches_tracked` may be present (optional ones with their
  shape) and are dropped; any other key is unexpected. A DataParallel
  "module." prefix is stripped.

  Raises:
    WeightsError: naming every unexpected key, or the first missing or
      wrongly shaped key with its expected shape.
  """
  sd = load_state_dict(state_dict)
  if sd and all(k.startswith("module.") for k in sd):
    sd = {k[len("module."):]: v for k, v in sd.items()}
  unexpected = sorted(k for k in sd if k not in expected and k not in optional
                      and not k.endswith(".num_batches_tracked"))
  if unexpected:
    raise WeightsError(
        f"{arch} state_dict: {len(unexpected)} unexpected key(s): "
        f"{', '.join(unexpected)} (is this a torchvision {arch} state_dict?)")
  for k, shape in list(expected.items()) + list(optional.items()):
    if k not in sd:
      if k in optional:
        continue
      raise WeightsError(f"{arch} state_dict: missing key {k} (expected "
                         f"shape {tuple(shape)})")
    if tuple(sd[k].shape) != tuple(shape):
      raise WeightsError(f"{arch} state_dict: key {k} has shape "
                         f"{tuple(sd[k].shape)}, expected {tuple(shape)}")
  return {k: np.asarray(sd[k], np.float32) for k in expected}


def flax_path(module: str) -> Tuple[str, ...]:
  """Torch module name -> Flax module path (see the module docstring)."""
  p = module.split(".")
  if p[0].startswith("layer") and len(p) > 2:
    return (f"{p[0]}_{p[1]}", "_".join(p[2:]))
  return ("_".join(p),)


def to_flax(arrays: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """Checked torch arrays -> {"params": ..., "batch_stats": ...} (numpy)."""
  variables: Dict[str, Dict[str, Any]] = {"params": {}, "batch_stats": {}}

  def put(collection, module, leaf, value):
    node = variables[collection]
    for name in flax_path(module):
      node = node.setdefault(name, {})
    node[leaf] = value

  for key, a in arrays.items():
    module, leaf = key.rsplit(".", 1)
    is_bn = module + ".running_mean" in arrays
    if is_bn:
      name = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"),
              "running_var": ("batch_stats", "var")}[leaf]
      put(name[0], module, name[1], a)
    elif leaf == "weight" and a.ndim in (4, 5):  # conv [O, I, *k] -> [*k, I, O]
      put("params", module, "kernel",
          np.ascontiguousarray(np.moveaxis(a, (0, 1), (-1, -2))))
    elif leaf == "bias":
      put("params", module, "bias", a)
    else:
      raise WeightsError(f"no Flax layout for state_dict key {key} "
                         f"(shape {a.shape})")
  if not variables["batch_stats"]:
    del variables["batch_stats"]
  return variables


def random_state_dict(shapes: Shapes, seed: int = 0
                      ) -> Dict[str, np.ndarray]:
  """Seeded random weights in a state_dict layout, for tests and fixtures.

  Each key draws from its own generator (seed, crc32(key)), so the values do
  not depend on key order: conv/linear weights He-normal, BatchNorm weight
  U(0.5, 1) (U(0.1, 0.3) for `*.bn3.weight`, the BN closing a bottleneck's
  residual branch, so ResNet-152's 50 residual sums stay O(1)), biases and
  running means N(0, 0.1^2), running variances U(0.5, 2).
  """
  out = {}
  for key, shape in shapes.items():
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_var":
      a = rng.uniform(0.5, 2.0, shape)
    elif len(shape) >= 2:
      a = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
    elif key.endswith(".bn3.weight"):
      a = rng.uniform(0.1, 0.3, shape)
    elif leaf == "weight":
      a = rng.uniform(0.5, 1.0, shape)
    else:
      a = rng.normal(0.0, 0.1, shape)
    out[key] = a.astype(np.float32)
  return out


def bn_shapes(prefix: str, channels: int) -> Shapes:
  """The four BatchNorm entries of a torch BatchNorm module."""
  return {f"{prefix}.{leaf}": (channels,)
          for leaf in ("weight", "bias", "running_mean", "running_var")}


def normalize(frames: Any, mean: Sequence[float], std: Sequence[float]):
  """((frames / 255 if uint8) - mean) / std over the last (RGB) axis."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  x = jnp.asarray(frames)
  if x.dtype == jnp.uint8:
    x = x.astype(jnp.float32) / 255.0
  x = x.astype(jnp.float32)
  return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)

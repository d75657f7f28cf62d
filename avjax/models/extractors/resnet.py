"""ResNet-152 (torchvision layout) as a per-frame 2048-d feature extractor.

The architecture is torchvision's `resnet152` (also resnet50/101): conv1
7x7/2 (3 -> 64, no bias), bn1, ReLU, maxpool 3x3/2 (pad 1), layer1..layer4
of Bottleneck blocks ([3, 8, 36, 3] for ResNet-152; widths 64/128/256/512,
expansion 4; stride 2 on the 3x3 conv of the first block of layers 2-4,
"ResNet v1.5"; the first block of every layer has a downsample 1x1 conv +
BN), global average pool -> 2048-d. The classification head `fc` is dropped.
Inference BatchNorm with the running statistics, eps 1e-5. NHWC.

LLP features (Tian et al., ECCV 2020; AVVP-ECCV20 scripts/extract_frames.py
and extract_rgb_feat.py, read at commit fde5611): frames decoded with
`ffmpeg -r 8` (8 per second), 80 frames per 10 s video picked by
`round(linspace(0, n_frames - 1, 80))`, each through `pretrainedmodels`'
resnet152 (torchvision's ResNet-152 with the ImageNet weights of the file
resnet152-b121ed2d.pth, the name older torchvision used; torchvision 0.29
serves IMAGENET1K_V1 as resnet152-394f9c45.pth, same key layout, values
not compared here) with its `LoadTransformImage` (pretrainedmodels
utils.py, torchvision_models.py): resize the shorter side to 256
(= floor(224 / 0.875), bilinear), centre crop 224, [0, 1] RGB, ImageNet
mean/std (`normalize` below), `last_linear` removed -> [80, 2048] per
video, 8 frames per 1 s segment.

  model, variables = resnet.load("resnet152", weights_dir)
  feats = jax.jit(model.apply)(variables, resnet.normalize(frames_uint8))
"""

from typing import Any, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax.numpy as jnp

from avjax.models.extractors import checkpoints

ARCHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3),
         "resnet152": (3, 8, 36, 3)}
WIDTHS = (64, 128, 256, 512)
EXPANSION = 4
FEATURE_DIM = WIDTHS[-1] * EXPANSION
# torchvision ImageNet normalisation of [0, 1] RGB.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

Arch = Union[str, Sequence[int]]


def normalize(frames: Any) -> Any:
  """RGB frames [..., 3], uint8 in [0, 255] or float in [0, 1] -> model input.

  As torchvision's ToTensor + Normalize(MEAN, STD): uint8 is divided by 255,
  then (x - MEAN) / STD per channel. Resizing/cropping is the caller's.
  """
  return checkpoints.normalize(frames, MEAN, STD)


def depths(arch: Arch) -> Tuple[int, ...]:
  """Blocks per layer: a name in ARCHS or the four depths themselves."""
  if isinstance(arch, str):
    if arch not in ARCHS:
      raise ValueError(f"unknown ResNet arch {arch!r}; known: {sorted(ARCHS)}"
                       " or a sequence of 4 block counts")
    return ARCHS[arch]
  if len(arch) != 4:
    raise ValueError(f"a ResNet needs 4 block counts, got {arch}")
  return tuple(int(d) for d in arch)


def _conv(features, kernel, stride=1, pad=0, name=None):
  return nn.Conv(features, (kernel, kernel), (stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=False, name=name)


def _bn(name):
  return nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5,
                      name=name)


class Bottleneck(nn.Module):
  """torchvision Bottleneck: 1x1, 3x3 (stride), 1x1 x4, residual.

  Attributes:
    planes: width of the 1x1/3x3 convs; the output has 4 * planes channels.
    stride: spatial stride of the 3x3 conv (and of the downsample).
    downsample: project the input with a strided 1x1 conv + BN.
  """
  planes: int
  stride: int = 1
  downsample: bool = False

  @nn.compact
  def __call__(self, x):
    y = nn.relu(_bn("bn1")(_conv(self.planes, 1, name="conv1")(x)))
    y = _conv(self.planes, 3, self.stride, 1, name="conv2")(y)
    y = nn.relu(_bn("bn2")(y))
    y = _bn("bn3")(_conv(self.planes * EXPANSION, 1, name="conv3")(y))
    if self.downsample:
      x = _conv(self.planes * EXPANSION, 1, self.stride,
                name="downsample_0")(x)
      x = _bn("downsample_1")(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """Images [B, H, W, 3] (normalised) -> pooled features [B, 2048].

  Any H, W >= 32 (the 32x downsampled map is averaged).

  Attributes:
    depths: Bottleneck blocks per layer, (3, 8, 36, 3) for ResNet-152.
  """
  depths: Tuple[int, ...] = ARCHS["resnet152"]

  @nn.compact
  def __call__(self, x):
    x = nn.relu(_bn("bn1")(_conv(64, 7, 2, 3, name="conv1")(x)))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    inplanes = 64
    for i, (planes, n) in enumerate(zip(WIDTHS, self.depths)):
      stride = 1 if i == 0 else 2
      for b in range(n):
        s = stride if b == 0 else 1
        down = b == 0 and (s != 1 or inplanes != planes * EXPANSION)
        x = Bottleneck(planes, s, down, name=f"layer{i + 1}_{b}")(x)
        inplanes = planes * EXPANSION
    return jnp.mean(x, axis=(1, 2))


def build(arch: Arch = "resnet152") -> ResNet:
  return ResNet(depths(arch))


def torchvision_keys(arch: Arch = "resnet152", *, head: bool = True
                     ) -> checkpoints.Shapes:
  """The torchvision state_dict layout {key: shape} (no num_batches_tracked).

  head=False leaves out the classifier `fc.*`, which the extractor drops.
  """
  shapes = {"conv1.weight": (64, 3, 7, 7), **checkpoints.bn_shapes("bn1", 64)}
  inplanes = 64
  for i, (planes, n) in enumerate(zip(WIDTHS, depths(arch))):
    for b in range(n):
      p = f"layer{i + 1}.{b}."
      out = planes * EXPANSION
      shapes[p + "conv1.weight"] = (planes, inplanes, 1, 1)
      shapes.update(checkpoints.bn_shapes(p + "bn1", planes))
      shapes[p + "conv2.weight"] = (planes, planes, 3, 3)
      shapes.update(checkpoints.bn_shapes(p + "bn2", planes))
      shapes[p + "conv3.weight"] = (out, planes, 1, 1)
      shapes.update(checkpoints.bn_shapes(p + "bn3", out))
      if b == 0 and (i > 0 or inplanes != out):
        shapes[p + "downsample.0.weight"] = (out, inplanes, 1, 1)
        shapes.update(checkpoints.bn_shapes(p + "downsample.1", out))
      inplanes = out
  if head:
    shapes.update({"fc.weight": (1000, FEATURE_DIM), "fc.bias": (1000,)})
  return shapes


def convert_torchvision(state_dict: Any, arch: Arch = "resnet152"):
  """A torchvision ResNet state_dict -> Flax variables of `build(arch)`.

  Args:
    state_dict: key -> array (numpy or torch), or a .pth / .npz path.
    arch: "resnet152" (default), "resnet50", "resnet101" or 4 depths.

  Returns:
    {"params": ..., "batch_stats": ...} as numpy arrays (fc.* ignored).

  Raises:
    checkpoints.WeightsError: naming unexpected, missing or misshaped keys.
  """
  name = arch if isinstance(arch, str) else f"resnet{tuple(arch)}"
  arrays = checkpoints.check_state_dict(
      state_dict, torchvision_keys(arch, head=False),
      {k: v for k, v in torchvision_keys(arch).items() if k.startswith("fc.")},
      name)
  return checkpoints.to_flax(arrays)


def load(arch: str = "resnet152", weights_dir: Optional[str] = None):
  """(module, variables) from the downloaded torchvision weight file."""
  path = checkpoints.weights_file(arch, weights_dir)
  return build(arch), convert_torchvision(path, arch)

"""R(2+1)D-18 (torchvision.models.video.r2plus1d_18) as a 512-d clip encoder.

Architecture as torchvision: stem Conv3d(3, 45, (1, 7, 7), stride (1, 2, 2),
pad (0, 3, 3)) BN ReLU Conv3d(45, 64, (3, 1, 1), pad (1, 0, 0)) BN ReLU;
layer1..layer4 of 2 BasicBlocks each, widths 64/128/256/512, stride 2 in
time and space in the first block of layers 2-4. A BasicBlock is
conv1 = [Conv2Plus1D(in, out, mid, stride), BN, ReLU], conv2 =
[Conv2Plus1D(out, out, mid), BN], residual (downsample: Conv3d 1x1x1 with
stride (s, s, s) + BN), ReLU, where mid = (in*out*27) // (in*9 + 3*out) is
computed once per block from its input and output widths and used by both
convs. Conv2Plus1D(i, o, m, s) = Conv3d(i, m, (1, 3, 3), stride (1, s, s),
pad (0, 1, 1)) BN(m) ReLU Conv3d(m, o, (3, 1, 1), stride (s, 1, 1),
pad (1, 0, 0)). All convs without bias; BN eps 1e-5 with running stats;
global average pool -> 512-d; the Kinetics-400 `fc` is dropped.
Clips are [B, T, H, W, 3] (NDHWC).

LLP features (Tian et al., ECCV 2020; AVVP-ECCV20 scripts/extract_3D_feat.py
and scripts/utils.py, read at commit fde5611): frames decoded at 8 fps
(`ffmpeg -r 8`), 80 frames per 10 s video picked by
`round(linspace(0, n_frames - 1, 80))`, grouped in order into 10 clips of
8 consecutive frames (one per 1 s segment); each frame resized to 112x112
with torchvision `Resize((112, 112))` (both sides, aspect ratio not kept, no
crop), [0, 1] RGB, then the Kinetics mean/std below (`normalize`); the
model is `r2plus1d_18(pretrained=True)` without `fc` -> [10, 512] per video.
So one clip is [8, 112, 112, 3]. (torchvision's own evaluation of these
weights differs: 16-frame clips at 15 fps, Resize((128, 171)) + CentreCrop
112, per its KINETICS400_V1 metadata in torchvision 0.29.1.)

  model, variables = r2plus1d.load("r2plus1d_18", weights_dir)
  feats = jax.jit(model.apply)(variables, r2plus1d.normalize(clips_uint8))
"""

from typing import Any, Optional, Tuple

import flax.linen as nn
from jax import lax
import jax.numpy as jnp

from avjax.models.extractors import checkpoints

ARCHS = {"r2plus1d_18": (2, 2, 2, 2)}
WIDTHS = (64, 128, 256, 512)
FEATURE_DIM = 512
CLIP_FRAMES, CLIP_SIZE = 8, 112  # LLP: 8 frames at 112x112 per 1 s segment
# torchvision's Kinetics-400 normalisation of [0, 1] RGB (also LLP's).
MEAN = (0.43216, 0.394666, 0.37645)
STD = (0.22803, 0.22145, 0.216989)


def normalize(clips: Any) -> Any:
  """RGB clips [..., 3], uint8 in [0, 255] or float in [0, 1] -> model input.

  uint8 is divided by 255, then (x - MEAN) / STD per channel.
  """
  return checkpoints.normalize(clips, MEAN, STD)


def midplanes(inplanes: int, planes: int) -> int:
  """torchvision's Conv2Plus1D middle width for a block in -> out."""
  return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class Conv3D(nn.Module):
  """A bias-free Conv3d [B, T, H, W, C] whose kernel is [kt, kh, kw, I, O].

  Factorised kernels run as 2D convolutions, 1.4-3x faster than XLA's 3D
  convolution on CPU (same products, summed in another order): (1, kh, kw)
  over [B*T, H, W, C], (kt, 1, 1) over [B, T, H*W, C], and (1, 1, 1) as a
  strided subsample and a matmul; any other kernel is a 3D convolution.

  Attributes:
    features: output channels.
    kernel: (kt, kh, kw).
    stride: (st, sh, sw).
    pad: symmetric zero padding (pt, ph, pw).
  """
  features: int
  kernel: Tuple[int, int, int]
  stride: Tuple[int, int, int] = (1, 1, 1)
  pad: Tuple[int, int, int] = (0, 0, 0)

  @nn.compact
  def __call__(self, x):
    k = self.param("kernel", nn.initializers.lecun_normal(),
                   (*self.kernel, x.shape[-1], self.features))
    (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = (self.kernel, self.stride,
                                                self.pad)
    b, t, h, w, c = x.shape
    nhwc = ("NHWC", "HWIO", "NHWC")
    if self.kernel == (1, 1, 1) and self.pad == (0, 0, 0):
      return jnp.einsum("bthwc,co->bthwo", x[:, ::st, ::sh, ::sw], k[0, 0, 0])
    if kt == 1 and st == 1 and pt == 0:
      y = lax.conv_general_dilated(x.reshape(b * t, h, w, c), k[0], (sh, sw),
                                   [(ph, ph), (pw, pw)],
                                   dimension_numbers=nhwc)
      return y.reshape(b, t, *y.shape[1:])
    if (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0):
      y = lax.conv_general_dilated(x.reshape(b, t, h * w, c), k[:, 0],
                                   (st, 1), [(pt, pt), (0, 0)],
                                   dimension_numbers=nhwc)
      return y.reshape(b, y.shape[1], h, w, -1)
    return lax.conv_general_dilated(x, k, self.stride,
                                    [(p, p) for p in self.pad],
                                    dimension_numbers=("NDHWC", "DHWIO",
                                                       "NDHWC"))


def _conv(features, kernel, stride=(1, 1, 1), pad=(0, 0, 0), name=None):
  return Conv3D(features, tuple(kernel), tuple(stride), tuple(pad), name=name)


def _bn(name):
  return nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5,
                      name=name)


def conv2plus1d(x, planes: int, mid: int, stride: int, prefix: str):
  """torchvision Conv2Plus1D inside a block's compact method.

  Spatial (1, 3, 3) conv (stride s in H, W) -> BN -> ReLU -> temporal
  (3, 1, 1) conv (stride s in T); the modules are named prefix_{0,1,3} as
  the torch Sequential entries (prefix "conv1_0": torch `conv1.0`).
  """
  s = stride
  x = _conv(mid, (1, 3, 3), (1, s, s), (0, 1, 1), name=prefix + "_0")(x)
  x = nn.relu(_bn(prefix + "_1")(x))
  return _conv(planes, (3, 1, 1), (s, 1, 1), (1, 0, 0), name=prefix + "_3")(x)


class BasicBlock(nn.Module):
  """torchvision video BasicBlock with Conv2Plus1D convs.

  Attributes:
    inplanes: input channels.
    planes: output channels.
    stride: stride in T, H and W of the first conv and the downsample.
  """
  inplanes: int
  planes: int
  stride: int = 1

  @nn.compact
  def __call__(self, x):
    mid = midplanes(self.inplanes, self.planes)
    y = conv2plus1d(x, self.planes, mid, self.stride, "conv1_0")
    y = nn.relu(_bn("conv1_1")(y))
    y = _bn("conv2_1")(conv2plus1d(y, self.planes, mid, 1, "conv2_0"))
    if self.stride != 1 or self.inplanes != self.planes:
      s = (self.stride,) * 3
      x = _conv(self.planes, (1, 1, 1), s, name="downsample_0")(x)
      x = _bn("downsample_1")(x)
    return nn.relu(x + y)


class R2Plus1D(nn.Module):
  """Clips [B, T, H, W, 3] (normalised) -> pooled features [B, 512].

  Any T >= 1 and H, W >= 16 (the map is 8x smaller in T, 16x in H, W,
  rounded up, and averaged).

  Attributes:
    depths: BasicBlocks per layer, (2, 2, 2, 2) for R(2+1)D-18.
  """
  depths: Tuple[int, ...] = ARCHS["r2plus1d_18"]

  @nn.compact
  def __call__(self, x):
    x = _conv(45, (1, 7, 7), (1, 2, 2), (0, 3, 3), name="stem_0")(x)
    x = nn.relu(_bn("stem_1")(x))
    x = _conv(64, (3, 1, 1), (1, 1, 1), (1, 0, 0), name="stem_3")(x)
    x = nn.relu(_bn("stem_4")(x))
    inplanes = 64
    for i, (planes, n) in enumerate(zip(WIDTHS, self.depths)):
      for b in range(n):
        s = 2 if i > 0 and b == 0 else 1
        x = BasicBlock(inplanes, planes, s, name=f"layer{i + 1}_{b}")(x)
        inplanes = planes
    return jnp.mean(x, axis=(1, 2, 3))


def depths(arch: str) -> Tuple[int, ...]:
  if arch not in ARCHS:
    raise ValueError(f"unknown R(2+1)D arch {arch!r}; known: {sorted(ARCHS)}")
  return ARCHS[arch]


def build(arch: str = "r2plus1d_18") -> R2Plus1D:
  return R2Plus1D(depths(arch))


def torchvision_keys(arch: str = "r2plus1d_18", *, head: bool = True
                     ) -> checkpoints.Shapes:
  """The torchvision state_dict layout {key: shape} (no num_batches_tracked).

  head=False leaves out the Kinetics classifier `fc.*`.
  """
  bn = checkpoints.bn_shapes
  shapes = {"stem.0.weight": (45, 3, 1, 7, 7), **bn("stem.1", 45),
            "stem.3.weight": (64, 45, 3, 1, 1), **bn("stem.4", 64)}
  inplanes = 64
  for i, (planes, n) in enumerate(zip(WIDTHS, depths(arch))):
    for b in range(n):
      p = f"layer{i + 1}.{b}."
      mid = midplanes(inplanes, planes)
      for conv, cin in (("conv1", inplanes), ("conv2", planes)):
        shapes[f"{p}{conv}.0.0.weight"] = (mid, cin, 1, 3, 3)
        shapes.update(bn(f"{p}{conv}.0.1", mid))
        shapes[f"{p}{conv}.0.3.weight"] = (planes, mid, 3, 1, 1)
        shapes.update(bn(f"{p}{conv}.1", planes))
      if b == 0 and i > 0:
        shapes[p + "downsample.0.weight"] = (planes, inplanes, 1, 1, 1)
        shapes.update(bn(p + "downsample.1", planes))
      inplanes = planes
  if head:
    shapes.update({"fc.weight": (400, FEATURE_DIM), "fc.bias": (400,)})
  return shapes


def convert_torchvision(state_dict: Any, arch: str = "r2plus1d_18"):
  """A torchvision r2plus1d_18 state_dict -> Flax variables of `build(arch)`.

  Args:
    state_dict: key -> array (numpy or torch), or a .pth / .npz path.
    arch: "r2plus1d_18".

  Returns:
    {"params": ..., "batch_stats": ...} as numpy arrays (fc.* ignored).

  Raises:
    checkpoints.WeightsError: naming unexpected, missing or misshaped keys.
  """
  full = torchvision_keys(arch)
  arrays = checkpoints.check_state_dict(
      state_dict, torchvision_keys(arch, head=False),
      {k: v for k, v in full.items() if k.startswith("fc.")}, arch)
  return checkpoints.to_flax(arrays)


def load(arch: str = "r2plus1d_18", weights_dir: Optional[str] = None):
  """(module, variables) from the downloaded torchvision weight file."""
  path = checkpoints.weights_file(arch, weights_dir)
  return build(arch), convert_torchvision(path, arch)

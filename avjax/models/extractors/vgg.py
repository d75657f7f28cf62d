"""VGG-19 (torchvision `vgg19`, no BN) up to pool5 as a frame encoder.

Architecture as torchvision's `features` for configuration "E": 16 3x3 convs
(pad 1, with bias) each followed by ReLU, in stages of 2, 2, 4, 4, 4 convs
with widths 64/128/256/512/512, each stage ending in a 2x2/2 max pool (floor)
-> pool5 [H/32, W/32, 512] (7x7x512 at 224x224). The avgpool and
`classifier` are dropped. NHWC: the output is [B, h, w, 512], channels last.

AVE (Tian et al., ECCV 2018) ships VGG-19 pool5 features, one 7x7x512 map
per 1 s segment ([10, 7, 7, 512] per video); its extraction script is not
published (YapengTian/AVE-ECCV18 lists Keras among the requirements). What
the repository shows (attention_visualization.py, drawing the 7x7 attention
over the frames of each segment): 16 frames sampled per 1 s segment
(`sample_num = 16 # 16 frames for 1-sec video segment`, frame
int(l * interval + i / 16 * interval), interval = n_frames // 10),
each resized to 224x224 with cv2.resize (aspect not kept, no crop); the
paper, as we recall it and did not re-read here, averages the 16 pool5
maps of a segment. Not certain, then: how many frames per segment
(issue 22 says one) and which VGG-19 weights/preprocessing (a Keras VGG19
would use caffe-style BGR mean subtraction, not the torchvision ImageNet
mean/std used here). Callers average `VGG` outputs over a segment's frames
for the 16-frame recipe.

Input normalisation: torchvision ImageNet mean/std on [0, 1] RGB
(`normalize`, same as ResNet).

  model, variables = vgg.load("vgg19", weights_dir)
  pool5 = jax.jit(model.apply)(variables, vgg.normalize(frames_uint8))
"""

from typing import Any, Optional, Tuple

import flax.linen as nn

from avjax.models.extractors import checkpoints

# Convs per stage (widths 64..512); "M" pools in torchvision's cfg list.
ARCHS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2),
         "vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def normalize(frames: Any) -> Any:
  """RGB frames [..., 3], uint8 in [0, 255] or float in [0, 1] -> model input.

  uint8 is divided by 255, then (x - MEAN) / STD per channel (ImageNet).
  """
  return checkpoints.normalize(frames, MEAN, STD)


def depths(arch: str) -> Tuple[int, ...]:
  if arch not in ARCHS:
    raise ValueError(f"unknown VGG arch {arch!r}; known: {sorted(ARCHS)}")
  return ARCHS[arch]


def _layout(stages: Tuple[int, ...]):
  """[(torch `features` index, in, out)] of the convs; pools take 1 index."""
  convs, index, cin = [], 0, 3
  for n, width in zip(stages, WIDTHS):
    for _ in range(n):
      convs.append((index, cin, width))
      index, cin = index + 2, width  # Conv2d, ReLU
    index += 1  # MaxPool2d
  return convs


class VGG(nn.Module):
  """Images [B, H, W, 3] (normalised) -> pool5 maps [B, H//32, W//32, 512].

  Attributes:
    stages: convs per stage, (2, 2, 4, 4, 4) for VGG-19.
  """
  stages: Tuple[int, ...] = ARCHS["vgg19"]

  @nn.compact
  def __call__(self, x):
    convs = _layout(self.stages)
    k = 0
    for n in self.stages:
      for index, _, width in convs[k:k + n]:
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)),
                    name=f"features_{index}")(x)
        x = nn.relu(x)
      k += n
      x = nn.max_pool(x, (2, 2), (2, 2))
    return x


def build(arch: str = "vgg19") -> VGG:
  return VGG(depths(arch))


def torchvision_keys(arch: str = "vgg19", *, head: bool = True
                     ) -> checkpoints.Shapes:
  """The torchvision state_dict layout {key: shape}.

  head=False leaves out `classifier.*` (4096-4096-1000 MLP on 7x7x512).
  """
  shapes = {}
  for index, cin, cout in _layout(depths(arch)):
    shapes[f"features.{index}.weight"] = (cout, cin, 3, 3)
    shapes[f"features.{index}.bias"] = (cout,)
  if head:
    for i, (cout, cin) in zip((0, 3, 6), ((4096, 512 * 7 * 7),
                                          (4096, 4096), (1000, 4096))):
      shapes[f"classifier.{i}.weight"] = (cout, cin)
      shapes[f"classifier.{i}.bias"] = (cout,)
  return shapes


def convert_torchvision(state_dict: Any, arch: str = "vgg19"):
  """A torchvision VGG state_dict -> Flax variables {"params": ...}.

  Args:
    state_dict: key -> array (numpy or torch), or a .pth / .npz path.
    arch: "vgg19" (default) or another configuration in ARCHS.

  Raises:
    checkpoints.WeightsError: naming unexpected, missing or misshaped keys.
  """
  full = torchvision_keys(arch)
  arrays = checkpoints.check_state_dict(
      state_dict, torchvision_keys(arch, head=False),
      {k: v for k, v in full.items() if k.startswith("classifier.")}, arch)
  return checkpoints.to_flax(arrays)


def load(arch: str = "vgg19", weights_dir: Optional[str] = None):
  """(module, variables) from the downloaded torchvision weight file."""
  path = checkpoints.weights_file(arch, weights_dir)
  return build(arch), convert_torchvision(path, arch)

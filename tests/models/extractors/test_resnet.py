"""ResNet extractor == torchvision on seeded weights (fixture), key layout."""

import numpy as np
import pytest

from avjax.models.extractors import resnet
from tests.models.extractors import golden

MINI = (1, 2, 1, 1)  # same code path (downsample, stride, repeats), 5 blocks


def test_reduced_depth_matches_torchvision():
  diff = golden.max_rel_diff(
      resnet.build(MINI), resnet.torchvision_keys(MINI, head=False),
      lambda sd: resnet.convert_torchvision(sd, MINI), resnet.normalize,
      "resnet_1211", [(2, 64, 64, 3), (1, 96, 80, 3)])
  assert diff < golden.TOL


@pytest.mark.slow
def test_resnet152_matches_torchvision():
  diff = golden.max_rel_diff(
      resnet.build("resnet152"),
      resnet.torchvision_keys("resnet152", head=False),
      resnet.convert_torchvision, resnet.normalize, "resnet152",
      [(2, 64, 64, 3), (1, 96, 80, 3), (1, 224, 224, 3)])
  assert diff < golden.TOL


def test_resnet152_layout():
  keys = resnet.torchvision_keys("resnet152")
  assert len(keys) == 777 and keys["fc.weight"] == (1000, 2048)
  assert keys["layer3.35.conv3.weight"] == (1024, 256, 1, 1)
  assert keys["layer2.0.downsample.0.weight"] == (512, 256, 1, 1)
  assert "layer1.0.downsample.0.weight" in keys  # 64 -> 256 channels
  assert "layer2.1.downsample.0.weight" not in keys
  n = sum(int(np.prod(s)) for s in keys.values())
  assert n == 60_344_232  # torchvision: 60,192,808 params + BN running stats


def test_normalize_uint8_equals_float():
  x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3) * 40
  a = np.asarray(resnet.normalize(x))
  b = np.asarray(resnet.normalize(x.astype(np.float32) / 255))
  np.testing.assert_allclose(a, b, atol=1e-6)
  np.testing.assert_allclose(a[0, 0], (np.float32([0, 40, 80]) / 255 -
                                       resnet.MEAN) / resnet.STD, rtol=1e-5)

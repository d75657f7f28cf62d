"""R(2+1)D-18 extractor == torchvision on seeded weights (fixture)."""

import numpy as np
import pytest

from avjax.models.extractors import r2plus1d
from tests.models.extractors import golden


def _diff(shapes):
  return golden.max_rel_diff(
      r2plus1d.build(), r2plus1d.torchvision_keys(head=False),
      r2plus1d.convert_torchvision, r2plus1d.normalize, "r2plus1d_18",
      shapes)


def test_matches_torchvision_small_clips():
  assert _diff([(2, 4, 32, 32, 3), (1, 8, 48, 40, 3)]) < golden.TOL


@pytest.mark.slow
def test_matches_torchvision_llp_clip():
  assert _diff([(1, 8, 112, 112, 3)]) < golden.TOL


def test_layout():
  keys = r2plus1d.torchvision_keys()
  assert r2plus1d.midplanes(64, 128) == 230
  assert r2plus1d.midplanes(128, 128) == 288
  assert keys["layer2.0.conv2.0.0.weight"] == (230, 128, 1, 3, 3)
  assert keys["layer2.1.conv1.0.0.weight"] == (288, 128, 1, 3, 3)
  assert keys["layer4.0.downsample.0.weight"] == (512, 256, 1, 1, 1)
  assert "layer1.0.downsample.0.weight" not in keys
  assert keys["fc.weight"] == (400, 512)


def test_factorised_convs_equal_3d_convolution():
  import jax  # pylint: disable=g-import-not-at-top
  from jax import lax  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(0).standard_normal((2, 5, 9, 7, 3), np.float32)
  for kernel, stride, pad in (((1, 3, 3), (1, 2, 2), (0, 1, 1)),
                              ((3, 1, 1), (2, 1, 1), (1, 0, 0)),
                              ((1, 1, 1), (2, 2, 2), (0, 0, 0)),
                              ((3, 3, 3), (1, 2, 1), (1, 1, 0))):
    conv = r2plus1d.Conv3D(4, kernel, stride, pad)
    v = conv.init(jax.random.key(0), x)
    ref = lax.conv_general_dilated(
        x, v["params"]["kernel"], stride, [(p, p) for p in pad],
        dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    np.testing.assert_allclose(conv.apply(v, x), ref, rtol=1e-5, atol=1e-5)

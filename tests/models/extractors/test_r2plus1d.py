"""R(2+1)D-18 extractor == torchvision on seeded weights (fixture)."""

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

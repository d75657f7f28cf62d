"""VGG-19 pool5 extractor == torchvision on seeded weights (fixture)."""

import pytest

from avjax.models.extractors import vgg
from tests.models.extractors import golden


def _diff(shapes):
  return golden.max_rel_diff(
      vgg.build(), vgg.torchvision_keys(head=False), vgg.convert_torchvision,
      vgg.normalize, "vgg19", shapes)


def test_matches_torchvision_small_frames():
  assert _diff([(2, 64, 64, 3), (1, 96, 80, 3)]) < golden.TOL


@pytest.mark.slow
def test_pool5_7x7_at_224():
  assert _diff([(1, 224, 224, 3)]) < golden.TOL  # [1, 7, 7, 512]


def test_layout():
  keys = vgg.torchvision_keys()
  convs = [k for k in keys if k.startswith("features.")]
  assert len(convs) == 32 and convs[-1] == "features.34.bias"
  assert keys["features.28.weight"] == (512, 512, 3, 3)
  assert keys["classifier.0.weight"] == (4096, 25088)

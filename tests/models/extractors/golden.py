"""Shared check: seeded torchvision-layout weights vs the stored references.

tests/fixtures/extractors_golden.npz holds torchvision's outputs for weights
`checkpoints.random_state_dict(keys, 0)` and inputs `inputs(shape)`; it is
made outside the repo by /work/scratch/video_ref/make_fixtures.py (torch
2.14.1, torchvision 0.29.1), key "<model>/<shape joined by x>".
"""

import jax
import numpy as np

from avjax.models.extractors import checkpoints
from tests import testing_utils

FIXTURE = testing_utils.golden_path("extractors")
TOL = 1e-4  # relative to max(1, max |reference|)


def inputs(shape):
  """[0, 1] RGB frames/clips, channels last, the fixture script's rule."""
  return np.random.default_rng([0, *shape]).random(shape, dtype=np.float32)


def reference(name, shape):
  with np.load(FIXTURE) as f:
    return f[f"{name}/{'x'.join(map(str, shape))}"]


def max_rel_diff(module, keys, convert, normalize, name, shapes):
  """Max over shapes of max|flax - torchvision| / max(1, max|torchvision|)."""
  variables = convert(checkpoints.random_state_dict(keys, 0))
  apply = jax.jit(module.apply)
  worst = 0.0
  for shape in shapes:
    ref = reference(name, shape)
    out = np.asarray(apply(variables, normalize(inputs(shape))))
    assert out.shape == ref.shape, (shape, out.shape, ref.shape)
    diff = float(np.abs(out - ref).max()) / max(1.0, float(np.abs(ref).max()))
    print(f"{name} {shape}: max|diff| / scale = {diff:.2e}")
    worst = max(worst, diff)
  return worst

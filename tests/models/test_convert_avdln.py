"""Official AVDLN weights (AVE-ECCV18 `scmm_net`, Keras 2 .h5) -> AVDLN.

tests/fixtures/avdln_golden.npz holds the official network's pair distances
(Keras, cmm_test.py's model and distance) for weights made by `random_weights`
below and written in the layout of the released model/cmm_model_weights.h5,
on the inputs of `inputs` (numbers only; generator:
/work/scratch/avdln/avdln_golden.py, outside the project).
"""

import os
import tempfile

from absl.testing import absltest
import h5py
import jax
import numpy as np

from avjax.models import build
from avjax.models import convert_torch
from configs import ave_cml
from tests import testing_utils

SHAPES = {"dense_1": (512, 128), "dense_2": (128, 64),
          "dense_3": (128, 128), "dense_4": (128, 64)}


def random_weights(seed):
  """dense_k kernel and bias ~ U(-b, b), b = 1/sqrt(fan_in), in that order
  from default_rng([seed, k]) (k = 0..3 over the sorted layer names)."""
  out = {}
  for k, (name, (i, o)) in enumerate(sorted(SHAPES.items())):
    rng = np.random.default_rng([seed, k])
    b = 1.0 / np.sqrt(i)
    out[name] = (rng.uniform(-b, b, (i, o)).astype(np.float32),
                 rng.uniform(-b, b, (o,)).astype(np.float32))
  return out


def inputs(seed, n):
  rng = np.random.default_rng([seed, n])
  video = np.abs(rng.standard_normal((n, 512))).astype(np.float32)
  audio = rng.standard_normal((n, 128)).astype(np.float32)
  return video, audio


def write_release_layout(path, weights):
  """A Keras 2 `save_weights` file as the released cmm_model_weights.h5:
  group per layer with its `weight_names`, arrays under layer/layer/."""
  with h5py.File(path, "w") as f:
    for name in ("input_1", "input_2", "lambda_1", "leaky_re_lu_1",
                 "leaky_re_lu_2"):
      f.create_group(name).attrs["weight_names"] = np.array([], np.float64)
    for name, (kernel, bias) in weights.items():
      g = f.create_group(name)
      g.attrs["weight_names"] = np.array(
          [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
      g.create_dataset(f"{name}/kernel:0", data=kernel)
      g.create_dataset(f"{name}/bias:0", data=bias)


class ConvertAVDLNTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()
    self.model = build.build(ave_cml.get_config("data=ave").model, {})

  def test_golden_distances(self):
    golden = testing_utils.load_golden("avdln")
    apply = jax.jit(lambda p, x: self.model.apply({"params": p}, x)["dist"])
    for seed in golden["weight_seeds"]:
      path = os.path.join(self.tmp, f"w{seed}.h5")
      write_release_layout(path, random_weights(int(seed)))
      params = convert_torch.convert_avdln(convert_torch.load_keras_h5(path))
      for n in golden["sizes"]:
        video, audio = inputs(int(golden["input_seed"]), int(n))
        dist = apply(params, {"audio": audio[None], "visual_vec": video[None]})
        np.testing.assert_allclose(np.diagonal(dist[0]),
                                   golden[f"w{seed}_n{n}__dist"],
                                   rtol=0, atol=1e-5, err_msg=f"w{seed} n{n}")

  def test_bad_weights_are_named(self):
    w = random_weights(0)
    w["dense_2"] = (w["dense_2"][0][:, :32], w["dense_2"][1][:32])
    path = os.path.join(self.tmp, "bad.h5")
    write_release_layout(path, w)
    with self.assertRaisesRegex(ValueError, r"dense_2/kernel \(128, 32\)"):
      convert_torch.convert_avdln(convert_torch.load_keras_h5(path))
    del w["dense_4"]
    write_release_layout(path, w)
    with self.assertRaisesRegex(ValueError, r"missing \['dense_4/bias'"):
      convert_torch.convert_avdln(convert_torch.load_keras_h5(path))
    text = os.path.join(self.tmp, "not.h5")
    with open(text, "w") as f:
      f.write("not hdf5")
    with self.assertRaisesRegex(ValueError, "not.h5: not an HDF5"):
      convert_torch.load_keras_h5(text)


if __name__ == "__main__":
  absltest.main()

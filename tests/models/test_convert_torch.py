"""Official HAN weights -> AVVPNet: golden outputs of the PyTorch forward.

tests/fixtures/han_golden.npz holds the outputs of the official MMIL_Net
(AVVP-ECCV20, eval mode, float32) for weights and inputs generated from
seeds; `random_state_dict` and `inputs` re-implement that generator (the
recipe is documented in `random_state_dict`), so no torch is needed here. The
fixture also stores the official state_dict's key -> shape table and the sum
of every generated array, checked before the outputs.
"""

import json
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from avjax.data import schema
from avjax.models import build
from avjax.models import convert_torch
from configs import avvp_han
from tests import testing_utils

OUTPUTS = {"global_prob": "global_prob", "a_prob": "audio_prob",
           "v_prob": "visual_prob", "frame_prob": "frame_prob"}
ATOL = 1e-5


def random_state_dict(shapes, seed):
  """The golden weights: key i of sorted(shapes) from default_rng([seed, i]).

  LayerNorm weight/bias ('norm' in the module name): 1 + U(-0.1, 0.1) /
  U(-0.1, 0.1); any other weight [out, in] and its bias: U(-b, b) with
  b = 1/sqrt(in) (PyTorch's Linear default). Drawn in float64, cast to f32.
  """
  out = {}
  for i, key in enumerate(sorted(shapes)):
    shape = tuple(shapes[key])
    rng = np.random.default_rng([seed, i])
    module, name = key.rsplit(".", 1)
    if "norm" in module.rsplit(".", 1)[-1]:
      w = rng.uniform(-0.1, 0.1, shape) + (1.0 if name == "weight" else 0.0)
    else:
      wkey = key.replace("in_proj_bias", "in_proj_weight").replace(
          ".bias", ".weight")
      b = 1.0 / np.sqrt(shapes[wkey][1])
      w = rng.uniform(-b, b, shape)
    out[key] = w.astype(np.float32)
  return out


def inputs(seed, b):
  """The golden inputs: VGGish-like audio 0..255, non-negative video."""
  rng = np.random.default_rng([seed, b])
  audio = np.floor(rng.uniform(0, 256, (b, 10, 128)))
  visual = rng.exponential(0.5, (b, 80, 2048))
  motion = rng.exponential(0.5, (b, 10, 512))
  return [x.astype(np.float32) for x in (audio, visual, motion)]


def han_model(fused):
  """HAN from the repo's config path (configs/avvp_han.py, build.build)."""
  cfg = avvp_han.get_config().model
  cfg.fused_attention = fused
  info = {"classes": ["c"] * 25, "feature_specs": schema.LLP_FEATURES}
  return build.build(cfg, info)


class ConvertTorchTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.golden = testing_utils.load_golden("han")
    cls.shapes = json.loads(str(cls.golden["state_dict_shapes"]))

  def state_dict(self, seed):
    sd = random_state_dict(self.shapes, seed)
    np.testing.assert_allclose(
        [sd[k].astype(np.float64).sum() for k in sorted(sd)],
        self.golden[f"w{seed}__weight_sums"], rtol=1e-12, atol=1e-9,
        err_msg="weight generator differs from the golden script's")
    return sd

  def test_shape_table_matches_official_state_dict(self):
    ours = {k: list(v) for k, v in
            convert_torch.han_state_dict_shapes().items()}
    used = {k: v for k, v in self.shapes.items()
            if not k.startswith(convert_torch.IGNORED_PREFIXES)}
    self.assertEqual(ours, used)
    self.assertGreater(len(self.shapes), len(used))

  @parameterized.parameters(True, False)
  def test_golden_outputs(self, fused):
    model = han_model(fused)
    for b in self.golden["batch_sizes"]:
      x = inputs(int(self.golden["input_seed"]), int(b))
      np.testing.assert_allclose([a.astype(np.float64).sum() for a in x],
                                 self.golden[f"b{b}__input_sums"], rtol=1e-12)
    batch = lambda b: dict(zip(("audio", "visual", "motion"), inputs(
        int(self.golden["input_seed"]), int(b))))
    want_tree = jax.eval_shape(
        lambda: model.init(jax.random.PRNGKey(0), batch(1), train=False))
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x, train=False))
    worst = 0.0
    for seed in self.golden["weight_seeds"]:
      conv = convert_torch.convert_han(self.state_dict(int(seed)),
                                       fused=fused)
      self.assertEqual(conv.ignored, sorted(
          k for k in self.shapes if k not in
          convert_torch.han_state_dict_shapes()))
      self.assertEqual(jax.tree.structure(conv.params),
                       jax.tree.structure(want_tree["params"]))
      for got, want in zip(jax.tree.leaves(conv.params),
                           jax.tree.leaves(want_tree["params"])):
        self.assertEqual((got.shape, got.dtype), (want.shape, want.dtype))
      for b in self.golden["batch_sizes"]:
        out = apply(conv.params, batch(b))
        for name, ours in OUTPUTS.items():
          want = self.golden[f"w{seed}_b{b}__{name}"]
          np.testing.assert_allclose(out[ours], want, rtol=0, atol=ATOL,
                                     err_msg=f"w{seed} b{b} {name}")
          worst = max(worst, float(np.abs(out[ours] - want).max()))
        # All-ones segment mask (no padding) gives the same outputs.
        masked = apply(conv.params, dict(batch(b), segment_mask=np.ones(
            (int(b), 10), np.float32)))
        np.testing.assert_allclose(masked["global_prob"], out["global_prob"],
                                   rtol=0, atol=1e-6)
    print(f"fused={fused}: max |avjax - official| = {worst:.2e}")

  def test_module_prefix_and_params_helper(self):
    sd = self.state_dict(0)
    a = convert_torch.han_state_dict_to_params(sd)
    b = convert_torch.han_state_dict_to_params(
        {"module." + k: v for k, v in sd.items()})
    jax.tree.map(np.testing.assert_array_equal, a, b)

  def test_missing_key(self):
    sd = self.state_dict(0)
    del sd["hat_encoder.layers.0.cm_attn.in_proj_weight"]
    with self.assertRaisesRegex(
        ValueError, r"missing.*hat_encoder\.layers\.0\.cm_attn\."
        r"in_proj_weight \(expected shape \(1536, 512\)\)"):
      convert_torch.convert_han(sd)

  def test_wrong_shape(self):
    sd = self.state_dict(0)
    sd["fc_v.weight"] = sd["fc_v.weight"].T
    with self.assertRaisesRegex(ValueError, r"fc_v\.weight: shape "
                                r"\(2048, 512\), expected shape \(512, 2048\)"):
      convert_torch.convert_han(sd)

  def test_unknown_key(self):
    sd = self.state_dict(0)
    sd["hat_encoder.layers.1.linear1.weight"] = sd[
        "hat_encoder.layers.0.linear1.weight"]
    with self.assertRaisesRegex(ValueError, r"unknown.*hat_encoder\.layers"
                                r"\.1\.linear1\.weight"):
      convert_torch.convert_han(sd)

  def test_load_npz_and_missing_torch(self):
    sd = self.state_dict(1)
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "han.npz")
      np.savez(path, **sd)
      loaded = convert_torch.load_torch_checkpoint(path)
    self.assertEqual(sorted(loaded), sorted(sd))
    np.testing.assert_array_equal(loaded["fc_a.weight"], sd["fc_a.weight"])

    def no_torch():
      raise ImportError("No module named 'torch'")
    orig = convert_torch._import_torch
    convert_torch._import_torch = no_torch
    try:
      with self.assertRaisesRegex(ImportError, r"pip install torch.*\.npz"):
        convert_torch.load_torch_checkpoint("/nonexistent/han.pt")
    finally:
      convert_torch._import_torch = orig


if __name__ == "__main__":
  absltest.main()

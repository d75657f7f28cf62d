"""Official cross-modal learning weights -> AVVPNet: golden outputs.

tests/fixtures/crossmodal_golden.npz holds the outputs of the official
MMIL_Net of Cross-Modal-learning-for-Audio-Visual-Video-Parsing
(nets/net_audiovisual.py: Base + Adv + Skip + GCAA; float32, CPU) for
weights and inputs generated from seeds (`random_state_dict`, `inputs`), in
two forms: "reference" (the
official file) and "paper" (the same file with GCAA's `[0]` removed). The
generator is /work/scratch/cml_golden.py (outside the project).
Outputs: eval mode (probabilities and the discriminator's sigmoid with the
BatchNorm running statistics) and the discriminator in train mode (batch
statistics) with the running statistics after that one update.
"""

import json

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

from avjax.data import schema
from avjax.models import build
from avjax.models import convert_torch
from configs import avvp_crossmodal
from tests import testing_utils

OUTPUTS = {"global_prob": "global_prob", "a_prob": "audio_prob",
           "v_prob": "visual_prob", "frame_prob": "frame_prob"}
ATOL = 1e-5


def random_state_dict(shapes, seed):
  """The golden weights: key i of sorted(shapes) from default_rng([seed, i]):
  BatchNorm running_mean U(-0.5, 0.5), running_var U(0.5, 1.5); norm weight
  1 + U(-0.1, 0.1), norm bias U(-0.1, 0.1); any other weight [out, in] and
  its bias U(-b, b), b = 1/sqrt(in). Drawn in float64, cast to float32."""
  out = {}
  for i, key in enumerate(sorted(shapes)):
    shape = tuple(shapes[key])
    rng = np.random.default_rng([seed, i])
    module, name = key.rsplit(".", 1)
    if name == "running_mean":
      w = rng.uniform(-0.5, 0.5, shape)
    elif name == "running_var":
      w = rng.uniform(0.5, 1.5, shape)
    elif "norm" in module.rsplit(".", 1)[-1]:
      w = rng.uniform(-0.1, 0.1, shape) + (1.0 if name == "weight" else 0.0)
    else:
      b = 1.0 / np.sqrt(shapes[key.replace(".bias", ".weight")][1])
      w = rng.uniform(-b, b, shape)
    out[key] = w.astype(np.float32)
  return out


def inputs(seed, b):
  """The golden inputs: ReLU-VGGish-scale audio (as the LLP release's),
  non-negative video. (0..255 audio saturates GCAA's softmax; float32
  rounding alone then moves the outputs by ~3e-5.)"""
  rng = np.random.default_rng([seed, b])
  audio = np.maximum(rng.normal(0.0, 0.4, (b, 10, 128)), 0.0)
  visual = rng.exponential(0.5, (b, 80, 2048))
  motion = rng.exponential(0.5, (b, 10, 512))
  return [x.astype(np.float32) for x in (audio, visual, motion)]


def model(form, dropout=0.1):
  """The data=llp config's model (form=reference); "paper": the same model
  with GCAA's per-segment form (the golden's patched official file)."""
  cfg = avvp_crossmodal.get_config("data=llp").model
  cfg.gcaa_first_segment = form == "reference"
  cfg.dropout = dropout
  info = {"classes": ["c"] * 25, "feature_specs": schema.LLP_FEATURES}
  return build.build(cfg, info)


class ConvertCrossModalTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.golden = testing_utils.load_golden("crossmodal")
    cls.shapes = json.loads(str(cls.golden["state_dict_shapes"]))

  def state_dict(self, seed):
    used = {k: v for k, v in self.shapes.items()
            if not k.endswith("num_batches_tracked")}
    sd = random_state_dict(used, seed)
    np.testing.assert_allclose(
        [sd[k].astype(np.float64).sum() for k in sorted(sd)],
        self.golden[f"w{seed}__weight_sums"], rtol=1e-12, atol=1e-9,
        err_msg="weight generator differs from the golden script's")
    sd.update({k: np.zeros((), np.int64) for k in self.shapes
               if k.endswith("num_batches_tracked")})
    return sd

  def test_shape_table_matches_official_state_dict(self):
    ours = {k: list(v) for k, v in
            convert_torch.crossmodal_state_dict_shapes().items()}
    used = {k: v for k, v in self.shapes.items()
            if not k.startswith(convert_torch.CM_IGNORED)
            and not k.endswith("num_batches_tracked")}
    self.assertEqual(ours, used)

  @parameterized.parameters("reference", "paper")
  def test_golden_outputs(self, form):
    seed_in = int(self.golden["input_seed"])
    batch = lambda b: dict(zip(("audio", "visual", "motion"),
                               inputs(seed_in, int(b))))
    for b in self.golden["batch_sizes"]:
      np.testing.assert_allclose(
          [a.astype(np.float64).sum() for a in inputs(seed_in, int(b))],
          self.golden[f"b{b}__input_sums"], rtol=1e-12)
    net = model(form, dropout=0.0)
    want_tree = jax.eval_shape(
        lambda: net.init(jax.random.PRNGKey(0), batch(1), train=False))
    evaluate = jax.jit(lambda v, x: net.apply(v, x, train=False))
    train = jax.jit(lambda v, x: net.apply(v, x, train=True,
                                           mutable=["batch_stats"]))
    worst = 0.0
    for seed in self.golden["weight_seeds"]:
      conv = convert_torch.convert_crossmodal(self.state_dict(int(seed)))
      self.assertEqual(conv.ignored, sorted(
          k for k in self.shapes if k.startswith(convert_torch.CM_IGNORED)
          or k.endswith("num_batches_tracked")))
      self.assertEqual(jax.tree.structure(conv.variables),
                       jax.tree.structure(want_tree))
      for b in self.golden["batch_sizes"]:
        tag = f"{form}_w{seed}_b{b}"
        g = lambda k: self.golden[f"{tag}__{k}"]  # pylint: disable=cell-var-from-loop
        out = evaluate(conv.variables, batch(b))
        got = {ours: out[ours] for ours in OUTPUTS.values()}
        got["mod_pred"] = jax.nn.sigmoid(out["disc_logits"]).reshape(-1)
        out_t, new = train(conv.variables, batch(b))
        got["mod_pred_train"] = jax.nn.sigmoid(
            out_t["disc_logits"]).reshape(-1)
        stats = new["batch_stats"]["modality_disc"]
        for i in (1, 2):
          got[f"norm{i}_mean"] = stats[f"norm_{i - 1}"]["mean"]
          got[f"norm{i}_var"] = stats[f"norm_{i - 1}"]["var"]
        names = {v: k for k, v in OUTPUTS.items()}
        for name, ours in got.items():
          want = g(names.get(name, name))
          np.testing.assert_allclose(ours, want, rtol=0, atol=ATOL,
                                     err_msg=f"{tag} {name}")
          worst = max(worst, float(np.abs(np.asarray(ours) - want).max()))
    print(f"{form}: max |avjax - official| = {worst:.2e}")

  def test_forms_differ_in_the_golden(self):
    a = self.golden["reference_w0_b2__frame_prob"]
    b = self.golden["paper_w0_b2__frame_prob"]
    self.assertGreater(float(np.abs(a - b).max()), 1e-3)

  def test_unknown_and_missing_keys(self):
    sd = self.state_dict(0)
    with self.assertRaisesRegex(ValueError, "unknown.*bogus"):
      convert_torch.convert_crossmodal(dict(sd, bogus=np.zeros(1)))
    del sd["shared_fc.weight"]
    with self.assertRaisesRegex(ValueError, r"missing.*shared_fc\.weight"):
      convert_torch.convert_crossmodal(sd)


if __name__ == "__main__":
  absltest.main()

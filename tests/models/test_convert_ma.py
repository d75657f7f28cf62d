"""Official MA weights -> AVVPNet: golden outputs and NCE loss.

tests/fixtures/ma_golden.npz holds, for seeded weights and inputs (the HAN
golden recipe, `test_convert_torch.random_state_dict` / `inputs`), the
official MA MMIL_Net's outputs (eval mode, float32), its similarity matrix
`sims` [B*10, 10] (HAN audio vs pre-HAN visual, cosine / 0.2) and the value
of its NCE term (LabelSmoothingLoss(10, 0.1) of `sims` against step t).
Generator: /work/scratch/ma_golden.py (outside the project).

tests/fixtures/ma_grad_golden.npz holds the gradients of the official
step-1 training loss (BCE of the audio, visual and global heads, Pa = y,
Pv = 0.9 y + 0.05, plus the NCE term; probabilities clamped in place) for
the golden weights (seed 0) and inputs (batch 5), eval mode: per parameter
its L2 norm and its projection on a fixed normal direction. Generator:
/work/scratch/ma_grad_golden.py (outside the project).
"""

import json

from absl.testing import absltest
import jax
import numpy as np

from avjax.data import schema
from avjax.losses import avvp as avvp_losses
from avjax.losses import nce
from avjax.models import build
from avjax.models import convert_torch
from configs import avvp_ma
from tests.models.test_convert_torch import inputs, random_state_dict
from tests import testing_utils

OUTPUTS = {"global_prob": "global_prob", "a_prob": "audio_prob",
           "v_prob": "visual_prob", "frame_prob": "frame_prob"}
ATOL = 1e-5


class ConvertMATest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.golden = testing_utils.load_golden("ma")
    cls.shapes = json.loads(str(cls.golden["state_dict_shapes"]))
    cls.config = avvp_ma.get_config("data=llp")
    info = {"classes": ["c"] * 25, "feature_specs": schema.LLP_FEATURES}
    cls.model = build.build(cls.config.model, info)

  def test_ignored_keys_are_mas_unused_modules(self):
    conv = convert_torch.convert_ma(random_state_dict(self.shapes, 0))
    self.assertEqual(conv.ignored, sorted(
        k for k in self.shapes if k not in
        convert_torch.han_state_dict_shapes()))
    self.assertTrue(any(k.startswith("t_att.") for k in conv.ignored))
    with self.assertRaisesRegex(ValueError, r"unknown.*t_att\."):
      convert_torch.convert_han(random_state_dict(self.shapes, 0))

  def test_golden_outputs_and_nce(self):
    cfg = self.config.loss
    self.assertEqual((cfg.type, cfg.nce_tau, cfg.nce_smoothing),
                     ("han_nce", 0.2, 0.1))
    apply = jax.jit(lambda p, x: self.model.apply({"params": p}, x,
                                                  train=False))
    seed_in = int(self.golden["input_seed"])
    worst = 0.0
    for seed in self.golden["weight_seeds"]:
      sd = random_state_dict(self.shapes, int(seed))
      np.testing.assert_allclose(
          [sd[k].astype(np.float64).sum() for k in sorted(sd)],
          self.golden[f"w{seed}__weight_sums"], rtol=1e-12, atol=1e-9)
      params = convert_torch.convert_ma(sd).params
      for b in self.golden["batch_sizes"]:
        x = inputs(seed_in, int(b))
        np.testing.assert_allclose([a.astype(np.float64).sum() for a in x],
                                   self.golden[f"b{b}__input_sums"],
                                   rtol=1e-12)
        out = apply(params, dict(zip(("audio", "visual", "motion"), x)))
        for name, ours in OUTPUTS.items():
          want = self.golden[f"w{seed}_b{b}__{name}"]
          np.testing.assert_allclose(out[ours], want, rtol=0, atol=ATOL,
                                     err_msg=f"w{seed} b{b} {name}")
          worst = max(worst, float(np.abs(out[ours] - want).max()))
        a = nce.l2_normalize(out["audio_emb"])
        v = nce.l2_normalize(out["visual_in"])
        sims = np.einsum("btd,bsd->bts", a, v).reshape(-1, 10) / cfg.nce_tau
        np.testing.assert_allclose(sims, self.golden[f"w{seed}_b{b}__sims"],
                                   rtol=0, atol=ATOL)
        # The loss as the trainer computes it (losses.avvp, han_nce).
        batch = {"labels": np.zeros((int(b), 25), np.float32)}
        terms = avvp_losses.loss_fn(out, batch, config=self.config)
        want = float(self.golden[f"w{seed}_b{b}__nce"])
        self.assertAlmostEqual(float(terms["loss_nce"]), want, delta=ATOL,
                               msg=f"w{seed} b{b} nce")
    print(f"MA: max |avjax - official| = {worst:.2e}")

  def test_golden_loss_gradients(self):
    """The training signal, not only the forward pass: d(loss)/d(params) of
    the config's loss equals the official step 1's, parameter by parameter
    (the converter maps each torch tensor's entries onto avjax's, so a
    direction converted alike gives the same projection)."""
    g = testing_utils.load_golden("ma_grad")
    cfg = self.config.loss
    self.assertEqual((cfg.audio_smoothing, cfg.visual_smoothing), (0.0, 0.1))
    shapes = json.loads(str(g["state_dict_shapes"]))
    keys = sorted(shapes)
    params = convert_torch.convert_ma(
        random_state_dict(shapes, int(g["weight_seed"]))).params
    x = dict(zip(("audio", "visual", "motion"),
                 inputs(int(g["input_seed"]), int(g["batch_size"]))))
    batch = {"labels": g["labels"]}

    def loss(p):
      out = self.model.apply({"params": p}, x, train=False)
      return avvp_losses.loss_fn(out, batch, config=self.config)

    parts = loss(params)
    grads = jax.grad(lambda p: loss(p)["loss"])(params)
    ours_terms = [float(parts[k]) for k in
                  ("loss_audio", "loss_visual", "loss_global", "loss_nce")]
    np.testing.assert_allclose(ours_terms, g["loss_terms"], rtol=1e-5)
    grads = jax.tree_util.tree_map(np.asarray, grads)
    zeros = {k: np.zeros(v, np.float32) for k, v in shapes.items()}
    for key, want_proj, want_norm in zip(g["keys"], g["projection"],
                                         g["norm"]):
      key = str(key)
      r = np.random.default_rng([int(g["direction_seed"]),
                                 keys.index(key)]).standard_normal(
                                     shapes[key]).astype(np.float32)
      only = convert_torch.convert_ma(dict(zeros, **{key: r})).params
      leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
          lambda a, b: (float((a.astype(np.float64) * b).sum()),
                        float(((a.astype(np.float64) * (b != 0)) ** 2).sum())),
          grads, only), is_leaf=lambda t: isinstance(t, tuple))
      proj = sum(v[0] for v in leaves)
      norm = float(np.sqrt(sum(v[1] for v in leaves)))
      tol = 1e-4 * want_norm + 1e-7
      self.assertAlmostEqual(proj, want_proj, delta=tol, msg=key)
      self.assertAlmostEqual(norm, want_norm, delta=tol, msg=key)
    self.assertLen(g["keys"], 30)  # HAN + MMIL + projections: MA's unused
    # modules get no gradient in the reference either.


if __name__ == "__main__":
  absltest.main()

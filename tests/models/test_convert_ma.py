"""Official MA weights -> AVVPNet: golden outputs and NCE loss.

tests/fixtures/ma_golden.npz holds, for seeded weights and inputs (the HAN
golden recipe, `test_convert_torch.random_state_dict` / `inputs`), the
official MA MMIL_Net's outputs (eval mode, float32), its similarity matrix
`sims` [B*10, 10] (HAN audio vs pre-HAN visual, cosine / 0.2) and the value
of its NCE term (LabelSmoothingLoss(10, 0.1) of `sims` against step t).
Generator: /work/scratch/ma_golden.py (outside the project).
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


if __name__ == "__main__":
  absltest.main()

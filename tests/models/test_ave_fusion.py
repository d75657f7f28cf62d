"""Every AVE fusion module: output shape and golden parameter count."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp

from avjax.models import ave_fusion
from avjax.trainers import train_lib

DA, DV, DIM = 6, 8, 4
dense = lambda i, o: i * o + o
NORM = 2 * DA + 2 * DV  # LayerNorm scale + bias on both inputs (NORMED)
# Golden counts for a [.., 6] audio and [.., 8] visual input, width 4.
GOLDEN = {
    "additive": dense(DA, DIM) + dense(DV, DIM),
    "max_pooling": dense(DA, DIM) + dense(DV, DIM),
    "gated": 2 * (dense(DA, DIM) + dense(DV, DIM)),
    "bilinear": NORM + dense(DA, DIM) + dense(DV, DIM) + dense(DIM, DIM),
    "gmu": dense(DA, DIM) + dense(DV, DIM) + dense(DA + DV, DIM),
    "gated_bilinear": (NORM + dense(DA, DIM) + dense(DV, DIM) +
                       dense(DA + DV, DIM) + dense(DIM, DIM)),
    "concat": 0,
    "mrn": NORM + dense(DA, DIM) + dense(DV, DIM) + 3 * dense(DIM, DIM),
    "dmrn": dense(DA, DIM) + dense(DV, DIM) + 4 * dense(DIM, DIM),
}


def init(kind, num_blocks=1, da=DA, dv=DV, input_norm=True):
  m = ave_fusion.make(kind, DIM, num_blocks, input_norm)
  a, v = jnp.ones((2, 3, da)), jnp.ones((2, 3, dv))
  params = m.init(jax.random.PRNGKey(0), a, v)
  return m.apply(params, a, v), train_lib.param_count(params)


class FusionTest(parameterized.TestCase):

  def test_every_module_has_a_golden_count(self):
    self.assertEqual(set(GOLDEN), set(ave_fusion.FUSIONS))

  @parameterized.parameters(*sorted(GOLDEN))
  def test_shape_and_params(self, kind):
    out, n = init(kind)
    self.assertEqual(out.shape, (2, 3, ave_fusion.out_dim(kind, DIM, DA, DV)))
    self.assertEqual(n, GOLDEN[kind])
    self.assertTrue(jnp.all(jnp.isfinite(out)))

  def test_stacked_blocks(self):
    _, mrn2 = init("mrn", 2)
    _, dmrn3 = init("dmrn", 3)
    self.assertEqual(mrn2, NORM + dense(DA, DIM) + 2 * (dense(DV, DIM) +
                                                 3 * dense(DIM, DIM)))
    self.assertEqual(dmrn3, dense(DA, DIM) + dense(DV, DIM) +
                     3 * 4 * dense(DIM, DIM))
    # Same-width inputs are not projected (late fusion of the two LSTMs).
    _, same = init("dmrn", 1, DIM, DIM)
    self.assertEqual(same, 4 * dense(DIM, DIM))

  @parameterized.parameters(*ave_fusion.NORMED)
  def test_input_norm(self, kind):
    # Off: the unnormalised form (no LayerNorm parameters).
    _, n = init(kind, input_norm=False)
    self.assertEqual(n, GOLDEN[kind] - NORM)
    # On: the output does not depend on the inputs' scale (BiLSTM outputs
    # at late fusion are ~5x smaller than the early-fusion features); off,
    # it does.
    a = jax.random.normal(jax.random.PRNGKey(1), (5, DA))
    v = jax.random.normal(jax.random.PRNGKey(2), (5, DV))
    for norm, same in ((True, True), (False, False)):
      m = ave_fusion.make(kind, DIM, input_norm=norm)
      p = m.init(jax.random.PRNGKey(0), a, v)
      close = jnp.allclose(m.apply(p, a, v), m.apply(p, 0.2 * a, 0.2 * v),
                           atol=1e-4)
      self.assertEqual(bool(close), same)
    # Other fusions have no such switch: `make` ignores it for them.
    _, n = init("gmu", input_norm=False)
    self.assertEqual(n, GOLDEN["gmu"])

  def test_dmrn_block_is_the_reference_formula(self):
    blk = ave_fusion.DMRNBlock(DIM)
    a = jax.random.normal(jax.random.PRNGKey(1), (5, DIM))
    v = jax.random.normal(jax.random.PRNGKey(2), (5, DIM))
    p = blk.init(jax.random.PRNGKey(0), a, v)["params"]
    u = lambda x, n: (jnp.tanh(x @ p[f"{n}1"]["kernel"] + p[f"{n}1"]["bias"])
                      @ p[f"{n}2"]["kernel"] + p[f"{n}2"]["bias"])
    m = (u(a, "u_a") + u(v, "u_v")) / 2
    ha, hv = blk.apply({"params": p}, a, v)
    self.assertTrue(jnp.allclose(ha, jnp.tanh(a + m), atol=1e-6))
    self.assertTrue(jnp.allclose(hv, jnp.tanh(v + m), atol=1e-6))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "unknown fusion 'sum'"):
      ave_fusion.make("sum", DIM)
    with self.assertRaisesRegex(ValueError, "no blocks to stack"):
      ave_fusion.make("gmu", DIM, num_blocks=2)


if __name__ == "__main__":
  absltest.main()

"""Gradient reversal, DANN schedule and discriminator loss."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from avjax.losses import adversarial


class GradientReversalTest(absltest.TestCase):

  def test_forward_identity_backward_minus_scale(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 4))
    g = jax.random.normal(jax.random.PRNGKey(1), (3, 4))
    for lam in (0.0, 0.37, 1.0):
      y, vjp = jax.vjp(adversarial.gradient_reversal, x, jnp.float32(lam))
      np.testing.assert_array_equal(y, x)
      gx, gs = vjp(g)
      np.testing.assert_array_equal(gx, -np.float32(lam) * np.asarray(g))
      self.assertEqual(float(gs), 0.0)

  def test_jit_and_traced_scale(self):
    f = lambda x, s: jnp.sum(adversarial.gradient_reversal(x, s) * 2.0)
    gx = jax.jit(jax.grad(f))(jnp.ones(3), jnp.float32(0.5))
    np.testing.assert_array_equal(gx, [-1.0, -1.0, -1.0])

  def test_dann_schedule(self):
    np.testing.assert_allclose(adversarial.dann_scale(0.0), 0.0, atol=1e-7)
    np.testing.assert_allclose(adversarial.dann_scale(0.5),
                               2 / (1 + np.exp(-5)) - 1, rtol=1e-6)
    np.testing.assert_allclose(adversarial.dann_scale(1.0),
                               2 / (1 + np.exp(-10)) - 1, rtol=1e-6)
    np.testing.assert_allclose(adversarial.dann_scale(3.0),
                               adversarial.dann_scale(1.0))


class DiscriminatorLossTest(absltest.TestCase):

  def test_bce_and_accuracy_match_numpy_with_mask(self):
    z = np.array([[[-2.0, 1.0], [0.5, -0.3], [9.0, 9.0]]], np.float32)
    m = np.array([[1.0, 1.0, 0.0]], np.float32)
    sig = lambda t: 1 / (1 + np.exp(-t))
    y = np.array([0.0, 1.0])
    per = -(y * np.log(sig(z[0, :2])) + (1 - y) * np.log(1 - sig(z[0, :2])))
    np.testing.assert_allclose(
        adversarial.discriminator_bce(jnp.asarray(z), jnp.asarray(m)),
        per.mean(), rtol=1e-5)
    self.assertAlmostEqual(float(adversarial.discriminator_accuracy(
        jnp.asarray(z), jnp.asarray(m))), 0.5)

  def test_scheduled_terms_reverse_only_feature_gradient(self):
    """alpha*BCE(rev) + (1-alpha)*BCE(detached): value BCE, feature grad
    -alpha times, discriminator grad unchanged."""
    f = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 2))
    w = jnp.float32(1.3)

    def terms(f, w, step):
      out = {"disc_logits": w * adversarial.gradient_reversal(f, 1.0),
             "disc_logits_detached": w * jax.lax.stop_gradient(f)}
      return adversarial.adversarial_terms(out, step, 10)["loss_disc"]

    plain = lambda f, w: adversarial.discriminator_bce(w * f)
    alpha = float(adversarial.dann_scale(0.3))
    np.testing.assert_allclose(terms(f, w, 3), plain(f, w), rtol=1e-6)
    gf, gw = jax.grad(terms, argnums=(0, 1))(f, w, 3)
    pf, pw = jax.grad(plain, argnums=(0, 1))(f, w)
    np.testing.assert_allclose(gf, -alpha * pf, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gw, pw, rtol=1e-5)


if __name__ == "__main__":
  absltest.main()

"""AVE losses (segment CE, MIL), contrastive margin loss, deep CCA."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from avjax.losses import ave
from avjax.losses import cca
from avjax.losses import contrastive


def log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


class AVELossTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.logits = rng.normal(size=(2, 3, 4)).astype(np.float32)
    self.y = np.eye(4)[[[0, 1, 3], [2, 2, 3]]].astype(np.uint8)
    self.mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)

  def test_segment_ce(self):
    ls = log_softmax(self.logits)
    want = -np.mean([ls[0, 0, 0], ls[0, 1, 1], ls[0, 2, 3], ls[1, 0, 2],
                     ls[1, 1, 2]])
    got = ave.segment_ce(self.logits, self.y, self.mask)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    got = ave.segment_ce(self.logits, self.y, self.mask, jnp.array([1., 0.]))
    np.testing.assert_allclose(got, -ls[0, [0, 1, 2], [0, 1, 3]].mean(),
                               rtol=1e-5)

  def test_mil(self):
    pooled = ave.mil_pool(self.logits, self.mask, "mean")
    np.testing.assert_allclose(pooled[1], self.logits[1, :2].mean(0),
                               rtol=1e-5)
    mx = ave.mil_pool(self.logits, self.mask, "max")
    np.testing.assert_allclose(mx[1], self.logits[1, :2].max(0))
    labels = np.array([[1, 0, 0, 1], [0, 0, 1, 0]], np.float32)
    got = ave.mil_ce(self.logits, labels, self.mask)
    lp = log_softmax(np.asarray(pooled))
    want = np.mean([-(lp[0, 0] + lp[0, 3]) / 2, -lp[1, 2]])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    with self.assertRaisesRegex(ValueError, "pooling='sum'"):
      ave.mil_pool(self.logits, self.mask, "sum")


class ContrastiveTest(absltest.TestCase):

  def test_values(self):
    d = jnp.array([0.5, 1.0, 3.0, 0.0])
    y = jnp.array([1, 0, 0, 1])
    want = np.mean([0.25, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(contrastive.contrastive(d, y, 2.0), want,
                               rtol=1e-6)
    w = jnp.array([1., 1., 0., 0.])
    np.testing.assert_allclose(contrastive.contrastive(d, y, 2.0, w), 0.625,
                               rtol=1e-6)
    x = jnp.array([[3., 4.], [0., 0.]])
    np.testing.assert_allclose(contrastive.euclidean(x, 0 * x), [5., 0.],
                               atol=1e-4)
    g = jax.grad(lambda x: contrastive.euclidean(x, x).sum())(x)
    self.assertTrue(np.all(np.isfinite(g)))


class CCATest(absltest.TestCase):

  def test_perfectly_correlated_views(self):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 2))
    x = np.c_[z, rng.normal(size=(500, 1))] @ rng.normal(size=(3, 3))
    y = np.c_[z, rng.normal(size=(500, 1))] @ rng.normal(size=(3, 3))
    loss = cca.dcca_loss(jnp.asarray(x, jnp.float32),
                         jnp.asarray(y, jnp.float32), jnp.ones(500), 1e-6)
    self.assertBetween(float(-loss), 1.95, 2.2)  # two shared directions
    (mx, wx), (my, wy) = cca.fit_cca(x, y, 2)
    px, py = (x - mx) @ wx, (y - my) @ wy
    np.testing.assert_allclose(np.cov(px.T), np.eye(2), atol=0.05)
    np.testing.assert_allclose(px, py, atol=0.05)


if __name__ == "__main__":
  absltest.main()

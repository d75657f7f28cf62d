"""Contrastive losses against hand-computed NumPy, and under sharding."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from avjax.losses import nce


def np_temporal_nce(a, v, mask, tau, s):
  """Loops over clips and steps: the reference LabelSmoothingLoss."""
  total, count = 0.0, 0
  for b in range(a.shape[0]):
    k = int(mask[b].sum())
    an = a[b, :k] / np.linalg.norm(a[b, :k], axis=-1, keepdims=True)
    vn = v[b, :k] / np.linalg.norm(v[b, :k], axis=-1, keepdims=True)
    for t in range(k):
      z = an[t] @ vn.T / tau
      logp = z - np.log(np.exp(z).sum())
      target = np.full(k, s / max(k - 1, 1))
      target[t] = 1 - s
      total += -(target * logp).sum()
      count += 1
  return total / count


def np_clip_nce(a, v, tau):
  a = a.mean(1)
  v = v.mean(1)
  a /= np.linalg.norm(a, axis=-1, keepdims=True)
  v /= np.linalg.norm(v, axis=-1, keepdims=True)
  z = a @ v.T / tau
  lsm = lambda x: x - np.log(np.exp(x).sum(1, keepdims=True))
  return float(np.mean(-0.5 * (np.diag(lsm(z)) + np.diag(lsm(z.T)))))


class NCETest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.a = rng.normal(size=(16, 4, 3)).astype(np.float32)
    self.v = rng.normal(size=(16, 4, 3)).astype(np.float32)
    self.mask = np.ones((16, 4), np.float32)
    self.mask[1, 3:] = 0  # T=3
    self.mask[5, 1:] = 0  # T=1: a single candidate, zero loss

  def test_temporal_value_hand_computed(self):
    # Tiny case by hand: T=2, d=2, orthogonal unit vectors, tau=0.5, s=0.1.
    a = np.array([[[1.0, 0.0], [0.0, 2.0]]], np.float32)
    v = np.array([[[3.0, 0.0], [0.0, 1.0]]], np.float32)
    got = nce.temporal_nce(a, v, tau=0.5, label_smoothing=0.1)
    logp_pos = 2.0 - np.log(np.exp(2.0) + 1.0)  # sims (1, 0) / 0.5
    logp_neg = 0.0 - np.log(np.exp(2.0) + 1.0)
    np.testing.assert_allclose(got, -(0.9 * logp_pos + 0.1 * logp_neg),
                               rtol=1e-6)

  def test_temporal_matches_numpy_with_variable_length(self):
    got = nce.temporal_nce(self.a, self.v, self.mask, tau=0.2)
    want = np_temporal_nce(self.a, self.v, self.mask, 0.2, 0.1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Padded steps are ignored whatever their content.
    a2 = self.a.copy()
    v2 = self.v.copy()
    a2[1, 3], v2[1, 3] = 1e3, -1e3
    np.testing.assert_allclose(
        nce.temporal_nce(a2, v2, self.mask, tau=0.2), got, rtol=1e-6)

  def test_clip_nce_matches_numpy_and_ignores_padding(self):
    got = nce.clip_nce(self.a, self.v, tau=0.3)
    np.testing.assert_allclose(got, np_clip_nce(self.a, self.v, 0.3),
                               rtol=1e-5)
    w = np.ones(16, np.float32)
    w[8:] = 0
    padded = nce.clip_nce(self.a, self.v, tau=0.3, weights=w)
    np.testing.assert_allclose(
        padded, np_clip_nce(self.a[:8], self.v[:8], 0.3), rtol=1e-5)

  def test_sharded_over_8_devices_equals_one_device(self):
    self.assertEqual(jax.device_count(), 8)
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    sh = NamedSharding(mesh, P("data"))
    args = [jax.device_put(x, sh) for x in (self.a, self.v, self.mask)]
    one = jax.devices()[0]
    for fn in (nce.temporal_nce, nce.clip_nce):
      sharded = jax.jit(fn)(*args)
      single = jax.jit(fn)(*(jax.device_put(x, one)
                             for x in (self.a, self.v, self.mask)))
      np.testing.assert_allclose(sharded, single, rtol=1e-6)
    local = jax.jit(lambda *x: nce.local_clip_nce(mesh, *x, tau=0.2))(*args)
    per_dev = [nce.clip_nce(self.a[i:i + 2], self.v[i:i + 2],
                            self.mask[i:i + 2], tau=0.2)
               for i in range(0, 16, 2)]
    np.testing.assert_allclose(local, np.mean(per_dev), rtol=1e-5)

  def test_gradient_is_finite_for_zero_vectors(self):
    g = jax.grad(lambda a: nce.temporal_nce(a, jnp.asarray(self.v),
                                            jnp.asarray(self.mask)))(
                                                jnp.zeros_like(self.a))
    self.assertTrue(np.all(np.isfinite(g)))


if __name__ == "__main__":
  absltest.main()

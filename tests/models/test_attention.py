"""Hybrid attention: the fused kernel path equals flax's attention."""

from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import attention


class HybridAttentionTest(parameterized.TestCase):

  @parameterized.parameters((True, True, 1), (True, True, 2),
                            (False, True, 1), (True, False, 4))
  def test_fused_equals_unfused(self, cross, self_attn, heads):
    kw = dict(d_model=16, num_heads=heads, d_ff=24, dropout=0.1,
              cross_attention=cross, self_attention=self_attn)
    fused = attention.HybridAttentionLayer(fused=True, **kw)
    plain = attention.HybridAttentionLayer(fused=False, **kw)
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k[0], (3, 5, 16))
    ctx = jax.random.normal(k[1], (3, 5, 16))
    mask = jnp.array([[1] * 5, [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    plain_params = plain.init(k[2], x, ctx, mask, train=False)
    p_fused = fused.init(k[2], x, ctx, mask, train=False)
    params = {"params": attention.fuse_params(plain_params["params"], cross,
                                              self_attn)}
    self.assertEqual(jax.tree.structure(params),
                     jax.tree.structure(p_fused))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(p_fused)):
      self.assertEqual(a.shape, b.shape)
    # Same initial scale as flax's per-projection DenseGeneral (fan-in d).
    for name in ("fused_x_kernel", "fused_out_kernel"):
      np.testing.assert_allclose(np.std(p_fused["params"][name]),
                                 np.std(np.concatenate([
                                     np.ravel(a) for a in jax.tree.leaves(
                                         plain_params) if a.ndim == 3])),
                                 rtol=0.3)
    want = plain.apply(plain_params, x, ctx, mask, train=False)
    got = fused.apply(params, x, ctx, mask, train=False)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
    # Training mode: dropout active, finite gradients for every parameter.
    grads = jax.grad(lambda p: fused.apply(
        p, x, ctx, mask, train=True,
        rngs={"dropout": jax.random.PRNGKey(1)}).sum())(params)
    for g in jax.tree.leaves(grads):
      self.assertTrue(np.isfinite(np.asarray(g)).all())
    ours = fused.apply(params, x, ctx, mask, train=True,
                       rngs={"dropout": jax.random.PRNGKey(1)})
    self.assertGreater(float(jnp.abs(ours - got).max()), 1e-3)

  def test_attention_dropout_masks_independent_per_row_and_head(self):
    # Identical rows (batch elements, and the audio/visual streams that
    # AVVPNet concatenates into one batch) must get different dropout masks
    # on the attention weights, as PyTorch's nn.MultiheadAttention draws.
    # The residual/FFN dropout is switched off (all-ones masks) so only the
    # attention-weight dropout can make rows differ.
    layer = attention.HybridAttentionLayer(
        d_model=8, num_heads=2, d_ff=8, dropout=0.5, cross_attention=False)
    row = jax.random.normal(jax.random.PRNGKey(0), (1, 6, 8))
    x = jnp.tile(row, (4, 1, 1))
    params = layer.init(jax.random.PRNGKey(1), x, x, None, train=False)
    ones = lambda rng, rate, shapes: ([jnp.ones(s, bool) for s in shapes],
                                      1.0)
    with mock.patch.object(attention, "keep_masks", ones):
      out = np.asarray(layer.apply(params, x, x, None, train=True,
                                   rngs={"dropout": jax.random.PRNGKey(2)}))
    for i in range(1, 4):
      self.assertGreater(np.abs(out[i] - out[0]).max(), 1e-4)

  def test_keep_masks_one_draw(self):
    shapes = [(64, 10, 32), (64, 10, 32), (64, 10, 48), (3,)]
    masks, keep = attention.keep_masks(jax.random.PRNGKey(0), 0.1, shapes)
    self.assertEqual([m.shape for m in masks], shapes)
    self.assertAlmostEqual(keep, 58982 / 65536)
    for m in masks[:3]:
      self.assertAlmostEqual(float(m.mean()), keep, delta=0.01)
    # Masks are not copies of each other (each uses its own 16-bit halves).
    self.assertLess(float((masks[0] == masks[1]).mean()), 0.9)
    again, _ = attention.keep_masks(jax.random.PRNGKey(0), 0.1, shapes)
    np.testing.assert_array_equal(again[2], masks[2])

  def test_masked_keys_get_no_attention(self):
    layer = attention.HybridAttentionLayer(d_model=8, num_heads=1, d_ff=8,
                                           dropout=0.0)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 8))
    mask = jnp.array([[1, 1, 0, 0]])
    params = layer.init(jax.random.PRNGKey(1), x, x, mask, train=False)
    y = layer.apply(params, x, x, mask, train=False)
    x2 = x.at[:, 2:].set(100.0)  # Changing padded segments...
    y2 = layer.apply(params, x2, x2, mask, train=False)
    # ... leaves the real segments' outputs unchanged.
    np.testing.assert_allclose(y[:, :2], y2[:, :2], atol=1e-5)


if __name__ == "__main__":
  absltest.main()

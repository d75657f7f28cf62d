"""Shapes, golden parameter counts and exact rewrites of the AVVP network."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import avvp_net
from avjax.models import encoders
from avjax.models import pooling


def batch(b=3, t=4, f=8, seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 3)
  return {"audio": jax.random.normal(k[0], (b, t, 128)),
          "visual": jax.random.normal(k[1], (b, t * f, 2048)),
          "motion": jax.random.normal(k[2], (b, t, 512)),
          "segment_mask": jnp.ones((b, t))}


def count(params):
  return sum(x.size for x in jax.tree.leaves(params))


class AVVPNetTest(parameterized.TestCase):

  def test_reference_han_param_count_and_shapes(self):
    model = avvp_net.AVVPNet()
    x = batch()
    params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    # audio 128*512+512; visual 2048*512+512, 512*512+512, 1024*512+512;
    # HAN layer: 2 attentions 4*(512*512+512), 2 LN 2*1024, FFN 2*(512*512+512)
    # heads: 3*(512*25+25).
    han = 2 * 4 * (512 * 512 + 512) + 2 * 1024 + 2 * (512 * 512 + 512)
    expect = (128 * 512 + 512 + 2048 * 512 + 512 + 512 * 512 + 512 +
              1024 * 512 + 512 + han + 3 * (512 * 25 + 25))
    self.assertEqual(count(params), expect)
    out = model.apply({"params": params}, x, train=False)
    self.assertEqual(out["frame_prob"].shape, (3, 4, 2, 25))
    for k in ("global_prob", "audio_prob", "visual_prob"):
      self.assertEqual(out[k].shape, (3, 25))
      self.assertTrue(np.all((out[k] >= 0) & (out[k] <= 1 + 1e-6)))

  def test_pool_first_is_exact_rewrite(self):
    x = batch()
    a = avvp_net.AVVPNet(d_model=32, d_ff=32, pool_first=False)
    b = avvp_net.AVVPNet(d_model=32, d_ff=32, pool_first=True)
    params = a.init(jax.random.PRNGKey(1), x, train=False)["params"]
    oa = a.apply({"params": params}, x, train=False)
    ob = b.apply({"params": params}, x, train=False)
    np.testing.assert_allclose(oa["frame_prob"], ob["frame_prob"], atol=2e-5)

  @parameterized.parameters("a", "v")
  def test_single_modality_ignores_other_input(self, mod):
    x = batch()
    model = avvp_net.AVVPNet(d_model=16, d_ff=16, input_modalities=mod)
    params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    y = dict(x)
    other = ("visual", "motion") if mod == "a" else ("audio",)
    for k in other:
      y[k] = y[k] * 0 + 3.0
    oa = model.apply({"params": params}, x, train=False)
    ob = model.apply({"params": params}, y, train=False)
    np.testing.assert_array_equal(oa["frame_prob"], ob["frame_prob"])

  def test_no_cross_attention_streams_independent(self):
    x = batch()
    model = avvp_net.AVVPNet(d_model=16, d_ff=16, cross_attention=False)
    params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    self.assertNotIn("cross_attn", params["han_0"])
    y = dict(x, visual=x["visual"] + 1.0)
    oa = model.apply({"params": params}, x, train=False)
    ob = model.apply({"params": params}, y, train=False)
    np.testing.assert_array_equal(oa["frame_prob"][:, :, 0],
                                  ob["frame_prob"][:, :, 0])

  def test_padding_does_not_change_outputs(self):
    x = batch(t=3)
    model = avvp_net.AVVPNet(d_model=16, d_ff=16)
    params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    padded = {"audio": jnp.pad(x["audio"], ((0, 0), (0, 2), (0, 0)),
                               constant_values=7.0),
              "visual": jnp.pad(x["visual"], ((0, 0), (0, 16), (0, 0))),
              "motion": jnp.pad(x["motion"], ((0, 0), (0, 2), (0, 0))),
              "segment_mask": jnp.pad(x["segment_mask"], ((0, 0), (0, 2)))}
    oa = model.apply({"params": params}, x, train=False)
    ob = model.apply({"params": params}, padded, train=False)
    for k in ("global_prob", "audio_prob", "visual_prob"):
      np.testing.assert_allclose(oa[k], ob[k], atol=1e-5)
    np.testing.assert_allclose(oa["frame_prob"], ob["frame_prob"][:, :3],
                               atol=1e-5)


class PoolingTest(absltest.TestCase):

  def test_mmil_matches_numpy(self):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 2, 8))
    mod = pooling.AttentiveMMILPooling(3)
    params = mod.init(jax.random.PRNGKey(1), x)
    out = mod.apply(params, x)
    p = params["params"]
    xn = np.asarray(x, np.float64)
    lin = lambda n: xn @ np.asarray(p[n]["kernel"]) + np.asarray(p[n]["bias"])
    sig = 1 / (1 + np.exp(-lin("frame_cls")))
    soft = lambda z, ax: np.exp(z - z.max(ax, keepdims=True)) / np.exp(
        z - z.max(ax, keepdims=True)).sum(ax, keepdims=True)
    temporal = soft(lin("frame_att"), 1) * sig
    glob = (temporal * soft(lin("modality_att"), 2)).sum((1, 2))
    np.testing.assert_allclose(out["global_prob"], glob, rtol=1e-5)
    np.testing.assert_allclose(out["audio_prob"], temporal[:, :, 0].sum(1),
                               rtol=1e-5)

  def test_pool_frames(self):
    x = jnp.arange(2 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 1)
    np.testing.assert_array_equal(encoders.pool_frames(x, 3)[0, :, 0],
                                  [1.0, 4.0])

  def test_masked_max_mean(self):
    s = jnp.array([[1.0, 5.0, 9.0]])
    m = jnp.array([[1.0, 1.0, 0.0]])
    self.assertEqual(float(pooling.max_pool(s, m)[0]), 5.0)
    self.assertEqual(float(pooling.mean_pool(s, m)[0]), 3.0)



class BothWaysTest(absltest.TestCase):

  def test_one_concatenated_call_equals_two_calls(self):
    from avjax.models import attention  # pylint: disable=g-import-not-at-top
    k = jax.random.split(jax.random.PRNGKey(3), 2)
    a = jax.random.normal(k[0], (2, 5, 16))
    v = jax.random.normal(k[1], (2, 5, 16))
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], jnp.float32)
    layer = attention.HybridAttentionLayer(16, 2, 16, 0.1)
    params = layer.init(jax.random.PRNGKey(0), a, v, mask, train=False)
    bound = layer.bind(params)
    ya, yv = avvp_net._apply_both_ways(bound, a, v, mask, False)  # pylint: disable=protected-access
    np.testing.assert_allclose(ya, bound(a, v, mask, train=False), atol=1e-5)
    np.testing.assert_allclose(yv, bound(v, a, mask, train=False), atol=1e-5)


if __name__ == "__main__":
  absltest.main()

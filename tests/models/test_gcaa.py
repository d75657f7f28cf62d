"""Global-context-aware attention and the cross-modal AVVPNet options."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import avvp_net
from avjax.models import discriminator
from avjax.models import gcaa
from tests.models import test_avvp_net as tn


class GlobalContextAttentionTest(parameterized.TestCase):

  def test_shapes_and_param_count(self):
    d_in, d, heads = 12, 8, 2
    mod = gcaa.GlobalContextAttention(heads, d, 6)
    q = jnp.ones((2, 5, d_in))
    kv = jnp.ones((2, 5, d_in))
    params = mod.init(jax.random.PRNGKey(0), q, kv, deterministic=True)
    out = mod.apply(params, q, kv, deterministic=True)
    self.assertEqual(out.shape, (2, 5, 6))
    # query/key: proj + ctx (d_in d + d each) + 2 gates (d + 1 each);
    # value d_in d + d; out d*6 + 6.
    expect = 4 * (d_in * d + d) + 4 * (d + 1) + d_in * d + d + d * 6 + 6
    self.assertEqual(tn.count(params), expect)

  @parameterized.parameters(1, 2)
  def test_padding_invariance(self, heads):
    k = jax.random.split(jax.random.PRNGKey(1), 2)
    q = jax.random.normal(k[0], (2, 3, 8))
    kv = jax.random.normal(k[1], (2, 3, 8))
    mod = gcaa.GlobalContextAttention(heads, 8, 8)
    params = mod.init(jax.random.PRNGKey(0), q, kv, deterministic=True)
    pad = lambda x: jnp.pad(x, ((0, 0), (0, 2), (0, 0)), constant_values=5.0)
    mask = jnp.pad(jnp.ones((2, 3)), ((0, 0), (0, 2)))
    a = mod.apply(params, q, kv, jnp.ones((2, 3)), deterministic=True)
    b = mod.apply(params, pad(q), pad(kv), mask, deterministic=True)
    np.testing.assert_allclose(a, b[:, :3], atol=1e-5)

  def test_global_context_reaches_every_query(self):
    """Changing one query token moves every query through the global mean."""
    x = jax.random.normal(jax.random.PRNGKey(2), (1, 4, 8))
    mod = gcaa.GlobalContextAttention(1, 8, 8)
    params = mod.init(jax.random.PRNGKey(0), x, x, deterministic=True)
    a = mod.apply(params, x, x, deterministic=True)
    b = mod.apply(params, x.at[:, 3].add(1.0), x, deterministic=True)
    self.assertTrue(np.all(np.abs(np.asarray(a - b))[0, :3] > 0))


class CrossModalNetTest(absltest.TestCase):

  def test_defaults_unchanged_and_options_add_expected_params(self):
    x = tn.batch()
    init = lambda m: jax.eval_shape(
        lambda x: m.init(jax.random.PRNGKey(0), x, train=False), x)["params"]
    kw = dict(d_model=16, d_ff=16)
    han = init(avvp_net.AVVPNet(**kw))
    base = init(avvp_net.AVVPNet(separate_self_attention=True, **kw))
    self.assertEqual(set(base), set(han) | {"self_a_0", "self_v_0"})
    self.assertNotIn("self_attn", base["han_0"])
    skip = init(avvp_net.AVVPNet(skip=True, **kw))
    self.assertEqual(tn.count(skip), tn.count(han) + 4 * 16)
    adv = init(avvp_net.AVVPNet(adversarial=True, **kw))
    disc = (16 * 128 + 128 + 2 * 128) + (128 * 10 + 10 + 2 * 10) + 11
    self.assertEqual(tn.count(adv), tn.count(han) + disc)
    fc = init(avvp_net.AVVPNet(shared_fc=True, **kw))
    self.assertEqual(tn.count(fc), tn.count(han) + 16 * 16 + 16)
    self.assertEqual(set(fc), set(han) | {"shared_fc"})
    gc = init(avvp_net.AVVPNet(global_context=True, **kw))
    self.assertEqual(tn.count(gc), tn.count(han) + 2 * (
        2 * (16 * 16 + 16) + 4 * 17))

  def test_full_model_outputs_and_padding(self):
    x = tn.batch(t=3)
    model = avvp_net.AVVPNet(d_model=16, d_ff=16, separate_self_attention=True,
                             skip=True, global_context=True, adversarial=True)
    params = jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x,
                                          train=False))(x)["params"]
    apply = jax.jit(lambda x: model.apply({"params": params}, x, train=False))
    out = apply(x)
    self.assertEqual(out["disc_logits"].shape, (3, 3, 2))
    np.testing.assert_array_equal(out["disc_logits"],
                                  out["disc_logits_detached"])
    padded = {"audio": jnp.pad(x["audio"], ((0, 0), (0, 2), (0, 0))),
              "visual": jnp.pad(x["visual"], ((0, 0), (0, 16), (0, 0))),
              "motion": jnp.pad(x["motion"], ((0, 0), (0, 2), (0, 0))),
              "segment_mask": jnp.pad(x["segment_mask"], ((0, 0), (0, 2)))}
    ob = apply(padded)
    for k in ("global_prob", "audio_prob", "visual_prob"):
      np.testing.assert_allclose(out[k], ob[k], atol=1e-5)
    np.testing.assert_allclose(out["disc_logits"], ob["disc_logits"][:, :3],
                               atol=1e-4)

  def test_discriminator_shape(self):
    mod = discriminator.ModalityDiscriminator()
    z, _ = mod.init_with_output(jax.random.PRNGKey(0), jnp.ones((2, 5, 2, 32)))
    self.assertEqual(z.shape, (2, 5, 2))
    self.assertEqual(z.dtype, jnp.float32)


if __name__ == "__main__":
  absltest.main()

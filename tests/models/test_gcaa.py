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

  def test_first_segment_form_is_segment_0_everywhere(self):
    """Reference form (the official `[0]`): every query gets query 0's
    output of the paper form, with the same parameters."""
    k = jax.random.split(jax.random.PRNGKey(3), 2)
    q = jax.random.normal(k[0], (2, 5, 8))
    kv = jax.random.normal(k[1], (2, 5, 8))
    paper = gcaa.GlobalContextAttention(2, 8, 8)
    ref = gcaa.GlobalContextAttention(2, 8, 8, first_segment=True)
    params = paper.init(jax.random.PRNGKey(0), q, kv, deterministic=True)
    a = paper.apply(params, q, kv, deterministic=True)
    b = ref.apply(params, q, kv, deterministic=True)
    np.testing.assert_allclose(b, jnp.broadcast_to(a[:, :1], a.shape),
                               atol=1e-6)
    self.assertGreater(float(jnp.abs(a[:, 1:] - a[:, :1]).max()), 1e-3)

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

  def test_gcaa_forms_share_params_and_differ(self):
    x = tn.batch(t=3)
    kw = dict(d_model=16, d_ff=16, separate_self_attention=True, skip=True,
              global_context=True)
    paper = avvp_net.AVVPNet(**kw)
    ref = avvp_net.AVVPNet(gcaa_first_segment=True, **kw)
    params = paper.init(jax.random.PRNGKey(0), x, train=False)["params"]
    ref_params = ref.init(jax.random.PRNGKey(0), x, train=False)["params"]
    jax.tree.map(np.testing.assert_array_equal, params, ref_params)
    a = paper.apply({"params": params}, x, train=False)["frame_prob"]
    b = ref.apply({"params": params}, x, train=False)["frame_prob"]
    self.assertGreater(float(jnp.abs(a - b).max()), 1e-4)

  def test_disc_relu_and_batch_norm(self):
    """Reference discriminator: ReLU before the reversal, BatchNorm1d over
    all B*T*2 rows (running statistics in `batch_stats`, torch's update)."""
    x = tn.batch(t=3)
    model = avvp_net.AVVPNet(d_model=16, d_ff=16, adversarial=True,
                             disc_relu=True, disc_norm="batch")
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    self.assertEqual(set(variables), {"params", "batch_stats"})
    out, new = model.apply(variables, x, train=True, mutable=["batch_stats"],
                           rngs={"dropout": jax.random.PRNGKey(1)})
    feats = jax.nn.relu(jnp.stack([out["audio_emb"], out["visual_emb"]], 2))
    disc = discriminator.ModalityDiscriminator(norm="batch")
    dvars = {"params": variables["params"]["modality_disc"],
             "batch_stats": variables["batch_stats"]["modality_disc"]}
    want, dnew = disc.apply(dvars, feats, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out["disc_logits"], want, atol=1e-5)
    np.testing.assert_array_equal(out["disc_logits"],
                                  out["disc_logits_detached"])
    # One update (the detached call leaves the statistics alone), as torch.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                 new["batch_stats"]["modality_disc"], dnew["batch_stats"])
    h = np.asarray(feats).reshape(-1, 16) @ np.asarray(
        variables["params"]["modality_disc"]["dense_0"]["kernel"]) + np.asarray(
            variables["params"]["modality_disc"]["dense_0"]["bias"])
    st = new["batch_stats"]["modality_disc"]["norm_0"]
    np.testing.assert_allclose(st["mean"], 0.1 * h.mean(0), rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(st["var"], 0.9 + 0.1 * h.var(0, ddof=1),
                               rtol=1e-4)
    # Evaluation normalises with the running statistics.
    ev = model.apply({"params": variables["params"],
                      "batch_stats": new["batch_stats"]}, x, train=False)
    want_ev = disc.apply({"params": dvars["params"],
                          "batch_stats": new["batch_stats"]["modality_disc"]},
                         jax.nn.relu(jnp.stack([ev["audio_emb"],
                                                ev["visual_emb"]], 2)))
    np.testing.assert_allclose(ev["disc_logits"], want_ev, atol=1e-5)

  def test_batch_norm_matches_numpy(self):
    x = jax.random.normal(jax.random.PRNGKey(4), (3, 4, 2, 6)) * 2.0 + 1.0
    bn = discriminator.TorchBatchNorm()
    v = bn.init(jax.random.PRNGKey(0), x, train=False)
    y, _ = bn.apply(v, x, train=True, mutable=["batch_stats"])
    flat = np.asarray(x).reshape(-1, 6)
    want = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5)
    np.testing.assert_allclose(np.asarray(y).reshape(-1, 6), want, atol=1e-5)
    _, same = bn.apply(v, x, train=True, update_stats=False,
                       mutable=["batch_stats"])
    jax.tree.map(np.testing.assert_array_equal, same,
                 {"batch_stats": v["batch_stats"]})

  def test_discriminator_shape(self):
    mod = discriminator.ModalityDiscriminator()
    z, _ = mod.init_with_output(jax.random.PRNGKey(0), jnp.ones((2, 5, 2, 32)))
    self.assertEqual(z.shape, (2, 5, 2))
    self.assertEqual(z.dtype, jnp.float32)


if __name__ == "__main__":
  absltest.main()

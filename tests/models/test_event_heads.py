"""The five pooling layers (by hand, masked) and the multi-head model."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avjax.data import schema
from avjax.models import build
from avjax.models import event_heads as eh


def cfg(**kw):
  c = {"name": "event_heads", "heads": list(eh.HEADS), "d_model": 8,
       "num_layers": 2,
       "dropout": 0.0, "instant_k": 0, "instant_ratio": 0.1,
       "onset_source": "stored", "onset_threshold": 0.25, "dtype": "float32"}
  c.update(kw)
  return ml_collections.ConfigDict(c)


INFO = {"classes": ["a", "b", "c"],
        "feature_specs": (schema.FeatureSpec("audio", 1, (4,)),
                          schema.FeatureSpec("visual", 2, (6,)),
                          schema.ONSETS_FEATURE)}


class PoolingTest(absltest.TestCase):

  def test_layers_by_hand_with_padding(self):
    # One clip, T = 4 of which 3 valid; d = 1.
    zv = jnp.array([[[1.], [2.], [3.], [100.]]])
    za = jnp.array([[[4.], [0.], [1.], [100.]]])
    valid = jnp.array([[1., 1., 1., 0.]])
    onsets = jnp.array([[0., 1., 1., 1.]])
    out = eh.pool_heads(zv, za, valid, onsets, k=1)
    np.testing.assert_allclose(out["continuous"], [[2., 5 / 3]])
    # scores 4, 0, 3 (padding excluded): top-1 is step 0.
    np.testing.assert_array_equal(out["instant_sel"], [[1, 0, 0, 0]])
    np.testing.assert_allclose(out["instant"], [[1., 4.]])
    np.testing.assert_allclose(out["onset"], [[2.5, 0.5]])
    np.testing.assert_allclose(out["visual"], [[2., 0.]])
    np.testing.assert_allclose(out["audio"], [[0., 5 / 3]])
    out = eh.pool_heads(zv, za, valid, onsets, k=2)
    np.testing.assert_array_equal(out["instant_sel"], [[1, 0, 1, 0]])
    none = eh.pool_heads(zv, za, valid, jnp.zeros((1, 4)))
    np.testing.assert_allclose(none["onset"], [[0., 0.]])  # no evidence

  def test_instant_k_from_ratio_per_clip(self):
    valid = jnp.array([[1.] * 10 + [0.] * 90, [1.] * 100, [1.] * 3 + [0] * 97])
    np.testing.assert_array_equal(eh.instant_k(valid, 0, 0.1), [1, 10, 1])
    np.testing.assert_array_equal(eh.instant_k(valid, 5, 0.1), [5, 5, 3])
    sel = eh.topk_mask(jnp.arange(100.)[None].repeat(3, 0), valid,
                       eh.instant_k(valid, 0, 0.1))
    np.testing.assert_array_equal(sel.sum(1), [1, 10, 1])
    self.assertEqual(float(sel[0, 9]), 1.0)  # best valid step, not padding
    self.assertEqual(float(sel[1, 90:].sum()), 10.0)


class ModelTest(absltest.TestCase):

  def inputs(self, t, pad=0, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, t, 4)).astype(np.float32)
    v = rng.normal(size=(2, 2 * t, 6)).astype(np.float32)
    o = (rng.random((2, t, 1)) < 0.4).astype(np.float32)
    x = {"audio": a, "visual": v, "onsets": o,
         "segment_mask": np.ones((2, t), np.float32)}
    if pad:
      x = {k: np.concatenate([val, 7 * np.ones(
          (2, pad * (2 if k == "visual" else 1)) + val.shape[2:],
          np.float32) * (k != "segment_mask")], 1) for k, val in x.items()}
    return {k: jnp.asarray(val) for k, val in x.items()}

  def test_shapes_params_and_padding_invariance(self):
    model = eh.build(cfg(), INFO)
    x = self.inputs(5)
    params = model.init(jax.random.PRNGKey(0), x)
    out = model.apply(params, x)
    self.assertEqual(out["logits"].shape, (2, 5, 3))
    n = sum(p.size for p in jax.tree.leaves(params))
    # backbones (6*8+8 + 8*8+8) + (4*8+8 + 8*8+8), five heads (16*3+3).
    self.assertEqual(n, 56 + 72 + 40 + 72 + 5 * 51)
    padded = model.apply(params, self.inputs(5, pad=4))
    np.testing.assert_allclose(padded["logits"], out["logits"], atol=1e-5)

  def test_single_head_baselines_and_feature_onsets(self):
    for heads in (["audio"], ["visual"], ["continuous"]):
      model = eh.build(cfg(heads=heads), INFO)
      self.assertEqual(eh.input_features(cfg(heads=heads)),
                       ("audio", "visual"))
      x = self.inputs(5)
      del x["onsets"]
      out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
      self.assertEqual(out["logits"].shape, (2, 1, 3))
    c = cfg(onset_source="features")
    self.assertEqual(eh.input_features(c), ("audio", "visual"))
    x = self.inputs(6)
    del x["onsets"]
    model = eh.build(c, INFO)
    out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    self.assertEqual(out["onset_sel"].shape, (2, 6))

  def test_llp_config_builds_on_llp_shapes(self):
    from configs import event_heads as eh_config  # pylint: disable=g-import-not-at-top
    c = eh_config.get_config("data=llp")
    self.assertEqual(c.model.onset_source, "auto")
    info = {"classes": ["c"] * 25, "feature_specs": schema.LLP_FEATURES}
    model = eh.build(c.model, info)
    self.assertEqual(model.onset_source, "features")  # no `onsets` stream
    x = {"audio": jnp.zeros((1, 10, 128)), "visual": jnp.zeros((1, 80, 2048)),
         "segment_mask": jnp.ones((1, 10))}
    shapes = jax.eval_shape(lambda x: model.apply(
        model.init(jax.random.PRNGKey(0), x), x), x)
    self.assertEqual(shapes["logits"].shape, (1, 5, 25))

  def test_config_errors(self):
    with self.assertRaisesRegex(ValueError, "heads"):
      build.build(cfg(heads=["continuous", "rhythm"]), INFO)
    info = dict(INFO, feature_specs=INFO["feature_specs"][:2])
    with self.assertRaisesRegex(ValueError, "no 'onsets' stream"):
      eh.build(cfg(), info)


if __name__ == "__main__":
  absltest.main()

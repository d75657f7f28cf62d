"""The AVG encoder, its pretraining wrapper and its place in AVVPNet."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from avjax.models import avg
from avjax.models import avvp_net


def tiny_batch(b=2, t=3, f=2):
  k = jax.random.split(jax.random.PRNGKey(0), 3)
  return {"audio": jax.random.normal(k[0], (b, t, 6)),
          "visual": jax.random.normal(k[1], (b, t * f, 8)),
          "motion": jax.random.normal(k[2], (b, t, 4)),
          "segment_mask": jnp.ones((b, t))}


def encoder(**kw):
  return avg.AVGEncoder(d_model=16, num_layers=2, num_heads=2, d_ff=16,
                        dropout=0.0, frames_per_segment=2, **kw)


class AVGEncoderTest(absltest.TestCase):

  def test_shapes_and_param_tree(self):
    net = avg.AVGPretrainNet(encoder())
    b = tiny_batch(b=2, t=5)
    params = net.init(jax.random.PRNGKey(0), b, train=False)["params"]
    self.assertEqual(sorted(params), ["avg_encoder"])
    self.assertEqual(sorted(params["avg_encoder"]),
                     ["audio_proj", "layer_0", "layer_1", "modality_emb",
                      "visual_proj"])
    out = net.apply({"params": params}, b, train=False)
    self.assertEqual(out["audio_emb"].shape, (2, 5, 16))
    self.assertEqual(out["visual_emb"].shape, (2, 5, 16))

  def test_streams_mix_and_padding_is_ignored(self):
    net = avg.AVGPretrainNet(encoder())
    b = tiny_batch(b=1, t=4)
    params = net.init(jax.random.PRNGKey(0), b, train=False)
    out = net.apply(params, b, train=False)
    # the audio stream depends on the visual input (one joint transformer)
    b2 = dict(b, visual=b["visual"] * 2.0)
    self.assertGreater(float(jnp.abs(
        net.apply(params, b2, train=False)["audio_emb"] -
        out["audio_emb"]).max()), 1e-3)
    # a padded segment changes nothing on the real ones
    pad = {k: jnp.concatenate([v, jnp.full((1, v.shape[1] // 4) +
                                           v.shape[2:], 7.0)], 1)
           for k, v in b.items() if k != "segment_mask"}
    pad["segment_mask"] = jnp.array([[1, 1, 1, 1, 0]], jnp.float32)
    got = net.apply(params, pad, train=False)
    np.testing.assert_allclose(got["audio_emb"][:, :4], out["audio_emb"],
                               atol=1e-5)


class AVVPNetWithAVGTest(absltest.TestCase):

  def test_encoder_replaces_projections(self):
    model = avvp_net.AVVPNet(num_classes=3, d_model=16, d_ff=16,
                             frames_per_segment=2, avg_encoder=encoder())
    params = model.init(jax.random.PRNGKey(0), tiny_batch(),
                        train=False)["params"]
    self.assertIn("avg_encoder", params)
    self.assertNotIn("audio_proj", params)
    self.assertNotIn("visual_proj", params)

  def test_frozen_encoder_gets_no_gradient(self):
    b = tiny_batch()
    grads = {}
    for frozen in (False, True):
      model = avvp_net.AVVPNet(num_classes=3, d_model=16, d_ff=16,
                               frames_per_segment=2, avg_encoder=encoder(),
                               avg_frozen=frozen)
      params = model.init(jax.random.PRNGKey(0), b, train=False)["params"]
      loss = lambda p, m=model: m.apply(
          {"params": p}, b, train=True,
          rngs={"dropout": jax.random.PRNGKey(1)})["global_prob"].sum()
      grads[frozen] = jax.grad(loss)(params)
    norm = lambda g: float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(g)))
    self.assertGreater(norm(grads[False]["avg_encoder"]), 0.0)
    self.assertEqual(norm(grads[True]["avg_encoder"]), 0.0)
    self.assertGreater(norm(grads[True]["mmil"]), 0.0)


if __name__ == "__main__":
  absltest.main()

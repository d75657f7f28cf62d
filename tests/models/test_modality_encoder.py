"""VEBA's per-modality self-attention encoder before HAN
(`AVVPNet.modality_encoder_layers`, `configs/veba.py:encoder=`)."""

import functools

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from avjax.data import schema
from avjax.losses import veba as veba_losses
from avjax.models import avvp_net
from avjax.models import build
from avjax.trainers import train_lib
from configs import veba as veba_config
from tests.models.test_avvp_net import batch

KW = dict(num_classes=5, d_model=16, d_ff=16, dropout=0.1)


class ModalityEncoderTest(absltest.TestCase):

  def test_shapes_params_and_plain_form(self):
    x = batch()
    model = avvp_net.AVVPNet(modality_encoder_layers=2,
                             modality_encoder_heads=4, **KW)
    params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    for name in ("enc_a_0", "enc_v_0", "enc_a_1", "enc_v_1"):
      self.assertIn(name, params)
    out = model.apply({"params": params}, x, train=False)
    self.assertEqual(out["global_prob"].shape, (3, 5))
    self.assertEqual(out["frame_prob"].shape, (3, 4, 2, 5))
    self.assertEqual(out["audio_in"].shape, (3, 4, 16))
    # The plain form (0 layers) is HAN: the same tree without enc_*.
    plain_model = avvp_net.AVVPNet(**KW)
    plain = plain_model.init(jax.random.PRNGKey(0), x, train=False)["params"]
    self.assertEqual(sorted(plain), sorted(k for k in params
                                           if not k.startswith("enc_")))
    # Own weights per modality, and the encoder changes the HAN input.
    self.assertFalse(np.allclose(jax.tree.leaves(params["enc_a_0"])[0],
                                 jax.tree.leaves(params["enc_v_0"])[0]))
    proj = plain_model.apply({"params": {
        k: v for k, v in params.items() if not k.startswith("enc_")}}, x,
                             train=False)["audio_in"]
    self.assertFalse(np.allclose(proj, out["audio_in"], atol=1e-3))

  def test_encoder_is_per_modality_and_padding_safe(self):
    model = avvp_net.AVVPNet(modality_encoder_layers=1,
                             modality_encoder_heads=2, **KW)
    x = batch()
    params = model.init(jax.random.PRNGKey(1), x, train=False)["params"]
    out = model.apply({"params": params}, x, train=False)
    # Changing the visual input leaves the audio stream before HAN alone.
    y = dict(x, visual=x["visual"] + 1.0)
    out2 = model.apply({"params": params}, y, train=False)
    np.testing.assert_allclose(out["audio_in"], out2["audio_in"], atol=1e-6)
    # A padded step (mask 0) changes no valid step's encoder output.
    m = x["segment_mask"].at[:, -1].set(0.0)
    z = dict(x, segment_mask=m, audio=x["audio"].at[:, -1].set(9.0))
    a = model.apply({"params": params}, dict(x, segment_mask=m), train=False)
    b = model.apply({"params": params}, z, train=False)
    np.testing.assert_allclose(a["audio_in"][:, :-1], b["audio_in"][:, :-1],
                               atol=1e-5)

  @pytest.mark.slow  # ~25 s on a loaded 2-core machine (jit of the grad)
  def test_gradients_reach_both_encoders(self):
    model = avvp_net.AVVPNet(modality_encoder_layers=1,
                             modality_encoder_heads=4, **KW)
    x = batch()
    params = model.init(jax.random.PRNGKey(2), x, train=False)["params"]

    def loss(p):
      out = model.apply({"params": p}, x, train=True,
                        rngs={"dropout": jax.random.PRNGKey(3)})
      return -jnp.log(out["global_prob"][:, 0] + 1e-6).mean()

    grads = jax.grad(loss)(params)
    for name in ("enc_a_0", "enc_v_0"):
      leaves = jax.tree.leaves(grads[name])
      self.assertTrue(all(np.isfinite(g).all() for g in leaves), name)
      self.assertGreater(max(float(jnp.abs(g).max()) for g in leaves), 0.0)

  def test_config_default_options_and_check(self):
    c = veba_config.get_config("runlocal,encoder=paper")
    self.assertEqual((c.model.modality_encoder_layers,
                      c.model.modality_encoder_heads), (1, 8))
    self.assertEqual(c.experiment_name, "veba_ours_enc_paper")
    # Synthetic default: plain HAN, the form its tables were measured with.
    plain = veba_config.get_config("runlocal")
    self.assertEqual(plain.model.modality_encoder_layers, 0)
    self.assertEqual(plain.experiment_name, "veba_ours")
    with self.assertRaisesRegex(ValueError, r"encoder='x'"):
      veba_config.get_config("encoder=x")
    self.assertEqual(
        veba_config.get_config("data=veba").model.modality_encoder_layers, 1)
    c.model.modality_encoder_heads = 5
    self.assertTrue(any("modality_encoder_heads" in e
                        for e in avvp_net.check(c.model)))
    self.assertEqual(avvp_net.upgrade_fingerprint({})[
        "modality_encoder_layers"], 0)

  @pytest.mark.slow  # ~30 s on a loaded 2-core machine (jit of the step)
  def test_config_builds_and_trains_a_step(self):
    c = veba_config.get_config("runlocal,encoder=paper")
    c.model.d_model = c.model.d_ff = 16
    self.assertEqual(avvp_net.check(c.model), [])
    info = {"classes": ["c"] * 376, "feature_specs": schema.LLP_FEATURES}
    model = build.build(c.model, info)
    self.assertEqual(model.modality_encoder_layers, 1)
    b, t = 4, 10
    rng = np.random.default_rng(0)
    x = {"audio": rng.normal(size=(b, t, 128)).astype(np.float32),
         "visual": rng.normal(size=(b, t * 8, 2048)).astype(np.float32),
         "motion": rng.normal(size=(b, t, 512)).astype(np.float32),
         "segment_mask": np.ones((b, t), np.float32)}
    ya = (rng.random((b, 376)) < 0.01).astype(np.float32)
    ya[:, 0] = 1.0
    data = dict(x, labels=ya, audio_labels=ya, visual_labels=ya * (
        rng.random((b, 376)) < 0.5), clip_id_bytes=np.zeros((b, 16),
                                                             np.uint8))
    params = model.init(jax.random.PRNGKey(0), schema.model_inputs(data),
                        train=False)["params"]
    self.assertIn("enc_a_0", params)
    state = train_lib.TrainState.create(
        apply_fn=model.apply, params=params, tx=optax.adam(c.optim.lr),
        rng=jax.random.key(1))
    step = jax.jit(functools.partial(
        train_lib.train_step, loss_fn=functools.partial(
            veba_losses.loss_fn, config=c)))
    new, metrics = step(state, data)
    self.assertEqual(float(metrics["nonfinite"]), 0.0)
    self.assertTrue(np.isfinite(float(metrics["loss"])))
    moved = jax.tree.map(lambda p, q: float(jnp.abs(p - q).max()),
                         new.params["enc_v_0"], state.params["enc_v_0"])
    self.assertGreater(max(jax.tree.leaves(moved)), 0.0)


if __name__ == "__main__":
  absltest.main()

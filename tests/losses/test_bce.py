"""HAN loss against hand-computed NumPy values."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from avjax.losses import bce


def np_bce(p, y):
  p = np.clip(p, 1e-7, 1 - 1e-7)
  return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


class BCETest(absltest.TestCase):

  def test_han_loss_values(self):
    y = np.array([[1.0, 0.0, 1.0]])
    out = {"global_prob": jnp.array([[0.9, 0.2, 1.0]]),
           "audio_prob": jnp.array([[0.7, 0.0, 0.5]]),
           "visual_prob": jnp.array([[0.6, 0.3, 0.95]])}
    t = bce.han_loss(out, jnp.asarray(y))
    g = np_bce(np.array([[0.9, 0.2, 1.0]]), y)
    a = np_bce(np.array([[0.7, 0.0, 0.5]]), y)
    v = np_bce(np.array([[0.6, 0.3, 0.95]]), 0.9 * y + 0.05)
    np.testing.assert_allclose(t["loss_global"], g, rtol=1e-5)
    np.testing.assert_allclose(t["loss_audio"], a, rtol=1e-5)
    np.testing.assert_allclose(t["loss_visual"], v, rtol=1e-5)
    np.testing.assert_allclose(t["loss"], g + a + v, rtol=1e-5)
    self.assertTrue(np.isfinite(float(t["loss"])))  # clamped at p=0 and 1

  def test_dropped_label_target_is_exactly_zero(self):
    # MA stage 3 (reference step3_retrain): a weak label the refinement
    # dropped gets target 0, not the smoothed 0.05 of an absent class.
    labels = jnp.array([[1.0, 1.0, 0.0]])
    refined = jnp.array([[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        bce.modality_target(labels, refined, 0.1, 0.0), [[0.95, 0.0, 0.05]])
    np.testing.assert_allclose(  # None: the old target, like an absent class
        bce.modality_target(labels, refined, 0.1), [[0.95, 0.05, 0.05]])
    out = {k: jnp.array([[0.6, 0.3, 0.2]])
           for k in ("global_prob", "audio_prob", "visual_prob")}
    t = bce.han_loss(out, labels, audio_labels=labels, visual_labels=refined,
                     dropped_target=0.0, global_labels=refined)
    p = np.array([[0.6, 0.3, 0.2]])
    np.testing.assert_allclose(t["loss_visual"],
                               np_bce(p, np.array([[0.95, 0.0, 0.05]])),
                               rtol=1e-5)
    np.testing.assert_allclose(t["loss_global"],
                               np_bce(p, np.asarray(refined)), rtol=1e-5)
    np.testing.assert_allclose(t["loss_audio"],
                               np_bce(p, np.asarray(labels)), rtol=1e-5)

  def test_weights_ignore_padding(self):
    p = jnp.array([[0.3], [0.9]])
    y = jnp.array([[1.0], [0.0]])
    w = jnp.array([1.0, 0.0])
    np.testing.assert_allclose(bce.bce(p, y, w), -np.log(0.3), rtol=1e-6)


if __name__ == "__main__":
  absltest.main()

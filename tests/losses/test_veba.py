"""VEBA losses and the video-label fraction."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from avjax.losses import bce
from avjax.losses import veba
from avjax.utils import sharding


def batch(n=6, c=5, seed=0):
  rng = np.random.default_rng(seed)
  ya = (rng.random((n, c)) < 0.5).astype(np.float32)
  yv = ya * (rng.random((n, c)) < 0.5)
  return {"audio_labels": jnp.asarray(ya), "visual_labels": jnp.asarray(yv),
          "clip_id_bytes": jnp.asarray(sharding.ids_to_array(
              [f"clip{i}" for i in range(n)]))}


def outputs(n=6, c=5, seed=1):
  rng = np.random.default_rng(seed)
  return {k: jnp.asarray(rng.uniform(0.05, 0.95, (n, c)), jnp.float32)
          for k in ("audio_prob", "visual_prob", "global_prob")}


class VebaLossTest(absltest.TestCase):

  def test_veba_loss_is_the_three_terms(self):
    b, o = batch(), outputs()
    t = veba.veba_loss(o, b)
    want = (bce.bce(o["audio_prob"], b["audio_labels"])
            + bce.bce(o["visual_prob"], b["visual_labels"])
            + bce.bce(o["global_prob"], b["visual_labels"]))
    np.testing.assert_allclose(t["loss"], want, rtol=1e-6)
    np.testing.assert_allclose(
        t["loss_av"], bce.bce(o["global_prob"], b["visual_labels"]),
        rtol=1e-6)

  def test_shared_baseline_trains_one_output_on_audio_labels(self):
    b, o = batch(), outputs()
    t = veba.veba_loss(o, b, loss_type="veba_shared")
    self.assertEqual(sorted(t), ["loss", "loss_av"])
    np.testing.assert_allclose(
        t["loss"], bce.bce(o["global_prob"], b["audio_labels"]), rtol=1e-6)
    with self.assertRaisesRegex(ValueError, "loss_type='x'"):
      veba.veba_loss(o, b, loss_type="x")

  def test_video_label_fraction(self):
    b = batch(n=400, seed=2)
    ya, yv = np.asarray(b["audio_labels"]), np.asarray(b["visual_labels"])
    np.testing.assert_array_equal(veba.video_targets(b, 1.0), yv)
    np.testing.assert_array_equal(veba.video_targets(b, 0.0), ya)
    u = np.asarray(veba.clip_uniform(b["clip_id_bytes"]))
    self.assertBetween(float((u < 0.4).mean()), 0.33, 0.47)
    y4 = np.asarray(veba.video_targets(b, 0.4))
    y6 = np.asarray(veba.video_targets(b, 0.6))
    new4 = np.all(y4 == yv, 1) & np.any(ya != yv, 1)
    self.assertTrue(np.all(np.all(y6 == yv, 1)[new4]))  # nested in f
    for y in (y4, y6):  # every row is its video or its audio labels
      self.assertTrue(np.all(np.all(y == yv, 1) | np.all(y == ya, 1)))

  def test_clip_uniform_ignores_padding_width(self):
    ids = sharding.ids_to_array(["abc", "veba_train_000001"])
    wide = np.zeros((2, 200), np.uint8)
    wide[:, :ids.shape[1]] = ids
    np.testing.assert_array_equal(veba.clip_uniform(jnp.asarray(ids)),
                                  veba.clip_uniform(jnp.asarray(wide)))
    self.assertNotEqual(*np.asarray(veba.clip_uniform(jnp.asarray(ids))))


if __name__ == "__main__":
  absltest.main()

"""Event-specific fusion layers on AVE (`configs/event_heads.py:data=ave`):
the config, AVE's visual map as the visual stream, and event-class targets
(the background only for background-only clips)."""

from absl.testing import absltest
import jax
import jax.numpy as jnp
import numpy as np

from avjax.data import schema
from avjax.data.readers import ave as ave_reader
from avjax.losses import event_heads as eh_losses
from avjax.models import build
from avjax.models import event_heads as eh
from configs import event_heads as eh_config

AVE_SPECS = tuple(spec for _, spec in ave_reader.FEATURES.values())


class EventHeadsAVETest(absltest.TestCase):

  def test_config(self):
    c = eh_config.get_config("data=ave")
    self.assertEqual((c.data.name, c.model.visual_key, c.model.onset_source),
                     ("ave", "visual_map", "auto"))
    self.assertTrue(c.loss.background_last)
    self.assertEqual(tuple(c.data.extra_train_splits), ())
    self.assertEqual(eh.input_features(c.model), ("audio", "visual_map"))
    w = eh_config.get_config("data=ave,onsets=waveform")
    self.assertEqual(eh.input_features(w.model),
                     ("audio", "visual_map", "onsets"))
    # Other data keep the frame stream; older configs without the field too.
    self.assertEqual(eh_config.get_config().model.visual_key, "visual")
    old = eh_config.get_config().model
    del old["visual_key"]
    self.assertEqual(eh.input_features(old)[:2], ("audio", "visual"))
    with self.assertRaisesRegex(ValueError, "'ave'"):
      eh_config.get_config("data=vggsound")

  def test_onsets_auto_reads_stored_onsets_when_the_dataset_has_them(self):
    from avjax.models import build as build_lib  # pylint: disable=g-import-not-at-top
    for data in ("llp", "ave"):
      m = eh_config.get_config(f"data={data}").model
      self.assertEqual(m.onset_source, "auto")
      vis = m.visual_key
      plain = {"classes": ["c"] * 4, "feature_specs": (
          schema.FeatureSpec("audio", 1, (128,)),
          schema.FeatureSpec(vis, 1, (512,)))}
      with_onsets = dict(plain, feature_specs=plain["feature_specs"] + (
          schema.ONSETS_FEATURE,))
      self.assertEqual(build_lib.input_features(m, plain), ("audio", vis))
      self.assertEqual(build_lib.input_features(m, with_onsets),
                       ("audio", vis, "onsets"))
      self.assertEqual(build.build(m, plain).onset_source, "features")
      self.assertEqual(build.build(m, with_onsets).onset_source, "stored")
      # Without dataset info (e.g. a tool listing streams): the rule.
      self.assertEqual(build_lib.input_features(m), ("audio", vis))
    self.assertEqual(eh_config.get_config(
        "data=llp,onsets=features").model.onset_source, "features")
    self.assertEqual(eh_config.get_config(
        "data=llp,onsets=waveform").model.onset_source, "stored")
    with self.assertRaisesRegex(ValueError, "onsets='auto'"):
      eh_config.get_config("onsets=auto")

  def test_model_reads_the_visual_map(self):
    c = eh_config.get_config("data=ave,runlocal")
    info = {"classes": ["c"] * 28 + ["background"],
            "feature_specs": AVE_SPECS}
    model = build.build(c.model, info)
    rng = np.random.default_rng(0)
    x = {"audio": rng.normal(size=(2, 10, 128)).astype(np.float32),
         "visual_map": rng.random((2, 10, 7, 7, 512)).astype(np.float32),
         "segment_mask": np.ones((2, 10), np.float32)}
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    out = model.apply({"params": params}, x)
    self.assertEqual(out["logits"].shape, (2, 5, 29))
    # The map is averaged over its 7x7 grid: a vector stream of those means
    # gives the same logits.
    vec = eh.EventHeadsNet(num_classes=29, d_model=c.model.d_model,
                           visual_key="visual_vec", onset_source="features")
    y = {"audio": x["audio"], "segment_mask": x["segment_mask"],
         "visual_vec": x["visual_map"].mean(axis=(2, 3))}
    np.testing.assert_allclose(vec.apply({"params": params}, y)["logits"],
                               out["logits"], atol=1e-5)

  def test_background_only_for_background_clips(self):
    # 3 classes + background: event + bg (union label), bg only, event only.
    labels = jnp.array([[0, 1, 0, 1], [0, 0, 0, 1], [1, 0, 0, 0]],
                       jnp.float32)
    np.testing.assert_array_equal(
        eh_losses.drop_background(labels),
        [[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    c = eh_config.get_config("data=ave")
    c.model.heads = ["audio"]
    logits = jnp.zeros((3, 1, 4)).at[:, 0, 3].set(5.0)  # predicts background
    batch = {"labels": labels,
             "clip_id_bytes": jnp.zeros((3, 8), jnp.uint8)}
    got = eh_losses.loss_fn({"logits": logits}, batch, config=c)
    logp = jax.nn.log_softmax(logits[:, 0], -1)
    want = -(logp[0, 1] + logp[1, 3] + logp[2, 0]) / 3  # targets 1, 3, 0
    self.assertAlmostEqual(float(got["loss"]), float(want), places=5)

  def test_scoring_an_event_clip_as_background_is_wrong(self):
    from avjax.evaluators import event_heads as eh_eval  # pylint: disable=g-import-not-at-top
    from avjax.metrics import event_heads as eh_metrics  # pylint: disable=g-import-not-at-top
    labels = np.array([[0, 1, 0, 1], [0, 0, 0, 1]], np.float32)
    np.testing.assert_array_equal(eh_metrics.drop_background(labels),
                                  [[0, 1, 0, 0], [0, 0, 0, 1]])
    logits = np.zeros((2, 1, 4), np.float32)
    logits[:, 0, 3] = 5.0  # both predicted background
    pred = {"logits": logits, "labels": labels}
    for bg, want in ((False, 100.0), (True, 50.0)):
      ev = eh_eval.Evaluator.__new__(eh_eval.Evaluator)
      ev.heads, ev.background_last = ("audio",), bg
      self.assertAlmostEqual(ev.score(pred)["acc"], want)


if __name__ == "__main__":
  absltest.main()

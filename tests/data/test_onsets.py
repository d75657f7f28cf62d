"""Onset detection: spectral flux on waveforms, the feature rule, the CLI."""

from absl.testing import absltest
import jax.numpy as jnp
import numpy as np

from avjax.data import onsets
from avjax.data import pipeline
from avjax.data import tfrecord
from tests import testing_utils as tu


def burst_wave(segments, sr=2000, t=10, seed=0):
  rng = np.random.default_rng(seed)
  x = 0.02 * rng.standard_normal(t * sr)
  env = np.exp(-np.arange(int(0.2 * sr)) / (0.04 * sr))
  for s in segments:
    start = int((s + 0.3) * sr)
    x[start:start + len(env)] += 0.5 * env * rng.standard_normal(len(env))
  return x.astype(np.float32)


class OnsetsTest(absltest.TestCase):

  def test_spectral_flux_finds_bursts_and_nothing_in_noise(self):
    on = onsets.waveform_onsets(burst_wave([1, 4, 8]), 2000, 10,
                                "spectral_flux")
    np.testing.assert_array_equal(np.flatnonzero(on), [1, 4, 8])
    quiet = onsets.waveform_onsets(burst_wave([]), 2000, 10, "spectral_flux")
    self.assertEqual(quiet.sum(), 0)
    # Longer clips and other segment lengths map times to segments.
    on = onsets.waveform_onsets(burst_wave([3, 15], t=20), 2000, 10,
                                "spectral_flux", segment_seconds=2.0)
    np.testing.assert_array_equal(np.flatnonzero(on), [1, 7])

  def test_feature_rule_by_hand_numpy_and_jax_agree(self):
    # energies 1, 1, 3, 3, 1, 2 (D = 1): mean 11/6; rises 0, 2, 0, -2, 1.
    a = np.array([1, 1, 3, 3, 1, 2], np.float32)[:, None]
    want = [0, 0, 1, 0, 0, 1]  # rise > 0.25 * 11/6 = 0.46
    np.testing.assert_array_equal(onsets.feature_onsets(a), want)
    np.testing.assert_array_equal(
        np.asarray(onsets.feature_onsets(jnp.asarray(a), xp=jnp)), want)
    # Padding is excluded from the mean energy and from the result.
    mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
    got = onsets.feature_onsets(a[None], mask[None])
    np.testing.assert_array_equal(got[0], [0, 0, 1, 0, 0, 0])

  def test_unknown_method_rejected(self):
    with self.assertRaisesRegex(ValueError, "waveform onset method"):
      onsets.waveform_onsets(burst_wave([1]), 2000, 10, "madmom")

  def test_add_onsets_uses_wav_when_present_else_feature_rule(self):
    from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
    src, out, wavs = (tu.make_tempdir(self) for _ in range(3))
    tu.write_fake_dataset(src, {"train": 8, "val": 4, "test": 4},
                          num_shards=2, lengths=(10,))
    wavfile.write(f"{wavs}/clip0000.wav", 2000,
                  (burst_wave([2, 6]) * 32767).astype(np.int16))
    info = onsets.add_onsets(src, out, audio_dir=wavs)
    counts = info["extra"]["onsets"]["clips_by_source"]["train"]
    self.assertEqual((counts["waveform"], counts["features"]), (1, 7))
    info = tfrecord.read_info(out)
    self.assertIn("onsets", [s.name for s in info["feature_specs"]])
    src_ = pipeline.Source(out, "train", ("audio", "onsets"))
    batch = next(pipeline.eval_batches(src_, 8))
    i = list(batch["clip_id"]).index(b"clip0000")
    np.testing.assert_array_equal(np.flatnonzero(batch["onsets"][i, :, 0]),
                                  [2, 6])
    # The empty onset sets counted per source are those stored.
    empty = batch["onsets"][:, :, 0].sum(-1) == 0
    self.assertEqual(counts["empty_waveform"], 0)
    self.assertEqual(counts["empty_features"], int(empty.sum()))
    text = onsets.report({"train": counts})
    self.assertIn(f"features 7 clips, {int(empty.sum())} with no onset",
                  text)
    self.assertIn("waveform 1 clips, 0 with no onset (0.0%)", text)
    self.assertEqual(sorted(info["splits"]), ["test", "train", "val"])


if __name__ == "__main__":
  absltest.main()

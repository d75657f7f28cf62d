"""VGGish log-mel front end vs a plain numpy reading of its definition."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avjax.data.video import logmel

RATE = 16000


def reference_examples(x):
  """The published VGGish front end, written out plainly in float64."""
  x = np.asarray(x, np.float64)
  mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)
  lo, hi = mel(125.0), mel(7500.0)
  edges = [lo + i * (hi - lo) / 65 for i in range(66)]
  weights = np.zeros((257, 64))
  for k in range(1, 257):  # bin 0 (DC) keeps weight 0
    m = mel(k * 8000.0 / 256)
    for b in range(64):
      left, centre, right = edges[b:b + 3]
      weights[k, b] = max(0.0, min((m - left) / (centre - left),
                                   (right - m) / (right - centre)))
  window = np.array([0.5 - 0.5 * math.cos(2 * math.pi * i / 400)
                     for i in range(400)])
  dft = np.exp(-2j * np.pi * np.outer(np.arange(400), np.arange(257)) / 512)
  windowed = []
  start = 0
  while start + 400 <= len(x):
    windowed.append(x[start:start + 400] * window)
    start += 160
  spectra = np.abs(np.array(windowed).reshape(-1, 400) @ dft)
  frames = list(np.log(spectra @ weights + 0.01))
  examples = []
  first = 0
  while first + 96 <= len(frames):
    examples.append(np.stack(frames[first:first + 96]))
    first += 96
  return np.array(examples).reshape(-1, 96, 64), weights


def signals():
  rng = np.random.default_rng(0)
  t = np.arange(int(3.2 * RATE)) / RATE
  chirp = 0.9 * np.sin(2 * np.pi * (100 * t + (7900 - 100) / 6.4 * t ** 2))
  return {
      "chirp": chirp,
      "silence": np.zeros(2 * RATE),
      "clipped": np.clip(3 * np.sin(2 * np.pi * 440 * t[:RATE * 2]), -1, 1),
      "noise": rng.uniform(-1, 1, 2 * RATE + 1234),
      "quiet_noise": 1e-3 * rng.standard_normal(RATE + 5000),
      "short_tail": np.sin(2 * np.pi * 1000 * t[:15600 + 15359]),  # 1 + tail
      "chirp_plus_clicks": chirp[:RATE] + (np.arange(RATE) % 4000 == 0),
  }


def test_mel_matrix_matches_definition():
  _, weights = reference_examples(np.zeros(400))
  np.testing.assert_allclose(logmel.mel_matrix(), weights, atol=1e-12)
  assert logmel.mel_matrix().shape == (257, 64)
  assert not logmel.mel_matrix()[0].any()


@pytest.mark.parametrize("name", sorted(signals()))
def test_examples_equal_reference(name):
  x = signals()[name].astype(np.float32)  # as decoded
  want, _ = reference_examples(x)
  got = np.asarray(logmel.waveform_to_examples(x))
  assert got.dtype == np.float32
  assert got.shape == want.shape == (logmel.num_examples(x.size), 96, 64)
  err = np.abs(got - want).max()
  assert err < 1e-5, err  # measured <= 4e-7 (float32 output rounding)
  # float32 computation: FFT rounding shows in near-silent bands only.
  got32 = np.asarray(logmel.waveform_to_examples(x, dtype=np.float32))
  err32 = np.abs(got32 - want)
  assert err32.max() < 3e-3, err32.max()
  assert np.mean(err32 > 1e-4) < 0.25  # measured: up to 19% (a tone)
  if name == "silence":
    assert np.all(got == np.float32(np.log(0.01)))


def test_log_mel_is_jittable_in_float32():
  x = signals()["noise"].astype(np.float32)
  f = jax.jit(lambda w: logmel.frame_examples(logmel.log_mel(w)))
  out = f(x)
  assert out.dtype == jnp.float32 and out.shape == (2, 96, 64)


def test_counts():
  assert logmel.num_frames(160000) == 998
  assert logmel.num_examples(160000) == 10
  assert logmel.num_examples(15599) == 0 and logmel.num_examples(15600) == 1
  assert logmel.num_examples(0) == 0
  assert logmel.waveform_to_examples(np.zeros(8000)).shape == (0, 96, 64)


def test_batched_and_streamed_equal_whole():
  x = signals()["noise"].astype(np.float32)
  whole = np.asarray(logmel.waveform_to_examples(x))
  batched = np.asarray(logmel.waveform_to_examples(np.stack([x, x[::-1]])))
  np.testing.assert_array_equal(batched[0], whole)
  cuts = [0, 7, 5000, 5001, 20000, 31000, x.size]
  chunks = [x[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
  streamed = list(logmel.stream_examples(iter(chunks), examples_per_batch=1))
  assert [s.shape[0] for s in streamed] == [1, 1]
  np.testing.assert_array_equal(np.concatenate(streamed), whole)
  streamed = list(logmel.stream_examples([x], examples_per_batch=8))
  np.testing.assert_array_equal(np.concatenate(streamed), whole)

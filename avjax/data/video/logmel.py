"""VGGish's log-mel front end in JAX, as published (AudioSet VGGish).

The published definition (tensorflow/models research/audioset/vggish:
vggish_params.py, mel_features.py, vggish_input.py):

  16 kHz mono waveform in [-1, 1];
  STFT: 25 ms frames (400 samples) every 10 ms (160), only whole frames
    (1 + floor((n - 400) / 160) of them), each times a periodic Hann window
    0.5 - 0.5 cos(2 pi i / 400), magnitude of a 512-point real FFT (257 bins);
  mel: 64 triangular bands between 125 and 7500 Hz, equally spaced on the
    HTK mel scale mel(f) = 1127 ln(1 + f / 700) (66 edges); band i weighs
    FFT bin k (at linspace(0, 8000, 257)[k] Hz) by max(0, min(rising, falling))
    slopes measured in mel; the DC bin weighs 0 in every band;
  log(mel + 0.01);
  examples: windows of 96 frames (0.96 s) every 96 frames, only whole ones
    (a tail shorter than 0.96 s is dropped): [N, 96, 64].

So a 10 s clip (160000 samples) gives 998 frames and 10 examples; example j
covers samples [15360 j, 15360 j + 15600). Everything below is jit-able with
the waveform length static; matmuls use full float32 precision on every
backend. `waveform_to_examples` computes in float64 by default (see there).
"""

import functools
from typing import Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

SAMPLE_RATE = 16000
WINDOW = 400           # 25 ms
HOP = 160              # 10 ms
FFT_LENGTH = 512       # next power of 2 >= WINDOW
NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96    # 0.96 s
EXAMPLE_HOP = 96
EXAMPLE_SAMPLES = (EXAMPLE_FRAMES - 1) * HOP + WINDOW  # 15600
EXAMPLE_STRIDE = EXAMPLE_HOP * HOP                     # 15360


def hertz_to_mel(f):
  """HTK mel scale."""
  return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)


@functools.lru_cache(maxsize=None)
def mel_matrix() -> np.ndarray:
  """[257, 64] float64 weights of FFT bins in the mel bands (see module)."""
  bins_mel = hertz_to_mel(
      np.linspace(0.0, SAMPLE_RATE / 2, FFT_LENGTH // 2 + 1))
  edges = np.linspace(hertz_to_mel(MEL_MIN_HZ), hertz_to_mel(MEL_MAX_HZ),
                      NUM_BANDS + 2)
  lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
  rising = (bins_mel[:, None] - lo) / (mid - lo)
  falling = (hi - bins_mel[:, None]) / (hi - mid)
  w = np.maximum(0.0, np.minimum(rising, falling))
  w[0] = 0.0
  return w


def periodic_hann(n: int = WINDOW) -> np.ndarray:
  return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def num_frames(num_samples: int) -> int:
  return max(0, 1 + (num_samples - WINDOW) // HOP)


def num_examples(num_samples: int) -> int:
  return max(0, 1 + (num_frames(num_samples) - EXAMPLE_FRAMES) // EXAMPLE_HOP)


def log_mel(wave: jax.Array) -> jax.Array:
  """Log-mel spectrogram: wave [..., n] -> [..., num_frames(n), 64].

  Computes in the input's floating dtype (float32 for anything else).
  """
  wave = jnp.asarray(wave)
  if not jnp.issubdtype(wave.dtype, jnp.floating):
    wave = wave.astype(jnp.float32)
  dtype = wave.dtype
  t = num_frames(wave.shape[-1])
  idx = np.arange(t)[:, None] * HOP + np.arange(WINDOW)
  frames = wave[..., idx] * jnp.asarray(periodic_hann(), dtype)
  spec = jnp.abs(jnp.fft.rfft(frames, FFT_LENGTH))
  mel = jnp.matmul(spec, jnp.asarray(mel_matrix(), dtype),
                   precision=jax.lax.Precision.HIGHEST)
  return jnp.log(mel + LOG_OFFSET)


def frame_examples(logmel: jax.Array) -> jax.Array:
  """[..., T, 64] -> [..., N, 96, 64] (whole 0.96 s windows, 0.96 s hop)."""
  t = logmel.shape[-2]
  n = max(0, 1 + (t - EXAMPLE_FRAMES) // EXAMPLE_HOP)
  idx = np.arange(n)[:, None] * EXAMPLE_HOP + np.arange(EXAMPLE_FRAMES)
  return logmel[..., idx, :]


@jax.jit
def _examples(wave: jax.Array) -> jax.Array:
  return frame_examples(log_mel(wave)).astype(jnp.float32)


def waveform_to_examples(wave, *, dtype=np.float64) -> jax.Array:
  """16 kHz mono [n] (or [B, n]) -> VGGish inputs [num_examples(n), 96, 64]
  (or [B, N, 96, 64]) float32, computed (jitted) in `dtype`.

  float64 (default; JAX's x64 switched on for this call only) reproduces the
  published numpy front end to ~1e-12. In float32 the FFT's rounding
  (~1e-7 of the frame's energy) shows in nearly silent bands, where
  log(mel + 0.01) magnifies it: up to ~1e-3 off next to loud tones
  (measured in tests/data/video/test_logmel.py); use it where float64 is
  slow or missing (TPU).
  """
  if np.dtype(dtype) == np.float64:
    with jax.enable_x64(True):
      return _examples(jnp.asarray(np.asarray(wave, np.float64)))
  return _examples(jnp.asarray(wave, dtype))


def stream_examples(chunks: Iterable[np.ndarray],
                    examples_per_batch: int = 64, *,
                    dtype=np.float64) -> Iterator[np.ndarray]:
  """Examples of a streamed waveform, batch by batch: [k, 96, 64] float32.

  Concatenating the batches equals waveform_to_examples of the whole
  waveform, with memory bounded by `examples_per_batch` (one compiled shape:
  the last batch is zero-padded, its padded examples dropped).
  """
  need = (examples_per_batch - 1) * EXAMPLE_STRIDE + EXAMPLE_SAMPLES
  parts, size, chunks, exhausted = [], 0, iter(chunks), False
  while True:
    while not exhausted and size < need:
      try:
        parts.append(np.asarray(next(chunks), np.float32).reshape(-1))
        size += parts[-1].size
      except StopIteration:
        exhausted = True
    buf = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    k = min(examples_per_batch, num_examples(buf.size))
    if k == 0:
      return
    padded = np.zeros(need, np.float32)
    padded[:min(need, buf.size)] = buf[:need]
    yield np.asarray(waveform_to_examples(padded, dtype=dtype))[:k]
    parts = [buf[k * EXAMPLE_STRIDE:]]
    size = parts[0].size

"""Decoding generated videos: exact frame counts, timestamps, audio lengths."""

import fractions
import math
import wave

import numpy as np
import pytest

from avjax import errors
from avjax.data.synthetic import videos
from avjax.data.video import decode

F = fractions.Fraction
BARS = 3  # frame index written as 3 base-8 digits in grey bars


def coded_frames(n, h, w):
  for i in range(n):
    img = np.zeros((h, w, 3), np.uint8)
    for b in range(BARS):
      digit = (i // 8 ** b) % 8
      img[:, b * w // BARS:(b + 1) * w // BARS] = 16 + 32 * digit
    yield img


def read_index(img):
  h, w = img.shape[:2]
  i = 0
  for b in range(BARS):
    bar = img[h // 4:3 * h // 4, b * w // BARS + 4:(b + 1) * w // BARS - 4]
    i += int(round((bar.mean() - 16) / 32)) * 8 ** b
  return i


def tone(duration_s, rate, freq=440.0, channels=1):
  t = np.arange(int(round(duration_s * rate))) / rate
  x = 0.5 * np.sin(2 * np.pi * freq * t)
  return np.tile(x, (channels, 1)) if channels > 1 else x


# name: (seconds, frame rate, (h, w), audio rate or None, channels)
CASES = {
    "ntsc.mp4": (9.7, F(30000, 1001), (98, 162), 44100, 2),
    "pal_odd.mkv": (3.3, F(25), (97, 161), 16000, 1),
    "short.mp4": (0.5, F(25), (48, 64), None, 0),
    "webcam.webm": (2.05, F(20), (72, 96), 48000, 1),  # ms time base
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("videos")
  out = {}
  for name, (secs, rate, (h, w), arate, ch) in CASES.items():
    n = math.ceil(secs * rate)
    audio = tone(secs, arate, channels=ch) if arate else None
    path = str(d / name)
    videos.write_video(path, coded_frames(n, h, w), rate, audio, arate or 0)
    out[name] = (path, n)
  return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_probe(files, name):
  path, n = files[name]
  secs, rate, (h, w), arate, _ = CASES[name]
  info = decode.probe(path)
  assert (info.num_frames, info.width, info.height) == (n, w, h)
  assert info.fps == pytest.approx(float(rate))
  assert info.duration_s == pytest.approx(float(n / rate), abs=1e-9)
  assert info.has_video and info.has_audio == (arate is not None)
  assert info.audio_rate == (arate or 0)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("fps", [8, 16, F(30000, 1001), 25, 1])
def test_frames_at_exact(files, name, fps):
  path, n = files[name]
  rate = CASES[name][1]
  end = F(n) / rate
  got = list(decode.frames_at(path, fps))
  expected_count = math.ceil(end * F(fps))
  assert len(got) == expected_count
  for k, (t, img) in enumerate(got):
    assert t == float(F(k) / F(fps))
    assert img.dtype == np.uint8 and img.shape == CASES[name][2] + (3,)
    assert read_index(img) == min(math.floor(F(k) / F(fps) * rate), n - 1)


def test_frames_at_resizes(files):
  path, _ = files["pal_odd.mkv"]
  got = list(decode.frames_at(path, 8.0, size=(224, 224)))
  assert len(got) == 27 and got[5][1].shape == (224, 224, 3)
  assert read_index(got[5][1]) == 15  # t = 0.625 s at 25 fps


def test_frames_at_float_fps_is_its_decimal(files):
  path, n = files["ntsc.mp4"]
  ts = [t for t, _ in decode.frames_at(path, 29.97)]
  assert len(ts) == math.ceil(F(n) / F(30000, 1001) * F(2997, 100))
  assert ts[100] == float(F(100) / F(2997, 100))


@pytest.mark.parametrize("name", ["ntsc.mp4", "pal_odd.mkv", "webcam.webm"])
def test_audio_length_and_alignment(files, name):
  path, _ = files[name]
  secs, _, _, arate, _ = CASES[name]
  info = decode.probe(path)
  x = decode.audio_16k_mono(path)
  assert x.dtype == np.float32 and x.size == info.num_audio_samples
  assert np.abs(x).max() <= 1.0
  if name.endswith(".mp4"):  # mp4 records the written length
    assert x.size == round(secs * 16000)
  else:  # the container's length (encoder padding kept): within one frame
    assert 0 <= x.size - round(secs * 16000) <= 1024 * 16000 // arate + 320
  ref = tone(secs, 16000)  # the same tone (channel mean) at 16 kHz
  mid = slice(1600, round(secs * 16000) - 1600)
  lags = range(-8, 9)
  err = [np.abs(x[mid.start + l:mid.stop + l] - ref[mid]).mean() for l in lags]
  assert lags[int(np.argmin(err))] == 0 and min(err) < 0.02


def test_streaming_chunks_concatenate(files):
  path, _ = files["ntsc.mp4"]
  chunks = list(decode.iter_audio_16k_mono(path))
  assert len(chunks) > 10
  np.testing.assert_array_equal(np.concatenate(chunks),
                                decode.audio_16k_mono(path))


def test_wav_16k_mono_is_exact(tmp_path):
  x = np.random.default_rng(0).uniform(-1.2, 1.2, 16000 * 3 + 7)
  path = str(tmp_path / "a.wav")
  videos.write_video(path, None, 25, x, 16000)
  with wave.open(path) as w:  # the stored 16-bit samples
    q = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768
  assert q.size == x.size and np.abs(q - x.clip(-1, 1)).max() < 4e-5
  got = decode.audio_16k_mono(path)
  np.testing.assert_array_equal(got, q.astype(np.float32))
  info = decode.probe(path)
  assert not info.has_video and info.duration_s == pytest.approx(3.0004375)
  with pytest.raises(decode.NoVideoStreamError, match="a.wav.*audio-only"):
    next(decode.frames_at(path, 8))
  with pytest.raises(decode.NoVideoStreamError, match="a.wav"):
    decode.check_video(path)


def test_no_audio_track_reads_silence_and_warns(files):
  path, _ = files["short.mp4"]
  with pytest.warns(decode.MissingAudioWarning, match="short.mp4.*no audio"):
    info = decode.check_video(path)
  assert not info.has_audio and info.num_audio_samples == 8320  # 13 / 25 s
  with pytest.warns(decode.MissingAudioWarning, match="short.mp4"):
    x = decode.audio_16k_mono(path)
  assert x.shape == (8320,) and not x.any()
  with pytest.raises(decode.NoAudioStreamError, match="short.mp4"):
    decode.audio_16k_mono(path, if_missing="error")


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50,
                                     bytes(range(256)) * 64])
def test_unreadable_files_name_the_file(tmp_path, content):
  path = tmp_path / "broken.mp4"
  path.write_bytes(content)
  for call in (decode.probe, lambda p: list(decode.frames_at(p, 8)),
               decode.audio_16k_mono):
    with pytest.raises(decode.UnreadableVideoError, match="broken.mp4") as e:
      call(str(path))
    assert isinstance(e.value, errors.UserError)


def test_missing_file(tmp_path):
  with pytest.raises(decode.UnreadableVideoError, match="nope.mp4: no such"):
    decode.probe(str(tmp_path / "nope.mp4"))


def test_truncated_file_is_an_error_or_a_prefix(files, tmp_path):
  path, n = files["ntsc.mp4"]
  cut = tmp_path / "cut.mp4"
  cut.write_bytes(open(path, "rb").read()[:20000])
  try:
    got = list(decode.frames_at(str(cut), 8))
  except decode.UnreadableVideoError as e:
    assert "cut.mp4" in str(e)
  else:
    assert len(got) <= 78


def write_vfr(path, pts_ms, audio_start_s):
  """Frames at the given (variable) times; a 1 s tone from audio_start_s."""
  import av  # pylint: disable=g-import-not-at-top
  with av.open(path, "w") as c:
    vs = c.add_stream("libx264", rate=25)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    vs.codec_context.time_base = F(1, 1000)
    ast = c.add_stream("aac", rate=16000, layout="mono")
    for i, p in enumerate(pts_ms):
      frame = av.VideoFrame.from_ndarray(
          np.full((48, 64, 3), 16 + 32 * i, np.uint8), format="rgb24")
      frame.pts, frame.time_base = p, F(1, 1000)
      c.mux(vs.encode(frame))
    c.mux(vs.encode(None))
    x = tone(1.0, 16000).astype(np.float32)[None]
    for s in range(0, x.shape[1], 1024):
      frame = av.AudioFrame.from_ndarray(
          np.ascontiguousarray(x[:, s:s + 1024]), format="fltp",
          layout="mono")
      frame.sample_rate, frame.time_base = 16000, F(1, 16000)
      frame.pts = s + int(audio_start_s * 16000)
      c.mux(ast.encode(frame))
    c.mux(ast.encode(None))


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_variable_frame_rate_and_late_audio(tmp_path, ext):
  path = str(tmp_path / f"vfr.{ext}")
  write_vfr(path, [0, 40, 120, 130, 400, 1000], audio_start_s=0.5)
  got = [(t, int(round((img.mean() - 16) / 32)))
         for t, img in decode.frames_at(path, 10)]
  # the frame shown at t: the last one starting at or before t; the last
  # frame (1.0 s) lasts 10 ms (mp4) or 40 ms (mkv): 11 samples.
  assert got == [(0.0, 0), (0.1, 1), (0.2, 3), (0.3, 3), (0.4, 4), (0.5, 4),
                 (0.6, 4), (0.7, 4), (0.8, 4), (0.9, 4), (1.0, 5)]
  x = decode.audio_16k_mono(path)
  assert np.abs(x[:8000]).max() < 0.01  # zeros, then AAC priming noise
  ref = tone(1.0, 16000)[1600:-1600]
  assert np.abs(x[8000 + 1600:8000 + 16000 - 1600] - ref).mean() < 0.02
  assert x.size == (24000 if ext == "mp4" else decode.probe(
      path).num_audio_samples)


def test_rate_multiples_share_frames(files):
  path, _ = files["ntsc.mp4"]
  at8 = list(decode.frames_at(path, 8))
  at16 = list(decode.frames_at(path, 16))
  assert len(at16) in (2 * len(at8) - 1, 2 * len(at8))
  for (t, img), (t2, img2) in zip(at8, at16[::2]):
    assert t == t2 and np.array_equal(img, img2)

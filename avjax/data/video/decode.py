"""Decoding video files with PyAV (bundled FFmpeg): info, 16 kHz audio, frames.

Any container and codec PyAV reads (mp4, mkv, webm, avi, mov, wav, ...).
Everything streams: frames and audio are decoded packet by packet, so memory
stays bounded for any length (`iter_audio_16k_mono`, `frames_at`).

Time. All times are seconds from the container's start (the earliest stream
start, usually 0), so audio sample i and a frame at time t line up.

  video end      end of the last frame: its start plus its duration (for
                 mp4/mov the stream duration of the index; for containers
                 without one, e.g. Matroska, from the packets' timestamps).
  duration_s     the video end; the audio end for a file without video.
  frames_at      samples t_k = k / fps for k = 0, 1, ... while t_k < video
                 end: ceil(video_end * fps) samples (exact rational times);
                 each gets the last decoded frame starting at or before t_k
                 (the first frame for samples before it). Variable frame
                 rates are followed by timestamp. frames_at takes the video
                 end from the decoded frames, `probe` from the container's
                 header; they agree unless the header is wrong. Rotation
                 metadata (phone videos) is not applied.
  audio          16 kHz mono float32 in [-1, 1]: channels averaged (as
                 VGGish's wavfile_to_examples does), resampled by
                 libswresample, clipped. Exactly round(audio_end * 16000)
                 samples, where audio_end is the audio stream's start plus
                 its duration as the container gives it (mp4 trims the
                 encoder's padding: the length written; containers without
                 a duration, e.g. Matroska: the decoded length). A leading
                 gap before the stream's first sample is zeros.
  no audio       allowed: `has_audio=False`; audio readers return zeros of
                 round(duration_s * 16000) samples and warn
                 (`MissingAudioWarning`), or raise with if_missing="error".

Errors (`avjax.errors.UserError` subclasses, naming the file): a missing or
unreadable file or a decoding failure (`UnreadableVideoError`), no audio and
no video stream (`NoStreamsError`), no video stream or no decodable frame
when frames are asked for (`NoVideoStreamError`: an audio-only file), no
audio track when audio is required (`NoAudioStreamError`).
"""

import contextlib
import dataclasses
import fractions
import os
import warnings
from typing import Dict, Iterator, Optional, Tuple

import av
import numpy as np

from avjax import errors

AUDIO_RATE = 16000
Fraction = fractions.Fraction


class VideoError(errors.UserError):
  """A video file avjax cannot use; the message names the file."""


class UnreadableVideoError(VideoError, OSError):
  """Missing file, not a media file PyAV reads, or decoding failed."""


class NoStreamsError(VideoError):
  """The file has neither an audio nor a video stream."""


class NoVideoStreamError(VideoError):
  """Frames were asked for but the file has no (decodable) video stream."""


class NoAudioStreamError(VideoError):
  """Audio was required (if_missing="error") but the file has no track."""


class MissingAudioWarning(UserWarning):
  """A video without an audio track: its audio is read as silence."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What `probe` reads from the container (times in seconds).

  Attributes:
    path: the file.
    duration_s: video end (see module doc), or audio end without video.
    fps: the video stream's average frame rate (0.0 without video).
    num_frames: frames in the video stream (from the container's index or
      by counting packets; 0 without video).
    has_audio, has_video: whether the streams exist.
    audio_rate: the audio stream's sample rate (0 without audio).
    width, height: the video's size in pixels (0 without video).
    audio_duration_s: audio end (0.0 without audio).
  """
  path: str
  duration_s: float
  fps: float
  num_frames: int
  has_audio: bool
  has_video: bool
  audio_rate: int
  width: int
  height: int
  audio_duration_s: float = 0.0

  @property
  def num_audio_samples(self) -> int:
    """Length of `audio_16k_mono` (also for the zeros of a missing track)."""
    end = self.audio_duration_s if self.has_audio else self.duration_s
    return int(round(end * AUDIO_RATE))


@contextlib.contextmanager
def _open(path: str):
  if not os.path.isfile(path):
    raise UnreadableVideoError(f"{path}: no such file")
  try:
    container = av.open(path, metadata_errors="ignore")
  except (av.error.FFmpegError, ValueError, OSError) as e:
    raise UnreadableVideoError(
        f"{path}: not a video or audio file FFmpeg (PyAV) can read: {e}"
    ) from None
  try:
    yield container
  finally:
    container.close()


def _best(container, kind: str):
  try:
    return container.streams.best(kind)
  except (ValueError, av.error.FFmpegError):
    return None


def _origin(container) -> Fraction:
  start = container.start_time  # microseconds, or None
  return Fraction(start, 1_000_000) if start is not None else Fraction(0)


def _scan(container, streams, path: str) -> Dict[int, Tuple[int, int]]:
  """{stream index: (packets, end pts)} from one pass over the packets."""
  out = {s.index: (0, None) for s in streams}
  try:
    for packet in container.demux(*streams):
      if packet.stream.index not in out or not packet.size:
        continue
      n, end = out[packet.stream.index]
      e = end
      if packet.pts is not None:
        e = packet.pts + (packet.duration or 0)
        e = e if end is None else max(end, e)
      out[packet.stream.index] = (n + 1, e)
  except av.error.FFmpegError as e:
    raise UnreadableVideoError(f"{path}: reading failed: {e}") from None
  return out


def _frame_rate(stream) -> Fraction:
  rate = stream.average_rate or stream.guessed_rate or stream.base_rate
  return Fraction(rate) if rate else Fraction(25)


def probe(path: str) -> VideoInfo:
  """Reads the streams' info (no decoding; see the module doc for times).

  Frame counts and ends come from the container's index; where it has none
  (e.g. Matroska), from one pass over the packets (no decoding).

  Raises:
    UnreadableVideoError: the file is missing or unreadable.
    NoStreamsError: there is neither an audio nor a video stream.
  """
  path = os.fspath(path)
  with _open(path) as c:
    v, a = _best(c, "video"), _best(c, "audio")
    if v is None and a is None:
      raise NoStreamsError(f"{path}: no audio or video stream in the file")
    streams = [s for s in (v, a) if s is not None]
    scan = {}
    if (v is not None and not (v.frames and v.duration)) or (
        a is not None and not a.duration):
      scan = _scan(c, streams, path)
    origin = _origin(c)

    def end(s) -> Fraction:
      if s.duration:
        return ((s.start_time or 0) + s.duration) * s.time_base - origin
      e = scan[s.index][1]
      return e * s.time_base - origin if e is not None else Fraction(0)

    fps, num_frames, width, height, vend = 0.0, 0, 0, 0, Fraction(0)
    if v is not None:
      fps = float(_frame_rate(v))
      width, height = v.codec_context.width, v.codec_context.height
      num_frames = v.frames or scan[v.index][0]
      vend = end(v)
    aend, audio_rate = Fraction(0), 0
    if a is not None:
      audio_rate = a.codec_context.sample_rate or a.rate or 0
      aend = end(a)
    return VideoInfo(
        path=path, duration_s=float(vend if v is not None else aend), fps=fps,
        num_frames=num_frames, has_audio=a is not None,
        has_video=v is not None, audio_rate=audio_rate, width=width,
        height=height, audio_duration_s=float(aend))


def check_video(path: str) -> VideoInfo:
  """`probe` for a video to parse: raises without video, warns without audio.

  Raises:
    UnreadableVideoError, NoStreamsError: as `probe`.
    NoVideoStreamError: an audio-only file (nothing to see).
  """
  info = probe(path)
  if not info.has_video:
    raise NoVideoStreamError(
        f"{info.path}: no video stream (an audio-only file); avjax parses "
        "videos: give a file with a picture track")
  if not info.has_audio:
    _warn_missing(info)
  return info


def _warn_missing(info: VideoInfo):
  warnings.warn(MissingAudioWarning(
      f"{info.path}: no audio track; its audio is read as silence "
      f"({info.num_audio_samples} zero samples at {AUDIO_RATE} Hz)"),
      stacklevel=3)


def _as_fraction(x) -> Fraction:
  if isinstance(x, (int, Fraction)):
    return Fraction(x)
  return Fraction(str(float(x))).limit_denominator(1_000_000)


def _decode(container, stream, path: str):
  try:
    yield from container.decode(stream)
  except av.error.FFmpegError as e:
    raise UnreadableVideoError(f"{path}: decoding failed: {e}") from None


def iter_audio_16k_mono(path: str, *, if_missing: str = "zeros",
                        info: Optional[VideoInfo] = None
                        ) -> Iterator[np.ndarray]:
  """Streams the audio as 16 kHz mono float32 chunks (see module doc).

  The chunks concatenate to exactly `info.num_audio_samples` samples.
  if_missing: "zeros" (warn, yield silence) or "error" for a file without
  an audio track.
  """
  path = os.fspath(path)
  info = info or probe(path)
  total = info.num_audio_samples
  if not info.has_audio:
    if if_missing == "error":
      raise NoAudioStreamError(f"{path}: no audio track")
    if if_missing != "zeros":
      raise ValueError(f"if_missing={if_missing!r}: 'zeros' or 'error'")
    _warn_missing(info)
    for s in range(0, total, 1 << 16):
      yield np.zeros(min(1 << 16, total - s), np.float32)
    return
  done = 0
  with _open(path) as c:
    a = _best(c, "audio")
    origin = _origin(c)
    resampler = av.AudioResampler(format="fltp", rate=AUDIO_RATE)
    skip = None  # samples to drop (> 0) or zeros to insert (< 0) at start

    def frames():
      nonlocal skip
      for frame in _decode(c, a, path):
        if skip is None and frame.pts is not None:
          t0 = frame.pts * frame.time_base - origin
          skip = -int(round(t0 * AUDIO_RATE))
        yield from resampler.resample(frame)
      yield from resampler.resample(None)

    for out in frames():
      x = out.to_ndarray().astype(np.float32)
      x = np.clip(x.mean(axis=0), -1.0, 1.0)
      if skip:
        if skip < 0:
          pad = np.zeros(min(-skip, total - done), np.float32)
          done += pad.size
          yield pad
          skip = 0
        else:
          drop = min(skip, x.size)
          x, skip = x[drop:], skip - drop
      x = x[:total - done]
      if x.size:
        done += x.size
        yield x
      if done >= total:
        return
  if done < total:
    yield np.zeros(total - done, np.float32)


def audio_16k_mono(path: str, *, if_missing: str = "zeros",
                   info: Optional[VideoInfo] = None) -> np.ndarray:
  """The whole audio track as one 16 kHz mono float32 array in [-1, 1]."""
  parts = list(iter_audio_16k_mono(path, if_missing=if_missing, info=info))
  return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def frames_at(path: str, fps: float,
              size: Optional[Tuple[int, int]] = None, *,
              interpolation: str = "BILINEAR"
              ) -> Iterator[Tuple[float, np.ndarray]]:
  """Streams (t_seconds, uint8 [H, W, 3] RGB) at t_k = k / fps (module doc).

  Args:
    path: the video file.
    fps: sampling rate (e.g. 8 for ResNet, 16 for R(2+1)D); a float such as
      29.97 is read as the decimal it prints as, or give a `Fraction`.
      Samples at fps are every m-th sample at m * fps (same times, same
      frames), so one pass at 16 fps also serves 8 fps.
    size: (height, width) to resize to (libswscale), or None for the native.
    interpolation: libswscale's method when resizing (BILINEAR, BICUBIC,
      AREA, ...).
  Raises:
    UnreadableVideoError, NoVideoStreamError (no video or no frames).
  """
  path = os.fspath(path)
  rate = _as_fraction(fps)
  if rate <= 0:
    raise ValueError(f"fps must be > 0, got {fps}")
  kw = {"format": "rgb24"}
  if size is not None:
    kw.update(height=int(size[0]), width=int(size[1]),
              interpolation=interpolation)
  with _open(path) as c:
    v = _best(c, "video")
    if v is None:
      raise NoVideoStreamError(
          f"{path}: no video stream (an audio-only file); no frames to read")
    v.thread_type = "AUTO"
    origin, default_dur = _origin(c), 1 / _frame_rate(v)
    k, prev, prev_t, cached = 0, None, None, None

    def emit(frame):
      nonlocal cached
      if cached is None or cached[0] is not frame:
        cached = (frame, frame.to_ndarray(**kw))
      return cached[1]

    end = None
    for frame in _decode(c, v, path):
      if frame.pts is None:
        t = (prev_t + default_dur) if prev_t is not None else Fraction(0)
      else:
        t = frame.pts * frame.time_base - origin
      if prev_t is not None and t < prev_t:
        t = prev_t  # out-of-order timestamps: keep time monotone
      ref = prev if prev is not None else frame
      while Fraction(k) / rate < t:
        yield float(Fraction(k) / rate), emit(ref)
        k += 1
      dur = (frame.duration * frame.time_base if frame.duration
             else default_dur)
      prev, prev_t, end = frame, t, t + dur
    if prev is None:
      raise NoVideoStreamError(f"{path}: the video stream has no decodable "
                               "frames")
    while Fraction(k) / rate < end:
      yield float(Fraction(k) / rate), emit(prev)
      k += 1

"""A small demo set of generated videos with known audio-visual events.

  python -m avjax.data.synthetic.videos --out=DIR [--num=6] [--seed=0]

writes DIR/demo_000.mp4, ... (10 s, 160x120 at 12 fps, H.264 + AAC 16 kHz
mono; ~100 KB each, about a second for six) and DIR/ground_truth.jsonl, one
line per video in the schema of `avjax.parse`'s output (without confidence):

  {"video": "demo_000", "events": [{"event": "Violin_fiddle",
   "modality": "audio" | "visual" | "both", "start": 1.3, "end": 4.2}, ...]}

Each class (`CLASSES`, names from LLP) has a sound (a tone or a beeping
tone, or band-limited noise, with its energy in `Sound.band` Hz) and a
picture (a coloured circle or square moving across the frame). An event is
heard only ("audio"), seen only ("visual") or both on the same interval;
each video has 2-3 events of distinct classes, at least one of each kind in
every three videos. Between events: faint noise and a grey, still picture.
Video i is a pure function of (seed, i). Times are multiples of 0.1 s.
"""

import dataclasses
import fractions
import json
import os
from typing import Dict, Iterable, List, Optional, Sequence

import av
import numpy as np

from avjax.data import classes as classes_lib

SIZE = (120, 160)  # height, width
FPS = 12
AUDIO_RATE = 16000
DURATION_S = 10.0
BACKGROUND = (96, 96, 96)


@dataclasses.dataclass(frozen=True)
class Sound:
  """A class's sound: a tone at `freqs` (Hz), beeping at `beep_hz` (0: on),
  or band noise (`noise=True`, band = (lo, hi)). Energy lies in `band`."""
  freqs: Sequence[float]
  band: Sequence[float]
  beep_hz: float = 0.0
  noise: bool = False


@dataclasses.dataclass(frozen=True)
class Look:
  colour: Sequence[int]  # RGB
  shape: str             # "circle" or "square"


CLASSES: Dict[str, Sequence] = {
    "Violin_fiddle": (Sound((660.0,), (600, 720)),
                      Look((40, 70, 230), "square")),
    "Cello": (Sound((196.0,), (170, 230)), Look((220, 40, 40), "circle")),
    "Fire_alarm": (Sound((2500.0,), (2400, 2600), beep_hz=4.0),
                   Look((250, 150, 20), "square")),
    "Telephone_bell_ringing": (Sound((1200.0,), (1150, 1250), beep_hz=10.0),
                               Look((220, 40, 220), "circle")),
    "Chainsaw": (Sound((), (3500, 5000), noise=True),
                 Look((230, 230, 40), "square")),
    "Helicopter": (Sound((), (300, 500), noise=True),
                   Look((40, 200, 60), "circle")),
}
for _name in CLASSES:
  classes_lib.index_of(classes_lib.LLP_CLASSES, _name)
MODALITIES = ("audio", "visual", "both")


def write_video(path: str, frames: Optional[Iterable[np.ndarray]], fps,
                audio: Optional[np.ndarray] = None,
                audio_rate: int = AUDIO_RATE, *,
                video_codec: Optional[str] = None,
                audio_codec: Optional[str] = None,
                options: Optional[Dict[str, str]] = None) -> None:
  """Writes frames and/or audio with PyAV (the container from the suffix).

  Args:
    path: output; .mp4/.mov/.mkv/.avi (H.264 + AAC by default), .webm (VP8 +
      Opus), .wav (audio only, 16-bit PCM).
    frames: uint8 [H, W, 3] RGB images (frame i at time i / fps), or None.
    fps: frame rate (int or `fractions.Fraction`, e.g. Fraction(30000, 1001)).
    audio: float [n] or [channels, n] in [-1, 1], or None (no audio track).
    audio_rate: its sample rate.
    video_codec, audio_codec: FFmpeg encoder names overriding the defaults.
    options: encoder options for the video codec (e.g. {"crf": "18"}).
  """
  ext = os.path.splitext(path)[1].lower()
  vcodec = video_codec or ("libvpx" if ext == ".webm" else "libx264")
  acodec = audio_codec or {".webm": "libopus",
                           ".wav": "pcm_s16le"}.get(ext, "aac")
  with av.open(path, "w") as c:
    vs = None
    if audio is not None:
      audio = np.asarray(audio, np.float32)
      audio = audio[None] if audio.ndim == 1 else audio
      layout = {1: "mono", 2: "stereo"}[audio.shape[0]]
      a_rate = 48000 if acodec == "libopus" else audio_rate
      ast = c.add_stream(acodec, rate=a_rate, layout=layout)
    for i, img in enumerate(frames if frames is not None else ()):
      if vs is None:
        vs = c.add_stream(vcodec, rate=fps, options=options or {})
        vs.height, vs.width = img.shape[:2]
        odd = img.shape[0] % 2 or img.shape[1] % 2
        vs.pix_fmt = "yuv444p" if odd and vcodec == "libx264" else "yuv420p"
      frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), "rgb24")
      c.mux(vs.encode(frame))
    if vs is not None:
      c.mux(vs.encode(None))
    if audio is not None:
      block = 4096
      for s in range(0, audio.shape[1], block):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio[:, s:s + block]), format="fltp",
            layout=layout)
        frame.sample_rate, frame.pts = audio_rate, s
        frame.time_base = fractions.Fraction(1, audio_rate)
        c.mux(ast.encode(frame))
      c.mux(ast.encode(None))


def sample_events(rng: np.random.Generator, index: int,
                  duration_s: float = DURATION_S) -> List[dict]:
  """2-3 events of distinct classes, sorted by start; the j-th class drawn
  has modality MODALITIES[(index + j) % 3] (so all three kinds when 3)."""
  n = int(rng.integers(2, 4))
  names = rng.choice(sorted(CLASSES), size=n, replace=False)
  events = []
  for j, name in enumerate(names):
    modality = MODALITIES[(index + j) % 3]
    length = rng.uniform(1.5, 0.5 * duration_s)
    start = rng.uniform(0.0, duration_s - length)
    start, end = round(start, 1), round(min(start + length, duration_s), 1)
    events.append({"event": str(name), "modality": modality,
                   "start": start, "end": end})
  return sorted(events, key=lambda e: (e["start"], e["event"]))


def _heard(e):
  return e["modality"] in ("audio", "both")


def _seen(e):
  return e["modality"] in ("visual", "both")


def _band_noise(rng, n, band, rate):
  spec = np.fft.rfft(rng.standard_normal(n))
  f = np.fft.rfftfreq(n, 1 / rate)
  spec[(f < band[0]) | (f > band[1])] = 0
  x = np.fft.irfft(spec, n)
  return x / (np.abs(x).max() + 1e-12)


def render_audio(rng: np.random.Generator, events: List[dict],
                 duration_s: float = DURATION_S,
                 rate: int = AUDIO_RATE) -> np.ndarray:
  """Mono float32 in [-1, 1]: faint noise plus each heard event's sound
  (20 ms fades at its ends)."""
  n = int(round(duration_s * rate))
  x = 0.003 * rng.standard_normal(n)
  for e in filter(_heard, events):
    sound = CLASSES[e["event"]][0]
    a, b = int(round(e["start"] * rate)), int(round(e["end"] * rate))
    t = np.arange(b - a) / rate
    if sound.noise:
      s = _band_noise(rng, b - a, sound.band, rate)
    else:
      s = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
              for f in sound.freqs) / len(sound.freqs)
    if sound.beep_hz:  # on/off with 10 ms ramps (no clicks)
      gate = np.clip(np.sin(2 * np.pi * sound.beep_hz * t) * 8 + 0.5, 0, 1)
      s = s * gate
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    x[a:b] += 0.3 * s * fade
  return np.clip(x, -1, 1).astype(np.float32)


def render_frames(rng: np.random.Generator, events: List[dict],
                  duration_s: float = DURATION_S, fps: int = FPS,
                  size=SIZE) -> Iterable[np.ndarray]:
  """Grey frames; each seen event's shape moves across its own third of the
  frame (event j: rows j*h/3..(j+1)*h/3) while it lasts (frame i shows the
  events with start <= i / fps < end)."""
  h, w = size
  yy, xx = np.mgrid[0:h, 0:w]
  r = h // 7
  paths = [rng.uniform(0.15, 0.85, 2) * w for _ in events]
  for i in range(int(round(duration_s * fps))):
    t = i / fps
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BACKGROUND
    for j, e in enumerate(events):
      if not (_seen(e) and e["start"] <= t < e["end"]):
        continue
      look = CLASSES[e["event"]][1]
      u = (t - e["start"]) / max(e["end"] - e["start"], 1e-6)
      cx = paths[j][0] + u * (paths[j][1] - paths[j][0])
      cy = (j % 3 + 0.5) * h / 3
      if look.shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
      else:
        mask = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r)
      img[mask] = look.colour
    yield img


def make_video(out_dir: str, index: int, seed: int = 0) -> dict:
  """Writes video `index` and returns its ground truth record."""
  rng = np.random.default_rng([seed, index])
  events = sample_events(rng, index)
  video = f"demo_{index:03d}"
  write_video(os.path.join(out_dir, video + ".mp4"),
              render_frames(rng, events), FPS, render_audio(rng, events),
              options={"threads": "1"})
  return {"video": video, "events": events}


def make_demo_set(out_dir: str, num: int = 6, seed: int = 0) -> List[dict]:
  """Writes `num` videos and ground_truth.jsonl into out_dir."""
  os.makedirs(out_dir, exist_ok=True)
  truth = [make_video(out_dir, i, seed) for i in range(num)]
  with open(os.path.join(out_dir, "ground_truth.jsonl"), "w") as f:
    for rec in truth:
      f.write(json.dumps(rec) + "\n")
  return truth


def read_ground_truth(path: str) -> Dict[str, List[dict]]:
  """{video id: events} from a ground_truth.jsonl (or its folder)."""
  if os.path.isdir(path):
    path = os.path.join(path, "ground_truth.jsonl")
  with open(path) as f:
    recs = [json.loads(line) for line in f if line.strip()]
  return {r["video"]: r["events"] for r in recs}


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  truth = make_demo_set(f.out, f.num, f.seed)
  n = sum(len(r["events"]) for r in truth)
  print(f"wrote {len(truth)} videos ({n} events) and ground_truth.jsonl "
        f"to {f.out}")


if __name__ == "__main__":
  from absl import flags  # pylint: disable=g-import-not-at-top
  from avjax.utils import cli  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("out", None, "Output folder.", required=True)
  flags.DEFINE_integer("num", 6, "Number of videos.")
  flags.DEFINE_integer("seed", 0, "Seed (video i depends on seed and i).")
  cli.run(main)

"""Video files -> AVVP features (VGGish audio, ResNet frames, R(2+1)D motion).

  from avjax import extract
  cfg = extract.ExtractConfig(weights="files", vggish_weights=...,
                              resnet_weights=..., r2plus1d_weights=...)
  feats = extract.extract("clip.mp4", cfg)
  # {"audio": [T, 128], "visual": [T*8, 2048], "motion": [T, 512], "info"}

Segments. T = `num_segments(duration_s)`: the number of whole or partial
1 s segments of the video, ceil(duration_s - 0.01) and at least 1 (a tail
under 10 ms, i.e. container rounding, is not a segment). Segment t covers
[t, t + 1) s; the last one may be partial and is padded: audio with zeros,
frames with the last decoded frame.

Streams, as LLP's features (Tian et al. 2020) but aligned to 1 s segments:
  audio   one VGGish example per segment: the log-mel of samples
          [16000 t, 16000 t + 15600) (96 frames = 0.96 s, VGGish's example
          length; LLP's own examples hop 0.96 s and so drift by up to 0.36 s
          from the segments by t = 9), through VGGish -> 128-d (with the PCA
          + 8-bit post-processing when the weights have its parameters).
  visual  frames at t_k = k / 8 s (`avjax.data.video.decode.frames_at`),
          shorter side resized to `resize` (256), centre crop `frame_size`
          (224), ImageNet normalisation, ResNet-152 pooled -> 2048-d; 8 per
          segment.
  motion  the same 8 frames per segment resized to `motion_size` x
          `motion_size` (112, aspect not kept), Kinetics normalisation,
          R(2+1)D-18 pooled -> 512-d per segment.

Weights (`weights=`):
  files   the published checkpoints the user downloaded (--vggish_weights,
          --resnet_weights, --r2plus1d_weights; a folder or the file; see
          `avjax.models.extractors.checkpoints.WEIGHTS` for names and URLs).
          No network at run time.
  random  seeded random weights in the published key layouts, FOR TESTS AND
          DEMOS ONLY: the features are deterministic functions of the video
          but not meaningful (the result's info says so, `weights: random`).

Decoding runs in a pool of `workers` processes (PyAV, no JAX there) that feed
the device loop in the main process; each model is jit-compiled once per
batch shape, batches are padded to a fixed size and split over every local
device (data-parallel; weights replicated). Progress (videos/s, ETA) goes to
stderr. A file that cannot be used (unreadable, no video stream, ...) is a
`avjax.data.video.decode.VideoError` naming the file; `extract_many` yields
it in place of that video's features and goes on with the rest.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
import warnings
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from avjax import errors

EPS_S = 0.01
SAMPLE_RATE = 16000
AUDIO_EXAMPLE_SAMPLES = 15600  # 96 log-mel frames (VGGish's 0.96 s example)
STREAMS = ("audio", "visual", "motion")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg",
                    ".mpeg", ".flv", ".wmv", ".ogv", ".3gp", ".ts")
RANDOM_NOTE = ("weights=random: seeded random extractor weights, for tests "
               "and demos only; these features are not meaningful")


class ExtractError(errors.UserError, ValueError):
  """Bad extraction options or weights (the message says which)."""


def num_segments(duration_s: float) -> int:
  """T: whole or partial 1 s segments (module doc)."""
  return max(1, int(math.ceil(duration_s - EPS_S)))


@dataclasses.dataclass
class ExtractConfig:
  """Extraction settings (module doc); every field is a command-line flag."""
  weights: str = "files"          # "files" or "random" (tests/demos only)
  vggish_weights: str = ""
  vggish_pca: str = ""            # PCA params, if not with vggish_weights
  resnet_weights: str = ""
  r2plus1d_weights: str = ""
  seed: int = 0                   # random weights only
  resnet_arch: str = "resnet152"  # resnet50/101/152: all 2048-d
  frames_per_segment: int = 8
  resize: int = 256
  frame_size: int = 224
  motion_size: int = 112
  batch_size: int = 16            # frames (and clips, examples) per device call
  workers: int = 2                # decoder processes (0: decode in-process)
  chunk_segments: int = 600       # longer videos stream in chunks of this

  def check(self) -> "ExtractConfig":
    if self.weights not in ("files", "random"):
      raise ExtractError(f"--weights={self.weights!r}: 'files' (the "
                         "published checkpoints) or 'random' (tests/demos)")
    for k in ("frames_per_segment", "resize", "frame_size", "motion_size",
              "batch_size", "chunk_segments"):
      if getattr(self, k) < 1:
        raise ExtractError(f"--{k}={getattr(self, k)}: must be >= 1")
    if self.frame_size > self.resize:
      raise ExtractError(f"--frame_size={self.frame_size} is larger than "
                         f"--resize={self.resize} (the crop is taken from "
                         "the resized frame)")
    if self.workers < 0:
      raise ExtractError(f"--workers={self.workers}: must be >= 0")
    return self

  def describe(self) -> Dict[str, Any]:
    """What determines the features (kept beside them; not paths)."""
    d = dataclasses.asdict(self)
    for k in ("batch_size", "workers", "chunk_segments"):
      d.pop(k)
    if self.weights == "random":
      d["note"] = RANDOM_NOTE
      for k in ("vggish_weights", "vggish_pca", "resnet_weights",
                "r2plus1d_weights"):
        d.pop(k)
    else:
      d.pop("seed")
    return d


# Command-line options shared by avjax.prepare (argparse) and avjax.parse
# (absl): (name, type, help).
_HELP = {
    "weights": "'files': the published extractor checkpoints given below; "
               "'random': seeded random weights, for tests and demos only "
               "(features not meaningful)",
    "vggish_weights": "VGGish weights: the TF release vggish_model.ckpt or "
                      "the PyTorch port vggish-10086976.pth (file, or the "
                      "folder holding them)",
    "vggish_pca": "VGGish PCA parameters (vggish_pca_params.npz), when not "
                  "found beside --vggish_weights",
    "resnet_weights": "torchvision ResNet weights, e.g. "
                      "resnet152-394f9c45.pth (file or folder)",
    "r2plus1d_weights": "torchvision r2plus1d_18-91a641e6.pth (file or "
                        "folder)",
    "seed": "seed of --weights=random",
    "resnet_arch": "resnet152 (LLP), resnet101 or resnet50",
    "frames_per_segment": "frames per 1 s segment (LLP: 8)",
    "resize": "shorter side of the frames before the centre crop",
    "frame_size": "centre crop fed to the ResNet (224)",
    "motion_size": "R(2+1)D frame size (112)",
    "batch_size": "frames/clips/examples per device call (times devices)",
    "workers": "decoder processes (0: decode in the main process)",
    "chunk_segments": "a video longer than this many 1 s segments is "
                      "decoded and extracted chunk by chunk in the main "
                      "process (host memory bounded by the chunk: about "
                      "1.5 MB of frames per segment at LLP's sizes)",
}


def add_arguments(parser) -> None:
  """argparse options for every ExtractConfig field (`--extract_<field>`
  for the generic ones, to stay clear of the command's own flags)."""
  for f in dataclasses.fields(ExtractConfig):
    parser.add_argument("--" + _flag_name(f.name), type=type(f.default),
                        default=f.default, help=_HELP[f.name])


def _flag_name(field: str) -> str:
  return field if field.endswith("weights") or field in (
      "resnet_arch", "vggish_pca") else "extract_" + field


def config_from_args(args) -> ExtractConfig:
  return ExtractConfig(**{f.name: getattr(args, _flag_name(f.name))
                          for f in dataclasses.fields(ExtractConfig)}).check()


def define_flags() -> None:
  """absl flags for every ExtractConfig field (names as add_arguments)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  for f in dataclasses.fields(ExtractConfig):
    name = _flag_name(f.name)
    if name in flags.FLAGS:
      continue
    define = {str: flags.DEFINE_string,
              int: flags.DEFINE_integer}[type(f.default)]
    define(name, f.default, _HELP[f.name])


def config_from_flags() -> ExtractConfig:
  from absl import flags  # pylint: disable=g-import-not-at-top
  return ExtractConfig(**{f.name: flags.FLAGS[_flag_name(f.name)].value
                          for f in dataclasses.fields(ExtractConfig)}).check()


# ------------------------------------------------------------ decoding (host)


def _resized_size(h: int, w: int, short: int) -> Tuple[int, int]:
  if h <= w:
    return short, max(short, int(round(w * short / h)))
  return max(short, int(round(h * short / w))), short


def _pad_frames(frames: List[np.ndarray], n: int) -> np.ndarray:
  frames = frames[:n]
  frames += [frames[-1]] * (n - len(frames))
  return np.stack(frames)


def _probe(path: str):
  """(VideoInfo, T, notes) of a video (notes: e.g. no audio track)."""
  from avjax.data.video import decode  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", decode.MissingAudioWarning)
    info = decode.check_video(path)
  notes = sorted({str(w.message) for w in caught
                  if issubclass(w.category, decode.MissingAudioWarning)})
  return info, num_segments(info.duration_s), notes


def _audio_examples(path: str, info, t: int, notes: List[str]) -> np.ndarray:
  """float32 [T, 15600]: the 0.96 s VGGish example starting each segment."""
  from avjax.data.video import decode  # pylint: disable=g-import-not-at-top
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", decode.MissingAudioWarning)
    wave = decode.audio_16k_mono(path, info=info)
  notes += sorted({str(w.message) for w in caught
                   if issubclass(w.category, decode.MissingAudioWarning)}
                  - set(notes))
  full = np.zeros(t * SAMPLE_RATE + AUDIO_EXAMPLE_SAMPLES, np.float32)
  full[:min(wave.size, t * SAMPLE_RATE)] = wave[:t * SAMPLE_RATE]
  idx = (np.arange(t)[:, None] * SAMPLE_RATE +
         np.arange(AUDIO_EXAMPLE_SAMPLES))
  return full[idx]


def _frame_streams(path: str, info, cfg: ExtractConfig):
  """Two streams of uint8 frames at frames_per_segment fps: centre crops
  [S, S, 3] for the ResNet (cropped as they stream, so the resized frame is
  freed) and [M, M, 3] frames for R(2+1)D."""
  from avjax.data.video import decode  # pylint: disable=g-import-not-at-top
  fps = cfg.frames_per_segment
  h, w = _resized_size(info.height, info.width, cfg.resize)
  y0, x0 = (h - cfg.frame_size) // 2, (w - cfg.frame_size) // 2
  big = (f[y0:y0 + cfg.frame_size, x0:x0 + cfg.frame_size].copy()
         for _, f in decode.frames_at(path, fps, (h, w)))
  small = (f for _, f in decode.frames_at(path, fps, (cfg.motion_size,) * 2))
  return big, small


def _take(stream, n: int, last: Optional[np.ndarray]):
  """The next n frames of a stream, padded with the last one decoded."""
  out = list(itertools.islice(stream, n))
  got = len(out)
  if not out:
    if last is None:
      raise ValueError("no frames decoded")
    out = [last]
  return _pad_frames(out, n), got


def decode_video(path: str, cfg: ExtractConfig) -> Dict[str, Any]:
  """Host-side inputs of one video (runs in a decoder process).

  Returns {"path", "num_segments" T, "info" (VideoInfo fields + notes),
  "waves" float32 [T, 15600], "frames" uint8 [T*F, S, S, 3], "clips" uint8
  [T, F, M, M, 3]}; a video longer than `cfg.chunk_segments` instead gets
  "chunked": True and no arrays (`decode_chunks` streams them). Raises
  decode.VideoError naming the file.
  """
  info, t, notes = _probe(path)
  meta = dataclasses.asdict(info)
  meta.update(num_segments=t, notes=notes)
  if t > cfg.chunk_segments:
    return {"path": path, "num_segments": t, "info": meta, "chunked": True}
  waves = _audio_examples(path, info, t, notes)
  meta["notes"] = notes
  chunk = next(decode_chunks(path, cfg, info, t, waves, chunk_segments=t))
  meta["decoded_frames"] = chunk["decoded_frames"]
  return {"path": path, "num_segments": t, "info": meta, "waves": waves,
          "frames": chunk["frames"], "clips": chunk["clips"]}


def decode_chunks(path: str, cfg: ExtractConfig, info, t: int,
                  waves: np.ndarray, chunk_segments: Optional[int] = None
                  ) -> Iterator[Dict[str, Any]]:
  """Segments [s0, s1) of a video, `chunk_segments` at a time, in one pass
  over the file: {"s0", "s1", "waves", "frames" [n*F, S, S, 3], "clips"
  [n, F, M, M, 3], "decoded_frames" (so far)}; frames past the end of the
  stream repeat the last decoded one."""
  step = chunk_segments or cfg.chunk_segments
  fps = cfg.frames_per_segment
  big, small = _frame_streams(path, info, cfg)
  last_big = last_small = None
  decoded = 0
  for s0 in range(0, t, step):
    s1 = min(t, s0 + step)
    n = (s1 - s0) * fps
    frames, got = _take(big, n, last_big)
    clips, _ = _take(small, n, last_small)
    decoded += got
    last_big, last_small = frames[-1], clips[-1]
    yield {"s0": s0, "s1": s1, "waves": waves[s0:s1], "frames": frames,
           "clips": clips.reshape(s1 - s0, fps, cfg.motion_size,
                                  cfg.motion_size, 3),
           "decoded_frames": decoded}


def _decode_safe(task):
  path, cfg = task
  try:
    return decode_video(path, cfg)
  except Exception as e:  # pylint: disable=broad-except
    # Travels back as text: the main process decides what is a user error.
    return {"path": path, "error": _describe_error(path, e),
            "user_error": _is_video_error(e)}


def _is_video_error(e: BaseException) -> bool:
  return isinstance(e, (errors.UserError, OSError, EOFError)) or type(
      e).__module__.startswith("av")


def _describe_error(path: str, e: BaseException) -> str:
  text = str(e) or type(e).__name__
  if path not in text:
    text = f"{path}: {type(e).__name__}: {text}"
  return text.splitlines()[0]


class VideoFailed(errors.UserError):
  """A video that could not be decoded; the message names the file."""


def iter_decoded(paths: Iterable[str], cfg: ExtractConfig
                 ) -> Iterator[Dict[str, Any]]:
  """decode_video over paths in order, `cfg.workers` processes ahead.

  A video that fails yields {"path", "error", "user_error"} instead.
  """
  tasks = [(p, cfg) for p in paths]
  if cfg.workers == 0 or len(tasks) <= 1:
    for t in tasks:
      yield _decode_safe(t)
    return
  ctx = multiprocessing.get_context("spawn")
  with ctx.Pool(min(cfg.workers, len(tasks))) as pool:
    yield from pool.imap(_decode_safe, tasks, chunksize=1)


# ------------------------------------------------------------ models (device)


def _weights_path(given: str, arch: str) -> Optional[str]:
  """A file (as given) or the folder to look in (None: the default one)."""
  if not given:
    return None
  if not os.path.exists(given):
    raise ExtractError(f"{given}: no such weight file or folder ({arch})")
  return given


def _torchvision_model(module, arch, given: str, cfg: ExtractConfig):
  from avjax.models.extractors import checkpoints  # pylint: disable=g-import-not-at-top
  if cfg.weights == "random":
    sd = checkpoints.random_state_dict(module.torchvision_keys(arch,
                                                               head=False),
                                       cfg.seed)
    return module.build(arch), module.convert_torchvision(sd, arch)
  path = _weights_path(given, arch)
  if path and os.path.isfile(path):
    return module.build(arch), module.convert_torchvision(path, arch)
  return module.load(arch, path)


def load_vggish(cfg: ExtractConfig):
  """(apply(variables, log-mel examples [B, 96, 64]) -> [B, 128], variables).

  The adapter to E's `avjax.models.extractors.vggish`: the network, then the
  AudioSet PCA + 8-bit post-processing of the weights' source (LLP's audio
  features, integers 0..255).
  """
  try:
    from avjax.models.extractors import vggish  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ExtractError(
        "the VGGish extractor (avjax/models/extractors/vggish.py) is not "
        f"available in this checkout ({e})") from None
  from avjax.models.extractors import checkpoints  # pylint: disable=g-import-not-at-top
  if cfg.weights == "random":
    w = random_vggish(vggish, checkpoints, cfg.seed)
  else:
    path = _weights_path(cfg.vggish_weights, "vggish")
    if path and os.path.isdir(path):
      w = vggish.load(None, cfg.vggish_pca or None, directory=path)
    else:
      w = vggish.load(path, cfg.vggish_pca or None)
  model = w.model()

  def apply(v, x):
    params, pca_matrix, pca_means = v
    emb = model.apply({"params": params}, x)
    return vggish.postprocess(emb, pca_matrix, pca_means, w.rounding)

  return apply, (w.params, np.asarray(w.pca_matrix, np.float32),
                 np.asarray(w.pca_means, np.float32))


def random_vggish(vggish, checkpoints, seed: int):
  """Random VGGish weights (torch port layout, `random_state_dict`) and a
  data-independent "PCA": means = the embedding of digital silence, matrix
  = a seeded random rotation / 2, so that the 8-bit features use their range
  instead of clipping (random embeddings are not whitened)."""
  sd = checkpoints.random_state_dict(vggish.torch_shapes(), seed)
  eye = {"pca_eigen_vectors": np.eye(128), "pca_means": np.zeros(128)}
  w = vggish.convert_torch(sd, eye, where=f"random VGGish (seed {seed})")
  w = dataclasses.replace(w, relu_embedding=False)
  silence = np.full((1, 96, 64), np.log(0.01), np.float32)
  means = np.asarray(w.model().apply({"params": w.params}, silence))[0]
  q, _ = np.linalg.qr(np.random.default_rng([seed, 128]).normal(
      size=(128, 128)))
  return dataclasses.replace(w, pca_matrix=q / 2, pca_means=means)


@dataclasses.dataclass
class Model:
  """One stream's network: jitted fn(variables, host batch) -> features."""
  fn: Callable
  variables: Any
  dim: int


def build_models(cfg: ExtractConfig) -> Dict[str, Model]:
  """The three extractors (module doc), jitted with their preprocessing."""
  import jax  # pylint: disable=g-import-not-at-top
  from avjax.data.video import logmel  # pylint: disable=g-import-not-at-top
  from avjax.models.extractors import r2plus1d  # pylint: disable=g-import-not-at-top
  from avjax.models.extractors import resnet  # pylint: disable=g-import-not-at-top
  rn, rn_vars = _torchvision_model(resnet, cfg.resnet_arch,
                                   cfg.resnet_weights, cfg)
  r2, r2_vars = _torchvision_model(r2plus1d, "r2plus1d_18",
                                   cfg.r2plus1d_weights, cfg)
  vg_apply, vg_vars = load_vggish(cfg)
  return {
      "audio": Model(jax.jit(lambda v, x: vg_apply(v, logmel.log_mel(x))),
                     vg_vars, 128),
      "visual": Model(jax.jit(lambda v, x: rn.apply(v, resnet.normalize(x))),
                      rn_vars, resnet.FEATURE_DIM),
      "motion": Model(jax.jit(lambda v, x: r2.apply(v, r2plus1d.normalize(x))),
                      r2_vars, r2plus1d.FEATURE_DIM)}


# Which decoded array feeds which stream.
INPUTS = {"audio": "waves", "visual": "frames", "motion": "clips"}


class Extractor:
  """Runs the models over decoded videos, data-parallel on local devices.

  models: {stream: Model}; default `build_models(cfg)` (tests pass small
  fakes with the same contract).
  """

  def __init__(self, cfg: ExtractConfig,
               models: Optional[Dict[str, Model]] = None):
    import jax  # pylint: disable=g-import-not-at-top
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top
    self.cfg = cfg.check()
    self.models = models if models is not None else build_models(cfg)
    devices = jax.local_devices()
    mesh = Mesh(np.asarray(devices), ("data",))
    self.data, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    self.batch = cfg.batch_size * len(devices)
    self.num_devices = len(devices)
    self.variables = {k: jax.device_put(m.variables, rep)
                      for k, m in self.models.items()}

  def _run(self, stream: str, x: np.ndarray) -> np.ndarray:
    import jax  # pylint: disable=g-import-not-at-top
    m, b = self.models[stream], self.batch
    out = []
    for s in range(0, len(x), b):
      chunk = x[s:s + b]
      n = len(chunk)
      # A short batch (e.g. a 10 s video's 10 audio examples) is padded to
      # the next multiple of the device count, not to the full batch: a few
      # compiled shapes instead of up to batch_size x more work.
      full = min(b, -(-n // self.num_devices) * self.num_devices)
      if n < full:
        chunk = np.concatenate([chunk, np.zeros((full - n,) + chunk.shape[1:],
                                                chunk.dtype)])
      y = m.fn(self.variables[stream], jax.device_put(chunk, self.data))
      out.append(np.asarray(y, np.float32)[:n])
    return np.concatenate(out).reshape(len(x), -1)

  def features(self, decoded: Dict[str, Any]) -> Dict[str, Any]:
    """{"audio", "visual", "motion", "info"} of one decode_video result
    (a chunked one is decoded here, chunk by chunk)."""
    info = dict(decoded["info"])
    if decoded.get("chunked"):
      res, info = self._chunked_features(decoded["path"], info)
    else:
      res = {k: self._run(k, decoded[INPUTS[k]]) for k in STREAMS
             if k in self.models}
    info["extraction"] = self.cfg.describe()
    if self.cfg.weights == "random":
      info["notes"] = list(info.get("notes", [])) + [RANDOM_NOTE]
    res["info"] = info
    return res


  def _chunked_features(self, path: str, info: Dict[str, Any]):
    from avjax.data.video import decode  # pylint: disable=g-import-not-at-top
    vi = decode.VideoInfo(**{f.name: info[f.name] for f in
                             dataclasses.fields(decode.VideoInfo)})
    t, notes = info["num_segments"], list(info["notes"])
    waves = _audio_examples(path, vi, t, notes)
    parts = {k: [] for k in STREAMS if k in self.models}
    for chunk in decode_chunks(path, self.cfg, vi, t, waves):
      for k in parts:
        parts[k].append(self._run(k, chunk[INPUTS[k]]))
      info["decoded_frames"] = chunk["decoded_frames"]
    info.update(notes=notes, chunk_segments=self.cfg.chunk_segments)
    return {k: np.concatenate(v) for k, v in parts.items()}, info


# ------------------------------------------------------------ progress, API


class Progress:
  """Videos done / total, videos/s and ETA on stderr."""

  def __init__(self, total: int, enabled: bool = True, label: str = "extract"):
    self.total, self.enabled, self.label = total, enabled, label
    self.done, self.start, self.last = 0, time.time(), 0.0
    self.tty, self.shown = sys.stderr.isatty(), -1

  def rate(self) -> float:
    return self.done / max(time.time() - self.start, 1e-9)

  def tick(self, final: bool = False) -> None:
    if not final:
      self.done += 1
    now = time.time()
    if not self.enabled or self.shown == self.done or (
        not final and self.done < self.total and
        now - self.last < (0.5 if self.tty else 10.0)):
      return
    self.last, self.shown = now, self.done
    rate = self.rate()
    eta = (self.total - self.done) / rate if rate else 0.0
    line = (f"{self.label}: {self.done}/{self.total} videos, {rate:.2f} "
            f"videos/s, ETA {int(eta) // 60}:{int(eta) % 60:02d}")
    end = "\n" if final or not self.tty else ""
    sys.stderr.write(("\r" if self.tty else "") + line + end)
    sys.stderr.flush()


def extract_many(paths: List[str], cfg: ExtractConfig,
                 extractor: Optional[Extractor] = None,
                 progress: bool = True
                 ) -> Iterator[Tuple[str, Any]]:
  """Yields (path, features dict) or (path, VideoFailed) in path order.

  Errors that are not about the file (bugs) are raised.
  """
  extractor = extractor or Extractor(cfg)
  bar = Progress(len(paths), progress)
  for d in iter_decoded(paths, cfg):
    if "error" in d:
      if not d["user_error"]:
        raise RuntimeError(f"decoding {d['path']} failed: {d['error']}")
      bar.tick()
      yield d["path"], VideoFailed(d["error"])
      continue
    feats = extractor.features(d)
    bar.tick()
    yield d["path"], feats
  if paths:
    bar.tick(final=True)


def cache_key(path: str, cfg: ExtractConfig) -> str:
  """The feature cache's name for `path` as it is now (absolute path, size,
  modification time) under the extraction settings of `cfg`."""
  st = os.stat(path)
  weights = []  # the weight files as they are now, not only their names
  for k in ("vggish_weights", "vggish_pca", "resnet_weights",
            "r2plus1d_weights"):
    w = getattr(cfg, k)
    if cfg.weights == "files" and w and os.path.exists(w):
      ws = os.stat(w)
      weights.append([k, ws.st_size, ws.st_mtime_ns])
  blob = json.dumps([os.path.abspath(path), st.st_size, st.st_mtime_ns,
                     cfg.describe(), weights], sort_keys=True, default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _save_features(target: str, res: Dict[str, Any]) -> None:
  with open(target + ".tmp", "wb") as f:  # atomic: resumable at any time
    np.savez(f, audio=res["audio"], visual=res["visual"],
             motion=res["motion"], info=json.dumps(res["info"]))
  os.replace(target + ".tmp", target)


def _load_features(path: str) -> Optional[Dict[str, Any]]:
  """A cached entry, or None when it is unreadable (then re-extracted)."""
  try:
    with np.load(path, allow_pickle=False) as z:
      out = {k: z[k] for k in ("audio", "visual", "motion")}
      out["info"] = json.loads(str(z["info"]))
    return out
  except (OSError, ValueError, KeyError, EOFError):
    return None


def extract_many_cached(paths: List[str], cfg: ExtractConfig,
                        cache_dir: Optional[str],
                        extractor: Optional[Extractor] = None,
                        progress: bool = True
                        ) -> Iterator[Tuple[str, Any]]:
  """`extract_many` through a feature cache: a video whose file and settings
  are unchanged since it was last extracted into `cache_dir` is read back
  (no decoding, no model); the others are extracted and stored. Yields in
  path order; `cache_dir` None or empty: no cache."""
  if not cache_dir:
    yield from extract_many(paths, cfg, extractor, progress)
    return
  os.makedirs(cache_dir, exist_ok=True)
  targets = {}
  for p in paths:
    try:
      targets[p] = os.path.join(cache_dir, cache_key(p, cfg) + ".npz")
    except OSError:
      targets[p] = None  # missing file: extract_many names the error
  hits = {p: _load_features(t) for p, t in targets.items()
          if t and os.path.exists(t)}
  hits = {p: f for p, f in hits.items() if f is not None}
  todo = [p for p in paths if p not in hits]
  fresh = extract_many(todo, cfg, extractor, progress) if todo else iter(())
  for p in paths:
    if p in hits:
      yield p, hits[p]
      continue
    q, res = next(fresh)
    assert q == p, (q, p)
    if not isinstance(res, Exception) and targets[p]:
      _save_features(targets[p], res)
    yield p, res
  next(fresh, None)  # lets extract_many finish (its final progress line)


def extract(path: str, cfg: ExtractConfig,
            extractor: Optional[Extractor] = None) -> Dict[str, Any]:
  """Features of one video (module doc); raises VideoFailed naming it."""
  cfg = dataclasses.replace(cfg, workers=0)
  (_, res), = extract_many([path], cfg, extractor, progress=False)
  if isinstance(res, Exception):
    raise res
  return res


def list_videos(folder: str) -> List[str]:
  """Video files (by extension, `VIDEO_EXTENSIONS`) in a folder, sorted."""
  return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                if n.lower().endswith(VIDEO_EXTENSIONS) and
                os.path.isfile(os.path.join(folder, n)))


def video_id(path: str) -> str:
  return os.path.splitext(os.path.basename(path))[0]


EXTRACTION_FILE = "extraction.json"
FAILED_FILE = "failed.json"


def extract_folder(videos: str, out_dir: str, cfg: ExtractConfig,
                   extractor: Optional[Extractor] = None,
                   progress: bool = True) -> Dict[str, Any]:
  """Every video of `videos` -> out_dir/<id>.npz (audio, visual, motion;
  info as JSON in `info`), resumable: ids with an .npz are skipped. Videos
  that fail are listed in out_dir/failed.json with the reason and the rest
  is processed. out_dir/extraction.json records the settings; a folder
  extracted with other settings is refused.

  Returns {"done", "skipped_existing", "failed": [{"video", "error"}],
  "seconds", "videos_per_s"}.
  """
  if not os.path.isdir(videos):
    raise FileNotFoundError(f"--videos={videos}: no such folder")
  os.makedirs(out_dir, exist_ok=True)
  desc = cfg.describe()
  meta_path = os.path.join(out_dir, EXTRACTION_FILE)
  if os.path.exists(meta_path):
    with open(meta_path) as f:
      old = json.load(f)
    if old != json.loads(json.dumps(desc)):
      raise ExtractError(
          f"{out_dir} holds features extracted with other settings "
          f"({meta_path}: {old}; now {desc}); use another output folder or "
          "delete it")
  else:
    _write_json(meta_path, desc)
  paths = list_videos(videos)
  if not paths:
    raise FileNotFoundError(f"--videos={videos}: no video files (extensions "
                            f"{', '.join(VIDEO_EXTENSIONS)})")
  ids = [video_id(p) for p in paths]
  dup = sorted({i for i in ids if ids.count(i) > 1})
  if dup:
    raise ExtractError(f"{videos}: several files share the id(s) {dup} "
                       "(same name, other extension); rename them")
  todo = [p for p in paths
          if not os.path.exists(os.path.join(out_dir, video_id(p) + ".npz"))]
  failed, start = [], time.time()
  for path, res in extract_many(todo, cfg, extractor, progress):
    if isinstance(res, Exception):
      failed.append({"video": path, "error": str(res)})
      continue
    _save_features(os.path.join(out_dir, video_id(path) + ".npz"), res)
  seconds = time.time() - start
  _write_json(os.path.join(out_dir, FAILED_FILE), failed)
  done = len(todo) - len(failed)
  return {"done": done, "skipped_existing": len(paths) - len(todo),
          "failed": failed, "seconds": round(seconds, 2),
          "videos_per_s": round(done / max(seconds, 1e-9), 3)}


def _write_json(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1)
  os.replace(path + ".tmp", path)

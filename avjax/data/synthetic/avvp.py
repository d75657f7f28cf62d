"""Built-in synthetic AVVP dataset: a deterministic generator with known truth.

Clips follow `avjax.data.schema` in LLP's shapes (audio [T, 128], ResNet-like
visual [T * 8, 2048], motion [T, 512], 25 `LLP_CLASSES`); clip i of a split is
a pure function of (seed, split, i). Story: fixed per-class prototypes (in
correlated, confusable groups) in audio space and in low-rank latent visual and
motion spaces; 1-3 events per clip, each audio-only, visual-only or AV; an AV
event usually has different intervals per modality and a weak non-dominant
modality (fixed per class), as weak as the unlabeled single-modality
distractors, so weak evidence is resolved only by the other modality (what
cross-modal attention can exploit); plus per-clip background and per-segment
and per-frame noise. Train clips carry only weak labels; val/test clips also
carry dense `seg_audio`/`seg_visual`.

Feature statistics (`SyntheticConfig.feature_stats`). "unit" (default):
roughly unit-scale features, as above. "real": the same clips (same draws,
labels and dense truth) mapped through fixed maps drawn from the seed
(`_real_maps`) to the statistics of the real LLP releases, where a model's
initialisers and normalisation matter: audio like VGGish after the release's
PCA + 8-bit quantisation (the PCA of the generator's audio covariance, each
component scaled to a std decaying with its index and offset, rounded and
clipped to integers 0..255); visual / motion like ResNet-152 / R(2+1)D-18
global-average pools (per-unit scale x smooth ReLU x log-normal factor of the
same pre-activations: non-negative, many near-zero values, heavy right tail).
Measured on the first 200 test clips of the default config (values pooled
over clips, segments / frames and dimensions; "per dim": range of the
per-dimension means / stds):

  stream  stats  mean    std    min  max    zero   <0.01  p50    p99.9
  audio   unit   -0.03   1.66   -8.0 8.2    0      -      -0.02  5.31
  audio   real   128.5   25.0   0    255    0.001  -      129    249
  visual  unit   0.258   0.494  0    6.0    0.648  0.652  0      3.01
  visual  real   0.461   0.762  0    28.2   0      0.101  0.168  6.75
  motion  unit   0.323   0.572  0    5.6    0.601  0.605  0      3.45
  motion  real   0.648   1.114  0    33.8   0      0.089  0.229  10.37

  real audio: integers; per dim mean 101..157, std 7.8..61.5 decaying with
  the PCA index (first four 45-62, last four 9-10); 0.10% of values clipped
  at 0, 0.07% at 255; mean |correlation| between dims 0.02
  (PCA-decorrelated; unit: 0.08).
  real visual: per unit mean 0.07..2.46 (median 0.40), std 0.11..2.55;
  28% of values < 0.05; p99.9 = 14.6 x mean. real motion: per unit mean
  0.09..2.72 (median 0.55); 25% < 0.05; p99.9 = 16.0 x mean.

The class evidence survives: on the first 100 test clips the gated
nearest-prototype oracle (which undoes the affine audio map and uses visual
templates through the real map) scores seg Type@AV 63.4 (unit) vs 64.0
(real), cross-modal 75.7 vs 75.2; a ridge probe per segment (400 val clips
-> 200 test clips) reaches mean per-class AUC 0.995 / 0.845 (audio / visual
+ motion, raw features) on unit and 0.995 / 0.842 on real.
"""

import collections
import dataclasses
import functools
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from avjax.data import classes as classes_lib
from avjax.data import schema
from avjax.metrics import avvp

SPLITS = ("train", "val", "test")
AUDIO_ONLY, VISUAL_ONLY, AUDIO_VISUAL = 0, 1, 2
_PROTO_STREAM = 1_000_003  # Reserved "split index" of the prototype stream.
_ORACLE_THRESHOLD = 0.5  # Amplitude threshold of the oracle.
_ORACLE_CONTEXT = (0.75, 0.25)  # Cross-modal: (evidence, lowered threshold).
FEATURE_STATS = ("unit", "real")
# feature_stats="real" targets. Audio (VGGish PCA + 8-bit quantisation): per
# dimension std _AUDIO_STD[1] + (_AUDIO_STD[0] - _AUDIO_STD[1]) *
# exp(-d / _AUDIO_STD[2]) for PCA component d (x log-normal jitter, sigma
# 0.1), offsets N(_AUDIO_OFFSET[0], _AUDIO_OFFSET[1]) clipped to
# _AUDIO_OFFSET[2:].
_AUDIO_STD = (55.0, 10.0, 24.0)
_AUDIO_OFFSET = (128.0, 12.0, 100.0, 160.0)
# Visual / motion: scale_u * tau * softplus(x / tau) * exp(kappa * x) of the
# pre-activation x: (tau, kappa, per-unit log-normal sigma of scale_u, target
# mean feature value).
_VISUAL_TAIL = (0.5, 0.15, 0.4, 0.45)
_MOTION_TAIL = (0.5, 0.2, 0.4, 0.6)


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Configuration of the synthetic AVVP dataset (defaults: ~LLP-like).

  Attributes:
    seed, num_train, num_val, num_test: global seed; clips per split.
    min_segments, max_segments: range of T (uniform per clip).
    frames_per_segment, num_classes (first C of LLP_CLASSES), *_dim, *_rank:
      shapes (ranks: latent sizes of the low-rank visual and motion maps).
    num_class_groups, group_corr: correlated (confusable) prototype groups.
    num_events_probs: probabilities of 1, 2, 3, ... events per clip.
    event_type_probs: probabilities of audio-only, visual-only, audio-visual.
    full_event_prob, short_event_prob, max_short_len: an event spans the clip,
      or lasts 1..max_short_len segments, or else max_short_len+1..T.
    av_sync_prob, av_max_shift: an AV event has identical intervals in both
      modalities, or onset/offset shifted per modality by up to av_max_shift.
    av_weak_amp: (audio, visual) amplitude of the non-dominant modality of an
      AV event (each class has a fixed dominant modality). The default makes
      it as weak as a distractor, so only the other modality's context
      resolves it (what HAN's cross-modal attention exploits). (0.5, 1.0)
      keeps every seen event fully visible, so the visual track alone tells a
      seen event from an unseen one: MA's track-swapping premise
      (configs/avvp_ma.py's default data).
    amp_jitter: relative per-segment amplitude jitter of events.
    distractor_prob, max_distractors, distractor_amp: unlabeled prototypes of
      absent classes in a single modality.
    background_scale: std of the per-clip background in every modality.
    audio_noise, motion_noise: per-segment (latent) noise std.
    visual_segment_noise, visual_frame_noise: latent visual noise std, shared
      by the frames of a segment / per frame; visibility_range: per frame.
    visual_unit_noise, motion_unit_noise: per-unit noise std before the ReLU.
    feature_stats: "unit" (roughly unit-scale features) or "real" (the same
      clips mapped to the statistics of the real LLP releases: quantised
      0..255 VGGish-PCA audio, non-negative heavy-tailed ResNet / R(2+1)D
      pools; see the module docstring). Labels are identical.
  """
  seed: int = 0
  num_train: int = 2000
  num_val: int = 200
  num_test: int = 400
  min_segments: int = 10
  max_segments: int = 10
  frames_per_segment: int = 8
  num_classes: int = 25
  audio_dim: int = 128
  visual_dim: int = 2048
  motion_dim: int = 512
  visual_rank: int = 64
  motion_rank: int = 32
  num_class_groups: int = 5
  group_corr: float = 0.3
  num_events_probs: Tuple[float, ...] = (0.45, 0.35, 0.2)
  event_type_probs: Tuple[float, float, float] = (0.2, 0.05, 0.75)
  full_event_prob: float = 0.25
  short_event_prob: float = 0.3
  max_short_len: int = 2
  av_sync_prob: float = 0.4
  av_max_shift: int = 3
  av_weak_amp: Tuple[float, float] = (0.5, 0.5)
  amp_jitter: float = 0.25
  distractor_prob: float = 0.5
  max_distractors: int = 2
  distractor_amp: float = 0.5
  background_scale: float = 0.7
  audio_noise: float = 1.2
  visual_segment_noise: float = 2.0
  visual_frame_noise: float = 2.5
  visual_unit_noise: float = 0.2
  visibility_range: Tuple[float, float] = (0.5, 1.3)
  motion_noise: float = 1.2
  motion_unit_noise: float = 0.2
  feature_stats: str = "unit"

  def __post_init__(self):
    for f in dataclasses.fields(self):  # Lists (e.g. from JSON) -> hashable.
      if isinstance(getattr(self, f.name), list):
        object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
    if not (1 <= self.min_segments <= self.max_segments and
            1 <= self.num_classes <= len(classes_lib.LLP_CLASSES)):
      raise ValueError("need 1 <= min_segments <= max_segments and "
                       f"1 <= num_classes <= 25: {self}")
    if self.feature_stats not in FEATURE_STATS:
      raise ValueError(f"feature_stats={self.feature_stats!r}; valid: "
                       f"{FEATURE_STATS}")

  def num_clips(self, split: str) -> int:
    return (self.num_train, self.num_val, self.num_test)[SPLITS.index(split)]


# audio [C, Da], visual/motion [C, R] latent prototypes; *_w [R, D], *_b [D]
# feature maps; bg_audio [K, Da]; dominant [C] (0 audio, 1 visual); gain [C].
_Prototypes = collections.namedtuple("_Prototypes", (
    "audio visual motion visual_w visual_b motion_w motion_b bg_audio "
    "dominant motion_gain"))


def _visual_latent_std(cfg):
  return np.sqrt(cfg.background_scale**2 + cfg.visual_segment_noise**2 +
                 cfg.visual_frame_noise**2)


def _relu_map(rng, z, w, b, unit_noise, tail=None):
  """ReLU(z @ w + b + noise), float32: non-negative CNN-pool-like features.

  `tail` (a `_Tail`): `_heavy_tail` instead of the ReLU (feature_stats
  "real"). The [N, R] x [R, D] product runs as D / 32 column-block GEMMs,
  which stay single-threaded in OpenBLAS: several times faster than one
  threaded GEMM when the cores are busy (e.g. beside a training job).
  """
  (n, r), d = z.shape, w.shape[1]
  blocks = w.reshape(r, -1, 32 if d % 32 == 0 else d).transpose(1, 0, 2)
  x = (z.astype(np.float32)[None] @ blocks).transpose(1, 0, 2).reshape(n, d)
  x += b
  x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(unit_noise)
  if tail is not None:
    return _heavy_tail(x, tail)
  return np.maximum(x, 0, out=x)


# feature_stats="real" maps (`_real_maps`): audio PCA rotation [Da, Da],
# the generator's audio mean [Da], per-component scale and offset [Da];
# visual / motion `_Tail`s.
_RealMaps = collections.namedtuple("_RealMaps", (
    "audio_rot audio_mean audio_scale audio_offset visual motion"))
# tau, kappa (`_heavy_tail`) and the per-unit scale [D].
_Tail = collections.namedtuple("_Tail", "tau kappa scale")


def _heavy_tail(x, tail):
  """scale * tau * softplus(x / tau) * exp(kappa * x), float32.

  A smooth ReLU (spatially averaged ReLU maps are soft: few exact zeros, many
  near-zero values) times a log-normal factor (the heavy right tail of CNN
  pools), with a per-unit scale.
  """
  x = np.asarray(x, np.float32)
  y = np.logaddexp(np.float32(0), x / np.float32(tail.tau))
  y *= np.exp(np.float32(tail.kappa) * x)
  y *= tail.scale * np.float32(tail.tau)
  return y.astype(np.float32, copy=False)


def _tail(rng, w, b, latent_std, unit_noise, spec) -> _Tail:
  """A `_Tail` whose mean output is about spec[3] (Gauss-Hermite: unit u's
  pre-activation ~ N(b_u, latent_std^2 |w_u|^2 + unit_noise^2))."""
  tau, kappa, sigma, target = spec
  scale = np.exp(sigma * rng.standard_normal(w.shape[1]))
  std = np.sqrt(latent_std**2 * (w.astype(np.float64)**2).sum(0) +
                unit_noise**2)
  nodes, weights = np.polynomial.hermite_e.hermegauss(48)
  x = b.astype(np.float64)[:, None] + std[:, None] * nodes
  h = tau * np.logaddexp(0, x / tau) * np.exp(kappa * x)
  mean = (scale * (h @ weights) / weights.sum()).mean()
  return _Tail(tau, kappa, (scale * target / mean).astype(np.float32))


def _grouped(rng, groups, dim, corr):
  shared = rng.standard_normal((groups.max() + 1, dim))
  own = rng.standard_normal((len(groups), dim))
  return np.sqrt(corr) * shared[groups] + np.sqrt(1.0 - corr) * own


@functools.lru_cache(maxsize=8)
def _prototypes(cfg: SyntheticConfig) -> _Prototypes:
  """Draws the fixed per-class prototypes and feature maps from cfg.seed."""
  rng = np.random.default_rng([cfg.seed, _PROTO_STREAM, 0])
  c, rv, rm = cfg.num_classes, cfg.visual_rank, cfg.motion_rank
  groups = rng.permutation(c) % cfg.num_class_groups
  zm, f32 = np.hypot(cfg.background_scale, cfg.motion_noise), np.float32
  protos = _Prototypes(
      audio=_grouped(rng, groups, cfg.audio_dim, cfg.group_corr),
      visual=_grouped(rng, groups, rv, cfg.group_corr),
      motion=_grouped(rng, groups, rm, cfg.group_corr),
      visual_w=(rng.standard_normal((rv, cfg.visual_dim)) / (
          np.sqrt(rv) * _visual_latent_std(cfg))).astype(f32),
      visual_b=(rng.normal(-0.4, 0.3, cfg.visual_dim)).astype(f32),
      motion_w=(rng.standard_normal((rm, cfg.motion_dim)) / (
          np.sqrt(rm) * zm)).astype(f32),
      motion_b=(rng.normal(-0.3, 0.3, cfg.motion_dim)).astype(f32),
      bg_audio=rng.standard_normal((8, cfg.audio_dim)),
      dominant=rng.permutation(np.arange(c) % 2),
      motion_gain=rng.uniform(0.4, 1.0, c))
  for x in protos:
    x.flags.writeable = False  # Cached and shared: keep read-only.
  return protos


def _interval(rng, cfg, t):
  """Draws an event interval [onset, offset) in a clip of t segments."""
  u, short = rng.random(), min(cfg.max_short_len, t)
  if u < cfg.full_event_prob:
    length = t
  elif u < cfg.full_event_prob + cfg.short_event_prob or short >= t:
    length = int(rng.integers(1, short + 1))
  else:
    length = int(rng.integers(short + 1, t + 1))
  onset = int(rng.integers(0, t - length + 1))
  return onset, onset + length


def _av_intervals(rng, cfg, t, base):
  """Per-modality intervals of an AV event: shifted, partially overlapping."""
  if rng.random() < cfg.av_sync_prob:
    return base, base
  s = cfg.av_max_shift
  for _ in range(20):
    ons = np.clip(base[0] + rng.integers(-s, s + 1, 2), 0, t - 1)
    offs = np.clip(base[1] + rng.integers(-s, s + 1, 2), ons + 1, t)
    a_iv, v_iv = [(int(on), int(off)) for on, off in zip(ons, offs)]
    if a_iv != v_iv and max(ons) < min(offs):  # Different, overlapping.
      return a_iv, v_iv
  return base, base


def _layout(rng, cfg, protos) -> dict:
  """Draws T, the events and the distractors of one clip (no features)."""
  t = int(rng.integers(cfg.min_segments, cfg.max_segments + 1))
  c = cfg.num_classes
  probs = np.asarray(cfg.num_events_probs, float)
  n = min(1 + int(rng.choice(len(probs), p=probs / probs.sum())), c)
  tp = np.asarray(cfg.event_type_probs, float)
  events = []  # (class, type, audio interval|None, visual interval|None, amps)
  for cls in rng.choice(c, n, replace=False):
    kind = int(rng.choice(3, p=tp / tp.sum()))
    base = _interval(rng, cfg, t)
    amps = [1.0, 1.0]
    if kind == AUDIO_VISUAL:
      a_iv, v_iv = _av_intervals(rng, cfg, t, base)
      weak = 1 - protos.dominant[cls]
      amps[weak] = cfg.av_weak_amp[weak]
    else:
      a_iv, v_iv = (base, None) if kind == AUDIO_ONLY else (None, base)
    events.append((int(cls), kind, a_iv, v_iv, tuple(amps)))
  distractors = []  # (class, modality, interval)
  if rng.random() < cfg.distractor_prob:
    absent = np.setdiff1d(np.arange(c), [e[0] for e in events])
    k = min(int(rng.integers(1, cfg.max_distractors + 1)), len(absent))
    for cls in rng.choice(absent, k, replace=False):
      m = int(rng.integers(2))
      distractors.append((int(cls), m, _interval(rng, cfg, t)))
  return {"t": t, "events": events, "distractors": distractors}


def _dense(lay, c) -> Tuple[np.ndarray, np.ndarray]:
  seg = np.zeros((2, lay["t"], c), np.uint8)
  for cls, _, a_iv, v_iv, _ in lay["events"]:
    for m, iv in enumerate((a_iv, v_iv)):
      if iv is not None:
        seg[m, iv[0]:iv[1], cls] = 1
  return seg[0], seg[1]


def _amplitudes(rng, cfg, lay) -> np.ndarray:
  """Draws the per-segment class amplitudes [2 (audio, visual), T, C]."""
  amp, j = np.zeros((2, lay["t"], cfg.num_classes)), cfg.amp_jitter
  spans = [(cls, m, iv, amps[m]) for cls, _, a_iv, v_iv, amps in lay["events"]
           for m, iv in enumerate((a_iv, v_iv)) if iv is not None]
  spans += [(cls, m, iv, cfg.distractor_amp)
            for cls, m, iv in lay["distractors"]]
  for cls, m, (on, off), a in spans:
    amp[m, on:off, cls] += a * (1.0 + rng.uniform(-j, j, off - on))
  return amp


@functools.lru_cache(maxsize=8)
def _real_maps(cfg: SyntheticConfig) -> _RealMaps:
  """The fixed feature_stats="real" maps, drawn from cfg.seed.

  Audio: the PCA of the generator's audio covariance (background mixture +
  prototypes under the amplitudes of 256 layouts of a reserved stream +
  noise), each component scaled to a decaying std and offset (then rounded
  and clipped to 0..255 by `_quantise`). Visual / motion: `_tail`.
  """
  p = _prototypes(cfg)
  rng = np.random.default_rng([cfg.seed, _PROTO_STREAM, 2])
  amps = []
  for _ in range(256):
    lay = _layout(rng, cfg, p)
    amps.append(_amplitudes(rng, cfg, lay)[0])
  amps = np.concatenate(amps)
  k, da = len(p.bg_audio), cfg.audio_dim
  mean = amps.mean(0) @ p.audio
  cov = (cfg.background_scale**2 / k * p.bg_audio.T @ p.bg_audio +
         p.audio.T @ np.cov(amps, rowvar=False) @ p.audio +
         cfg.audio_noise**2 * np.eye(da))
  var, rot = np.linalg.eigh(cov)
  var, rot = var[::-1], rot[:, ::-1]
  rot = rot * np.sign(rot[np.abs(rot).argmax(0), np.arange(da)])
  hi, lo, decay = _AUDIO_STD
  std = (lo + (hi - lo) * np.exp(-np.arange(da) / decay)) * np.exp(
      0.1 * rng.standard_normal(da))
  mu, sd, omin, omax = _AUDIO_OFFSET
  offset = np.clip(rng.normal(mu, sd, da), omin, omax)
  maps = _RealMaps(
      audio_rot=np.ascontiguousarray(rot), audio_mean=mean,
      audio_scale=std / np.sqrt(var), audio_offset=offset,
      visual=_tail(rng, p.visual_w, p.visual_b, _visual_latent_std(cfg),
                   cfg.visual_unit_noise, _VISUAL_TAIL),
      motion=_tail(rng, p.motion_w, p.motion_b,
                   np.hypot(cfg.background_scale, cfg.motion_noise),
                   cfg.motion_unit_noise, _MOTION_TAIL))
  for x in (*maps[:4], maps.visual.scale, maps.motion.scale):
    x.flags.writeable = False  # Cached and shared: keep read-only.
  return maps


def _quantise(audio, maps: _RealMaps) -> np.ndarray:
  """Generator audio [T, Da] -> PCA, scaled, offset, 8-bit (0..255) float32."""
  x = (audio - maps.audio_mean) @ maps.audio_rot
  x = maps.audio_offset + maps.audio_scale * x
  return np.clip(np.rint(x), 0, 255).astype(np.float32)


def _render(rng, cfg, protos, lay) -> Dict[str, np.ndarray]:
  """Draws the audio, visual and motion features of a clip layout."""
  t, c, f = lay["t"], cfg.num_classes, cfg.frames_per_segment
  amp = _amplitudes(rng, cfg, lay)
  real = _real_maps(cfg) if cfg.feature_stats == "real" else None
  bg, f32, k = cfg.background_scale, np.float32, len(protos.bg_audio)
  # Audio: background mixture + prototypes + per-segment noise.
  audio = bg / np.sqrt(k) * rng.standard_normal(k) @ protos.bg_audio
  audio = audio + amp[0] @ protos.audio + cfg.audio_noise * rng.standard_normal(
      (t, cfg.audio_dim))
  # Visual: latent per frame -> low-rank map -> ReLU (ResNet-like features).
  vis = rng.uniform(*cfg.visibility_range, (t * f, c))
  z = (np.repeat(amp[1], f, 0) * vis) @ protos.visual
  z += bg * rng.standard_normal(cfg.visual_rank)
  z += np.repeat(cfg.visual_segment_noise *
                 rng.standard_normal((t, cfg.visual_rank)), f, 0)
  z += cfg.visual_frame_noise * rng.standard_normal((t * f, cfg.visual_rank))
  visual = _relu_map(rng, z, protos.visual_w, protos.visual_b,
                     cfg.visual_unit_noise, real and real.visual)
  # Motion: follows the visual events with a per-class gain.
  zm = (amp[1] * protos.motion_gain) @ protos.motion
  zm += bg * rng.standard_normal(cfg.motion_rank)
  zm += cfg.motion_noise * rng.standard_normal((t, cfg.motion_rank))
  motion = _relu_map(rng, zm, protos.motion_w, protos.motion_b,
                     cfg.motion_unit_noise, real and real.motion)
  audio = audio.astype(f32) if real is None else _quantise(audio, real)
  return {"audio": audio, "visual": visual, "motion": motion}


def _clip_rng(cfg, split, i):
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  return np.random.default_rng([cfg.seed, SPLITS.index(split), i])


def make_clip(cfg: SyntheticConfig, split: str, i: int) -> dict:
  """Returns clip `i` of `split`, a pure function of (cfg.seed, split, i)."""
  protos, rng = _prototypes(cfg), _clip_rng(cfg, split, i)
  lay = _layout(rng, cfg, protos)
  clip = {"id": f"synthetic_{split}_{i:06d}", **_render(rng, cfg, protos, lay)}
  seg_a, seg_v = _dense(lay, cfg.num_classes)
  clip["audio_labels"] = seg_a.max(0).astype(np.float32)
  clip["visual_labels"] = seg_v.max(0).astype(np.float32)
  clip["labels"] = np.maximum(clip["audio_labels"], clip["visual_labels"])
  if split != "train":
    clip["seg_audio"], clip["seg_visual"] = seg_a, seg_v
  return clip


def generate_split(cfg: SyntheticConfig, split: str, start: int = 0,
                   stop: Optional[int] = None) -> Iterator[dict]:
  """Yields clips [start, stop) of `split` (default: all) as schema dicts."""
  n = cfg.num_clips(split)
  for i in range(start, n if stop is None else min(stop, n)):
    yield make_clip(cfg, split, i)


def score_predictions(preds: List[dict], clips: List[dict]) -> Dict[str, float]:
  """AVVP scores (percent, `avjax.metrics.avvp`) of per-clip predictions.

  `preds[i]` holds "seg_audio"/"seg_visual" [T_i, C] for `clips[i]` (padded).
  """
  t = max(len(c["seg_audio"]) for c in clips)
  pad = lambda xs: np.stack([np.pad(x, ((0, t - len(x)), (0, 0))) for x in xs])
  return avvp.avvp_scores(*(pad([d[k] for d in ds]) for ds in (preds, clips)
                            for k in schema.DENSE_KEYS))


def ignore_modality_predictions(clip: dict) -> Dict[str, np.ndarray]:
  """Baseline: every weak label, in both modalities, in every segment."""
  seg = np.ones((len(clip["audio"]), 1), np.uint8) * (clip["labels"] > 0)
  return {"seg_audio": seg, "seg_visual": seg}


@functools.lru_cache(maxsize=8)
def _oracle_maps(cfg: SyntheticConfig):
  """Per-modality (mean, unmixing matrix) for the nearest-prototype oracle."""
  p = _prototypes(cfg)
  rng = np.random.default_rng([cfg.seed, _PROTO_STREAM, 1])
  # Visual: mean and class templates (amplitude 1) by Monte Carlo.
  real = _real_maps(cfg) if cfg.feature_stats == "real" else None
  tail = real and real.visual
  z = _visual_latent_std(cfg) * rng.standard_normal((256, cfg.visual_rank))
  relu = lambda x: _relu_map(rng, x, p.visual_w, p.visual_b,
                             cfg.visual_unit_noise, tail).mean(0)
  mean_v = relu(z)
  templ_v = np.stack([relu(z + proto) for proto in p.visual]) - mean_v
  mu_a, un_a = np.zeros(cfg.audio_dim), np.linalg.pinv(p.audio)
  if real is not None:  # Undo the affine part of `_quantise`.
    mu_a = real.audio_offset - real.audio_scale * (
        real.audio_mean @ real.audio_rot)
    un_a = (real.audio_rot.T / real.audio_scale[:, None]) @ un_a
  return (mu_a, un_a), (mean_v, np.linalg.pinv(templ_v))


def oracle_predictions(clip: dict, cfg: SyntheticConfig,
                       gate_with_labels: bool = True,
                       cross_modal: bool = False) -> Dict[str, np.ndarray]:
  """Nearest-prototype per-segment classifier (a sanity check, not a model).

  Unmixes each segment's audio (and segment-averaged visual) features into
  per-class amplitudes with the known prototypes, thresholded at 0.5.
  `gate_with_labels` keeps only the clip's weak `labels` (like the benchmark's
  video-level gating). `cross_modal` lowers the threshold to 0.25 for classes
  with strong evidence (> 0.75) somewhere in the other modality: context a
  cross-modal model can use for the weak modality of audio-visual events.
  For feature_stats "real", the audio is first mapped back through the
  affine part of the quantisation and the visual templates are those of the
  real map.

  Returns:
    {"seg_audio", "seg_visual"}: uint8 [T, C] predictions.
  """
  (mu_a, un_a), (mu_v, un_v) = _oracle_maps(cfg)
  t = clip["audio"].shape[0]
  vis = clip["visual"].reshape(t, -1, clip["visual"].shape[-1]).mean(1)
  amps = [(clip["audio"] - mu_a) @ un_a, (vis - mu_v) @ un_v]
  gate = clip["labels"] > 0 if gate_with_labels else True
  out = {}
  for m, key in enumerate(("seg_audio", "seg_visual")):
    thr = np.full(amps[m].shape[1], _ORACLE_THRESHOLD)
    if cross_modal:
      thr[amps[1 - m].max(0) > _ORACLE_CONTEXT[0]] = _ORACLE_CONTEXT[1]
    out[key] = ((amps[m] > thr) & gate).astype(np.uint8)
  return out


def _mean(x) -> float:
  return float(np.mean(x)) if len(x) else 0.0


def describe(cfg: SyntheticConfig, split: str = "test",
             num_clips: Optional[int] = None) -> Dict[str, object]:
  """Statistics of (the first `num_clips` clips of) a split, as a flat dict.

  For val/test, also AVVP scores of the ignore-modality baseline and oracles.
  """
  n = cfg.num_clips(split) if num_clips is None else num_clips
  lays = [_layout(_clip_rng(cfg, split, i), cfg, _prototypes(cfg))
          for i in range(n)]
  events = [e for lay in lays for e in lay["events"]]
  kinds = np.array([e[1] for e in events])
  av = [e for e in events if e[1] == AUDIO_VISUAL]
  lens = [iv[1] - iv[0] for e in events for iv in e[2:4] if iv is not None]
  card = np.array([[a.any(0).sum(), v.any(0).sum(), (a | v).any(0).sum()]
                   for a, v in (_dense(x, cfg.num_classes) for x in lays)])
  stats = {
      "split": split, "num_clips": n,
      "mean_segments": _mean([lay["t"] for lay in lays]),
      "events_per_clip": len(events) / max(n, 1),
      "frac_audio_only": _mean(kinds == AUDIO_ONLY),
      "frac_visual_only": _mean(kinds == VISUAL_ONLY),
      "frac_audio_visual": _mean(kinds == AUDIO_VISUAL),
      "frac_av_async": _mean([e[2] != e[3] for e in av]),
      "frac_av_onset_differs": _mean([e[2][0] != e[3][0] for e in av]),
      "mean_event_length": _mean(lens),
      "frac_events_1s": _mean(np.array(lens) == 1),
      "label_cardinality": float(card[:, 2].mean()),
      "audio_label_cardinality": float(card[:, 0].mean()),
      "visual_label_cardinality": float(card[:, 1].mean()),
      "distractors_per_clip": _mean([len(lay["distractors"]) for lay in lays]),
  }
  if split != "train" and n:
    clips = [make_clip(cfg, split, i) for i in range(n)]
    for name, fn in (
        ("ignore_modality", ignore_modality_predictions),
        ("oracle_gated", lambda c: oracle_predictions(c, cfg, True)),
        ("oracle_ungated", lambda c: oracle_predictions(c, cfg, False)),
        ("oracle_gated_crossmodal",
         lambda c: oracle_predictions(c, cfg, True, True))):
      scores = score_predictions([fn(c) for c in clips], clips)
      stats.update({f"{name}_{k}": round(v, 1) for k, v in scores.items()
                    if k != "num_clips"})
  return stats

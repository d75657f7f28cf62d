"""Synthetic VEBA-like dataset: 376 long-tailed classes, clip-level mismatch.

VEBA (Li et al., ICASSP 2022) labels what is HEARD in AudioSet clips and,
per heard event, whether it is also SEEN (video labels are a subset of the
audio labels). This generator draws clips with that structure and known
truth, as a pure function of (seed, split, i):

* class frequencies follow a Zipf law (a few head classes, a long tail, like
  AudioSet); 1-3 audible events per clip (VEBA: ~2 audio, ~1 video label);
* every class has a visibility rate (Beta-distributed; the two head classes
  "Speech" and "Music" are mostly voice-over / background music): an audible
  event is also visible with that probability, otherwise it is never seen in
  the clip (a clip-level mismatch);
* a visible event is synchronous over its whole span with `av_sync_prob`,
  else its visual span is shifted and only partly overlaps the audio span (a
  frame-level mismatch; `synthetic._av_intervals`);
* silent visible objects (unlabeled, like in VEBA) appear as distractors.

Features are per 1-s segment: audio [T, audio_dim] and visual
[T, visual_dim] (frames_per_segment 1), each background + class prototypes
(correlated groups, `synthetic._grouped`) scaled by the event amplitude +
noise. Train and val carry weak labels only (audio_labels = heard,
visual_labels = seen, labels = their union), test also the dense
seg_audio / seg_visual at 1-s resolution, as in VEBA.
"""

import dataclasses
import functools
import json
from typing import Dict, Optional, Tuple

import numpy as np

from avjax.data import cache
from avjax.data import schema
from avjax.data.synthetic import avvp as synthetic
from avjax.data import tfrecord

_SOURCE = cache.read_sources([__file__])
SPLITS = synthetic.SPLITS
HEAD_CLASSES = ("Speech", "Music")
_PROTO_STREAM = 2_000_003
# Shared with the LLP-like generator (duck-typed on the config fields).
_interval = synthetic._interval  # pylint: disable=protected-access
_av_intervals = synthetic._av_intervals  # pylint: disable=protected-access
_grouped = synthetic._grouped  # pylint: disable=protected-access


@dataclasses.dataclass(frozen=True)
class VebaSyntheticConfig:
  """Configuration (defaults: small enough to train a row in ~1-2 min).

  Attributes:
    seed, num_train, num_val, num_test: global seed; clips per split.
    num_segments: T (1-s segments per clip).
    num_classes: C (VEBA: 376).
    audio_dim, visual_dim: per-segment feature sizes.
    zipf_exponent, zipf_offset: class probability ~ (rank + offset)^-exp.
    num_events_probs: probabilities of 1, 2, 3, ... audible events.
    visibility_beta: Beta(a, b) of the per-class visibility rate.
    head_visibility: visibility rate of the HEAD_CLASSES.
    full_event_prob, short_event_prob, max_short_len: audio span lengths
      (see `synthetic._interval`).
    av_sync_prob, av_max_shift: a visible event's visual span equals its
      audio span, or is shifted by up to av_max_shift (partly synchronous).
    silent_visible_prob: probability of one unlabeled silent visible object.
    num_class_groups, group_corr: confusable prototype groups.
    amp_jitter, background_scale, audio_noise, visual_noise: feature noise.
  """
  seed: int = 0
  num_train: int = 2400
  num_val: int = 400
  num_test: int = 600
  num_segments: int = 10
  num_classes: int = 376
  audio_dim: int = 128
  visual_dim: int = 128
  zipf_exponent: float = 1.0
  zipf_offset: float = 4.0
  num_events_probs: Tuple[float, ...] = (0.35, 0.4, 0.25)
  visibility_beta: Tuple[float, float] = (1.0, 1.0)
  head_visibility: float = 0.2
  full_event_prob: float = 0.3
  short_event_prob: float = 0.25
  max_short_len: int = 2
  av_sync_prob: float = 0.5
  av_max_shift: int = 3
  silent_visible_prob: float = 0.2
  num_class_groups: int = 32
  group_corr: float = 0.3
  amp_jitter: float = 0.25
  background_scale: float = 0.7
  audio_noise: float = 1.0
  visual_noise: float = 1.0

  def __post_init__(self):
    for f in dataclasses.fields(self):  # Lists (e.g. from JSON) -> hashable.
      if isinstance(getattr(self, f.name), list):
        object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
    if self.num_segments < 1 or self.num_classes < len(HEAD_CLASSES) + 1:
      raise ValueError("need num_segments >= 1 and num_classes >= 3: "
                       f"{self}")

  def num_clips(self, split: str) -> int:
    return (self.num_train, self.num_val, self.num_test)[SPLITS.index(split)]


def class_names(num_classes: int) -> Tuple[str, ...]:
  """HEAD_CLASSES, then event_002, event_003, ... (frequency rank order)."""
  k = len(HEAD_CLASSES)
  return HEAD_CLASSES + tuple(f"event_{i:03d}" for i in range(k, num_classes))


def class_stats(cfg: VebaSyntheticConfig) -> Dict[str, np.ndarray]:
  """Per-class frequency weights `freq` [C] (sum 1), visibility `vis` [C],
  audio / visual prototypes [C, D] and background directions."""
  rng = np.random.default_rng([cfg.seed, _PROTO_STREAM])
  c = cfg.num_classes
  freq = (np.arange(c) + cfg.zipf_offset) ** -cfg.zipf_exponent
  vis = rng.beta(*cfg.visibility_beta, c)
  vis[:len(HEAD_CLASSES)] = cfg.head_visibility
  groups = rng.permutation(c) % cfg.num_class_groups
  return {"freq": freq / freq.sum(), "vis": vis,
          "audio": _grouped(rng, groups, cfg.audio_dim, cfg.group_corr),
          "visual": _grouped(rng, groups, cfg.visual_dim, cfg.group_corr),
          "bg": rng.standard_normal((2, 8, max(cfg.audio_dim,
                                               cfg.visual_dim)))}


def _layout(rng, cfg, stats) -> dict:
  """Events [(class, audio span, visual span | None)] and silent objects."""
  t, c = cfg.num_segments, cfg.num_classes
  probs = np.asarray(cfg.num_events_probs, float)
  n = min(1 + int(rng.choice(len(probs), p=probs / probs.sum())), c)
  events = []
  for cls in rng.choice(c, n, replace=False, p=stats["freq"]):
    a_iv = _interval(rng, cfg, t)
    v_iv = None
    if rng.random() < stats["vis"][cls]:
      v_iv = _av_intervals(rng, cfg, t, a_iv)[1]
    events.append((int(cls), a_iv, v_iv))
  silent = []
  if rng.random() < cfg.silent_visible_prob:
    absent = np.setdiff1d(np.arange(c), [e[0] for e in events])
    cls = int(rng.choice(absent, p=stats["freq"][absent] /
                         stats["freq"][absent].sum()))
    silent.append((cls, _interval(rng, cfg, t)))
  return {"events": events, "silent": silent}


def _dense(lay, cfg) -> np.ndarray:
  """uint8 [2, T, C]: heard / seen segments of the labeled events."""
  seg = np.zeros((2, cfg.num_segments, cfg.num_classes), np.uint8)
  for cls, a_iv, v_iv in lay["events"]:
    seg[0, a_iv[0]:a_iv[1], cls] = 1
    if v_iv is not None:
      seg[1, v_iv[0]:v_iv[1], cls] = 1
  return seg


def _render(rng, cfg, stats, lay) -> Dict[str, np.ndarray]:
  t, j = cfg.num_segments, cfg.amp_jitter
  amp = np.zeros((2, t, cfg.num_classes))
  spans = [(m, cls, iv) for cls, a_iv, v_iv in lay["events"]
           for m, iv in enumerate((a_iv, v_iv)) if iv is not None]
  spans += [(1, cls, iv) for cls, iv in lay["silent"]]
  for m, cls, (on, off) in spans:
    amp[m, on:off, cls] += 1.0 + rng.uniform(-j, j, off - on)
  out = {}
  for m, (key, dim, noise) in enumerate((
      ("audio", cfg.audio_dim, cfg.audio_noise),
      ("visual", cfg.visual_dim, cfg.visual_noise))):
    bg = cfg.background_scale / np.sqrt(8) * rng.standard_normal(8) @ (
        stats["bg"][m, :, :dim])
    x = bg + amp[m] @ stats[key] + noise * rng.standard_normal((t, dim))
    out[key] = x.astype(np.float32)
  return out


def make_clip(cfg: VebaSyntheticConfig, split: str, i: int) -> dict:
  """Clip `i` of `split`, a pure function of (cfg, split, i)."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  stats = _cached_stats(cfg)
  rng = np.random.default_rng([cfg.seed, SPLITS.index(split), i])
  lay = _layout(rng, cfg, stats)
  clip = {"id": f"veba_{split}_{i:06d}", **_render(rng, cfg, stats, lay)}
  seg = _dense(lay, cfg)
  clip["audio_labels"] = seg[0].max(0).astype(np.float32)
  clip["visual_labels"] = seg[1].max(0).astype(np.float32)
  clip["labels"] = np.maximum(clip["audio_labels"], clip["visual_labels"])
  if split == "test":
    clip["seg_audio"], clip["seg_visual"] = seg[0], seg[1]
  return clip


@functools.lru_cache(maxsize=4)
def _cached_stats(cfg):
  stats = class_stats(cfg)
  for x in stats.values():
    x.flags.writeable = False  # Cached and shared: keep read-only.
  return stats


def features(cfg: VebaSyntheticConfig):
  return (schema.FeatureSpec("audio", 1, (cfg.audio_dim,)),
          schema.FeatureSpec("visual", 1, (cfg.visual_dim,)))


def describe(cfg: VebaSyntheticConfig, split: str = "train",
             num_clips: Optional[int] = None) -> Dict[str, float]:
  """Label statistics of (the first num_clips clips of) a split."""
  n = cfg.num_clips(split) if num_clips is None else num_clips
  stats = _cached_stats(cfg)
  lays = [_layout(np.random.default_rng([cfg.seed, SPLITS.index(split), i]),
                  cfg, stats) for i in range(n)]
  ev = [e for lay in lays for e in lay["events"]]
  vis = [e for e in ev if e[2] is not None]
  counts = np.bincount([e[0] for e in ev], minlength=cfg.num_classes)
  return {"clips": n, "audio_labels_per_clip": len(ev) / n,
          "video_labels_per_clip": len(vis) / n,
          "frac_heard_not_seen": 1 - len(vis) / len(ev),
          "frac_seen_partly_synchronous": float(np.mean(
              [e[1] != e[2] for e in vis])),
          "classes_present": int((counts > 0).sum()),
          "top_class_share": float(counts.max() / counts.sum()),
          "classes_with_le5_clips": int(((counts > 0) & (counts <= 5)).sum())}


def materialize(cfg: VebaSyntheticConfig, root: str,
                num_shards: int = 8) -> str:
  """Writes the splits once (atomically, keyed by config + code)."""
  desc = json.loads(json.dumps(dataclasses.asdict(cfg)))

  def write(tmp):
    w = tfrecord.DatasetWriter(tmp, "synthetic_veba",
                               class_names(cfg.num_classes), features(cfg),
                               extra={"synthetic_veba_config": desc})
    for split in SPLITS:
      keys = schema.LABEL_KEYS + (schema.DENSE_KEYS if split == "test"
                                  else ())
      w.write_split(split, (make_clip(cfg, split, i)
                            for i in range(cfg.num_clips(split))),
                    keys, num_shards=num_shards)
    w.finish()
  return cache.materialize(root, "synthetic_veba", cfg, _SOURCE, write)

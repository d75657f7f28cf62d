"""Built-in synthetic AVE-like dataset (`config.data.name = "synthetic_ave"`).

Clips have AVE's shapes and label layout (see `avjax.data.readers.ave`): audio
[10, 128], visual_map [10, 7, 7, 512] (non-negative, pool5-like), visual_vec
[10, 512] (its spatial mean), 28 AVE classes + background (index 28), one
audio-visual event [start, end) per clip, `labels` = the union of the
segment classes, `seg_audio` = `seg_visual` = per-segment one-hot. Clip i of
a split is a pure function of (seed, split, i).

Story (so that the paper's findings can arise for real reasons):
- Every class has an audio and a visual prototype, in correlated groups; how
  loud/visible it is depends on its kind: audio-clear classes (speech, bark,
  ...), visual-clear ones (vehicles: noisy audio) and both.
- The sounding object is a box of 1..4 x 1..4 cells of the 7x7 grid, fixed
  per clip, and 0-2 silent distractor objects of other classes (1..2 cells a
  side, fainter than any sounding object) sit elsewhere. In AVE the sounding
  object is the subject of the clip and one pool5 cell is a 32x32-pixel
  patch, so the object usually spans several cells and outweighs the rest of
  the scene: global average pooling keeps its class (the paper's V gets
  55%), while audio-guided attention still removes the background regions
  and the distractors.
- Outside the event, the event's sound may be heard with the object not
  visible (off-screen) or the object visible but silent: only both
  modalities together tell event from background.
- A per-segment latent z shared by the sound and the object's look
  (synchrony) makes exact cross-modal alignment learnable (cross-modality
  localization). The sound carries z, the look carries |z| (`sync_view`):
  a nonlinear relation, as real audio-visual correspondence is, which a
  linear CCA of the features cannot see but a small network can learn.
- Split `train_noisy` holds background-only clips (AVE's 178 noisy clips).

Changes from the first version (which had 1..3-cell objects, distractors of
up to 3 cells at amplitude 0.8, above the quiet objects' 0.35, an unscaled
visual map (visual_gain 1) and an 8-d linear synchrony): there V could not
find the class under global pooling and stayed at the all-background
solution (28.8%, chance), so A+V ~ A; and the linear-Gaussian synchrony was
exactly linear CCA's model, so the DCCA baseline beat AVDLN. Now: objects of
1..4 cells a side, distractors of 1..2 cells at amplitude 0.3, visual_gain 3,
and a 2-d synchrony (stronger per dimension, same total power) seen as |z|
by the visual side. The old settings remain available (min_box=1,
max_box=3, distractor_box=3, distractor_amp=0.8, visual_gain=1, sync_dim=8,
sync_fn="linear").
"""

import dataclasses
import functools
import json
from typing import Dict, Iterator, Tuple

import numpy as np

from avjax.data import cache
from avjax.data import schema

# Read at import: a changed generator gets a new cache key.
_SOURCE = cache.read_sources([__file__])

AVE_CLASSES = (
    "Church bell", "Male speech, man speaking", "Bark",
    "Fixed-wing aircraft, airplane", "Race car, auto racing",
    "Female speech, woman speaking", "Helicopter", "Violin, fiddle", "Flute",
    "Ukulele", "Frying (food)", "Truck", "Shofar", "Motorcycle",
    "Acoustic guitar", "Train horn", "Clock", "Banjo", "Goat",
    "Baby cry, infant cry", "Bus", "Chainsaw", "Cat", "Horse", "Toilet flush",
    "Rodents, rats, mice", "Accordion", "Mandolin")
CLASSES = AVE_CLASSES + ("background",)
# Kind of each class: 0 audio-clear, 1 visual-clear (noisy audio), 2 both.
AUDIO_CLEAR, VISUAL_CLEAR, BOTH = 0, 1, 2
KINDS = (0, 0, 0, 1, 1, 0, 1, 2, 2, 2, 0, 1, 0, 1, 2, 1, 0, 2, 0, 0, 1, 2,
         0, 1, 0, 0, 2, 2)
SPLITS = ("train", "train_noisy", "val", "test")
GRID = 7
FEATURES = (schema.FeatureSpec("audio", 1, (128,)),
            schema.FeatureSpec("visual_map", 1, (GRID, GRID, 512)),
            schema.FeatureSpec("visual_vec", 1, (512,)))
_PROTO_STREAM = 999_983
SYNC_FNS = ("linear", "abs")


@dataclasses.dataclass(frozen=True)
class SyntheticAVEConfig:
  """Configuration of the synthetic AVE dataset.

  Attributes:
    seed, num_train, num_background, num_val, num_test: seed; clips of
      train, train_noisy (background only), val and test.
    num_segments: T (AVE: 10).
    full_event_prob, min_event_len: an event spans the clip, or else lasts
      min_event_len..T-1 segments.
    amp: (loud, quiet) amplitude of a modality that is clear / unclear for
      the class's kind (both-kind classes use their mean).
    amp_jitter: per-segment relative amplitude jitter.
    offscreen_prob, silent_prob: a background segment of an event clip has
      the sound without the object / the object without the sound.
    min_box, max_box: sounding-object box side (min_box..max_box).
    max_distractors, distractor_box, distractor_amp: number (0..max), box
      side (1..distractor_box) and amplitude of the silent distractors.
    group_corr: prototype correlation inside the 4 class groups.
    audio_noise, ambient: per-segment audio noise std, per-clip ambient std.
    audio_gain: scale of the audio features (about unit variance).
    visual_gain: scale of the visual map (about unit variance per unit, as
      for the audio; real pool5 maps are unnormalised ReLU outputs).
    latent_dim, scene_std, region_noise, unit_noise: visual latent size,
      per-clip scene std, per-region latent noise, per-unit noise (pre-ReLU).
    sync_dim, sync_amp: shared per-segment synchrony latent and amplitude.
    sync_fn: how the object's look follows the latent z the sound carries:
      "linear" (z itself) or "abs" (|z|, standardised; see `sync_view`).
    av_lag: audio-visual misalignment (not in the default, 0): each clip's
      audio track is shifted by a lag d drawn from -av_lag..av_lag, its
      segment t carrying the sound of segment t + d (nothing where t + d is
      outside the clip); the labels and the visual track are not shifted.
      The paper's reason for late > early fusion ("auditory and visual
      modalities are not completely aligned").
  """
  seed: int = 0
  num_train: int = 800
  num_background: int = 80
  num_val: int = 150
  num_test: int = 300
  num_segments: int = 10
  full_event_prob: float = 0.4
  min_event_len: int = 2
  amp: Tuple[float, float] = (1.0, 0.35)
  amp_jitter: float = 0.3
  offscreen_prob: float = 0.3
  silent_prob: float = 0.3
  min_box: int = 1
  max_box: int = 4
  max_distractors: int = 2
  distractor_box: int = 2
  distractor_amp: float = 0.3
  group_corr: float = 0.3
  audio_noise: float = 3.0
  ambient: float = 1.0
  audio_gain: float = 0.33
  visual_gain: float = 3.0
  latent_dim: int = 32
  scene_std: float = 0.15
  region_noise: float = 0.5
  unit_noise: float = 0.2
  sync_dim: int = 2
  sync_amp: float = 0.8
  sync_fn: str = "abs"
  av_lag: int = 0

  def __post_init__(self):
    if isinstance(self.amp, list):
      object.__setattr__(self, "amp", tuple(self.amp))
    if not 1 <= self.min_event_len < self.num_segments:
      raise ValueError(f"need 1 <= min_event_len < num_segments: {self}")
    if not 1 <= self.min_box <= self.max_box <= GRID:
      raise ValueError(f"need 1 <= min_box <= max_box <= {GRID}: {self}")
    if not 1 <= self.distractor_box <= GRID:
      raise ValueError(f"need 1 <= distractor_box <= {GRID}: {self}")
    if not 0 <= self.av_lag < self.num_segments:
      raise ValueError(f"need 0 <= av_lag < num_segments: {self}")
    if self.sync_fn not in SYNC_FNS:
      raise ValueError(f"sync_fn={self.sync_fn!r}: one of {SYNC_FNS}")

  def num_clips(self, split: str) -> int:
    return {"train": self.num_train, "train_noisy": self.num_background,
            "val": self.num_val, "test": self.num_test}[split]


@functools.lru_cache(maxsize=4)
def prototypes(cfg: SyntheticAVEConfig) -> Dict[str, np.ndarray]:
  """Fixed class prototypes, feature maps and modality amplitudes."""
  rng = np.random.default_rng([cfg.seed, _PROTO_STREAM])
  c = len(AVE_CLASSES)
  groups = np.arange(c) % 4

  def grouped(dim):
    shared = rng.standard_normal((4, dim))
    own = rng.standard_normal((c, dim))
    return np.sqrt(cfg.group_corr) * shared[groups] + np.sqrt(
        1 - cfg.group_corr) * own

  loud, quiet = cfg.amp
  kinds = np.asarray(KINDS)
  mid = (loud + quiet) / 2
  return {"audio": grouped(128), "visual": grouped(cfg.latent_dim),
          "amp_audio": np.choose(kinds, [loud, quiet, mid]),
          "amp_visual": np.choose(kinds, [quiet, loud, mid]),
          "ambient": rng.standard_normal((8, 128)),
          "proj": rng.standard_normal((cfg.latent_dim, 512)) / np.sqrt(
              cfg.latent_dim),
          "bias": rng.normal(-0.2, 0.1, 512),
          "sync_audio": rng.standard_normal((cfg.sync_dim, 128)),
          "sync_visual": rng.standard_normal((cfg.sync_dim, cfg.latent_dim))}


def _box(rng, side_min, side_max, taken):
  """A random box (mask [7, 7]) that avoids `taken` where possible."""
  for _ in range(20):
    h, w = rng.integers(side_min, side_max + 1, 2)
    y, x = rng.integers(0, GRID - h + 1), rng.integers(0, GRID - w + 1)
    m = np.zeros((GRID, GRID), bool)
    m[y:y + h, x:x + w] = True
    if not (m & taken).any():
      break
  return m


def layout(rng, cfg: SyntheticAVEConfig, background_only: bool) -> dict:
  """What happens in a clip (the ground truth of one clip)."""
  t, c = cfg.num_segments, len(AVE_CLASSES)
  cls = int(rng.integers(c))
  if background_only:
    start = end = 0
  elif rng.random() < cfg.full_event_prob:
    start, end = 0, t
  else:
    length = int(rng.integers(cfg.min_event_len, t))
    start = int(rng.integers(0, t - length + 1))
    end = start + length
  event = np.zeros(t, bool)
  event[start:end] = True
  u = rng.random(t)
  offscreen = ~event & (u < cfg.offscreen_prob)
  silent = ~event & ~offscreen & (u < cfg.offscreen_prob + cfg.silent_prob)
  obj = _box(rng, cfg.min_box, cfg.max_box, np.zeros((GRID, GRID), bool))
  taken, distractors = obj.copy(), []
  for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):
    d = int(rng.choice([k for k in range(c) if k != cls]))
    m = _box(rng, 1, cfg.distractor_box, taken)
    taken |= m
    distractors.append((d, m))
  lag = int(rng.integers(-cfg.av_lag, cfg.av_lag + 1)) if cfg.av_lag else 0
  return {"class": cls, "start": start, "end": end, "event": event,
          "audible": event | offscreen, "visible": event | silent,
          "object": obj, "distractors": distractors, "lag": lag}


def sync_view(z: np.ndarray, fn: str) -> np.ndarray:
  """The visual side of the synchrony latent z ~ N(0, 1) (the sound carries
  z linearly). "abs": |z| standardised to zero mean and unit variance, so
  it has no linear correlation with z: motion energy follows the sound's
  amplitude whatever its sign (a string's swing, a mouth opening), which a
  linear CCA cannot see but a small network can learn."""
  if fn == "linear":
    return z
  return (np.abs(z) - np.sqrt(2 / np.pi)) / np.sqrt(1 - 2 / np.pi)


def render(rng, cfg: SyntheticAVEConfig, lay: dict) -> Dict[str, np.ndarray]:
  """Features of a clip from its layout."""
  p, t, c = prototypes(cfg), cfg.num_segments, lay["class"]
  jit = lambda: 1 + cfg.amp_jitter * rng.uniform(-1, 1, (t, 1))
  z = rng.standard_normal((t, cfg.sync_dim))
  # The audio track's segment t sounds like segment t + lag (av_lag).
  src = np.arange(t) + lay.get("lag", 0)
  inside = (src >= 0) & (src < t)
  src = np.clip(src, 0, t - 1)
  za = np.where((lay["event"][src] & inside)[:, None], z[src],
                rng.standard_normal(z.shape))
  audio = ((lay["audible"][src] & inside)[:, None] * jit() * (
      p["amp_audio"][c] * p["audio"][c] + cfg.sync_amp * za @ p["sync_audio"]
      / np.sqrt(cfg.sync_dim)) + cfg.ambient * p["ambient"][
          rng.integers(len(p["ambient"]))] * rng.uniform(0, 1)
           + cfg.audio_noise * rng.standard_normal((t, 128)))
  lat = (cfg.scene_std * rng.standard_normal(cfg.latent_dim) +
         cfg.region_noise * rng.standard_normal(
             (t, GRID, GRID, cfg.latent_dim)))
  look = (p["amp_visual"][c] * p["visual"][c] + cfg.sync_amp * sync_view(
      z, cfg.sync_fn) @ p["sync_visual"] / np.sqrt(cfg.sync_dim))  # [T, R]
  vis = (lay["visible"][:, None] * jit() * look)[:, None, None, :]
  lat += vis * lay["object"][None, :, :, None]
  for d, m in lay["distractors"]:
    lat += (cfg.distractor_amp * p["visual"][d])[None, None, None] * m[
        None, :, :, None]
  x = lat.astype(np.float32) @ p["proj"].astype(np.float32) + p["bias"]
  x += cfg.unit_noise * rng.standard_normal(x.shape, dtype=np.float32)
  vmap = (cfg.visual_gain * np.maximum(x, 0)).astype(np.float32)
  return {"audio": (cfg.audio_gain * audio).astype(np.float32),
          "visual_map": vmap,
          "visual_vec": vmap.mean((1, 2))}


def dense_labels(lay: dict, t: int) -> np.ndarray:
  y = np.zeros((t, len(CLASSES)), np.uint8)
  y[np.arange(t), np.where(lay["event"], lay["class"], len(CLASSES) - 1)] = 1
  return y


def make_clip(cfg: SyntheticAVEConfig, split: str, i: int
              ) -> Tuple[dict, dict]:
  """(clip dict in the contract, ground-truth layout) of clip i of a split."""
  rng = np.random.default_rng([cfg.seed, SPLITS.index(split), i])
  lay = layout(rng, cfg, split == "train_noisy")
  clip = {"id": f"{split}_{i:05d}", **render(rng, cfg, lay)}
  seg = dense_labels(lay, cfg.num_segments)
  clip["labels"] = seg.any(0).astype(np.float32)
  clip["seg_audio"] = clip["seg_visual"] = seg
  return clip, lay


def generate_split(cfg: SyntheticAVEConfig, split: str) -> Iterator[dict]:
  for i in range(cfg.num_clips(split)):
    yield make_clip(cfg, split, i)[0]


def truth_by_id(cfg: SyntheticAVEConfig, split: str, ids) -> Dict[str, dict]:
  """Ground-truth layouts of the named clips (ids `<split>_<i>`)."""
  return {cid: make_clip(cfg, split, int(cid.rsplit("_", 1)[1]))[1]
          for cid in ids}


def write(cfg: SyntheticAVEConfig, out_dir: str, num_shards: int = 8,
          extra=None) -> dict:
  """Writes every split with `tfrecord.DatasetWriter`; returns the info."""
  from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
  w = tfrecord.DatasetWriter(out_dir, "synthetic_ave", CLASSES, FEATURES,
                             extra={"background_index": len(CLASSES) - 1,
                                    **(extra or {})})
  for split in SPLITS:
    if cfg.num_clips(split):
      w.write_split(split, generate_split(cfg, split),
                    ("labels",) + schema.DENSE_KEYS, num_shards=num_shards)
  return w.finish()


def materialize(cfg: SyntheticAVEConfig, root: str, num_shards: int = 8
                ) -> str:
  """Writes the dataset once into `root/synthetic_ave_<key>`; returns it.

  The key hashes the config and this generator's source, so a changed
  generator never reuses a stale cache; concurrent writers race safely.
  """
  desc = json.loads(json.dumps(dataclasses.asdict(cfg)))
  return cache.materialize(
      root, "synthetic_ave", cfg, _SOURCE,
      lambda tmp: write(cfg, tmp, num_shards, {"synthetic_ave_config": desc}))

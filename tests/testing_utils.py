"""Tiny fake datasets in the TFRecord contract, for fast tests; the
golden fixtures of the official code's outputs."""

import os
from typing import Dict

import numpy as np

from avjax.data import schema
from avjax.data import tfrecord

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fixtures")

CLASSES = ("a", "b", "c", "d")
FEATURES = (schema.FeatureSpec("audio", 1, (6,)),
            schema.FeatureSpec("visual", 2, (8,)),
            schema.FeatureSpec("motion", 1, (4,)))


def fake_clip(i: int, t: int = 5, dense: bool = True, seed: int = 0,
              features=FEATURES, num_classes: int = len(CLASSES)) -> dict:
  rng = np.random.default_rng([seed, i])
  clip = {"id": f"clip{i:04d}"}
  for s in features:
    clip[s.name] = rng.normal(size=(t * s.frames_per_segment,) + s.shape
                              ).astype(np.float32)
  seg_a = (rng.random((t, num_classes)) < 0.2).astype(np.uint8)
  seg_v = (rng.random((t, num_classes)) < 0.2).astype(np.uint8)
  clip["audio_labels"] = seg_a.max(0).astype(np.float32)
  clip["visual_labels"] = seg_v.max(0).astype(np.float32)
  clip["labels"] = np.maximum(clip["audio_labels"], clip["visual_labels"])
  if dense:
    clip["seg_audio"], clip["seg_visual"] = seg_a, seg_v
  return clip


def write_fake_dataset(out_dir: str, sizes=None, num_shards: int = 4,
                       lengths=(5,), seed: int = 0, classes=CLASSES,
                       features=FEATURES) -> dict:
  """Writes train (weak only) / val / test (dense) splits; returns info."""
  sizes = sizes or {"train": 64, "val": 20, "test": 21}
  w = tfrecord.DatasetWriter(out_dir, "fake", classes, features)
  for k, (split, n) in enumerate(sizes.items()):
    dense = split != "train"
    keys = ("labels", "audio_labels", "visual_labels") + (
        schema.DENSE_KEYS if dense else ())
    clips = (fake_clip(1000 * k + i, lengths[i % len(lengths)], dense, seed,
                       features, len(classes)) for i in range(n))
    w.write_split(split, clips, keys, num_shards)
  return w.finish()


def make_tempdir(test) -> str:
  """A temporary directory removed when `test` (a TestCase) finishes."""
  import shutil  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  d = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, d, ignore_errors=True)
  return d


def trainer_dataset(val: int = 20, test: int = 21) -> str:
  """The small fake dataset the trainer tests share: 64 train clips in 4
  shards, clips of 5 and 3 segments; returns its (new, temporary) directory."""
  import tempfile  # pylint: disable=g-import-not-at-top
  d = tempfile.mkdtemp()
  write_fake_dataset(d, {"train": 64, "val": val, "test": test},
                     num_shards=4, lengths=(5, 3))
  return d


def check_parses(test, workdir: str, checkpoint: str = "best",
                 num_segments: int = 7) -> dict:
  """`avjax.parse` restores the trained run in `workdir` and turns random
  features of a `num_segments`-long video into segment decisions; returns
  predict_video's output after checking its shapes and decision rule."""
  from avjax import parse  # pylint: disable=g-import-not-at-top
  run = parse.load_run(workdir, checkpoint)
  c = len(run.classes)
  rng = np.random.default_rng(0)
  feats = {name: rng.normal(size=(num_segments * f, dim)).astype(np.float32)
           for name, (f, dim) in run.features.items()}
  out = parse.predict_video(run, feats, run.threshold)
  test.assertEqual(out["audio"].shape, (num_segments, c))
  test.assertEqual(out["visual"].shape, (num_segments, c))
  test.assertEqual(out["frame_prob"].shape, (num_segments, 2, c))
  p = out["frame_prob"]
  test.assertTrue(np.all((p >= 0) & (p <= 1)))
  # Every rule (HAN's, MA's gating, VEBA's) needs the segment's own
  # probability over the threshold.
  test.assertTrue(np.all(~out["audio"] | (p[:, 0] >= run.threshold)))
  test.assertTrue(np.all(~out["visual"] | (p[:, 1] >= run.threshold)))
  return out


def shared_data_dir(dataset: str) -> str:
  """The real annotation folder of `dataset` ("llp", "ave", ...):
  $AVJAX_SHARED_DATA/<dataset> if set, else the first shared/data/<dataset>
  found beside the repository or any folder above it (the project keeps
  its read-only inputs in ../shared). The path is returned even if absent,
  so a skip message can name where it looked."""
  env = os.environ.get("AVJAX_SHARED_DATA")
  if env:
    return os.path.normpath(os.path.join(env, dataset))
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  first = None
  while True:
    cand = os.path.join(os.path.dirname(here), "shared", "data", dataset)
    first = first or cand
    if os.path.isdir(cand):
      return cand
    if os.path.dirname(here) == here:
      return first
    here = os.path.dirname(here)


def golden_path(name: str) -> str:
  """tests/fixtures/<name>_golden.npz."""
  return os.path.join(FIXTURES, f"{name}_golden.npz")


def load_golden(name: str) -> Dict[str, np.ndarray]:
  """All arrays of tests/fixtures/<name>_golden.npz (outputs of the official
  code for fixed weights and inputs, computed once outside the project)."""
  with np.load(golden_path(name)) as f:
    return {k: f[k] for k in f.files}

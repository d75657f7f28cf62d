"""Resolves `config.data` to a TFRecord dataset directory.

`config.data.name == "synthetic"` materialises the built-in synthetic dataset
(deterministic, no downloads) under `config.data.cache_dir` the first time;
any other name reads an existing directory `config.data.data_dir` written by
`python -m avjax.prepare`.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

from absl import logging

from avjax.data import classes
from avjax.data import schema
from avjax.data import synthetic
from avjax.data import tfrecord

# Read once, when the generator module is loaded: a new generator gets a new
# cache key, and a long-running process keys by the code it actually runs.
with open(synthetic.__file__, "rb") as _f:
  _GENERATOR_SOURCE = _f.read()

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "avjax")


def synthetic_config(data_cfg) -> synthetic.SyntheticConfig:
  overrides = dict(data_cfg.get("synthetic", {}))
  return synthetic.SyntheticConfig(**overrides)


def synthetic_features(cfg: synthetic.SyntheticConfig):
  return (schema.FeatureSpec("audio", 1, (cfg.audio_dim,)),
          schema.FeatureSpec("visual", cfg.frames_per_segment,
                             (cfg.visual_dim,)),
          schema.FeatureSpec("motion", 1, (cfg.motion_dim,)))


def materialize_synthetic(cfg: synthetic.SyntheticConfig, root: str,
                          num_shards: int = 8) -> str:
  """Writes the synthetic splits once (atomically) and returns the directory."""
  desc = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
  key = hashlib.sha1(desc.encode() + _GENERATOR_SOURCE).hexdigest()[:10]
  out = os.path.join(root, f"synthetic_{key}")
  if os.path.exists(os.path.join(out, tfrecord.INFO_FILE)):
    return out
  os.makedirs(root, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".synthetic_{key}_", dir=root)
  logging.info("generating the synthetic dataset in %s", out)
  features = synthetic_features(cfg)
  w = tfrecord.DatasetWriter(tmp, "synthetic", classes.LLP_CLASSES, features,
                             extra={"synthetic_config": json.loads(desc)})
  label_keys = {"train": ("labels", "audio_labels", "visual_labels"),
                "val": ("labels", "audio_labels", "visual_labels") +
                       schema.DENSE_KEYS}
  for split in ("train", "val", "test"):
    w.write_split(split, synthetic.generate_split(cfg, split),
                  label_keys.get(split, label_keys["val"]),
                  num_shards=num_shards)
  w.finish()
  try:
    os.replace(tmp, out)
  except OSError:  # another process won the race; its copy is identical
    shutil.rmtree(tmp, ignore_errors=True)
  return out


def resolve(data_cfg) -> str:
  """Returns the dataset directory for a `config.data` block."""
  if data_cfg.name == "synthetic":
    root = data_cfg.get("cache_dir") or DEFAULT_CACHE
    return materialize_synthetic(synthetic_config(data_cfg), root,
                                 data_cfg.get("num_shards", 8))
  if not data_cfg.get("data_dir"):
    raise ValueError(f"config.data.name={data_cfg.name!r} needs "
                     "--config.data.data_dir=DIR (a directory written by "
                     "`python -m avjax.prepare`)")
  tfrecord.read_info(data_cfg.data_dir)
  return data_cfg.data_dir

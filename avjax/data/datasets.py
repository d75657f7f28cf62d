"""Resolves `config.data` to a TFRecord dataset directory, by name.

A name of `GENERATORS` (e.g. "synthetic") materialises that built-in
synthetic dataset (deterministic, no downloads; settings
`config.data.synthetic`) under `config.data.cache_dir` the first time; any
other name reads an existing directory `config.data.data_dir` written by
`python -m avjax.prepare`.
"""

import dataclasses
import json
import os
from typing import Callable

from avjax.data import cache
from avjax.data import classes
from avjax.data import schema
from avjax.data.synthetic import avvp as synthetic
from avjax.data.synthetic import events as synthetic_events
from avjax.data.synthetic import ave as synthetic_ave
from avjax.data.synthetic import veba as synthetic_veba
from avjax.data import tfrecord

# Read once, when the generator module is loaded: a new generator gets a new
# cache key, and a long-running process keys by the code it actually runs.
_GENERATOR_SOURCE = cache.read_sources([synthetic.__file__])

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "avjax")


def synthetic_features(cfg: synthetic.SyntheticConfig):
  return (schema.FeatureSpec("audio", 1, (cfg.audio_dim,)),
          schema.FeatureSpec("visual", cfg.frames_per_segment,
                             (cfg.visual_dim,)),
          schema.FeatureSpec("motion", 1, (cfg.motion_dim,)))


def materialize_synthetic(cfg: synthetic.SyntheticConfig, root: str,
                          num_shards: int = 8) -> str:
  """Writes the synthetic splits once (atomically) and returns the directory."""
  desc = json.loads(json.dumps(dataclasses.asdict(cfg)))

  def write(tmp):
    w = tfrecord.DatasetWriter(tmp, "synthetic", classes.LLP_CLASSES,
                               synthetic_features(cfg),
                               extra={"synthetic_config": desc})
    label_keys = {"train": ("labels", "audio_labels", "visual_labels"),
                  "val": ("labels", "audio_labels", "visual_labels") +
                         schema.DENSE_KEYS}
    for split in ("train", "val", "test"):
      w.write_split(split, synthetic.generate_split(cfg, split),
                    label_keys.get(split, label_keys["val"]),
                    num_shards=num_shards)
    w.finish()
  return cache.materialize(root, "synthetic", cfg, _GENERATOR_SOURCE, write)


@dataclasses.dataclass(frozen=True)
class Generator:
  """A built-in synthetic dataset.

  Attributes:
    settings: its settings dataclass (every field is in
      `config.data.synthetic`, so any one is a command-line override).
    materialize: (settings, root, num_shards) -> the dataset directory,
      written once under the cache folder `root`.
  """
  settings: type
  materialize: Callable[..., str]


# config.data.name -> generator; any other name is a prepared directory.
GENERATORS = {
    "synthetic": Generator(synthetic.SyntheticConfig, materialize_synthetic),
    "synthetic_ave": Generator(synthetic_ave.SyntheticAVEConfig,
                               synthetic_ave.materialize),
    "synthetic_events": Generator(synthetic_events.SyntheticEventsConfig,
                                  synthetic_events.materialize),
    "synthetic_veba": Generator(synthetic_veba.VebaSyntheticConfig,
                                synthetic_veba.materialize),
}


def resolve(data_cfg) -> str:
  """Returns the dataset directory for a `config.data` block."""
  gen = GENERATORS.get(data_cfg.name)
  if gen is not None:
    return gen.materialize(gen.settings(**dict(data_cfg.synthetic)),
                           data_cfg.cache_dir or DEFAULT_CACHE,
                           data_cfg.num_shards)
  if not data_cfg.data_dir:
    raise ValueError(f"config.data.name={data_cfg.name!r} needs "
                     "--config.data.data_dir=DIR (a directory written by "
                     "`python -m avjax.prepare`), or is one of the built-in "
                     f"synthetic sets {sorted(GENERATORS)}")
  tfrecord.read_info(data_cfg.data_dir)
  return data_cfg.data_dir

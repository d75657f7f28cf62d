"""TFDS builders for LLP and AVE (manual download: your folder as manual_dir).

  import tensorflow_datasets as tfds
  from avjax.data import tfds_builders  # registers avjax_llp and avjax_ave
  b = tfds.builder("avjax_llp", data_dir=DATA_DIR)   # or "avjax_ave/maps_vec"
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=LLP_ROOT))
  ds = b.as_dataset(split="val")

`manual_dir` holds the published layout described in `avjax.data.readers.llp` / `ave`
(annotations inside it); the same readers as `python -m avjax.prepare` are used
with their default options. Examples carry the clip contract at fixed shapes
([10 * F, ...] features, [C] labels, [10, C] uint8 dense labels) plus
`has_dense`; splits without dense labels (LLP train) hold zeros there. Clips
the reader cannot load (missing file, wrong shape, NaN) are skipped and logged
with counts and their first errors, as `avjax.prepare` reports them.
"""

import inspect
from typing import Dict

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from avjax.data.readers import ave
from avjax.data import classes as classes_lib
from avjax.data.readers import llp
from avjax.data import schema
from avjax.data import tfrecord

NUM_SEGMENTS = 10
MAX_LOGGED = 5


def _float_tensor(shape) -> tfds.features.Tensor:
  return tfds.features.Tensor(shape=shape, dtype=np.float32,
                              encoding=tfds.features.Encoding.BYTES)


def _features(specs, num_classes: int) -> tfds.features.FeaturesDict:
  d = {"clip_id": tfds.features.Text(),
       "has_dense": tfds.features.Tensor(shape=(), dtype=np.bool_)}
  for s in specs:
    d[s.name] = _float_tensor((NUM_SEGMENTS * s.frames_per_segment,) + s.shape)
  for k in schema.LABEL_KEYS:
    d[k] = _float_tensor((num_classes,))
  for k in schema.DENSE_KEYS:
    d[k] = tfds.features.Tensor(shape=(NUM_SEGMENTS, num_classes),
                                dtype=np.uint8)
  return tfds.features.FeaturesDict(d)


def _example(clip: Dict, specs, label_keys, num_classes: int) -> Dict:
  ex = {"clip_id": clip["id"],
        "has_dense": all(k in label_keys for k in schema.DENSE_KEYS)}
  for s in specs:
    ex[s.name] = np.asarray(clip[s.name], np.float32)
  for k in schema.LABEL_KEYS:
    ex[k] = np.asarray(clip.get(k, np.zeros(num_classes)), np.float32)
  for k in schema.DENSE_KEYS:
    ex[k] = np.asarray(clip.get(k, np.zeros((NUM_SEGMENTS, num_classes))),
                       np.uint8)
  return ex


class _AvjaxBuilder(tfds.core.GeneratorBasedBuilder,
                    skip_registration=True):
  """Shared generator over an avjax reader (`_reader(manual_dir)`)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):
    # TFDS 4.9.10 evaluates `importlib_resources` (absent from our venv) here.
    return epath.Path(inspect.getfile(cls))

  def _reader(self, manual_dir: str):
    raise NotImplementedError

  def _specs(self):
    raise NotImplementedError

  def _num_classes(self) -> int:
    raise NotImplementedError

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=self.__doc__,
        features=_features(self._specs(), self._num_classes()))

  def _split_generators(self, dl_manager):
    reader = self._reader(str(dl_manager.manual_dir))
    logging.info("%s annotations: %s", self.name,
                 reader.report.get("summary"))
    return {s: self._generate_examples(reader, s) for s in reader.splits}

  def _generate_examples(self, reader, split):
    specs, c = self._specs(), self._num_classes()
    skipped = 0
    for key in reader.splits[split]:
      try:
        clip = reader.load(split, key)
        tfrecord.validate_clip(clip, specs, c, f"split {split!r}")
      except (OSError, ValueError) as e:
        skipped += 1
        if skipped <= MAX_LOGGED:
          logging.warning("%s %s: skipping clip %r: %s", self.name, split,
                          reader.clip_id(split, key), e)
        continue
      yield clip["id"], _example(clip, specs, reader.label_keys[split], c)
    if skipped:
      logging.warning("%s %s: skipped %d of %d clips", self.name, split,
                      skipped, len(reader.splits[split]))


class AvjaxLlp(_AvjaxBuilder):
  """LLP (AVVP benchmark): vggish, res152 (8 fps), r2plus1d_18 features."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put the published LLP files in manual_dir: feats/vggish, feats/res152,"
      " feats/r2plus1d_18 (<id>.npy) and the AVVP_*.csv files (see "
      "avjax/data/readers/llp.py).")

  def _reader(self, manual_dir):
    return llp.LLPDataset(manual_dir)

  def _specs(self):
    return tuple(s.spec for s in llp.STREAMS.values())

  def _num_classes(self):
    return len(classes_lib.LLP_CLASSES)


class AvjaxAve(_AvjaxBuilder):
  """AVE: VGGish audio, VGG-19 pool5 maps (and pooled vectors)."""

  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="maps", description="audio, visual_map"),
      tfds.core.BuilderConfig(name="maps_vec",
                              description="audio, visual_map, visual_vec"),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put the published AVE files in manual_dir: AVE_Annotations.txt, the "
      "split txt files and the .h5 feature files (in manual_dir, h5/ or "
      "data/; see avjax/data/readers/ave.py).")

  def _reader(self, manual_dir):
    vec = "yes" if self.builder_config.name == "maps_vec" else "no"
    return ave.AVEDataset(manual_dir, visual_vec=vec)

  def _specs(self):
    names = ["audio", "visual_map"] + (
        ["visual_vec"] if self.builder_config.name == "maps_vec" else [])
    return tuple(ave.FEATURES[n][1] for n in names)

  def _num_classes(self):
    return 29

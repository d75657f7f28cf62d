"""Audio onsets per one-second segment, for the onset event layer.

Two sources, chosen by the caller and recorded in the dataset/config:

  "waveform"  the clip's raw audio is available when the dataset is prepared:
              `waveform_onsets` runs an onset detector over it and the result
              is stored with the clip as the `onsets` stream [T, 1]
              (`schema.ONSETS_FEATURE`). The detector is librosa's
              `onset_detect` when librosa is installed (method "librosa"),
              else a NumPy spectral-flux detector (method "spectral_flux":
              log-magnitude STFT, half-wave rectified frame difference summed
              over frequency, local maxima above `(1 + delta) * median`).
  "features"  no raw audio: `feature_onsets` derives onsets from the audio
              features by a fixed rule: with the segment energy
              e_t = ||a_t|| / sqrt(D), segment t > 0 is an onset when
              e_t - e_{t-1} > threshold * mean_t(e) over the valid segments
              (a relative energy rise); segment 0 never is. Works on NumPy and
              jax.numpy arrays, so a model can also apply it in the graph.

Adding onsets to a converted dataset (e.g. LLP after `avjax.prepare`):

  python -m avjax.data.onsets --data_dir=IN --out=OUT \
      [--audio_dir=WAVS] [--method=auto|spectral_flux|librosa|features]

`WAVS/<clip_id>.wav` (or `<first 11 chars>.wav`, LLP's feature stem) is used
when present, the feature rule otherwise; `dataset_info.json` of OUT records
per split how many clips used which source and how many of those got an
empty onset set (`empty_<source>`, printed as a report).
"""

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np

from avjax.data import schema
from avjax.utils import onsets as onset_rule

METHODS = ("auto", "spectral_flux", "librosa", "features")


def have_librosa() -> bool:
  try:
    import librosa  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def spectral_flux(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
  """Onset strength [frames]: rectified log-magnitude STFT difference."""
  wave = np.asarray(wave, np.float64)
  if len(wave) < n_fft:
    wave = np.pad(wave, (0, n_fft - len(wave)))
  n = 1 + (len(wave) - n_fft) // hop
  idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
  mag = np.abs(np.fft.rfft(wave[idx] * np.hanning(n_fft), axis=1))
  logmag = np.log1p(100.0 * mag)
  diff = np.diff(logmag, axis=0, prepend=logmag[:1])
  return np.maximum(diff, 0.0).sum(axis=1)


def pick_peaks(flux: np.ndarray, delta: float, wait: int) -> np.ndarray:
  """Frames that are local maxima within +-wait and > (1 + delta) * median."""
  if not len(flux):
    return np.zeros(0, np.int64)
  padded = np.pad(flux, wait, constant_values=-np.inf)
  win = np.lib.stride_tricks.sliding_window_view(padded, 2 * wait + 1)
  is_max = flux >= win.max(axis=1)
  thresh = (1.0 + delta) * np.median(flux) + 1e-8
  return np.flatnonzero(is_max & (flux > thresh))


def times_to_segments(times: np.ndarray, num_segments: int,
                      segment_seconds: float) -> np.ndarray:
  """Onset times (s) -> float32 [T] 0/1 indicator of segments holding one."""
  out = np.zeros(num_segments, np.float32)
  seg = np.floor(np.asarray(times) / segment_seconds).astype(np.int64)
  out[np.clip(seg, 0, num_segments - 1)] = 1.0
  return out


def waveform_onsets(wave: np.ndarray, sample_rate: int, num_segments: int,
                    method: str = "auto", segment_seconds: float = 1.0,
                    delta: float = 1.5, n_fft: int = 0,
                    hop: int = 0) -> np.ndarray:
  """Per-segment onset indicator float32 [T] from a mono waveform.

  `method`: "librosa" (librosa.onset.onset_detect), "spectral_flux" (the
  NumPy detector above) or "auto" (librosa if installed). `n_fft`/`hop`
  default to 32 ms / 8 ms at `sample_rate`.
  """
  if method == "auto":
    method = "librosa" if have_librosa() else "spectral_flux"
  wave = np.asarray(wave, np.float32)
  if wave.ndim == 2:  # [samples, channels] -> mono
    wave = wave.mean(axis=1)
  n_fft = n_fft or max(16, int(2 ** np.ceil(np.log2(0.032 * sample_rate))))
  hop = hop or max(1, n_fft // 4)
  if method == "librosa":
    import librosa  # pylint: disable=g-import-not-at-top
    times = librosa.onset.onset_detect(y=wave, sr=sample_rate,
                                       hop_length=hop, units="time")
  elif method == "spectral_flux":
    frames = pick_peaks(spectral_flux(wave, n_fft, hop), delta,
                        wait=max(1, int(0.05 * sample_rate / hop)))
    times = (frames * hop + n_fft / 2) / sample_rate
  else:
    raise ValueError(f"waveform onset method={method!r}; valid: 'auto', "
                     "'spectral_flux', 'librosa'")
  return times_to_segments(times, num_segments, segment_seconds)


# The rule is also applied in the model graph (avjax.models.event_heads),
# so it lives in the leaf library avjax.utils.onsets; re-exported here.
feature_onsets = onset_rule.feature_onsets


# ---------------------------------------------------------------------------
# Adding the `onsets` stream to an existing dataset directory.


def read_wav(path: str):
  """(mono float32 waveform, sample rate) of a .wav file (scipy)."""
  from scipy.io import wavfile  # pylint: disable=g-import-not-at-top
  sr, x = wavfile.read(path)
  if x.dtype.kind in "iu":
    x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
  x = np.asarray(x, np.float32)
  return (x.mean(axis=1) if x.ndim == 2 else x), int(sr)


def _wav_for(audio_dir: Optional[str], clip_id: str) -> Optional[str]:
  if not audio_dir:
    return None
  for stem in (clip_id, clip_id[:11]):
    p = os.path.join(audio_dir, stem + ".wav")
    if os.path.isfile(p):
      return p
  return None


def _read_clips(data_dir: str, info: dict, split: str):
  """Yields the clips of a split as clip dicts (features unpadded)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
  specs = info["feature_specs"]
  keys = info["splits"][split]["label_keys"]
  c = len(info["classes"])
  for path in tfrecord.split_files(data_dir, info, split):
    for rec in tf.data.TFRecordDataset(path).as_numpy_iterator():
      f = tf.train.Example.FromString(rec).features.feature
      t = int(f["num_segments"].int64_list.value[0])
      clip = {"id": f["clip_id"].bytes_list.value[0].decode("utf-8")}
      for s in specs:
        clip[s.name] = np.frombuffer(f[s.name].bytes_list.value[0], "<f4"
                                     ).reshape((-1,) + s.shape)
      for k in keys:
        y = np.frombuffer(f[k].bytes_list.value[0], np.uint8)
        clip[k] = y.reshape(t, c) if k in schema.DENSE_KEYS else y
      yield clip


def report(clips_by_source: dict) -> str:
  """Per split: clips by onset source and how many got an empty onset set
  (such a clip's onset head sees no segment: `event_heads` pools nothing)."""
  lines = []
  for split, n in clips_by_source.items():
    parts = []
    for src in ("waveform", "features"):
      if n.get(src):
        e = n.get("empty_" + src, 0)
        parts.append(f"{src} {n[src]} clips, {e} with no onset "
                     f"({100.0 * e / n[src]:.1f}%)")
    lines.append(f"{split}: " + ("; ".join(parts) or "no clips"))
  return "\n".join(lines)


def add_onsets(data_dir: str, out_dir: str, audio_dir: Optional[str] = None,
               method: str = "auto", threshold: float = 0.25,
               num_shards: Optional[int] = None) -> dict:
  """Copies a dataset adding `onsets` [T, 1]; returns the new info."""
  from avjax.data import tfrecord  # pylint: disable=g-import-not-at-top
  if method not in METHODS:
    raise ValueError(f"method={method!r}; valid: {METHODS}")
  info = tfrecord.read_info(data_dir)
  specs = tuple(s for s in info["feature_specs"] if s.name != "onsets")
  counts = {}

  def with_onsets(split):
    n = counts.setdefault(split, {"waveform": 0, "features": 0,
                                  "empty_waveform": 0, "empty_features": 0})
    for clip in _read_clips(data_dir, info, split):
      t = len(clip["audio"])
      wav = None if method == "features" else _wav_for(audio_dir, clip["id"])
      if wav:
        x, sr = read_wav(wav)
        on = waveform_onsets(x, sr, t, method, segment_seconds=len(x) / sr / t)
        source = "waveform"
      else:
        on = feature_onsets(clip["audio"], threshold=threshold)
        source = "features"
      n[source] += 1
      n["empty_" + source] += int(not np.any(on))
      clip["onsets"] = on.reshape(t, 1)
      yield clip

  w = tfrecord.DatasetWriter(out_dir, info.get("name", "dataset"),
                             info["classes"], specs + (schema.ONSETS_FEATURE,),
                             extra=info.get("extra"))
  for split, sp in info["splits"].items():
    w.write_split(split, with_onsets(split), sp["label_keys"],
                  num_shards or len(sp["files"]))
  w.info["extra"]["onsets"] = {
      "method": method, "feature_threshold": threshold,
      "waveform_detector": ("librosa" if method in ("auto", "librosa") and
                            have_librosa() else "spectral_flux"),
      "clips_by_source": counts}
  return w.finish()


def main(argv: Optional[Sequence[str]] = None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__)
  p.add_argument("--data_dir", required=True, help="dataset to copy")
  p.add_argument("--out", required=True, help="new dataset directory")
  p.add_argument("--audio_dir", default=None, help="folder of <id>.wav")
  p.add_argument("--method", default="auto", choices=METHODS)
  p.add_argument("--threshold", type=float, default=0.25,
                 help="feature rule: relative energy rise")
  p.add_argument("--num_shards", type=int, default=None)
  a = p.parse_args(argv)
  info = add_onsets(a.data_dir, a.out, a.audio_dir, a.method, a.threshold,
                    a.num_shards)
  print(info["extra"]["onsets"])
  print(report(info["extra"]["onsets"]["clips_by_source"]))


if __name__ == "__main__":
  from avjax.utils import cli  # pylint: disable=g-import-not-at-top
  sys.exit(cli.call(main, prog="avjax.data.onsets"))

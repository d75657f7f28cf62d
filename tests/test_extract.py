"""avjax.extract: segments, decoding to model inputs, the device loop (small
fake models), the resumable folder extraction with bad files."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avjax import extract
from avjax.data.synthetic import videos

SMALL = dict(resize=32, frame_size=32, motion_size=16, batch_size=4,
             workers=0)


def fake_models(seed=0):
  """Cheap stand-ins with the Model contract: per-item statistics."""
  def make(dim):
    def fn(v, x):
      x = x.astype(jnp.float32).reshape(x.shape[0], -1)
      return jnp.stack([x.mean(1), x.std(1)], 1) @ v
    return extract.Model(jax.jit(fn), jnp.asarray(
        np.random.default_rng(seed).normal(size=(2, dim)), jnp.float32), dim)
  return {"audio": make(128), "visual": make(2048), "motion": make(512)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  d = tmp_path_factory.mktemp("vids")
  videos.make_demo_set(str(d), 2, seed=3)
  # 2.5 s at 25 fps: a partial last segment.
  rng = np.random.default_rng(0)
  frames = (rng.integers(0, 255, (62, 24, 40, 3))).astype(np.uint8)
  videos.write_video(str(d / "short.mp4"), frames, 25,
                     0.1 * rng.standard_normal(40000))
  return d


@pytest.mark.parametrize("dur,t", [(10.0, 10), (9.7, 10), (10.004, 10),
                                   (0.3, 1), (10.5, 11), (0.0, 1)])
def test_num_segments(dur, t):
  assert extract.num_segments(dur) == t


def test_decode_video_shapes_and_padding(demo):
  cfg = extract.ExtractConfig(**SMALL)
  d = extract.decode_video(str(demo / "short.mp4"), cfg)
  assert d["num_segments"] == 3
  assert d["waves"].shape == (3, 15600)
  assert d["frames"].shape == (24, 32, 32, 3)
  assert d["clips"].shape == (3, 8, 16, 16, 3)
  assert d["info"]["decoded_frames"] == 20  # ceil(2.48 s * 8)
  # segment 2 holds 0.5 s of audio, then zeros; frames padded with the last
  assert np.abs(d["waves"][2, :7000]).max() > 0
  assert not d["waves"][2, 8000:].any()
  np.testing.assert_array_equal(d["frames"][20], d["frames"][23])


def test_extractor_features(demo):
  cfg = extract.ExtractConfig(weights="random", **SMALL)
  ex = extract.Extractor(cfg, fake_models())
  out = extract.extract(str(demo / "demo_000.mp4"), cfg, ex)
  assert out["audio"].shape == (10, 128)
  assert out["visual"].shape == (80, 2048)
  assert out["motion"].shape == (10, 512)
  assert out["info"]["extraction"]["weights"] == "random"
  assert extract.RANDOM_NOTE in out["info"]["notes"]
  # batching with padding does not change per-item results
  ex2 = extract.Extractor(extract.ExtractConfig(weights="random", **dict(
      SMALL, batch_size=7)), fake_models())
  out2 = extract.extract(str(demo / "demo_000.mp4"), cfg, ex2)
  np.testing.assert_allclose(out["visual"], out2["visual"], rtol=1e-5)


@pytest.mark.parametrize("name,chunk", [("demo_000.mp4", 3),
                                        ("short.mp4", 2)])
def test_long_videos_stream_in_chunks_with_the_same_features(demo, name,
                                                             chunk):
  cfg = extract.ExtractConfig(weights="random", **SMALL)
  whole = extract.extract(str(demo / name), cfg,
                          extract.Extractor(cfg, fake_models()))
  small = dataclasses.replace(cfg, chunk_segments=chunk)
  d = extract.decode_video(str(demo / name), small)
  assert d["chunked"] and "frames" not in d  # nothing decoded up front
  chunked = extract.extract(str(demo / name), small,
                            extract.Extractor(small, fake_models()))
  for k in ("audio", "visual", "motion"):
    # equal up to float32 rounding (other batch shapes; features ~100)
    np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-5, atol=1e-4)
  assert chunked["info"]["decoded_frames"] == whole["info"]["decoded_frames"]
  assert chunked["info"]["chunk_segments"] == chunk
  # the chunk size does not enter the features' settings
  assert small.describe() == cfg.describe()


def test_extract_folder_resumes_and_reports_bad_files(demo, tmp_path):
  vids = tmp_path / "v"
  vids.mkdir()
  for n in ("demo_000.mp4", "demo_001.mp4"):
    os.symlink(demo / n, vids / n)
  (vids / "broken.mp4").write_text("not a video")
  (vids / "notes.txt").write_text("ignored")
  cfg = extract.ExtractConfig(weights="random", **SMALL)
  ex = extract.Extractor(cfg, fake_models())
  out = tmp_path / "f"
  res = extract.extract_folder(str(vids), str(out), cfg, ex, progress=False)
  assert res["done"] == 2 and res["skipped_existing"] == 0
  assert len(res["failed"]) == 1
  assert "broken.mp4" in res["failed"][0]["error"]
  assert sorted(os.listdir(out)) == ["demo_000.npz", "demo_001.npz",
                                     "extraction.json", "failed.json"]
  with np.load(out / "demo_000.npz") as z:
    assert z["visual"].shape == (80, 2048)
    assert json.loads(str(z["info"]))["num_segments"] == 10
  res = extract.extract_folder(str(vids), str(out), cfg, ex, progress=False)
  assert res["done"] == 0 and res["skipped_existing"] == 2
  with pytest.raises(extract.ExtractError, match="other settings"):
    extract.extract_folder(str(vids), str(out), extract.ExtractConfig(
        weights="random", seed=1, **SMALL), ex, progress=False)


def test_feature_cache_reuses_unchanged_videos_only(demo, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  vids = tmp_path / "v"
  vids.mkdir()
  for n in ("demo_000.mp4", "short.mp4"):
    shutil.copy(demo / n, vids / n)
  paths = [str(vids / "demo_000.mp4"), str(vids / "missing.mp4"),
           str(vids / "short.mp4")]
  cfg = extract.ExtractConfig(weights="random", **SMALL)
  calls = []

  class Counting(extract.Extractor):
    def features(self, decoded):
      calls.append(decoded["path"])
      return super().features(decoded)

  ex = Counting(cfg, fake_models())
  cache = str(tmp_path / "cache")

  def run(c=cfg):
    return list(extract.extract_many_cached(paths, c, cache, ex,
                                            progress=False))

  first = run()
  assert [p for p, _ in first] == paths
  assert isinstance(first[1][1], extract.VideoFailed)  # named, not cached
  assert calls == [paths[0], paths[2]] and len(os.listdir(cache)) == 2
  again = run()  # nothing decoded or extracted: the same features back
  assert calls == [paths[0], paths[2]]
  for (_, a), (_, b) in zip(first[::2], again[::2]):
    for k in ("audio", "visual", "motion"):
      np.testing.assert_array_equal(a[k], b[k])
    assert a["info"] == b["info"]
  os.utime(paths[2], ns=(0, 10**18))  # a changed file is extracted again
  run()
  assert calls[2:] == [paths[2]]
  run(extract.ExtractConfig(weights="random", seed=1, **SMALL))  # settings
  assert calls[3:] == [paths[0], paths[2]]
  # an unreadable entry is extracted again, not trusted
  for f in os.listdir(cache):
    (tmp_path / "cache" / f).write_bytes(b"garbage")
  run()
  assert len(calls) == 7


def test_decoder_pool_keeps_order(demo):
  cfg = extract.ExtractConfig(**dict(SMALL, workers=2))
  paths = [str(demo / n) for n in ("short.mp4", "missing.mp4",
                                   "demo_000.mp4")]
  got = list(extract.iter_decoded(paths, cfg))
  assert [g["path"] for g in got] == paths
  assert "error" in got[1] and got[1]["user_error"]
  assert "missing.mp4" in got[1]["error"]
  assert got[2]["num_segments"] == 10


def test_config_checks():
  with pytest.raises(extract.ExtractError, match="random"):
    extract.ExtractConfig(weights="imagenet").check()
  with pytest.raises(extract.ExtractError, match="crop"):
    extract.ExtractConfig(resize=100, frame_size=224).check()
  d = extract.ExtractConfig(weights="random").describe()
  assert "note" in d and "resnet_weights" not in d


@pytest.mark.slow  # 4096x12288 random fc weights; ~10-45 s on 2 busy cores
def test_random_vggish_uses_the_8bit_range(demo):
  cfg = extract.ExtractConfig(weights="random", **SMALL)
  apply, variables = extract.load_vggish(cfg)
  d = extract.decode_video(str(demo / "demo_000.mp4"), cfg)
  from avjax.data.video import logmel
  y = np.asarray(jax.jit(lambda v, x: apply(v, logmel.log_mel(x)))(
      variables, d["waves"]))
  assert y.shape == (10, 128)
  np.testing.assert_array_equal(y, np.round(y))
  assert 0 <= y.min() and y.max() <= 255 and y.std() > 10
  _, again = extract.load_vggish(cfg)
  np.testing.assert_array_equal(variables[1], again[1])

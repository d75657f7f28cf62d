"""Generated demo videos: counts, durations, truth that decoding sees."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from avjax.data import classes
from avjax.data.synthetic import videos
from avjax.data.video import decode

NUM = 3


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("demo"))
  return d, videos.make_demo_set(d, num=NUM, seed=0)


def test_files_and_truth_schema(demo):
  d, truth = demo
  assert sorted(os.listdir(d)) == sorted(
      [f"demo_{i:03d}.mp4" for i in range(NUM)] + ["ground_truth.jsonl"])
  assert videos.read_ground_truth(d) == {r["video"]: r["events"]
                                         for r in truth}
  kinds = set()
  for rec in truth:
    assert set(rec) == {"video", "events"} and 2 <= len(rec["events"]) <= 3
    names = [e["event"] for e in rec["events"]]
    assert len(set(names)) == len(names)
    for e in rec["events"]:
      assert set(e) == {"event", "modality", "start", "end"}
      assert e["event"] in classes.LLP_CLASSES
      assert 0 <= e["start"] < e["end"] <= videos.DURATION_S
      assert e["end"] - e["start"] >= 1.0
      kinds.add(e["modality"])
  assert kinds == {"audio", "visual", "both"}


def test_deterministic(demo, tmp_path):
  d, truth = demo
  assert videos.make_video(str(tmp_path), 1, seed=0) == truth[1]
  with open(os.path.join(d, "demo_001.mp4"), "rb") as f:
    assert (tmp_path / "demo_001.mp4").read_bytes() == f.read()
  assert videos.make_video(str(tmp_path), 1, seed=1) != truth[1]


def test_decoded_lengths(demo):
  d, truth = demo
  for rec in truth:
    info = decode.probe(os.path.join(d, rec["video"] + ".mp4"))
    assert info.duration_s == videos.DURATION_S
    assert (info.num_frames, info.fps) == (120, 12.0)
    assert (info.height, info.width) == videos.SIZE
    assert info.has_audio and info.num_audio_samples == 160000


def band_power(x, band, rate=16000, win=800):
  """Power in `band` per 50 ms frame."""
  n = x.size // win
  spec = np.abs(np.fft.rfft(x[:n * win].reshape(n, win) * np.hanning(win)))
  f = np.fft.rfftfreq(win, 1 / rate)
  return (spec[:, (f >= band[0]) & (f <= band[1])] ** 2).sum(1)


def test_heard_events_are_in_the_audio(demo):
  d, truth = demo
  for rec in truth:
    x = decode.audio_16k_mono(os.path.join(d, rec["video"] + ".mp4"))
    t = (np.arange(x.size // 800) + 0.5) * 0.05
    for e in rec["events"]:
      p = band_power(x, videos.CLASSES[e["event"]][0].band)
      inside = (t > e["start"] + 0.1) & (t < e["end"] - 0.1)
      heard = [o for o in rec["events"] if o["event"] == e["event"]
               and o["modality"] != "visual"]
      silent = np.ones_like(inside)
      for o in heard:
        silent &= (t < o["start"] - 0.1) | (t > o["end"] + 0.1)
      if e["modality"] == "visual":
        assert p[inside].max() < 1.0, (rec["video"], e)  # heard: >= 400
      else:
        assert np.median(p[inside]) > 100 * np.median(p[silent]), (
            rec["video"], e)


def test_seen_events_are_in_the_frames(demo):
  d, truth = demo
  for rec in truth:
    path = os.path.join(d, rec["video"] + ".mp4")
    for t, img in decode.frames_at(path, videos.FPS):
      for e in rec["events"]:
        colour = np.array(videos.CLASSES[e["event"]][1].colour)
        near = (np.abs(img.astype(int) - colour).max(-1) < 40).mean()
        on = e["modality"] != "audio" and e["start"] <= t < e["end"]
        assert (near > 0.015) == on, (rec["video"], e, t, near)


def test_command_line(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "avjax.data.synthetic.videos",
       f"--out={tmp_path}", "--num=1", "--seed=3"],
      capture_output=True, text=True, check=True,
      cwd=os.path.dirname(os.path.dirname(os.path.dirname(
          os.path.dirname(os.path.abspath(__file__))))))
  assert "wrote 1 videos" in out.stdout
  rec = json.loads((tmp_path / "ground_truth.jsonl").read_text())
  assert rec["video"] == "demo_000" and (tmp_path / "demo_000.mp4").exists()
  rng = np.random.default_rng([3, 0])
  assert rec["events"] == videos.sample_events(rng, 0)

"""The whole path on a tiny demo: videos -> prepare own --videos (random
extractor weights, small frames) -> HAN (1 epoch) -> avjax.parse with ground
truth: JSON + PNG per video, events.jsonl, index.html, scores. Slow (real
extractors and HAN compile, a few minutes on 2 CPU cores)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


@pytest.mark.slow
def test_tiny_demo_end_to_end(tmp_path):
  wd = tmp_path / "demo"
  # One host device: the 8 simulated devices of the other tests only pad
  # each video's 10 VGGish examples to 16 and halve the demo's speed here
  # (multi-device extraction and training are tested elsewhere).
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=1")
  p = subprocess.run(
      [sys.executable, "-m", "avjax.projects.demo.video_parse",
       f"--workdir={wd}", "--num_train=8", "--num_val=2", "--num_test=2",
       "--epochs=1", "--batch_size=8", "--resnet_arch=resnet50",
       "--resize=40", "--frame_size=32", "--motion_size=32",
       "--han_args=--config.eval_batch_size=8 --config.model.d_model=64 "
       "--config.model.d_ff=64"],
      capture_output=True, text=True, env=env, cwd=ROOT, timeout=1500)
  assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
  parsed = wd / "parsed"
  for vid in ("test_000", "test_001"):
    rec = json.loads((parsed / f"{vid}.json").read_text())
    assert rec["video"] == vid and rec["num_segments"] == 10
    for e in rec["events"]:
      assert e["modality"] in ("audio", "visual", "both")
      assert 0 <= e["start"] < e["end"] <= 10 and 0 <= e["confidence"] <= 1
    assert (parsed / f"{vid}.png").stat().st_size > 1000
  assert len((parsed / "events.jsonl").read_text().splitlines()) == 2
  assert "test_001.png" in (parsed / "index.html").read_text()
  report = json.loads((wd / "demo_report.json").read_text())
  assert report["scores"]["num_videos"] == 2
  assert {"seg_a", "seg_v", "seg_av"} <= set(report["scores"])
  assert report["extraction"]["done"] == 10
  info = json.loads((wd / "data" / "dataset_info.json").read_text())
  assert info["extra"]["extraction"]["weights"] == "random"

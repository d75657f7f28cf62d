"""`python -m avjax.prepare own --videos`: extraction (fake small models),
a bad video reported by name and left out, TFRecords through the own reader,
resume, and the extraction settings kept for avjax.parse."""

import json
import os

from avjax import extract
from avjax import prepare
from avjax.data.synthetic import videos
from tests import test_extract


def test_prepare_own_videos(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(extract, "build_models",
                      lambda cfg: test_extract.fake_models())
  vids = tmp_path / "v"
  truth = videos.make_demo_set(str(vids), 3, seed=7)
  (vids / "broken.mp4").write_text("not a video")
  labels = tmp_path / "labels.csv"
  labels.write_text("id,labels,split\n" + "".join(
      f"{t['video']},{';'.join(sorted({e['event'] for e in t['events']}))},"
      f"{'val' if i == 2 else 'train'}\n" for i, t in enumerate(truth)))
  out = tmp_path / "data"
  argv = ["own", f"--videos={vids}", f"--labels={labels}", f"--out={out}",
          "--weights=random", "--extract_resize=32",
          "--extract_frame_size=32", "--extract_motion_size=16",
          "--extract_workers=0", "--workers=1", "--quiet"]
  assert prepare.main(argv) == 0
  err = capsys.readouterr().err
  assert "extract: 3 video(s)" in err and "1 failed" in err
  assert "skipped video:" in err and "broken.mp4" in err
  info = json.loads((out / "dataset_info.json").read_text())
  assert info["splits"]["train"]["num_clips"] == 2
  assert info["splits"]["val"]["num_clips"] == 1
  assert info["extra"]["extraction"]["weights"] == "random"
  assert {f["name"]: f["frames_per_segment"] for f in info["features"]} == {
      "audio": 1, "visual": 8, "motion": 1}
  report = json.loads((out / "prepare_report.json").read_text())
  assert report["extraction"]["failed"][0]["video"].endswith("broken.mp4")
  assert sorted(os.listdir(out / "features"))[:3] == [
      "demo_000.npz", "demo_001.npz", "demo_002.npz"]
  # resume: nothing extracted again, every shard already complete
  assert prepare.main(argv) == 0
  assert "extract: 0 video(s)" in capsys.readouterr().err

"""avjax.parse: windows, the evaluation decision rule, events, truth and
scores, timeline/HTML outputs, a folder with a bad file (fake run and fake
extractor; the real path is in tests/projects/demo)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from avjax import extract
from avjax import parse
from avjax.data.synthetic import videos
from avjax.evaluators import avvp_f1
from avjax.metrics import avvp
from tests import test_extract

CLASSES = ("Cello", "Chainsaw", "Violin_fiddle")


def fake_run(window=10, frames=8, probs=None, gating="global"):
  """A Run whose model outputs fixed per-window probabilities."""
  def predict(batch):
    n, w = batch["segment_mask"].shape
    c = len(CLASSES)
    fp = np.zeros((n, w, 2, c), np.float32) + 0.1
    if probs is not None:
      fp[:] = probs(n, w)
    return {"frame_prob": fp, "global_prob": fp.max((1, 2)),
            "audio_prob": fp[:, :, 0].max(1), "visual_prob": fp[:, :, 1].max(1),
            "segment_mask": batch["segment_mask"]}

  def decide(pred, threshold):
    return avvp_f1.Evaluator(None, None, 0, None, gating=gating,
                             threshold=threshold).decisions(pred)

  return parse.Run(workdir="run", checkpoint="best", step=1, classes=CLASSES,
                   window=window, features={"audio": (1, 128),
                                            "visual": (frames, 2048),
                                            "motion": (1, 512)},
                   predict=predict, decide=decide, threshold=0.5,
                   gating=gating, extraction=None, batch_size=1)


def feats(t):
  rng = np.random.default_rng(t)
  return {"audio": rng.normal(size=(t, 128)),
          "visual": rng.normal(size=(8 * t, 2048)),
          "motion": rng.normal(size=(t, 512))}


def test_windows_pad_and_mask_the_last():
  b = parse.model_batches(feats(23), fake_run())
  assert b["segment_mask"].shape == (3, 10)
  assert b["segment_mask"].sum() == 23 and not b["segment_mask"][2, 3:].any()
  assert b["visual"].shape == (3, 80, 2048)
  assert not b["visual"][2, 24:].any()
  pooled = parse.model_batches(feats(5), fake_run(frames=1))
  np.testing.assert_allclose(pooled["visual"][0, :5],
                             feats(5)["visual"].reshape(5, 8, -1).mean(1),
                             rtol=1e-5, atol=1e-6)


def test_predict_video_uses_the_evaluation_rule():
  rng = np.random.default_rng(0)
  table = rng.uniform(size=(3, 10, 2, 3)).astype(np.float32)
  run = fake_run(probs=lambda n, w: table[:n])
  for thr in (0.5, 0.7):
    got = parse.predict_video(run, feats(23), thr)
    pred = run.predict(parse.model_batches(feats(23), run))
    a, v = avvp.segment_predictions(pred["frame_prob"], pred["global_prob"],
                                    pred["global_prob"], thr)
    np.testing.assert_array_equal(got["audio"], a.reshape(-1, 3)[:23])
    np.testing.assert_array_equal(got["visual"], v.reshape(-1, 3)[:23])
    assert got["frame_prob"].shape == (23, 2, 3)


def test_events_both_where_heard_and_seen():
  t = 6
  a = np.zeros((t, 3), bool)
  v = np.zeros((t, 3), bool)
  a[0:4, 0] = True   # Cello heard 0-4, seen 2-5: audio 0-2, both 2-4, vis 4-5
  v[2:5, 0] = True
  v[5, 2] = True     # Violin seen in the partial last segment
  fp = np.full((t, 2, 3), 0.8, np.float32)
  fp[2, 1, 0] = 0.6
  ev = parse.decisions_to_events(a, v, fp, CLASSES, 5.5)
  assert [(e["event"], e["modality"], e["start"], e["end"]) for e in ev] == [
      ("Cello", "audio", 0, 2), ("Cello", "both", 2, 4),
      ("Cello", "visual", 4, 5), ("Violin_fiddle", "visual", 5, 5.5)]
  assert ev[1]["confidence"] == pytest.approx((0.8 * 3 + 0.6) / 4)


def test_truth_segments_and_scores():
  truth = [{"event": "Cello", "modality": "both", "start": 1.3, "end": 4.2},
           {"event": "Chainsaw", "modality": "audio", "start": 0.0,
            "end": 0.4},
           {"event": "Dog", "modality": "visual", "start": 0, "end": 3}]
  a, v = parse.truth_to_segments(truth, 10, CLASSES)
  assert np.flatnonzero(a[:, 0]).tolist() == [1, 2, 3]  # 4.0-4.2 < 0.5 s
  assert not a[:, 1].any() and (a[:, 0] == v[:, 0]).all()
  rec = {"video": "x", "num_segments": 10, "events": [
      {"event": "Cello", "modality": "both", "start": 1, "end": 4}]}
  s = parse.score([rec], {"x": truth}, CLASSES)
  assert s["seg_a"] == 100.0 and s["seg_v"] == 100.0
  assert s["unknown_truth_classes"] == ["Dog"]


def test_read_truth_forms(tmp_path):
  rec = {"video": "a", "events": [{"event": "Cello", "modality": "audio",
                                   "start": 0, "end": 1}]}
  (tmp_path / "one.json").write_text(json.dumps(rec))
  (tmp_path / "l.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps(
      dict(rec, video="b")) + "\n")
  assert list(parse.read_truth(str(tmp_path / "one.json"))) == ["a"]
  assert list(parse.read_truth(str(tmp_path / "l.jsonl"))) == ["a", "b"]
  (tmp_path / "bad.json").write_text(json.dumps(
      {"video": "a", "events": [{"event": "x", "modality": "smell",
                                 "start": 0, "end": 1}]}))
  with pytest.raises(parse.ParseError, match="modality"):
    parse.read_truth(str(tmp_path / "bad.json"))


def test_parse_folder_with_a_bad_file(tmp_path):
  vids = tmp_path / "v"
  truth = videos.make_demo_set(str(vids), 2, seed=5)
  (vids / "broken.mkv").write_bytes(b"\x00" * 100)
  cfg = extract.ExtractConfig(weights="random", **test_extract.SMALL)
  ex = extract.Extractor(cfg, test_extract.fake_models())

  def probs(n, w):  # Cello heard and seen in segments 2-4 of every window
    p = np.full((n, w, 2, 3), 0.1, np.float32)
    p[:, 2:5, :, 0] = 0.9
    return p

  paths, many = parse.collect_videos([str(vids)])
  assert many and len(paths) == 3
  out = tmp_path / "out"
  res = parse.parse_videos(
      paths, fake_run(probs=probs), str(out), cfg, threshold=0.5,
      truth=parse.read_truth(str(vids)), extractor=ex, progress=False)
  assert len(res["records"]) == 2 and len(res["failed"]) == 1
  assert "broken.mkv" in res["failed"][0]["error"]
  for t in truth:
    rec = json.loads((out / (t["video"] + ".json")).read_text())
    assert rec["events"][0] == {"event": "Cello", "modality": "both",
                                "start": 2.0, "end": 5.0,
                                "confidence": pytest.approx(0.9)}
    assert (out / (t["video"] + ".png")).stat().st_size > 1000
  lines = (out / "events.jsonl").read_text().splitlines()
  assert [json.loads(l)["video"] for l in lines] == ["demo_000", "demo_001"]
  page = (out / "index.html").read_text()
  assert "demo_001.png" in page and "broken.mkv" in page
  assert "seg_a" in json.loads((out / "scores.json").read_text())


def test_cli_errors_are_one_line(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  p = subprocess.run(
      [sys.executable, "-m", "avjax.parse", str(tmp_path / "x.mp4"),
       f"--workdir={tmp_path / 'nope'}"], capture_output=True, text=True,
      env=env, cwd=os.path.dirname(os.path.dirname(__file__)), timeout=120)
  assert p.returncode == 2, p.stderr
  err = [l for l in p.stderr.splitlines() if l.strip()]
  assert err == [f"avjax.parse: error: --workdir={tmp_path / 'nope'}: no "
                 "such folder"], p.stderr

"""Tests for the `python -m avjax.score` program."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import numpy as np

from avjax import score
from avjax.data import classes
from avjax.data.readers import llp_annotations
from avjax.metrics import avvp
from tests import testing_utils

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
WEAK_HEADER = "filename\tevent_labels\n"
EVAL_HEADER = "filename\tonset\toffset\tevent_labels\n"


def llp_dir():
  """The real LLP annotation folder ($AVJAX_SHARED_DATA/llp if set)."""
  return testing_utils.shared_data_dir("llp")


def _write(path, text):
  with open(path, "w") as f:
    f.write(text)


def _labels(spec):
  """Bool [10, 25] from {class name: (onset, offset)}."""
  x = np.zeros((10, len(classes.LLP_CLASSES)), bool)
  for name, (onset, offset) in spec.items():
    x[onset:offset, classes.LLP_CLASSES.index(name)] = True
  return x


class FixtureTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.dir)
    _write(os.path.join(self.dir, "AVVP_test_pd.csv"), WEAK_HEADER +
           "aaa_0_10\tSpeech\nbbb_0_10\tDog\nccc_0_10\tCat\n")
    _write(os.path.join(self.dir, "AVVP_eval_audio.csv"), EVAL_HEADER +
           "aaa_0_10\t0\t4\tSpeech\nbbb_0_10\t5\t10\tDog\n"
           "ccc_0_10\t0\t10\tCat\n")
    _write(os.path.join(self.dir, "AVVP_eval_visual.csv"), EVAL_HEADER +
           "aaa_0_10\t0\t2\tSpeech\nccc_0_10\t0\t10\tCat\n")
    # aaa: perfect; bbb: no prediction; ccc: audio right, visual missed;
    # zzz: not in the split.
    self.pred = self.save_pred(
        ids=np.array(["aaa_0_10", "ccc_0_10", "zzz_0_10"]),
        audio=np.stack([_labels({"Speech": (0, 4)}), _labels({"Cat": (0, 10)}),
                        _labels({"Dog": (0, 1)})]),
        visual=np.stack([_labels({"Speech": (0, 2)}), _labels({}),
                         _labels({})]))

  def save_pred(self, **arrays):
    path = os.path.join(self.dir, f"pred{len(os.listdir(self.dir))}.npz")
    np.savez(path, **arrays)
    return path

  def run_cli(self, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "avjax.score", *args],
                          capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=60, check=False)

  def test_missing_clip_scored_as_empty(self):
    got = score.score(self.pred, self.dir, "test")
    third, two_thirds = 100.0 / 3, 200.0 / 3
    for key in ("seg_a", "seg_v", "seg_av", "seg_type", "ev_a", "ev_v",
                "ev_av", "ev_type"):
      self.assertAlmostEqual(got[key], two_thirds, msg=key)
    # ccc: audio TP 10 + visual FN 10 -> 2/3 (segments), 1 TP + 1 FN (events).
    self.assertAlmostEqual(got["seg_event"], (1 + 0 + 2 / 3) * third)
    self.assertAlmostEqual(got["ev_event"], (1 + 0 + 2 / 3) * third)
    self.assertEqual(got["num_clips"], 3)
    report = got["report"]
    self.assertEqual(report["clips_without_prediction"],
                     {"count": 1, "examples": ["bbb_0_10"]})
    self.assertEqual(report["predictions_not_in_split"],
                     {"count": 1, "examples": ["zzz_0_10"]})
    self.assertEqual(
        report["annotations"]["clips_without_visual_rows"]["count"], 1)

  def test_missing_policies(self):
    got = score.score(self.pred, self.dir, "test", missing="skip")
    self.assertEqual(got["num_clips"], 2)
    self.assertAlmostEqual(got["seg_a"], 100.0)
    self.assertAlmostEqual(got["seg_v"], 50.0)
    self.assertAlmostEqual(got["seg_event"], (1 + 2 / 3) * 50.0)
    with self.assertRaisesRegex(ValueError, "1 clips of split 'test' have no"):
      score.score(self.pred, self.dir, "test", missing="error")

  def test_cli_prints_one_json_object(self):
    proc = self.run_cli("--pred", self.pred, "--annotations", self.dir)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    got = json.loads(proc.stdout)
    self.assertEqual(set(got), set(avvp.SCORE_KEYS) | {"num_clips", "report"})
    self.assertAlmostEqual(got["seg_a"], 200.0 / 3)
    self.assertIn("clips_without_prediction: 1", proc.stderr)
    self.assertIn("predictions_not_in_split: 1", proc.stderr)

  def test_cli_help_explains_formats(self):
    proc = self.run_cli("--help")  # absl exits with status 1 after help
    for text in ("ids", "bool [N, 10, 25]", "AVVP_eval_audio.csv", "onset",
                 "--annotations", "--missing"):
      self.assertIn(text, proc.stdout)

  def test_cli_error_names_expectation(self):
    proc = self.run_cli("--pred", os.path.join(self.dir, "none.npz"),
                        "--annotations", self.dir)
    self.assertEqual(proc.returncode, 2)
    self.assertIn("avjax.score: error: prediction file not found", proc.stderr)
    self.assertNotIn("Traceback", proc.stderr)
    self.assertIn("['ids', 'audio', 'visual']", proc.stderr)
    self.assertEqual(proc.stdout, "")

  def test_bad_prediction_files(self):
    ids = np.array(["aaa_0_10"])
    ok = np.zeros((1, 10, 25), bool)
    cases = [
        (dict(ids=ids, audio=ok), r"lacks array\(s\) \['visual'\]"),
        (dict(ids=ids, audio=ok[..., :24], visual=ok),
         r"`audio` has shape \(1, 10, 24\); expected \[N, T, C\] = "
         r"\(1, 10, 25\)"),
        (dict(ids=ids, audio=ok, visual=ok + 0.3), "`visual` must be bool"),
        (dict(ids=np.array([1]), audio=ok, visual=ok), "1-D str array"),
        (dict(ids=np.array(["a", "a"]), audio=ok, visual=ok), "duplicates"),
    ]
    for arrays, message in cases:
      with self.assertRaisesRegex(ValueError, message):
        score.score(self.save_pred(**arrays), self.dir, "test")
    with self.assertRaisesRegex(FileNotFoundError, "AVVP_val_pd.csv"):
      score.score(self.pred, self.dir, "val")


class RealTestSplitTest(absltest.TestCase):

  def test_perfect_predictions_score_100(self):
    directory = llp_dir()
    if not os.path.isdir(directory):
      self.skipTest(f"real LLP annotations not found at {directory}; set "
                    "AVJAX_SHARED_DATA to the folder holding llp/")
    ids, gt_a, gt_v, _ = llp_annotations.read_dense(directory, "test")
    tmp = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, tmp)
    pred = os.path.join(tmp, "perfect.npz")
    np.savez(pred, ids=np.array(ids), audio=gt_a, visual=gt_v)
    start = time.perf_counter()
    got = score.score(pred, directory, "test")
    total = time.perf_counter() - start
    start = time.perf_counter()
    avvp.avvp_scores(gt_a, gt_v, gt_a, gt_v)
    metrics = time.perf_counter() - start
    print(f"avjax.score on the 1200 LLP test clips: {total * 1e3:.1f} ms in "
          f"all, {metrics * 1e3:.1f} ms in avvp_scores")
    for key in avvp.SCORE_KEYS:
      self.assertEqual(got[key], 100.0, key)
    self.assertEqual(got["num_clips"], 1200)
    self.assertEqual(got["report"]["clips_without_prediction"]["count"], 0)


if __name__ == "__main__":
  absltest.main()

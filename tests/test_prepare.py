"""python -m avjax.prepare: CLI, determinism over workers, resume, refusal."""

import contextlib
import hashlib
import io
import json
import os

from absl.testing import absltest
import numpy as np

from avjax import prepare
from avjax.data.readers import llp
from avjax.data import make_llp_fixture
from avjax.data import pipeline
from avjax.data import tfrecord
from tests import testing_utils


def shard_bytes(out):
  return {n: hashlib.sha1(open(os.path.join(out, n), "rb").read()).hexdigest()
          for n in sorted(os.listdir(out)) if n.endswith(".tfrecord")}


class PrepareTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = testing_utils.make_tempdir(self)
    self.out = testing_utils.make_tempdir(self)
    self.names = make_llp_fixture.write_fixture(self.root, train=7, val=3,
                                                test=2)

  def run_cli(self, *args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      rc = prepare.main(["llp", "--root", self.root, "--out", self.out,
                         "--quiet", *args])
    return rc, err.getvalue()

  def test_help_explains_layouts(self):
    for name, expected in (("llp", "feats/res152/<id>.npy"),
                           ("ave", "visual_feature.h5"),
                           ("veba", "events.csv"),
                           ("single_label", "id,label,split"),
                           ("own", "<id>.npz")):
      out = io.StringIO()
      with contextlib.redirect_stdout(out), self.assertRaises(SystemExit):
        prepare.main([name, "--help"])
      self.assertIn(expected, out.getvalue())
      self.assertIn("--strict", out.getvalue())

  def test_cli_writes_a_dataset_the_pipeline_reads(self):
    rc, err = self.run_cli("--num_shards=3", "--workers=1")
    self.assertEqual(rc, 0)
    self.assertIn("llp: wrote 12 clips (train 7, val 3, test 2)", err)
    info = tfrecord.read_info(self.out)
    self.assertEqual(info["name"], "llp")
    self.assertEqual(info["max_segments"], 10)
    self.assertEqual(info["splits"]["train"]["file_counts"], [3, 2, 2])
    self.assertEqual(info["splits"]["test"]["files"],
                     ["test-00000-of-00002.tfrecord",
                      "test-00001-of-00002.tfrecord"])
    self.assertEqual(info["splits"]["val"]["label_keys"], list(
        llp.DENSE_KEYS))
    src = pipeline.Source(self.out, "train", ("audio", "visual"))
    batch = next(pipeline.train_batches(src, 2, seed=0, num_steps=1))
    self.assertEqual(batch["visual"].shape, (2, 80, 2048))
    report = json.load(open(os.path.join(self.out, prepare.REPORT_FILE)))
    self.assertIn("summary", report["annotations"])

  def test_strict_cli_exits_with_error(self):
    os.remove(os.path.join(self.root, "feats/vggish",
                           self.names["test"][1][:11] + ".npy"))
    rc, err = self.run_cli("--strict", "--workers=1")
    self.assertEqual(rc, 2)
    self.assertRegex(err, r"--strict: split 'test'.*vggish.*feature 'audio':"
                     " file not found")
    self.assertFalse(os.path.exists(os.path.join(self.out,
                                                 tfrecord.INFO_FILE)))

  def test_workers_give_identical_shards(self):
    ds = llp.LLPDataset(self.root)
    prepare.convert(ds, self.out, num_shards=3, workers=1, progress=False)
    out2 = testing_utils.make_tempdir(self)
    prepare.convert(ds, out2, num_shards=3, workers=2, progress=False)
    self.assertEqual(shard_bytes(self.out), shard_bytes(out2))
    self.assertEqual(tfrecord.read_info(self.out)["splits"],
                     tfrecord.read_info(out2)["splits"])

  def test_resume_rewrites_only_incomplete_shards(self):
    ds = llp.LLPDataset(self.root)
    prepare.convert(ds, self.out, num_shards=3, progress=False)
    before = shard_bytes(self.out)
    mtimes = {n: os.stat(os.path.join(self.out, n)).st_mtime_ns
              for n in before}
    lost = "train-00001-of-00003.tfrecord"
    with open(os.path.join(self.out, lost), "r+b") as f:
      f.truncate(100)  # an interrupted copy: size disagrees with the record
    open(os.path.join(self.out, "val-00000-of-00003.tfrecord.tmp"), "w")
    report = prepare.convert(ds, self.out, num_shards=3, progress=False)
    self.assertEqual(report["resumed_shards"], 7)
    self.assertEqual(report["clips_processed"], 2)  # train clips 1 and 4
    self.assertEqual(shard_bytes(self.out), before)
    for n, t in mtimes.items():
      if n != lost:
        self.assertEqual(os.stat(os.path.join(self.out, n)).st_mtime_ns, t)
    self.assertEqual(report["written"], {"train": 7, "val": 3, "test": 2})

  def test_other_inputs_need_overwrite(self):
    ds = llp.LLPDataset(self.root)
    prepare.convert(ds, self.out, num_shards=2, progress=False)
    with self.assertRaisesRegex(prepare.OutputInUseError, "--overwrite"):
      prepare.convert(ds, self.out, num_shards=3, progress=False)
    prepare.convert(ds, self.out, num_shards=3, overwrite=True, progress=False)
    self.assertLen(shard_bytes(self.out), 8)

  def test_skip_reasons(self):
    self.assertEqual(prepare.skip_reason(FileNotFoundError("x")),
                     "missing_file")
    self.assertEqual(prepare.skip_reason(ValueError(
        "f: feature 'a' has a non-finite value (nan)")), "non_finite")
    self.assertEqual(prepare.skip_reason(ValueError(
        "f: feature 'a' has shape [3], expected [T, 4]")), "wrong_shape")
    self.assertEqual(prepare.skip_reason(ValueError(
        "f: unreadable .npy (cannot reshape)")), "invalid")

  def test_progress_reports_rate(self):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      bar = prepare.Progress(4, label="x")
      for _ in range(4):
        bar.tick()
      bar.draw(4, final=True)
    self.assertRegex(err.getvalue(), r"x \[#+\s*\] 4/4 clips [\d.]+ clips/s")
    np.testing.assert_equal(bar.value, 4)


if __name__ == "__main__":
  absltest.main()

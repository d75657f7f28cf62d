"""Errors a user can act on, through the real command lines.

Each case runs a CLI (`python -m avjax.<command> ...`) as a subprocess on
defective input in the public LLP / AVE layouts or with a command-line
mistake, and checks: exit code 2, one `avjax.<command>: error:` line naming
the defect (file, line, field or key) and the fix, no "Traceback"; and, for
the rows the default mode skips, that they are reported with file:line and
every good clip is written. Fixtures are shared per module; the cases that
train or evaluate a model are marked slow.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from avjax import errors
from avjax import prepare
from avjax.data.readers import llp
from avjax.data import make_llp_fixture
from avjax.data import pipeline
from avjax.data import tfrecord
from avjax.utils import cli
from tests.data.readers import test_ave

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAN = "configs/avvp_han.py"
SITECUSTOMIZE_DISK_FULL = '''
"""Test hook: the disk of AVJAX_TEST_FULL_DIR reports 1 MiB free after
AVJAX_TEST_FULL_AFTER queries (a disk filling up during training)."""
import os
import shutil

_real, _calls = shutil.disk_usage, [0]


def _disk_usage(path):
  usage = _real(path)
  if os.path.abspath(path).startswith(os.environ["AVJAX_TEST_FULL_DIR"]):
    _calls[0] += 1
    if _calls[0] > int(os.environ["AVJAX_TEST_FULL_AFTER"]):
      return usage._replace(free=1 << 20)
  return usage


shutil.disk_usage = _disk_usage
'''


def run(module, *args, devices=1, prefix=(), **env):
  """Runs `[prefix] python -m <module> args` from the repository root."""
  full = {k: v for k, v in os.environ.items() if k != cli.DEBUG_ENV}
  full.update(PYTHONPATH=REPO, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
              XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  full.update(env)
  return subprocess.run([*prefix, sys.executable, "-m", module,
                         *map(str, args)], capture_output=True, text=True,
                        env=full, cwd=REPO, timeout=600, check=False)


def error_of(proc, prog):
  """The command's error message (first line + continuation lines), after
  checking exit code 2, a single error and no traceback."""
  out = proc.stdout + proc.stderr
  assert "Traceback" not in out, out[-4000:]
  assert proc.returncode == errors.EXIT_USER_ERROR, out[-4000:]
  lines = proc.stderr.splitlines()
  starts = [i for i, l in enumerate(lines) if l.startswith(f"{prog}: error: ")]
  assert len(starts) == 1, proc.stderr[-4000:]
  msg = [lines[starts[0]][len(f"{prog}: error: "):]]
  msg += [l.strip() for l in lines[starts[0] + 1:] if l.startswith("  ")]
  return "\n".join(msg)


def ok(proc):
  out = proc.stdout + proc.stderr
  assert proc.returncode == 0 and "Traceback" not in out, out[-4000:]
  return proc.stderr


def sha1(path):
  with open(path, "rb") as f:
    return hashlib.sha1(f.read()).hexdigest()


@pytest.fixture(scope="module")
def tmp():
  d = tempfile.mkdtemp(prefix="avjax_user_errors_")
  yield d
  shutil.rmtree(d, ignore_errors=True)


def llp_fixture(tmp, name, train=6, val=3, test=3):
  root = os.path.join(tmp, name)
  return root, make_llp_fixture.write_fixture(root, train, val, test)


def edit_table(path, fn):
  """Rewrites a tab-separated annotation file: fn(list of rows) -> rows."""
  with open(path) as f:
    rows = [l.rstrip("\n").split("\t") for l in f]
  with open(path, "w") as f:
    f.write("".join("\t".join(map(str, r)) + "\n" for r in fn(rows)))


def prepare_llp(root, out, *args):
  return run("avjax.prepare", "llp", f"--root={root}", f"--out={out}",
             "--num_shards=2", "--workers=1", "--quiet", *args)


# --------------------------------------------------------------- prepare


@pytest.fixture(scope="module")
def defects(tmp):
  """LLP with: a train row naming an unknown class ('Dragon', line 3), a
  train row without classes (line 5), a missing feature file (another train
  clip), eval rows with onset > offset and offset past 10 s, and a train
  clip listed again in the test split."""
  root, names = llp_fixture(tmp, "llp_defects")
  train = names["train"]
  edit_table(os.path.join(root, "AVVP_train.csv"), lambda rows: [
      r if i not in (2, 4) else [r[0], "Dog,Dragon" if i == 2 else ""]
      for i, r in enumerate(rows)])
  edit_table(os.path.join(root, "AVVP_eval_audio.csv"), lambda rows: rows + [
      [names["test"][0], 7, 3, "Dog"], [names["val"][1], 8, 12, "Cat"]])
  edit_table(os.path.join(root, "AVVP_test_pd.csv"),
             lambda rows: rows + [[train[5], "Speech"]])
  os.remove(os.path.join(root, "feats/vggish", train[2][:11] + ".npy"))
  return root, names


def test_bad_rows_skipped_reported_and_good_clips_written(tmp, defects):
  root, names = defects
  out = os.path.join(tmp, "out_defects")
  err = ok(prepare_llp(root, out))
  train = names["train"]
  assert "skipped 3 train clip(s): bad_annotation 2, missing_file 1" in err
  assert re.search(r"warning: 1 eval row\(s\) have offset <= onset.*"
                   r"AVVP_eval_audio.csv:\d+ .*onset 7, offset 3", err)
  assert re.search(r"warning: 1 eval row\(s\) reach outside \[0, 10\].*"
                   r"onset 8, offset 12", err)
  assert re.search(rf"warning: 1 clip\(s\) are listed in several splits, e.g. "
                   rf"'{train[5]}' in .*AVVP_train.csv and .*AVVP_test_pd.csv",
                   err)
  with open(os.path.join(out, prepare.REPORT_FILE)) as f:
    report = json.load(f)
  skipped = {c["id"]: c for c in report["skipped"]["train"]["clips"]}
  assert set(skipped) == {train[1], train[3], train[2]}
  assert skipped[train[1]]["reason"] == "bad_annotation"
  assert re.search(r"'Dragon' in .*AVVP_train.csv:3",
                   skipped[train[1]]["error"])
  assert re.search(r"AVVP_train.csv:5: empty event_labels",
                   skipped[train[3]]["error"])
  assert skipped[train[2]]["reason"] == "missing_file"
  assert report["annotations"]["summary"]["bad_rows"]["train"] == 2
  # Every good clip is written, and readable.
  good = {"train": [f for i, f in enumerate(train) if i not in (1, 2, 3)],
          "val": names["val"], "test": names["test"] + [train[5]]}
  for split, ids in good.items():
    got = [c["id"] for c in prepare.read_clips(out, split)]
    assert sorted(got) == sorted(ids), split


def test_bad_row_strict_stops(tmp, defects):
  root, _ = defects
  out = os.path.join(tmp, "out_defects_strict")
  msg = error_of(prepare_llp(root, out, "--strict"), "avjax.prepare")
  assert re.search(r"unknown class name 'Dragon' in .*AVVP_train.csv:3; "
                   r"expected one of 25 classes", msg)
  assert "--strict" in msg
  assert not os.path.exists(os.path.join(out, tfrecord.INFO_FILE))


def test_strict_refuses_eval_irregularities(tmp):
  root, names = llp_fixture(tmp, "llp_eval_rows")
  path = os.path.join(root, "AVVP_eval_audio.csv")
  edit_table(path, lambda rows: rows + [[names["test"][0], 7, 3, "Dog"]])
  with open(path) as f:
    line = len(f.readlines())
  msg = error_of(prepare_llp(root, os.path.join(tmp, "out_eval"), "--strict"),
                 "avjax.prepare")
  assert re.search(rf"AVVP_eval_audio.csv:{line}: --strict: clip "
                   rf"'{names['test'][0]}' has onset 7, offset 3: an empty "
                   r"interval", msg)


def test_strict_refuses_ids_in_several_splits(tmp):
  root, names = llp_fixture(tmp, "llp_dupes")
  edit_table(os.path.join(root, "AVVP_val_pd.csv"),
             lambda rows: rows + [[names["train"][0], "Speech"]])
  msg = error_of(prepare_llp(root, os.path.join(tmp, "out_dupes"),
                             "--strict"), "avjax.prepare")
  assert re.search(rf"--strict: 1 clip\(s\) are listed in several splits, "
                   rf"e.g. '{names['train'][0]}' in .*AVVP_train.csv and "
                   r".*AVVP_val_pd.csv", msg)


def test_csv_without_event_labels_column(tmp):
  root, _ = llp_fixture(tmp, "llp_no_column")
  edit_table(os.path.join(root, "AVVP_val_pd.csv"), lambda rows: [
      ["filename", "labels"]] + rows[1:])
  msg = error_of(prepare_llp(root, os.path.join(tmp, "out_no_column")),
                 "avjax.prepare")
  assert re.search(r"AVVP_val_pd.csv:1: header \['filename', 'labels'\] "
                   r"lacks column\(s\) \['event_labels'\]", msg)


def test_empty_csv(tmp):
  root, _ = llp_fixture(tmp, "llp_empty_csv")
  open(os.path.join(root, "AVVP_train.csv"), "w").close()
  msg = error_of(prepare_llp(root, os.path.join(tmp, "out_empty_csv")),
                 "avjax.prepare")
  assert re.search(r"AVVP_train.csv: empty file; expected a header line", msg)


def test_header_only_csv(tmp):  # in-process: the same reader
  root, _ = llp_fixture(tmp, "llp_header_only")
  edit_table(os.path.join(root, "AVVP_test_pd.csv"), lambda rows: rows[:1])
  with pytest.raises(ValueError, match=r"AVVP_test_pd.csv lists no clip"):
    llp.LLPDataset(root)


def test_features_folder_is_a_file(tmp):
  root, _ = llp_fixture(tmp, "llp_feats_file", train=2, val=1, test=1)
  shutil.rmtree(os.path.join(root, "feats/vggish"))
  open(os.path.join(root, "feats/vggish"), "w").close()
  msg = error_of(prepare_llp(root, os.path.join(tmp, "out_feats_file")),
                 "avjax.prepare")
  assert re.search(r"feats/vggish is a file, where feature 'audio' needs a "
                   r"folder: expected .*feats/vggish/<id>.npy", msg)


def test_ave_folder_without_annotation_file(tmp):
  root = os.path.join(tmp, "ave_no_annotations")
  test_ave.write_ave_fixture(root)
  os.remove(os.path.join(root, "AVE_Annotations.txt"))
  proc = run("avjax.prepare", "ave", f"--root={root}",
             f"--out={os.path.join(tmp, 'out_ave_none')}", "--quiet")
  msg = error_of(proc, "avjax.prepare")
  assert re.search(r"ave_no_annotations: no AVE_Annotations.txt \(nor "
                   r"Annotations.txt\); --root must be the AVE folder", msg)


def test_ave_unknown_category_row_skipped(tmp):
  root = os.path.join(tmp, "ave_bad_row")
  test_ave.write_ave_fixture(root)
  for name in ("AVE_Annotations.txt", "AVE_trainSet.txt"):
    path = os.path.join(root, name)
    with open(path) as f:
      text = f.read()
    with open(path, "w") as f:
      f.write(text.replace("Class1&vidBBBBBBBB", "Dragonfly&vidBBBBBBBB"))
  out = os.path.join(tmp, "out_ave_bad_row")
  ok(run("avjax.prepare", "ave", f"--root={root}", f"--out={out}",
         "--quiet", "--workers=1"))
  with open(os.path.join(out, prepare.REPORT_FILE)) as f:
    report = json.load(f)
  # the fixture is the published layout: 3 background-only clips too
  assert report["written"] == {"train": 3, "val": 2, "test": 2,
                               "train_noisy": 3}
  (clip,) = report["skipped"]["train"]["clips"]
  assert clip["id"] == "vidBBBBBBBB" and clip["reason"] == "bad_annotation"
  assert re.search(r"AVE_Annotations.txt:3: unknown class 'Dragonfly'",
                   clip["error"])


def test_debug_env_shows_the_traceback(tmp):
  root = os.path.join(tmp, "ave_debug")
  os.makedirs(root)
  proc = run("avjax.prepare", "ave", f"--root={root}",
             f"--out={os.path.join(tmp, 'out_ave_debug')}", AVJAX_DEBUG="1")
  assert proc.returncode == 1
  assert "Traceback" in proc.stderr
  assert "FileNotFoundError" in proc.stderr


# ------------------------------------------------------- flags and config


def test_unknown_config_key(tmp):
  proc = run("avjax.main", f"--config={HAN}", "--config.nosuchkey=1",
             f"--workdir={tmp}/w")
  msg = error_of(proc, "avjax.main")
  assert msg.startswith("--config.nosuchkey=1: configs/avvp_han.py has no "
                        "field config.nosuchkey; the fields of config: "
                        "batch_size, ")


def test_misspelt_nested_config_key_names_the_nearest(tmp):
  proc = run("avjax.evaluate", f"--config={HAN}", "--config.data.datadir=x",
             f"--workdir={tmp}/w")
  msg = error_of(proc, "avjax.evaluate")
  assert msg == ("--config.data.datadir=x: configs/avvp_han.py has no field "
                 "config.data.datadir; nearest: config.data.data_dir")


def test_debug_flag_shows_the_traceback(tmp):
  proc = run("avjax.main", f"--config={HAN}", "--config.nosuchkey=1",
             f"--workdir={tmp}/w", "--debug")
  assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_config_variant_refused(tmp):
  proc = run("avjax.main", f"--config={HAN}:variant=nosuch",
             f"--workdir={tmp}/w")
  assert error_of(proc, "avjax.main") == (
      "--config=configs/avvp_han.py:variant=nosuch: variant='nosuch'; valid:"
      " ['audio_only', 'han', 'no_hybrid', 'visual_only']")


def test_config_file_not_found(tmp):
  proc = run("avjax.main", "--config=configs/avvp_hna.py", f"--workdir={tmp}")
  assert re.match(r"--config=configs/avvp_hna.py: config file "
                  r"'configs/avvp_hna.py' not found \(relative to ",
                  error_of(proc, "avjax.main"))


def test_bad_flag_value(tmp):
  proc = run("avjax.main", f"--config={HAN}", "--config.batch_size=abc",
             f"--workdir={tmp}/w")
  assert error_of(proc, "avjax.main").startswith(
      "--config.batch_size=abc: invalid literal for int() with base 10: 'abc'")


def test_batch_size_not_a_multiple_of_the_devices(tmp):
  proc = run("avjax.main", f"--config={HAN}:runlocal", "--config.batch_size=3",
             f"--workdir={tmp}/w_batch", devices=2)
  assert error_of(proc, "avjax.main").startswith(
      "batch_size=3 must be a positive multiple of the global device count 2")


def test_score_prediction_of_the_wrong_shape(tmp):
  root, names = llp_fixture(tmp, "llp_score", train=1, val=1, test=2)
  pred = os.path.join(tmp, "pred_wrong.npz")
  np.savez(pred, ids=np.array(names["test"]),
           audio=np.zeros((2, 10, 24), bool), visual=np.zeros((2, 10, 25), bool))
  proc = run("avjax.score", f"--pred={pred}", f"--annotations={root}")
  assert re.match(r"prediction array `audio` has shape \(2, 10, 24\); "
                  r"expected \[N, T, C\] = \(2, 10, 25\)",
                  error_of(proc, "avjax.score"))
  assert proc.stdout == ""


def test_analysis_tool_missing_input(tmp):
  proc = run("avjax.projects.veba.curve", f"--sweep={tmp}/no_sweep")
  assert error_of(proc, "avjax.projects.veba.curve") == (
      f"{tmp}/no_sweep/table.json: No such file or directory; check the path")


# ------------------------------------------------- the boundary, in-process


def test_boundary_classifies_errors(tmp):
  def raises(e):
    def fn(argv):
      raise e
    return fn

  def project_value_error(argv):
    from avjax.data.readers import single_label  # pylint: disable=g-import-not-at-top
    single_label.parse_streams("audio")

  assert cli.call(project_value_error, [], "t") == 2
  assert cli.call(raises(errors.UserError("x")), [], "t") == 2
  assert cli.call(raises(FileNotFoundError(2, "No such file", "/x")), [],
                  "t") == 2
  assert cli.call(raises(RuntimeError("RESOURCE_EXHAUSTED: No space left on "
                                      "device")), [], "t") == 2
  with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
    cli.call(lambda argv: 1 / 0, [], "t")
  with pytest.raises(ValueError):  # raised by a library, not by avjax
    cli.call(lambda argv: np.zeros(-1), [], "t")
  with pytest.raises(errors.UserError):
    cli.call(raises(errors.UserError("x")), ["--debug"], "t")


def test_unknown_key_lists_the_nearest():
  import ml_collections  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict({"batch_size": 1, "data": {"data_dir": ""}})
  assert cli.unknown_key(c, "data.data_dir") is None
  assert cli.unknown_key(c, "bach_size") == (
      "no field config.bach_size; nearest: config.batch_size")
  assert cli.unknown_key(c, "data_dir") == (
      "no field config.data_dir; nearest: config.data, config.data.data_dir")
  assert cli.unknown_key(c, "batch_size.x") == (
      "config.batch_size is a value (int), not a group of fields")


# ------------------------------------------------------ training (slow)


@pytest.fixture(scope="module")
def llp_tf(tmp):
  root, _ = llp_fixture(tmp, "llp_train", train=8, val=4, test=4)
  out = os.path.join(tmp, "llp_train_tf")
  ok(prepare_llp(root, out))
  return root, out


def train_args(data_dir, workdir, *extra, variant="han"):
  return [f"--config={HAN}:data=llp,runlocal,variant={variant}",
          f"--config.data.data_dir={data_dir}", "--config.batch_size=2",
          "--config.eval_batch_size=4", "--config.num_epochs=1",
          f"--workdir={workdir}", *extra]


@pytest.fixture(scope="module")
def trained(tmp, llp_tf):
  workdir = os.path.join(tmp, "trained")
  ok(run("avjax.main", *train_args(llp_tf[1], workdir)))
  return workdir


@pytest.mark.slow
def test_corrupt_shard_named_and_rebuilt_as_told(tmp, llp_tf):
  out = os.path.join(tmp, "llp_corrupt_tf")
  ok(prepare_llp(llp_tf[0], out))
  shard = os.path.join(out, "train-00000-of-00002.tfrecord")
  before, offsets = sha1(shard), pipeline.record_offsets(shard)
  data = bytearray(open(shard, "rb").read())
  data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
  open(shard, "wb").write(bytes(data))
  proc = run("avjax.main", *train_args(out, os.path.join(tmp, "w_corrupt")))
  msg = error_of(proc, "avjax.main")
  m = re.match(rf"corrupt TFRecord file\(s\): {shard} \(clip (\d) of the "
               r"file, at byte (\d+): ", msg)
  assert m and offsets[int(m.group(1)) - 1] == int(m.group(2)), msg
  m = re.search(r"To rebuild it, delete the damaged file and run the command "
                r"that wrote the dataset again \(from (\S+)\): (python -m "
                r"avjax\.prepare .*) -- it rewrites only missing or "
                r"incomplete shards\.", msg)
  assert m, msg
  os.remove(shard)  # as told
  err = ok(run(*shlex.split(m.group(2))[2:]))
  assert "5 shard(s) were already complete" in err
  assert sha1(shard) == before


@pytest.mark.slow
def test_checkpoint_of_another_model(trained, llp_tf):
  proc = run("avjax.evaluate", *train_args(llp_tf[1], trained,
                                           variant="no_hybrid"))
  msg = error_of(proc, "avjax.evaluate")
  assert re.match(rf"the checkpoint in {trained}/best/4 was made by a "
                  r"different model or data configuration:", msg)
  assert "cross_attention" in msg
  assert "Pass the --config it was trained with" in msg


@pytest.mark.slow
def test_unreadable_workdir(tmp, llp_tf):
  prefix = ()
  if os.geteuid() == 0:  # root ignores file modes unless it drops that right
    prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    if not shutil.which("setpriv") or subprocess.run(
        [*prefix, "true"], capture_output=True, check=False).returncode:
      pytest.skip("running as root without setpriv: modes are not enforced")
  workdir = os.path.join(tmp, "w_locked")
  os.makedirs(workdir)
  os.chmod(workdir, 0)
  try:
    proc = run("avjax.evaluate", *train_args(llp_tf[1], workdir),
               prefix=prefix)
  finally:
    os.chmod(workdir, 0o755)
  assert error_of(proc, "avjax.evaluate") == (
      f"{workdir}/checkpoints: Permission denied; check its permissions "
      "(ls -ld): the command must read it, and write it if it is an output")


@pytest.mark.slow
def test_disk_full_during_checkpoint_write_loses_nothing(tmp, llp_tf):
  hook = os.path.join(tmp, "disk_full_hook")
  os.makedirs(hook)
  with open(os.path.join(hook, "sitecustomize.py"), "w") as f:
    f.write(SITECUSTOMIZE_DISK_FULL)
  workdir = os.path.join(tmp, "w_full")
  # Epoch 1 saves best/4 and checkpoints/4; then the disk is full.
  proc = run("avjax.main", *train_args(llp_tf[1], workdir),
             "--config.num_epochs=2", PYTHONPATH=f"{hook}:{REPO}",
             AVJAX_TEST_FULL_DIR=workdir, AVJAX_TEST_FULL_AFTER="2")
  msg = error_of(proc, "avjax.main")
  assert re.match(rf"no space left for the checkpoint of step 8 in {workdir}/"
                  r"(best|checkpoints): it needs about [\d.]+ MiB, the disk "
                  r"has 1.0 MiB free. Nothing was written", msg)
  assert msg.endswith(f"holds step 4).")
  for sub in ("checkpoints", "best"):  # the last checkpoints are complete
    assert os.listdir(os.path.join(workdir, sub)) == ["4"]


@pytest.mark.slow
def test_disk_full_on_a_real_tiny_file_system(tmp, llp_tf):
  mount = os.path.join(tmp, "tiny_fs")
  os.makedirs(mount)
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs",
                     mount], capture_output=True, check=False).returncode:
    pytest.skip("cannot mount a tmpfs here (needs root)")
  try:
    proc = run("avjax.main", *train_args(llp_tf[1], f"{mount}/w"))
  finally:
    subprocess.run(["umount", mount], check=False)
  assert re.match(rf"no space left for the checkpoint of step 4 in {mount}/w"
                  r"/best: it needs about [\d.]+ MiB, the disk has 0.\d MiB "
                  r"free", error_of(proc, "avjax.main"))

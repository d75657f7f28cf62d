"""avjax.parity: protocol arguments, official-output parsing, the report
writer on fabricated runs, setup errors; export through the harness; one slow
official run when the official code and a torch interpreter are here."""

import json
import os
import stat
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from avjax import parity
from avjax.data import llp_export
from configs import avvp_han

OFFICIAL_DIR = os.environ.get("AVJAX_OFFICIAL_DIR",
                              "/work/scratch/AVVP-ECCV20")
TORCH_PYTHONS = [p for p in (os.environ.get("AVJAX_TORCH_PYTHON"),
                             "/work/scratch/tvenv/bin/python",
                             sys.executable) if p]


def tiny_config(**data):
  c = avvp_han.get_config()
  c.data.synthetic.update(num_train=12, num_val=6, num_test=6, **data)
  c.num_epochs = 1
  c.batch_size = 4
  return c


def _scores(base):
  return {k: base + i for i, k in enumerate(parity.KEYS)}


def fake_run(side, seed, base, epochs=3):
  val = [_scores(base + e) for e in range(epochs)]
  return {"side": side, "seed": seed, "val": val,
          "test_best": _scores(base), "test_final": _scores(base + 1),
          "best_epoch": epochs, "best_val_seg_type": val[-1]["seg_type"],
          "lr_per_epoch": [3e-4] * epochs,
          "wall_s": {"train": 10.0 + seed, "total": 12.0 + seed}}


# ------------------------------------------------------------- protocol


def test_protocol_and_official_arguments():
  c = avvp_han.get_config("data=llp")
  p = parity.protocol(c)
  assert p == {"epochs": 40, "batch_size": 16, "lr": 3e-4, "step_size": 10,
               "gamma": 0.1}
  args = parity.official_args(p, seed=3)
  pairs = dict(zip(args[::2], args[1::2]))
  assert pairs == {
      "--audio_dir": "data/feats/vggish/", "--video_dir": "data/feats/res152/",
      "--st_dir": "data/feats/r2plus1d_18/",
      "--label_train": "data/AVVP_train.csv",
      "--label_val": "data/AVVP_val_pd.csv",
      "--label_test": "data/AVVP_test_pd.csv", "--epochs": "40",
      "--batch-size": "16", "--lr": "0.0003", "--seed": "3"}
  cmd = parity.official_command("py", "/off", "/run", p, 3)
  assert cmd[:2] == ["py", parity.RUNNER]
  assert "--step_size=10" in cmd and "--gamma=0.1" in cmd
  assert cmd[cmd.index("--") + 1:] == args


def test_protocol_follows_overrides_and_refuses_the_impossible():
  c = avvp_han.get_config()  # synthetic: 6 epochs, decay after 4
  c.optim.lr = 1e-3
  assert parity.protocol(c)["step_size"] == 4
  assert parity.protocol(c)["lr"] == 1e-3
  d = c.to_dict()
  d["optim"]["decay_every_epochs"] = 2.5  # the config field is an int
  with pytest.raises(parity.SetupError, match="whole number"):
    parity.protocol(ml_collections.ConfigDict(d))
  c.max_steps = 100
  with pytest.raises(parity.SetupError, match="max_steps"):
    parity.protocol(c)


def test_config_differences():
  assert parity.config_differences(avvp_han.get_config()) == []
  c = avvp_han.get_config("runlocal")  # d_model 64
  assert any("model.d_model=64" in d for d in parity.config_differences(c))


def test_avjax_config_replaces_only_the_data_block():
  c = avvp_han.get_config()
  a = parity.avjax_config(c, 7, "/data/x")
  assert (a.seed, a.data.name, a.data.data_dir) == (7, "llp", "/data/x")
  assert a.data.shuffle_buffer == c.data.shuffle_buffer
  assert a.model.to_dict() == c.model.to_dict()
  assert (a.num_epochs, a.optim.lr) == (c.num_epochs, c.optim.lr)


# ------------------------------------------------------------- parsing

LOG = """#### parity phase: train
Train Epoch: 1 [0/12 (0%)]\tLoss: 2.2
{block1}
#### parity phase: test_best
{block2}
"""


def _block(base):
  return "\n".join(f"{prefix} {base + i:.1f}"
                   for i, (_, prefix) in enumerate(parity.PRINTED))


def test_parse_official_log():
  text = LOG.format(block1=_block(10) + "\n" + _block(20), block2=_block(5))
  out = parity.parse_official_log(text)
  assert [b["seg_a"] for b in out["train"]] == [10.0, 20.0]
  assert out["train"][1]["ev_event"] == 29.0
  assert out["test_best"] == [_scores(5)]
  bad = "\n".join(_block(1).splitlines()[1:])  # starts with seg_v
  with pytest.raises(ValueError, match="unexpected score line"):
    parity.parse_official_log(bad)


def test_best_epoch_official_keeps_the_last_tie():
  assert parity.best_epoch_official([5.0, 7.0, 7.0, 6.0]) == 3
  assert parity.best_epoch_official([0.0]) == 1


# ------------------------------------------------------------- report


def test_report_on_fabricated_runs(tmp_path):
  results = {"official": {s: fake_run("official", s, 40.0 + s)
                          for s in (0, 1, 2)},
             "avjax": {s: fake_run("avjax", s, 41.0 + 2 * s)
                       for s in (0, 1, 2)}}
  summary = parity.summarize(results)
  row = summary["best"]["seg_a"]
  assert row["official"]["mean"] == pytest.approx(41.0)
  assert row["official"]["sd"] == pytest.approx(1.0)
  assert row["avjax"]["mean"] == pytest.approx(43.0)
  assert row["avjax"]["sd"] == pytest.approx(2.0)
  assert row["diff"] == pytest.approx(2.0)
  assert row["se"] == pytest.approx(np.sqrt(1 / 3 + 4 / 3))
  assert summary["final"]["seg_a"]["official"]["mean"] == pytest.approx(42.0)
  assert summary["val"]["avjax"]["best_val_seg_type"]["n"] == 3
  c = avvp_han.get_config()
  info = {"protocol": parity.protocol(c), "data": "fake",
          "config_differences": ["config.model.d_model=64 (official: 512)"],
          "loop_differences": parity.loop_differences(c, 17, results),
          "no_event_test": _scores(1.0)}
  parity.write_report(str(tmp_path), results, info)
  md = (tmp_path / "parity.md").read_text()
  assert "| seg_a | 41.0 ± 1.0 | 43.0 ± 2.0 | +2.0 (+1.5 se) | 1.0 |" in md
  assert "| seg_type | " in md and "| ev_event | " in md
  assert "final-epoch" in md and "best-on-val" in md
  assert "d_model=64" in md
  assert "picked that epoch on every seed" in md
  assert "learning rate of each epoch identical" in md
  assert "last partial batch of 1 clips" in md
  assert "| train | 11 ± 1 | 11 ± 1 |" in md
  data = json.loads((tmp_path / "parity.json").read_text())
  assert data["summary"]["best"]["seg_a"]["diff"] == pytest.approx(2.0)
  assert set(data["runs"]["avjax"]) == {"0", "1", "2"}
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top,unused-import
    assert (tmp_path / "parity_curves.png").stat().st_size > 0
    assert "parity_curves.png" in md
  except ImportError:
    assert "| 3 | " in md  # the curves as a table


def test_report_with_one_side_only(tmp_path):
  results = {"official": {0: fake_run("official", 0, 40.0)}, "avjax": {}}
  parity.write_report(str(tmp_path), results, {"protocol": {}})
  md = (tmp_path / "parity.md").read_text()
  assert "| seg_a | 40.0 | - | - |" in md


# ------------------------------------------------------------- errors


def test_official_dir_errors(tmp_path):
  with pytest.raises(parity.SetupError, match="git clone"):
    parity.check_official_dir(None)
  (tmp_path / "dataloader.py").write_text("")
  with pytest.raises(parity.SetupError) as e:
    parity.check_official_dir(str(tmp_path))
  assert "main_avvp.py" in str(e.value) and "dataloader.py" not in str(
      e.value).split("lacks")[1].split(";")[0]
  assert "git clone https://github.com/YapengTian/AVVP-ECCV20" in str(e.value)


def test_missing_torch_errors(tmp_path, monkeypatch):
  fake = tmp_path / "python"
  fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named "
                  "'torch'\" >&2\nexit 1\n")
  fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
  with pytest.raises(parity.SetupError) as e:
    parity.find_python(str(fake))
  assert "pip install torch==2.13.0" in str(e.value)
  assert "No module named 'torch'" in str(e.value)
  with pytest.raises(parity.SetupError, match="cannot be run"):
    parity.find_python(str(tmp_path / "nothing"))
  monkeypatch.setattr(parity.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(parity.SetupError) as e:
    parity.find_python(None)
  assert "--python=" in str(e.value) and "torch==2.13.0" in str(e.value)


def test_setup_errors_come_before_any_work(tmp_path):
  work = tmp_path / "work"
  with pytest.raises(parity.SetupError, match="main_avvp.py"):
    parity.run(tiny_config(), str(work), [0], ["official"],
               official_dir=str(tmp_path))
  assert not work.exists()
  with pytest.raises(parity.SetupError, match="unknown"):
    parity.run(tiny_config(), str(work), [0], ["torch"])


# ------------------------------------------------------------- export


def test_export_only_and_pinned_setup(tmp_path):
  c = tiny_config()
  c.data.cache_dir = str(tmp_path / "cache")
  work = str(tmp_path / "work")
  assert parity.run(c, work, [0], ["official", "avjax"],
                    export_only=True) is None
  root = os.path.join(work, "export", "data")
  with open(os.path.join(root, llp_export.SUMMARY_FILE)) as f:
    assert json.load(f)["num_clips"] == {"train": 12, "val": 6, "test": 6}
  assert not os.path.exists(os.path.join(work, "avjax_data"))
  none = parity.no_event_scores(root, "test")
  assert set(none) == set(parity.KEYS) and none["seg_event"] == 0.0
  c.num_epochs = 2
  with pytest.raises(parity.SetupError, match="another --workdir"):
    parity.run(c, work, [0], ["official"], export_only=True)


# ------------------------------------------------------------- slow


def _torch_python():
  for p in TORCH_PYTHONS:
    try:
      return parity.find_python(p)
    except parity.SetupError:
      continue
  return None


def official_or_skip(check=parity.check_official_dir, path=OFFICIAL_DIR,
                     what="HAN", env="AVJAX_OFFICIAL_DIR"):
  """(official checkout, torch Python), or the test is skipped saying
  which is missing."""
  try:
    official = check(path)
  except parity.SetupError:
    pytest.skip(f"no official {what} code at {path} ({env})")
  python = _torch_python()
  if python is None:
    pytest.skip("no Python with torch, numpy and pandas (AVJAX_TORCH_PYTHON)")
  return official, python


@pytest.mark.slow
def test_official_one_epoch_run(tmp_path):
  official, python = official_or_skip()
  c = tiny_config()
  c.data.cache_dir = str(tmp_path / "cache")
  work = str(tmp_path / "work")
  summary = parity.run(c, work, [0], ["official"], official_dir=official,
                       python=python)
  with open(os.path.join(work, "official", "seed_0", parity.RESULT)) as f:
    res = json.load(f)
  assert len(res["val"]) == 1 and res["best_epoch"] == 1
  assert set(res["test_best"]) == set(parity.KEYS)
  assert res["lr_per_epoch"] == [pytest.approx(3e-4)]
  assert summary["best"]["seg_type"]["official"]["n"] == 1
  assert os.path.exists(os.path.join(work, "official", "seed_0", "final.pt"))
  # Resumable: a second call reads the finished seed.
  log = os.path.join(work, "official", "seed_0", "official.log")
  mtime = os.path.getmtime(log)
  parity.run(c, work, [0], ["official"], official_dir=official, python=python)
  assert os.path.getmtime(log) == mtime
  subprocess.run([python, parity.RUNNER, "--help"], check=True,
                 capture_output=True)

"""llp_export: any dataset -> LLP's published layout -> `prepare llp` ->
the same clips (round trip), and refusals of what the official code cannot
read."""

import csv
import os
import re

import numpy as np
import pytest

from avjax import prepare
from avjax.data import datasets
from avjax.data.readers import llp
from avjax.data.readers import llp_annotations
from avjax.data import llp_export
from avjax.data.synthetic import avvp as synthetic
from tests import testing_utils

CFG = synthetic.SyntheticConfig(num_train=12, num_val=6, num_test=6)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("export")
  source = datasets.materialize_synthetic(CFG, str(tmp / "cache"), 2)
  root = str(tmp / "export" / "data")
  summary = llp_export.export(source, root)
  return source, root, summary


def _table(path):
  with open(path) as f:
    return list(csv.reader(f, delimiter="\t"))


def test_layout(exported):
  _, root, summary = exported
  assert summary["num_clips"] == {"train": 12, "val": 6, "test": 6}
  assert summary["renamed"]
  names = {}
  for split, fname in llp_annotations.SPLIT_FILES.items():
    rows = _table(os.path.join(root, fname))
    assert rows[0] == ["filename", "event_labels"]
    names[split] = [r[0] for r in rows[1:]]
    assert len(names[split]) == summary["num_clips"][split]
    for name, labels in rows[1:]:
      assert re.match(r"^[A-Za-z0-9_-]{11}_\d+_\d+$", name)
      assert labels and all(n in llp.classes_lib.LLP_CLASSES
                            for n in labels.split(","))
  for modality in ("audio", "visual"):
    rows = _table(os.path.join(root, f"AVVP_eval_{modality}.csv"))
    assert rows[0] == ["filename", "onset", "offset", "event_labels"]
    assert {r[0] for r in rows[1:]} <= set(names["val"] + names["test"])
    assert all(0 <= int(r[1]) < int(r[2]) <= 10 for r in rows[1:])
  stem = names["train"][0][:11]
  for folder, shape in (("feats/vggish", (10, 128)),
                        ("feats/res152", (80, 2048)),
                        ("feats/r2plus1d_18", (10, 512))):
    x = np.load(os.path.join(root, folder, stem + ".npy"))
    assert x.shape == shape and x.dtype == np.float32
  ids = llp_export.read_ids(root)
  assert sorted(ids.values()) == sorted(
      f"synthetic_{s}_{i:06d}" for s in ("train", "val", "test")
      for i in range(CFG.num_clips(s)))


def test_round_trip_through_prepare_llp(exported, tmp_path):
  _, root, _ = exported
  out = str(tmp_path / "prepared")
  assert prepare.main(["llp", f"--root={root}", f"--out={out}", "--strict",
                       "--quiet", "--num_shards=2", "--workers=1"]) == 0
  ids = llp_export.read_ids(root)
  for split in ("train", "val", "test"):
    truth = {c["id"]: c for c in synthetic.generate_split(CFG, split)}
    got = list(prepare.read_clips(out, split))
    assert len(got) == len(truth)
    for clip in got:
      want = truth[ids[clip["id"]]]
      for k in ("audio", "visual", "motion"):
        np.testing.assert_array_equal(clip[k], want[k])
      np.testing.assert_array_equal(clip["labels"], want["labels"])
      if split != "train":
        for k in ("seg_audio", "seg_visual", "audio_labels",
                  "visual_labels"):
          np.testing.assert_array_equal(clip[k], want[k], err_msg=k)


def test_train_modality_labels(exported):
  _, root, summary = exported
  assert summary["modality_labels"] == llp_export.MODALITY_FILE
  side = llp_export.read_modality_labels(root)
  ids = llp_export.read_ids(root)
  truth = {c["id"]: c for c in synthetic.generate_split(CFG, "train")}
  assert len(side) == CFG.num_train
  for filename, (audio, visual) in side.items():
    clip = truth[ids[filename]]
    assert audio == llp_export.label_names(clip["audio_labels"],
                                           llp.classes_lib.LLP_CLASSES)
    assert visual == llp_export.label_names(clip["visual_labels"],
                                            llp.classes_lib.LLP_CLASSES)


def test_existing_export_is_kept(exported):
  source, root, summary = exported
  assert llp_export.export(source, root) == summary


def test_event_rows():
  seg = np.zeros((10, 3), np.uint8)
  seg[0:2, 0] = seg[5:10, 0] = seg[3, 2] = 1
  assert llp_export.event_rows("f", seg, ("A", "B", "C")) == [
      ("f", 0, 2, "A"), ("f", 5, 10, "A"), ("f", 3, 4, "C")]


def test_refuses_what_the_official_code_cannot_read(tmp_path):
  d = str(tmp_path / "fake")
  testing_utils.write_fake_dataset(d, {"train": 8, "val": 4, "test": 4},
                                   num_shards=1)
  with pytest.raises(ValueError) as e:
    llp_export.export(d, str(tmp_path / "out"))
  msg = str(e.value)
  assert "not LLP classes" in msg and "`audio` is 1 x [6]" in msg
  assert "segments" in msg
  assert not os.path.exists(str(tmp_path / "out"))

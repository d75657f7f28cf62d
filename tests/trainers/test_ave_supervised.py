"""AVE localization trains end to end on the published AVE layout (h5 +
annotation txt files, converted by `avjax.prepare`), full and weak; the
restored best checkpoint reproduces the final numbers."""

import json
import os
import tempfile

from absl.testing import absltest
import pytest
import h5py
import numpy as np

from avjax import prepare
from avjax.data.readers import ave
from avjax.data.synthetic import ave as synthetic_ave
from avjax.trainers import ave_supervised
from avjax.trainers import loop
from configs import ave as ave_config

pytestmark = pytest.mark.slow  # trains AVE models end to end

SIZES = {"train": 16, "val": 8, "test": 8}
NOISY = 8


def _h5(path, array, key="avadataset"):
  with h5py.File(path, "w") as f:
    f.create_dataset(key, data=array)


def write_ave_layout(root: str) -> dict:
  """Synthetic clips written in AVE's published layout; returns layouts."""
  cfg = synthetic_ave.SyntheticAVEConfig(seed=1)
  rows, feats, lays, order = [], [], [], {}
  for split, n in SIZES.items():
    order[split] = list(range(len(rows), len(rows) + n))
    for i in range(n):
      clip, lay = synthetic_ave.make_clip(cfg, split, i)
      rows.append(f"{synthetic_ave.AVE_CLASSES[lay['class']]}&"
                  f"v{split[:2]}{i:08d}&good&{lay['start']}&{lay['end']}")
      feats.append(clip)
      lays.append(lay)
  with open(os.path.join(root, "AVE_Annotations.txt"), "w") as f:
    f.write("Category&VideoID&Quality&StartTime&EndTime\n" +
            "\n".join(rows) + "\n")
  with open(os.path.join(root, "AVE_categories.txt"), "w") as f:
    f.write("\n".join(synthetic_ave.AVE_CLASSES) + "\n")
  for split, idx in order.items():
    with open(os.path.join(root, f"AVE_{split}Set.txt"), "w") as f:
      f.write("".join(rows[i] + "\n" for i in idx))
  for key, name in (("audio", "audio_feature"),
                    ("visual_map", "visual_feature"),
                    ("visual_vec", "visual_feature_vec")):
    _h5(os.path.join(root, name + ".h5"), np.stack([c[key] for c in feats]))
  _h5(os.path.join(root, "labels.h5"),
      np.stack([c["seg_audio"] for c in feats]).astype(np.float32))
  noisy = [synthetic_ave.make_clip(cfg, "train_noisy", i)[0]
           for i in range(NOISY)]
  for key, name in (("audio", "audio_feature"),
                    ("visual_map", "visual_feature"),
                    ("visual_vec", "visual_feature_vec")):
    _h5(os.path.join(root, name + "_noisy.h5"),
        np.stack([c[key] for c in noisy]))
  return {"layouts": lays, "order": order}


def converted_fixture():
  """(converted dataset dir, layouts) of a fresh AVE-layout fixture."""
  root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
  fixture = write_ave_layout(root)
  ds = ave.AVEDataset(root, visual_vec="yes", noisy="yes")
  prepare.convert(ds, out, num_shards=2, progress=False)
  return out, fixture


def tiny_config(data_dir, arg="runlocal"):
  """The synthetic smoke config with only the data block (and sizes)
  changed."""
  c = ave_config.get_config(arg)
  c.data.name, c.data.data_dir = "ave", data_dir
  c.model.update(lstm_hidden=8, att_dim=8, fusion_dim=16, head_hidden=8)
  c.batch_size = c.eval_batch_size = 8
  c.num_epochs, c.log_every_steps = 2, 1
  return c


class AVESupervisedTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data, cls.fixture = converted_fixture()
    cls.workdir = tempfile.mkdtemp()
    cls.summary = ave_supervised.train_and_evaluate(
        tiny_config(cls.data, "runlocal,fusion=dmrn"), cls.workdir)

  def test_trains_and_scores_every_clip(self):
    test = self.summary["results"]["test"]
    self.assertEqual(test["num_clips"], SIZES["test"])
    self.assertBetween(test["acc"], 0.0, 100.0)
    self.assertEqual(self.summary["step"] % 2, 0)  # 2 steps an epoch
    self.assertTrue(os.path.exists(os.path.join(self.workdir,
                                                "pred_test.npz")))
    pred = np.load(os.path.join(self.workdir, "pred_test.npz"))
    self.assertEqual(pred["attention"].shape, (SIZES["test"], 10, 49))
    np.testing.assert_allclose(pred["attention"].sum(-1), 1.0, atol=1e-4)

  def test_restored_best_reproduces_final_numbers(self):
    again = ave_supervised.evaluate_checkpoint(
        tiny_config(self.data, "runlocal,fusion=dmrn"), self.workdir, "best")
    self.assertEqual(again["results"], self.summary["results"])

  def test_weak_training_adds_background_clips(self):
    c = tiny_config(self.data, "runlocal,variant=v_att,weak")
    s = loop.setup(c, trainer=ave_supervised.TRAINER)
    self.assertEqual(s.train_src.num_clips, SIZES["train"] + NOISY)
    self.assertEqual(s.steps_per_epoch, 3)
    c.num_epochs = 1
    res = ave_supervised.train_and_evaluate(c, tempfile.mkdtemp())
    self.assertEqual(res["step"], 3)
    self.assertBetween(res["results"]["test"]["acc"], 0.0, 100.0)

  def test_reference_protocol_validation_cadence_and_ties(self):
    # data=ave: fixed order, validation after 0-based epochs 0, 5, 10, ...
    # and a tie keeps the earlier checkpoint (supervised_main.py's
    # `val_acc > best_val_acc`); lr ~0 makes every validation a tie.
    c = tiny_config(self.data, "runlocal,data=ave,variant=a")
    self.assertEqual((c.data.order, c.eval.every_epochs,
                      c.eval.tie_replaces_best, c.optim.decay_every_steps),
                     ("fixed", 5, False, 15000))
    c.num_epochs, c.optim.lr = 7, 1e-12
    steps = {}
    for ties in (False, True):
      c.eval.tie_replaces_best = ties
      w = tempfile.mkdtemp()
      res = ave_supervised.train_and_evaluate(c, w)
      with open(os.path.join(w, "metrics.jsonl")) as f:
        val = [r for r in map(json.loads, f) if "val/acc" in r]
      self.assertEqual([r["step"] for r in val], [2, 12])
      self.assertEqual(val[0]["val/acc"], val[1]["val/acc"])
      steps[ties] = res["step"]
      self.assertTrue(os.path.isdir(os.path.join(w, "checkpoints", "14")))
    self.assertEqual(steps, {False: 2, True: 12})

  def test_config_errors(self):
    c = tiny_config(self.data)
    c.loss.type = "ranking"
    c.model.stage = "middle"
    with self.assertRaisesRegex(ValueError, r"(?s)loss.type='ranking'.*"
                                r"model.stage='middle'"):
      loop.setup(c, trainer=ave_supervised.TRAINER)


if __name__ == "__main__":
  absltest.main()

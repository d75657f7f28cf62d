"""The config.json of a trained run, as this code reads it.

Runs written before a config field existed lack it; `read_config` adds each
such field with the behaviour those runs had (the code's default then), so
that any run, old or new, can be restored, scored and parsed. Part of the
shared loop (`avjax.trainers.loop` re-exports `read_config`).
"""

import os

import ml_collections

from avjax.utils import writers

# Fields the code reads that the config.json of runs written before they
# were config keys lacks, with the behaviour those runs had (the code's
# default then); `read_config` adds them.
LEGACY_FIELDS = {
    "checkpoint_every_steps": 0, "max_steps": 0, "restart": False,
    "data.extra_train_splits": (), "data.batch_unit": "clip",
    "loss.dropped_target": "negative", "loss.global_drops_with_audio": False,
    "loss.grl_scale": 1.0, "loss.video_label_fraction": 1.0,
    "loss.use_modality_labels": False,
}
LEGACY_BY_TRAINER = {  # the trainer's components before they had names
    "ave_supervised": {"eval.evaluator": "ave_acc"},
    "avdln": {"eval.evaluator": "ave_cml"},
    "event_heads": {"loss.type": "event_heads",
                    "eval.evaluator": "event_heads"},
}
LEGACY_RENAMED = {"eval.evaluator": {"avvp": "avvp_f1"}}


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config.json of a run, upgraded to the fields this code reads
  (`LEGACY_FIELDS`: a run written before a field existed had its old
  default) so that any run, old or new, can be restored and scored."""
  c = writers.read_json(os.path.join(workdir, "config.json"))
  legacy = {**LEGACY_FIELDS, "eval.evaluator": "avvp_f1",
            **LEGACY_BY_TRAINER.get(c.get("trainer"), {})}
  if c.get("model", {}).get("name") == "avvp_net":
    legacy.update({"model.shared_fc": False,
                   "model.gcaa_first_segment": False,
                   "model.disc_norm": "layer", "model.disc_relu": False})
  if c.get("model", {}).get("name") in ("avdln", "ave_net"):
    legacy["model.init_scheme"] = "flax"
  if c.get("model", {}).get("name") == "avdln":
    legacy["model.distance_floor"] = "add"
  if "avg" in c:  # AVG runs before the link rules had names
    legacy.update({"avg.link": "any", "avg.silence_threshold": 2.0})
  for key, value in legacy.items():
    *parents, leaf = key.split(".")
    node = c
    for part in parents:
      node = node.setdefault(part, {})
    node.setdefault(leaf, value)
    if key in LEGACY_RENAMED:
      node[leaf] = LEGACY_RENAMED[key].get(node[leaf], node[leaf])
  return ml_collections.ConfigDict(c)

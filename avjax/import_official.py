r"""Imports an official release's weights as an avjax run, to evaluate or parse.

  python -m avjax.import_official --config=configs/avvp_han.py:data=llp \
      --config.data.data_dir=LLP_TFRECORDS --weights=MMIL_Net.pt --workdir=DIR

converts the weights with `avjax.models.convert_torch` and writes DIR as a
trained run would leave it (`config.json`, `best/` and `checkpoints/` at
step 0, `imported.json` naming the file and its SHA-256), then scores the
config's val and test splits (`eval_best.json/.md`, `--splits=` to choose,
`--noevaluate` to skip). Afterwards the run is used like any other:

  python -m avjax.evaluate --config=... --workdir=DIR
  python -m avjax.parse VIDEOS... --workdir=DIR      (AVVP networks)

Sources (`--source`, by default from the config):

  han         AVVP-ECCV20 MMIL_Net state_dict (.pt, or .npz of it without
              torch)                              configs/avvp_han.py
  ma          Modaily-Aware AVVP MMIL_Net (HAN + unused modules)
                                                  configs/avvp_ma.py
  crossmodal  Cross-Modal-learning MMIL_Net (params + BatchNorm statistics)
                                                  configs/avvp_crossmodal.py
              (form=reference)
  ave_att     AVE-ECCV18 att_Net                  configs/ave.py:data=ave
  ave_dmrn    AVE-ECCV18 TBMRF_Net, one block     configs/ave.py:data=ave,
                                                  fusion=dmrn
  avdln       AVE-ECCV18 cmm_model_weights.h5 (Keras)
                                                  configs/ave_cml.py:data=ave

The converted parameters must have exactly the shapes of the config's model
(the reference forms); a mismatch names the differing parameters. An
imported MA network is one model, so the run trains nothing and is scored
with the single-run AVVP trainer (`config.trainer=avvp_weak`).
"""

import hashlib
import os
from typing import Any, Dict, Tuple

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from avjax import errors
from avjax.models import convert_torch
from avjax.trainers import loop
from avjax.trainers import registry as trainers
from avjax.trainers import run_checkpoints
from avjax.utils import checkpointing
from avjax.utils import cli
from avjax.utils import runtime
from avjax.utils import writers

SOURCES = ("han", "ma", "crossmodal", "ave_att", "ave_dmrn", "avdln")
# Pipelines whose imported network is scored as one run of this trainer.
SINGLE_RUN_TRAINER = {"ma_pipeline": "avvp_weak", "avg_pipeline": "avvp_weak"}



class ImportRefused(errors.UserError):
  """Weights that do not fit the config, or a workdir in use."""


def source_of(config) -> str:
  """The release a config's model corresponds to."""
  name = config.model.name
  if name == "avdln":
    return "avdln"
  if name == "ave_net":
    return "ave_dmrn" if config.model.fusion == "dmrn" else "ave_att"
  if name == "avvp_net":
    if config.trainer == "ma_pipeline" or "ma" in config:
      return "ma"
    return "crossmodal" if config.loss.type == "crossmodal" else "han"
  raise ImportRefused(f"config.model.name={name!r}: no official release "
                     f"converts to it (sources: {', '.join(SOURCES)})")


def convert(source: str, path: str, config) -> Dict[str, Any]:
  """The weights file -> avjax variables {"params": ..., [collections]}."""
  if source == "avdln":
    return {"params": convert_torch.convert_avdln(
        convert_torch.load_keras_h5(path))}
  sd = convert_torch.load_torch_checkpoint(path)
  if source in ("han", "ma"):
    fn = convert_torch.convert_han if source == "han" else (
        convert_torch.convert_ma)
    out = fn(sd, fused=config.model.fused_attention,
             num_heads=config.model.num_heads)
    return {"params": out.params}
  if source == "crossmodal":
    return dict(convert_torch.convert_crossmodal(sd).variables)
  return {"params": convert_torch.convert_ave(
      sd, "dmrn" if source == "ave_dmrn" else "att")}


def _fit(new, old, where: str):
  """`new` placed like `old` (same tree and shapes), or a named refusal."""
  new_paths = dict(jax.tree_util.tree_flatten_with_path(new)[0])
  old_paths = dict(jax.tree_util.tree_flatten_with_path(old)[0])
  missing = sorted(jax.tree_util.keystr(p) for p in old_paths
                   if p not in new_paths)
  extra = sorted(jax.tree_util.keystr(p) for p in new_paths
                 if p not in old_paths)
  bad = sorted(f"{jax.tree_util.keystr(p)} {tuple(v.shape)} (model: "
               f"{tuple(old_paths[p].shape)})" for p, v in new_paths.items()
               if p in old_paths and v.shape != old_paths[p].shape)
  if missing or extra or bad:
    raise ImportRefused(
        f"the converted {where} do not fit the config's model: "
        f"missing {missing[:5]}, unexpected {extra[:5]}, misshapen "
        f"{bad[:5]}; use the config form of the release's network (e.g. "
        "form=reference)")
  return jax.tree.map(lambda n, o: jax.device_put(n, o.sharding), new, old)


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def import_weights(config, weights: str, workdir: str,
                   source: str = "auto") -> Tuple[Any, str]:
  """Writes `workdir` as a run at step 0 holding the converted weights;
  returns (config as stored, source)."""
  if not os.path.isfile(weights):
    raise ImportRefused(f"--weights={weights}: no such file")
  if os.path.isdir(workdir) and os.listdir(workdir):
    raise ImportRefused(f"--workdir={workdir} is not empty; import into a "
                       "new folder")
  source = source_of(config) if source == "auto" else source
  config = config.copy_and_resolve_references()
  config.trainer = SINGLE_RUN_TRAINER.get(config.trainer, config.trainer)
  s = loop.setup(config, train=False, trainer=trainers.get(
      config.trainer).TRAINER)
  state, _ = loop.make_state(s)
  variables = convert(source, weights, config)
  params = _fit(variables.pop("params"), state.params, f"{source} weights")
  state = state.replace(params=params)
  if state.model_state or variables:
    state = state.replace(model_state=_fit(
        variables, state.model_state or {}, f"{source} statistics"))
  os.makedirs(workdir, exist_ok=True)
  writers.write_json(os.path.join(workdir, "config.json"), config.to_dict())
  meta = {"best_metric": -1.0, "best_step": 0, "history": []}
  fp = run_checkpoints.fingerprint(s, state.params)
  latest, best = run_checkpoints.managers(workdir, config)
  for mgr in (best, latest):
    checkpointing.save(mgr, 0, state, dict(meta, fingerprint=fp))
    mgr.wait_until_finished()
  writers.write_json(os.path.join(workdir, "imported.json"), {
      "source": source, "weights": os.path.abspath(weights),
      "sha256": sha256(weights)})
  writers.log("imported %s (%s) into %s", weights, source, workdir)
  return config, source


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runtime.initialize()
  f = flags.FLAGS
  config, _ = import_weights(f.config, f.weights, f.workdir, f.source)
  if f.evaluate:
    trainers.get(config.trainer).evaluate_checkpoint(
        config, f.workdir, "best", splits=f.splits)


def define_flags():
  """The command's flags (defined when run, so importing this module for
  `import_weights` leaves the global flags alone)."""
  config_flags.DEFINE_config_file(
      "config", None, "The config whose model the weights fill (the reference "
      "form of the release's network).", lock_config=False)
  flags.DEFINE_string("weights", None, "The release's weights file (.pt, "
                      ".npz of a state_dict, or AVDLN's .h5).")
  flags.DEFINE_string("workdir", None, "The run folder to write (new or "
                      "empty).")
  flags.DEFINE_enum("source", "auto", ("auto",) + SOURCES,
                    "The release's network (auto: from the config).")
  flags.DEFINE_bool("evaluate", True, "Score the imported run afterwards.")
  flags.DEFINE_list("splits", None, "Splits to score (default: val and test).")
  flags.mark_flags_as_required(["config", "weights", "workdir"])


if __name__ == "__main__":
  define_flags()
  cli.run(main)

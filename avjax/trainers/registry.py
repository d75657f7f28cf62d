"""The trainer registry: `config.trainer` -> a trainer module.

A trainer module exposes `train_and_evaluate(config, workdir)` and
`evaluate_checkpoint(config, workdir, which, splits)`: the loop trainers of
this package (`loop.Trainer`) and the paper pipelines that chain several
runs (`avjax.projects.<paper>`), found by name like every other component:
a name of `TRAINERS`, or a full module path.
"""

from types import ModuleType

from avjax.utils import registry

TRAINERS = {
    **{name: f"avjax.trainers.{name}" for name in (
        "avvp_weak", "ave_supervised", "avdln", "event_heads")},
    # Paper pipelines (by module path: projects sit above the trainers).
    "ma_pipeline": "avjax.projects.ma.pipeline",
    "avg_pipeline": "avjax.projects.crossmodal.pipeline",
    "avg_pretrain": "avjax.projects.crossmodal.pretrain",
}


def get(name: str) -> ModuleType:
  """The trainer module of `config.trainer`."""
  return registry.load("config.trainer", name, TRAINERS)

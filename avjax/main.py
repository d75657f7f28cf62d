r"""Trains (and at the end evaluates) an avjax experiment.

  python -m avjax.main --config=configs/avvp_han.py --workdir=/tmp/avjax/han
  python -m avjax.main --config=configs/avvp_han.py:runlocal \
      --config.batch_size=32 --workdir=/tmp/avjax/smoke

Every host of a multi-host job runs the same command with AVJAX_DIST_INIT=1
(see launch/). An existing workdir is resumed from its latest checkpoint.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from avjax.trainers import registry as trainers
from avjax.utils import cli
from avjax.utils import runtime

config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, optionally with `:args` "
    "(e.g. configs/avvp_han.py:runlocal,variant=no_hybrid). Override any "
    "field with --config.<field>=<value>.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, TensorBoard "
                    "metrics and results; resumed if it holds a checkpoint.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  runtime.initialize()
  config = flags.FLAGS.config
  trainers.get(config.trainer).train_and_evaluate(config,
                                                  flags.FLAGS.workdir)


if __name__ == "__main__":
  cli.run(main)

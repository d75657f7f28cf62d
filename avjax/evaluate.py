r"""Evaluates a trained checkpoint without training.

  python -m avjax.evaluate --config=configs/avvp_han.py --workdir=DIR \
      --checkpoint=best --splits=test

Restores `best`, `latest` or a step number from DIR (the config must describe
the same model), prints the metrics table and writes eval_<checkpoint>.json
and .md into DIR.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from avjax.trainers import registry as trainers
from avjax.utils import cli
from avjax.utils import runtime

config_flags.DEFINE_config_file(
    "config", None, "The experiment config the workdir was trained with.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Workdir holding checkpoints/ and best/.")
flags.DEFINE_string("checkpoint", "best", "'best', 'latest' or a step number.")
flags.DEFINE_list("splits", None, "Splits to score (default: val and test).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  ck = flags.FLAGS.checkpoint
  if ck not in ("best", "latest") and not ck.isdigit():
    raise app.UsageError(f"--checkpoint={ck!r}: use best, latest or a step")
  runtime.initialize()
  config = flags.FLAGS.config
  trainers.get(config.trainer).evaluate_checkpoint(
      config, flags.FLAGS.workdir, ck, splits=flags.FLAGS.splits)


if __name__ == "__main__":
  cli.run(main)

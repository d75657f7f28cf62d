"""Process start-up shared by the entry points: TF off GPUs, multi-host init."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax


def initialize() -> None:
  """Hides accelerators from TF and starts `jax.distributed` when asked.

  Multi-host runs set AVJAX_DIST_INIT=1 on every host. The coordinator is
  auto-detected on TPU pods, Slurm and Open MPI; elsewhere set
  AVJAX_COORDINATOR=host:port, AVJAX_NUM_PROCESSES and AVJAX_PROCESS_ID.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  if "verbosity" in flags.FLAGS and not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax/TF INFO logs are noisy
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  jax.config.update("jax_threefry_partitionable", True)
  if os.environ.get("AVJAX_DIST_INIT", "0") not in ("0", ""):
    kwargs = {}
    if os.environ.get("AVJAX_COORDINATOR"):
      kwargs = dict(coordinator_address=os.environ["AVJAX_COORDINATOR"],
                    num_processes=int(os.environ["AVJAX_NUM_PROCESSES"]),
                    process_id=int(os.environ["AVJAX_PROCESS_ID"]))
    if os.environ.get("JAX_PLATFORMS", "") == "cpu":
      jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(**kwargs)
  logging.info("process %d/%d, %d local / %d global devices (%s)",
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count(),
               jax.devices()[0].platform)

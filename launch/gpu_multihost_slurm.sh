#!/usr/bin/env bash
# Multi-host GPU training under Slurm: one process per node, every node runs the
# same command; jax.distributed.initialize() reads the Slurm environment.
#   sbatch --nodes=4 --gpus-per-node=8 launch/gpu_multihost_slurm.sh \
#       configs/avvp_han.py:data=llp /shared/avjax/han --config.data.data_dir=/shared/llp_tfrecord
#SBATCH --ntasks-per-node=1
#SBATCH --job-name=avjax
set -euo pipefail
config=${1:?config}; workdir=${2:?workdir (on a shared filesystem)}; shift 2
export AVJAX_DIST_INIT=1
srun --ntasks-per-node=1 python -m avjax.main --config="$config" --workdir="$workdir" "$@"

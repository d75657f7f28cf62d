#!/usr/bin/env bash
# Simulate N hosts on this machine (CPU, gloo collectives): N processes with
# D forced CPU devices each, talking through jax.distributed on localhost.
#   launch/multihost_local.sh 2 2 configs/avvp_han.py:runlocal /tmp/avjax/mh
set -euo pipefail
n=${1:?processes}; d=${2:?devices per process}; config=${3:?config}; workdir=${4:?workdir}; shift 4
port=${AVJAX_PORT:-$((20000 + RANDOM % 20000))}
pids=()
for ((i = 0; i < n; i++)); do
  JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=$d \
  AVJAX_DIST_INIT=1 AVJAX_COORDINATOR=127.0.0.1:$port AVJAX_NUM_PROCESSES=$n AVJAX_PROCESS_ID=$i \
    python -m avjax.main --config="$config" --workdir="$workdir" "$@" &
  pids+=($!)
done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=$?; done; exit $rc

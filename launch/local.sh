#!/usr/bin/env bash
# Train on one machine (all its GPUs / CPU devices).
#   launch/local.sh configs/avvp_han.py /tmp/avjax/han [--config.x=y ...]
set -euo pipefail
config=${1:?config file[:args]}; workdir=${2:?workdir}; shift 2
exec python -m avjax.main --config="$config" --workdir="$workdir" "$@"

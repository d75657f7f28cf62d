#!/usr/bin/env bash
# Evaluate a checkpoint of a workdir without training.
#   launch/eval.sh configs/avvp_han.py /tmp/avjax/han [best|latest|STEP] [--splits=test]
set -euo pipefail
config=${1:?config}; workdir=${2:?workdir}; ck=${3:-best}; shift $(( $# < 3 ? $# : 3 ))
exec python -m avjax.evaluate --config="$config" --workdir="$workdir" --checkpoint="$ck" "$@"

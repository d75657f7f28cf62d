#!/usr/bin/env bash
# TPU pod slice: run the same command on every worker (TPU VM). The workdir and
# the data must be on storage every worker can read (e.g. gs://).
#   launch/tpu_pod.sh my-tpu us-central2-b configs/avvp_han.py:data=llp gs://bucket/han \
#       --config.data.data_dir=gs://bucket/llp_tfrecord
set -euo pipefail
tpu=${1:?tpu name}; zone=${2:?zone}; config=${3:?config}; workdir=${4:?workdir}; shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command \
  "cd ~/avjax && AVJAX_DIST_INIT=1 python -m avjax.main --config='$config' --workdir='$workdir' $*"

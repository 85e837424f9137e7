#!/usr/bin/env bash
# pyinfra has no `serial:`: run a deploy file once per batch group of the inventory
# (batch1..batchN, a quarter of the hosts each), one batch after the other, stopping at
# the first batch that fails — what Ansible's `serial: 25%` does.
# Usage: batches.sh PYINFRA INVENTORY DEPLOY NBATCHES [pyinfra args...]
set -euo pipefail
pyinfra=$1 inventory=$2 deploy=$3 n=$4
shift 4
for b in $(seq 1 "$n"); do
  "$pyinfra" -y --limit "batch$b" "$@" "$inventory" "$deploy"
done

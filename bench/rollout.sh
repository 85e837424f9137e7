#!/usr/bin/env bash
# Wall time of a blue-green rollout of 6 tenants x 2 hosts with --batch 25% on the Docker
# test fleet, and how much of it is drover's own overhead beyond the health-check waits.
#
# Usage: bash bench/rollout.sh          (needs Docker and the drover-host image:
#                                        bash docker/build.sh)
#
# It brings up its own 4-host fleet (docker/fleet.sh, network drover-bench-rollout on
# 172.29.250.0/24, removed on exit), deploys 1.0.0 blue-green, then times RUNS rollouts
# alternating 2.0.0 and 1.0.0 (each one a full blue-green rollout into the idle color).
# Per run it prints the wall time and, from `--json`: the mean time per target, in
# playbook steps, in the health step (waiting for the new agent to answer) and outside
# the steps (lock, state, revert timer, nginx switch, verification through nginx,
# confirmation over a fresh connection, unlock); the sum over batches of the slowest
# target and of the slowest health wait; overhead = wall - that health critical path.
#
# Knobs: RUNS (default 3), DROVER (a drover binary; default: cargo build --release).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
export DROVER_FLEET_NAME=drover-bench-rollout
export DROVER_FLEET_SUBNET=172.29.250.0/24
export DROVER_FLEET_DIR=${TMPDIR:-/tmp}/drover-bench-rollout
export DROVER_SECRET_API_KEY=bench-not-a-secret
export NO_COLOR=1

if [[ -z ${DROVER:-} ]]; then
  (cd "$repo" && cargo build --release --quiet)
  DROVER=$repo/target/release/drover
fi
work=$(mktemp -d)
cleanup() { bash "$repo/docker/fleet.sh" down || true; rm -rf -- "$work"; }
trap cleanup EXIT

bash "$repo/docker/fleet.sh" up 4
inv=$DROVER_FLEET_DIR/inventory.toml
cd "$work" # the run journal (.drover/) lands here

deploy() { # version, then extra arguments
  local v=$1; shift
  "$DROVER" -i "$inv" deploy "$repo/playbooks/agent.toml" --all --strategy blue-green \
    --set "version=$v" --json "$@"
}

echo "deploying 1.0.0 (untimed)" >&2
deploy 1.0.0 >/dev/null

for ((i = 1; i <= runs; i++)); do
  if ((i % 2)); then v=2.0.0; else v=1.0.0; fi
  t0=$(date +%s%N)
  deploy "$v" --batch 25% >"$work/run-$i.json"
  t1=$(date +%s%N)
  python3 - "$work/run-$i.json" "$(((t1 - t0) / 1000000))" "$i" "$v" <<'PY'
import json, sys
path, wall_ms, run, version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [json.loads(l) for l in open(path) if l.startswith("{")]
assert all(l["status"] == "changed" for l in lines), [l["status"] for l in lines]
wall = wall_ms / 1000
sec = lambda x: x["duration_ms"] / 1000
tot = [sec(l) for l in lines]
steps = [sum(sec(s) for s in l["steps"]) for l in lines]
health = [sum(sec(s) for s in l["steps"] if s["kind"] == "health") for l in lines]
batches = [range(i, min(i + 3, len(lines))) for i in range(0, len(lines), 3)]
crit = sum(max(tot[i] for i in b) for b in batches)
crit_h = sum(max(health[i] for i in b) for b in batches)
n = len(lines)
print(f"run {run} ({version}): wall {wall:.2f}s for {n} targets in {len(batches)} batches; "
      f"per target mean {sum(tot)/n:.2f}s = steps {sum(steps)/n:.2f}s (health {sum(health)/n:.2f}s) "
      f"+ outside steps {(sum(tot)-sum(steps))/n:.2f}s; batch critical path {crit:.2f}s, "
      f"of health waits {crit_h:.2f}s; overhead beyond health waits {wall-crit_h:.2f}s "
      f"({100*(wall-crit_h)/wall:.0f}%)")
PY
done

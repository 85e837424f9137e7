#!/usr/bin/env bash
# The whole benchmark in one command, from any directory:
#   bash bench/run.sh
# Installs the peers, builds drover (cargo build --release), then for every fleet size brings up the
# loopback fleet and runs the scenarios (bench/README.md):
#   A  `true` on 200, 1,000 and 2,000 hosts: drover, pssh, pyinfra, bssh, Ansible raw; Ansible
#      command at 200 only
#   B  the four-operation job (bench/job/) on 200 and 1,000 hosts: drover, pyinfra, Ansible playbook
#   C  drover status on 1,000 hosts
# 3 timed runs each (1 when the first took more than LONG_RUN s), rewrites the generated block of
# BENCHMARKS.md, and stops the fleet (also on failure or Ctrl-C). About an hour on 2 cores.
# Knobs (environment): SCENARIOS=true,job,status SIZES_TRUE="200 1000 2000" SIZES_JOB="200 1000"
#   SIZES_STATUS=1000 (SIZES=... sets all three) TOOLS=drover,pssh,... ANSIBLE_COMMAND_SIZES=200 RUNS=3
#   WARMUP=1 WARMUP_MAX_N=50 RUN_TIMEOUT=600 LONG_RUN=120 QUIET_WAIT=120 QUIET_BUDGET=300 NOISE_MAX=20
#   NOISY_RETRIES=1 TARGET_SIZES="200 1000 2000" DROVER=path (skip the build and use this binary)
#   BENCH_PORT=2222 BENCH_STATE=/tmp/bench-fleet BENCH_VENV=/tmp/bench-venv MD=path (default:
#   BENCHMARKS.md at the repo root); self-tests: FAULT_HOST=k, JOB_FAULT_HOST=k
# Quick check: SCENARIOS=true,job SIZES=20 RUNS=1 MD=/tmp/x.md bash bench/run.sh
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$(dirname "$0")/common.sh"
cd "$REPO_DIR"

# The command as given, with the knobs that were set, for BENCHMARKS.md
cmdline="bash bench/run.sh"
for v in SCENARIOS SIZES SIZES_TRUE SIZES_JOB SIZES_STATUS TOOLS ANSIBLE_COMMAND_SIZES RUNS WARMUP WARMUP_MAX_N \
         DROVER RUN_TIMEOUT LONG_RUN QUIET_WAIT QUIET_BUDGET NOISE_MAX NOISY_RETRIES TARGET_SIZES FAULT_HOST \
         JOB_FAULT_HOST BENCH_PORT BENCH_STATE BENCH_VENV; do
    [ -n "${!v:-}" ] && cmdline="$v=$(printf '%q' "${!v}") $cmdline"
done
export BENCH_COMMAND="$cmdline"

trap '"$BENCH_DIR/sshd-fleet.sh" stop >/dev/null 2>&1 || true' EXIT
"$BENCH_DIR/install-peers.sh"
scenarios="${SCENARIOS:-true,job,status}"
if { [ -z "${TOOLS:-}" ] || [[ ",${TOOLS}," == *,drover,* ]]; } && [ -z "${DROVER:-}" ]; then
    echo ">>> cargo build --release" >&2
    mkdir -p "$STATE"
    if ! cargo build --release >"$STATE/cargo-build.log" 2>&1; then
        tail -30 "$STATE/cargo-build.log" >&2; echo "cargo build --release failed (log: $STATE/cargo-build.log)" >&2; exit 1
    fi
    export DROVER="$REPO_DIR/target/release/drover"
    "$DROVER" run --help >/dev/null
fi
# fanout.py (re)starts the fleet at every size; the tools run under the hard open-files limit
ulimit -n "$(ulimit -Hn)"
python3 "$BENCH_DIR/fanout.py" --scenarios "$scenarios" --md "${MD:-$REPO_DIR/BENCHMARKS.md}"

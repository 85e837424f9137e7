#!/usr/bin/env bash
# The whole benchmark in one command, from any directory:
#   bash bench/run.sh
# Installs the peers, builds drover (cargo build --release), brings up the loopback fleet,
# runs drover, pssh, ansible raw and pyinfra on 50/200/500 hosts (3 timed runs each), rewrites
# the generated block of BENCHMARKS.md, and stops the fleet (also on failure or Ctrl-C).
# Knobs (environment): SIZES="50 200 500" RUNS=3 WARMUP=1 WARMUP_MAX_N=50 TOOLS=drover,pssh,ansible-raw,pyinfra
#   DROVER=path (skip the build and use this binary) RUN_TIMEOUT=300 QUIET_WAIT=120 BENCH_PORT=2222
#   BENCH_STATE=/tmp/bench-fleet BENCH_VENV=/tmp/bench-venv MD=path (default: BENCHMARKS.md at the repo root)
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_DIR"

# The command as given, with the knobs that were set, for BENCHMARKS.md
cmdline="bash bench/run.sh"
for v in SIZES RUNS WARMUP WARMUP_MAX_N TOOLS DROVER RUN_TIMEOUT QUIET_WAIT QUIET_BUDGET NOISE_MAX NOISY_RETRIES \
         BENCH_PORT BENCH_STATE BENCH_VENV; do
    [ -n "${!v:-}" ] && cmdline="$v=$(printf '%q' "${!v}") $cmdline"
done
export BENCH_COMMAND="$cmdline"

trap '"$BENCH_DIR/sshd-fleet.sh" stop >/dev/null 2>&1 || true' EXIT
"$BENCH_DIR/install-peers.sh"
tools="${TOOLS:-drover,pssh,ansible-raw,pyinfra}"
if [[ ",$tools," == *,drover,* ]] && [ -z "${DROVER:-}" ]; then
    echo ">>> cargo build --release" >&2
    mkdir -p "$STATE"
    if ! cargo build --release >"$STATE/cargo-build.log" 2>&1; then
        tail -30 "$STATE/cargo-build.log" >&2; echo "cargo build --release failed (log: $STATE/cargo-build.log)" >&2; exit 1
    fi
    export DROVER="$REPO_DIR/target/release/drover"
    "$DROVER" run --help >/dev/null
fi
sizes="${SIZES:-50 200 500}"
"$BENCH_DIR/sshd-fleet.sh" start "${sizes%% *}"
python3 "$BENCH_DIR/fanout.py" --sizes "$sizes" --md "${MD:-$REPO_DIR/BENCHMARKS.md}"

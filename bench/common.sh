# shellcheck shell=bash
# Shared settings for drover's fleet benchmark. Sourced by the other scripts, not run.
# Every knob can be overridden from the environment. Adapted from the team's shared bench kit.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
STATE="${BENCH_STATE:-/tmp/bench-fleet}"      # keys, sshd config, inventories, logs, results
PORT="${BENCH_PORT:-2222}"                    # port every fake host answers on
VENV="${BENCH_VENV:-/tmp/bench-venv}"         # venv holding ansible-core and pyinfra
BUSER="${BENCH_USER:-benchuser}"              # dedicated login user on the fake hosts
LISTENERS="${BENCH_LISTENERS:-16}"            # sshd listen sockets (sshd allows at most 16)
NFT_TABLE="bench_fleet_${PORT}"               # our own nftables table, deleted on stop
CGROUP_NAME="bench_sshd_${PORT}"              # cgroup holding sshd and every process it spawns
CLIENT_CGROUP_NAME="bench_client_${PORT}"     # cgroup holding the tool being measured
export BENCH_DIR REPO_DIR STATE PORT VENV BUSER LISTENERS NFT_TABLE CGROUP_NAME CLIENT_CGROUP_NAME

# Address of fake host i (1-based): 127.0.1.1 .. 127.0.1.254, 127.0.2.1, ...
host_ip() { echo "127.0.$(( 1 + ($1 - 1) / 254 )).$(( 1 + ($1 - 1) % 254 ))"; }
# Address of sshd listen socket k (1-based): 127.0.0.101 .. 127.0.0.116
listener_ip() { echo "127.0.0.$(( 100 + $1 ))"; }

# PID of our sshd listener, or nothing if it is not running.
sshd_pid() {
    local pid
    [ -f "$STATE/sshd.pid" ] || return 0
    pid="$(cat "$STATE/sshd.pid")"
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$STATE/sshd_config"; then
        echo "$pid"
    fi
}

# Install Debian packages that are missing; 'apt-get update' runs once, only if needed.
# Service start-up is blocked during the install so no system sshd comes up on port 22.
apt_install() {
    local missing=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

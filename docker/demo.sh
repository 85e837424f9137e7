#!/usr/bin/env bash
# drover in one command: on a machine with Docker (and Rust to build drover),
#   1. builds drover (cargo build --release) unless it is built and current,
#   2. builds the fleet images (docker/build.sh: Debian from debootstrap, no
#      registry pull; needs root for debootstrap, cached after the first run),
#   3. brings up 4 hosts (docker/fleet.sh up 4: systemd, sshd, nginx, python3),
#   4. deploys every tenant blue-green at 1.0.0 (playbooks/agent.toml),
#   5. updates one tenant blue-green to 2.0.0 (zero downtime: green starts,
#      nginx switches, blue stays warm for `drover rollback`),
#   6. prints `drover status` and writes the HTML report, JSON and Prometheus
#      files, and says how to look around and how to tear it all down.
#
# Usage: docker/demo.sh [-h|--help]
#
# Environment:
#   DROVER_DEMO_DIR      where the reports go (default /tmp/drover-demo)
#   DROVER_DEMO_SECRET   the agents' API_KEY (default: a demo value)
#   DROVER_FLEET_NAME, DROVER_FLEET_SUBNET, DROVER_FLEET_DIR
#                        passed to docker/fleet.sh; the defaults (drover-fleet,
#                        172.29.0.0/24, /tmp/drover-fleet) are the fleet that
#                        inventory/demo.toml describes
#   DROVER               a drover binary to use instead of target/release/drover
set -euo pipefail

usage() { sed -n 's/^# \{0,1\}Usage: /usage: /p' "$0"; }
help() { sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case ${1:-} in
  -h | --help) help; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
out=${DROVER_DEMO_DIR:-/tmp/drover-demo}
secret=${DROVER_DEMO_SECRET:-demo-api-key-not-a-secret}
fleet_name=${DROVER_FLEET_NAME:-drover-fleet}
fleet_dir=${DROVER_FLEET_DIR:-/tmp/$fleet_name}
inventory=$fleet_dir/inventory.toml

if [[ -t 1 ]]; then bold=$'\033[1m' dim=$'\033[2m' reset=$'\033[0m'; else bold='' dim='' reset=''; fi
started=$(date +%s)
step() { printf '\n%s==> %s%s %s(%ss)%s\n' "$bold" "$*" "$reset" "$dim" $(($(date +%s) - started)) "$reset"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running? are you in the docker group?)"

# 1. drover itself.
if [[ -n ${DROVER:-} ]]; then
  drover_bin=$DROVER
else
  drover_bin=$repo/target/release/drover
  if [[ ! -x $drover_bin ]] ||
    [[ -n $(find "$repo/src" "$repo/Cargo.toml" "$repo/Cargo.lock" -newer "$drover_bin" -print -quit) ]]; then
    step "building drover (cargo build --release; a cold build takes a few minutes)"
    command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) or set DROVER=/path/to/drover"
    (cd "$repo" && cargo build --release --locked)
  fi
fi
[[ -x $drover_bin ]] || die "no drover binary at $drover_bin"
drover() { "$drover_bin" -i "$inventory" "$@"; }

# 2. + 3. The fleet.
step "building the host images (docker/build.sh; cached when unchanged)"
bash "$here/build.sh"
step "starting 4 hosts (docker/fleet.sh up 4)"
bash "$here/fleet.sh" up 4
[[ -f $inventory ]] || die "fleet.sh wrote no inventory at $inventory"

# Everything below runs from the repository: playbooks/ and examples/ are found there.
cd "$repo"
tenant=$(sed -n 's/^\[tenants\.\([a-z][a-z0-9-]*\)\]$/\1/p' "$inventory" | head -n 1)
[[ -n $tenant ]] || die "no tenant in $inventory"

step "checking the inventory (drover check)"
drover check

# 4. Everything at 1.0.0.
step "deploying every tenant blue-green at 1.0.0"
DROVER_SECRET_API_KEY=$secret drover deploy playbooks/agent.toml --all --strategy blue-green

# 5. One tenant to 2.0.0.
step "updating tenant $tenant blue-green to 2.0.0"
DROVER_SECRET_API_KEY=$secret drover deploy playbooks/agent.toml --tenant "$tenant" \
  --strategy blue-green --set version=2.0.0

# 6. The fleet's state.
step "drover status --all"
rc=0
drover status --all || rc=$?
mkdir -p "$out"
drover -q status --all --format html --output "$out/status.html" || true
drover -q status --all --format json --output "$out/status.json" || true
drover -q status --all --format prometheus --output "$out/drover.prom" || true

down_env=""
if [[ $fleet_name != drover-fleet || -n ${DROVER_FLEET_SUBNET:-} || -n ${DROVER_FLEET_DIR:-} ]]; then
  down_env="DROVER_FLEET_NAME=$fleet_name DROVER_FLEET_DIR=$fleet_dir "
fi
cat <<EOF

${bold}Done in $(($(date +%s) - started))s.${reset} drover status exited $rc (0: every target healthy).

Reports:
  $out/status.html     open it in a browser (self-contained, works offline)
  $out/status.json     the JSON document (docs/status.md)
  $out/drover.prom     Prometheus text for node_exporter's textfile collector

Look around (the inventory is $inventory):
  $drover_bin -i $inventory status --tenant $tenant
  $drover_bin -i $inventory logs --tenant $tenant --follow
  $drover_bin -i $inventory rollback --tenant $tenant
  $drover_bin -i $inventory diagnose --all --output /tmp/drover-diagnosis
  docker exec $fleet_name-host-1 systemctl stop drover-$tenant-green   # then status again

Tear it all down:
  ${down_env}bash docker/fleet.sh down
EOF

#!/usr/bin/env bash
# Benchmark E: shipping the agent's container images (issue 16) to a fleet of real
# hosts (docker/fleet.sh containers with rootful podman), one target per host.
# For each transport (registry, load): a fresh fleet, an empty registry cache, then
#   1. release 1.0.0 (hosts have no image)      2. release 2.0.0 (one small new layer)
# timing each deploy (wall) and reading the bytes each host was sent from --json.
# Prints the table (bench/container/table.py); results in $OUT/*.json.
#
# Usage: bash bench/container/run.sh
# Knobs: HOSTS=4 (at most 8) VIAS="registry load" DROVER=path (default: the debug build
#   in $CARGO_TARGET_DIR, built if missing) OUT=/tmp/drover-bench-images
#   DROVER_FLEET_NAME=drover-bench-img DROVER_FLEET_SUBNET=172.29.250.0/24
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
hosts=${HOSTS:-4}
((hosts >= 2 && hosts <= 8)) || { echo "HOSTS must be 2..8" >&2; exit 2; }
vias=${VIAS:-registry load}
out=${OUT:-/tmp/drover-bench-images}
export DROVER_FLEET_NAME=${DROVER_FLEET_NAME:-drover-bench-img}
export DROVER_FLEET_SUBNET=${DROVER_FLEET_SUBNET:-172.29.250.0/24}
export DROVER_FLEET_DIR=${DROVER_FLEET_DIR:-/tmp/$DROVER_FLEET_NAME}
target_dir=${CARGO_TARGET_DIR:-$repo/target}
drover=${DROVER:-$target_dir/debug/drover}
if [[ -z ${DROVER:-} ]]; then (cd "$repo" && cargo build -q --bin drover); fi

mkdir -p "$out"
rm -f "$out"/*.json
trap 'bash "$repo/docker/fleet.sh" down >/dev/null 2>&1 || true' EXIT
bash "$repo/examples/agent/container/build.sh" --save "$out" 1.0.0 2.0.0 >&2

# One tenant per host pair so that every host gets exactly one target: tenants on
# neighbours (i, i+1) for odd i (docker/fleet.sh's inventory).
select_args() {
  local names=(acme globex initech umbrella hooli stark wayne wonka) i
  for ((i = 0; i < hosts; i += 2)); do printf -- '--tenant\n%s\n' "${names[i]}"; done
}
mapfile -t select < <(select_args)

for via in $vias; do
  bash "$repo/docker/fleet.sh" down >/dev/null 2>&1 || true
  bash "$repo/docker/fleet.sh" up "$hosts" >&2
  registry="$out/registry-$via"
  rm -rf "$registry"
  book="$out/ship-$via.toml"
  cat >"$book" <<TOML
name = "ship"
[vars]
version = "1.0.0"
[[steps]]
name = "agent image"
timeout = "600s"
image = { from = "drover-agent:{{ version }}", name = "localhost/drover-agent:{{ version }}", via = "$via" }
TOML
  for version in 1.0.0 2.0.0; do
    start=$(date +%s.%N)
    DROVER_REGISTRY_DIR=$registry "$drover" -i "$DROVER_FLEET_DIR/inventory.toml" deploy "$book" \
      "${select[@]}" --set "version=$version" --json >"$out/$via-$version.lines"
    end=$(date +%s.%N)
    python3 - "$out/$via-$version.lines" "$via" "$version" "$start" "$end" \
      "$out/drover-agent-$version.tar" >"$out/$via-$version.json" <<'PY'
import json, os, sys
lines, via, version, start, end, archive = sys.argv[1:]
targets = [json.loads(l) for l in open(lines) if l.strip()]
hosts = {}
for t in targets:
    step = next(s for s in t["steps"] if s["kind"] == "image")
    hosts[t["host"]] = {"status": step["status"], "bytes": step.get("bytes_sent", 0),
                        "ms": step["duration_ms"]}
print(json.dumps({"via": via, "release": version, "wall_s": float(end) - float(start),
                  "archive_bytes": os.path.getsize(archive), "hosts": hosts}))
PY
  done
done
python3 "$here/table.py" "$out"/*.json

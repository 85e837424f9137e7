#!/usr/bin/env bash
# The blue-green benchmark in one command: builds drover (release), installs Ansible in
# a venv (bench/install-peers.sh's pinned version), builds the fleet image when missing,
# then runs bench.py, which rewrites the generated block of BENCHMARKS.md.
#
# Usage: bash bench/bluegreen/run.sh [bench.py args...]    e.g. --hosts 40 --runs 3
# Needs Docker, root (fleet.sh raises inotify limits), about 2 GiB of memory at 40 hosts.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${BENCH_VENV:-/tmp/bench-venv}
(cd "$repo" && cargo build --release --quiet)
if [[ ! -x $venv/bin/ansible-playbook ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${ANSIBLE_SPEC:-ansible-core==2.19.14}"
fi
docker image inspect drover-host:latest >/dev/null 2>&1 || bash "$repo/docker/build.sh"
exec python3 "$here/bench.py" --venv "$venv" --drover "$repo/target/release/drover" "$@"

#!/usr/bin/env bash
# Container images of the example agent, built without any registry:
#   drover-agent-base:bookworm  Debian bookworm minbase + python3 from
#                               debootstrap, user agent (uid/gid 10001), an
#                               empty /state, `docker import`ed: one layer.
#   drover-agent:<release>      container/Dockerfile FROM the base: one more
#                               layer, the release directory at /opt/agent/;
#                               runs as 10001:10001,
#                               ENTRYPOINT python3 /opt/agent/agent.py.
# Releases share the base layer and differ only in their own small layer.
#
# Usage: examples/agent/container/build.sh [--force-base] [--save DIR] [RELEASE...]
#
#   RELEASE      a directory under examples/agent/releases (default: all)
#   --save DIR   also write DIR/drover-agent-<release>.tar for each release
#                (`docker save`: a docker-archive, which `podman load` reads)
#   --force-base rebuild the base even when its label says it is current
#
# Cached like docker/build.sh: the base is rebuilt only when its spec
# (packages, import changes, the root's adjustments) changes; the release
# images use Docker's build cache (a warm run takes a second or two).
# Run it: podman run --rm --read-only --tmpfs /tmp --cap-drop ALL
#   --security-opt no-new-privileges --network host --user UID:GID
#   -v /var/lib/drover/TENANT:/state -e STATE_DIR=/state -e TENANT=acme
#   drover-agent:1.0.0 --port 8100      (docker/NOTES.md, "Podman in the hosts")
#
# Environment:
#   DROVER_AGENT_BASE_IMAGE (default drover-agent-base:bookworm)
#   DROVER_AGENT_IMAGE      the repository of the release images (default drover-agent)
#   DROVER_DEBIAN_MIRROR, DROVER_DEBOOTSTRAP_DIR: see docker/lib/debootstrap.sh
set -euo pipefail

usage() { sed -n 's/^# \{0,1\}Usage: /usage: /p' "$0"; }
# -h: the whole comment at the top of this file.
help() { sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
log() { printf 'agent build.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
releases_dir=$(cd "$here/../releases" && pwd)
base_image=${DROVER_AGENT_BASE_IMAGE:-drover-agent-base:bookworm}
repo=${DROVER_AGENT_IMAGE:-drover-agent}
# The uid/gid the image runs as by default (run with --user to pick another).
agent_id=10001

force_base=0 save_dir=""
releases=()
while (($#)); do
  case $1 in
    --force-base) force_base=1 ;;
    --save)
      [[ -n ${2:-} ]] || { usage >&2; exit 2; }
      save_dir=$2; shift ;;
    -h|--help) help; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) releases+=("$1") ;;
  esac
  shift
done
if ((${#releases[@]} == 0)); then
  for d in "$releases_dir"/*/; do d=${d%/}; releases+=("${d##*/}"); done
fi
for r in "${releases[@]}"; do
  # A docker tag: [A-Za-z0-9_.-], not starting with . or -, at most 128.
  [[ $r =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not a release name: '$r'"
  [[ -f $releases_dir/$r/agent.py ]] || die "no release '$r' (no $releases_dir/$r/agent.py)"
done

# shellcheck source-path=SCRIPTDIR source=../../../docker/lib/debootstrap.sh
. "$here/../../../docker/lib/debootstrap.sh"

# The base root's adjustments before import: the agent's user, a mount point
# for the state volume, and no docs, man pages or translations.
agent_root() {
  local root=$1
  chroot "$root" groupadd --gid 10001 agent &&
    chroot "$root" useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin agent &&
    install -d -m 0755 "$root/state" &&
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
      "$root"/usr/share/locale/* "$root"/var/cache/debconf/*-old
}

drover_build_begin
t0=$(date +%s%3N)
debootstrap_image "$base_image" "$force_base" agent_root python3 -- \
  'ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1' \
  "USER $agent_id:$agent_id" 'CMD ["/usr/bin/python3"]'

build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
for r in "${releases[@]}"; do
  if ! docker build -t "$repo:$r" --build-arg "BASE=$base_image" --build-arg "RELEASE=$r" \
      -f "$here/Dockerfile" "$releases_dir" >"$build_log" 2>&1; then
    cat "$build_log" >&2
    die "docker build of $repo:$r failed"
  fi
  log "built $repo:$r ($(docker image inspect -f '{{.Id}}' "$repo:$r" | cut -c1-19))"
done
if [[ -n $save_dir ]]; then
  mkdir -p "$save_dir"
  for r in "${releases[@]}"; do
    docker save -o "$save_dir/$repo-$r.tar" "$repo:$r"
    log "saved $save_dir/$repo-$r.tar ($(du -h "$save_dir/$repo-$r.tar" | cut -f1))"
  done
fi
log "done in $(($(date +%s%3N) - t0)) ms: ${releases[*]/#/$repo:}"

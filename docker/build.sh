#!/usr/bin/env bash
# Build the images of drover's test fleet, without pulling anything from a
# container registry:
#   drover-base:bookworm  Debian bookworm from debootstrap (--variant=minbase),
#                         imported with `docker import`; every package the
#                         hosts need is installed here, at debootstrap time.
#   drover-host:latest    docker/host/Dockerfile FROM the base (runs no apt):
#                         systemd as PID 1, sshd (keys only), nginx, python3...
#
# Usage: docker/build.sh [--force-base] [-h|--help]
#
# Cached: the base image carries a label with a hash of its spec (suite,
# variant, package list); it is rebuilt only when that changes (or with
# --force-base). The host image uses Docker's build cache, so a second run of
# an unchanged tree takes a few seconds.
#
# Environment:
#   DROVER_BASE_IMAGE      (default drover-base:bookworm)
#   DROVER_HOST_IMAGE      (default drover-host:latest)
#   DROVER_DEBIAN_MIRROR   Debian mirror URI; default: read from this machine's
#                          apt sources (/etc/apt/sources.list.d/*.sources,
#                          /etc/apt/sources.list, /etc/apt/sources.list.d/*.list)
#   DROVER_DEBOOTSTRAP_DIR work folder, outside the repo
#                          (default /var/cache/drover-debootstrap); the unpacked
#                          root is removed after import, downloaded .debs are
#                          kept in its debs/ for a faster rebuild.
set -euo pipefail

usage() { sed -n 's/^# \{0,1\}Usage: /usage: /p' "$0"; }
# -h: the whole comment at the top of this file.
help() { sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base_image=${DROVER_BASE_IMAGE:-drover-base:bookworm}
host_image=${DROVER_HOST_IMAGE:-drover-host:latest}
work=${DROVER_DEBOOTSTRAP_DIR:-/var/cache/drover-debootstrap}
suite=bookworm
variant=minbase
# Everything the hosts need, installed by debootstrap (image builds run no apt).
packages=(
  systemd systemd-sysv dbus
  openssh-server
  nginx
  python3
  curl ca-certificates
  sudo logrotate cron
  iproute2 iputils-ping procps netbase less
)
# Bump when the way the base is made changes in a way the list does not show.
base_rev=1

force_base=0
for arg in "$@"; do
  case $arg in
    --force-base) force_base=1 ;;
    -h|--help) help; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

log() { printf 'build.sh: %s\n' "$*" >&2; }

# The first Debian (non-security) archive URI in this machine's apt sources.
debian_mirror() {
  if [[ -n ${DROVER_DEBIAN_MIRROR:-} ]]; then
    printf '%s\n' "$DROVER_DEBIAN_MIRROR"; return
  fi
  local f uri=""
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    # deb822: paragraphs of "Key: value" lines.
    uri=$(awk 'BEGIN { RS=""; FS="\n" }
      {
        types=""; uris=""; suites=""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (line ~ /^Types:/)  { sub(/^Types:[ \t]*/, "", line);  types = line }
          if (line ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", line);   uris = line }
          if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = line }
        }
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && suites !~ /-security/ && uris !~ /security/) {
          split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f")
    [[ -n $uri ]] && break
  done
  if [[ -z $uri ]]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -r $f ]] || continue
      # deb [opts] URI SUITE COMPONENTS...
      uri=$(sed -E -n '/^[[:space:]]*deb[[:space:]]/{s/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//;p}' "$f" |
        awk '$1 !~ /security/ && $2 !~ /-security/ { print $1; exit }')
      [[ -n $uri ]] && break
    done
  fi
  shopt -u nullglob
  if [[ -z $uri ]]; then
    log "no Debian mirror found in /etc/apt sources; set DROVER_DEBIAN_MIRROR"; exit 1
  fi
  printf '%s\n' "${uri%/}"
}

command -v docker >/dev/null || { log "docker CLI not found"; exit 1; }
# One build at a time on this machine (tests may start several at once).
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/drover-build.lock"
  flock -w 1800 9 || { log "another build.sh holds the lock"; exit 1; }
fi
docker info >/dev/null 2>&1 || { log "no Docker engine answers (docker info failed)"; exit 1; }

spec="suite=$suite variant=$variant rev=$base_rev packages=${packages[*]}"
spec_hash=$(printf '%s' "$spec" | sha256sum | cut -c1-16)
have_hash=$(docker image inspect --format '{{ index .Config.Labels "drover.base-spec" }}' "$base_image" 2>/dev/null || true)

if [[ $force_base == 0 && $have_hash == "$spec_hash" ]]; then
  log "$base_image is up to date (spec $spec_hash)"
else
  [[ $(id -u) == 0 ]] || { log "building $base_image needs root (debootstrap)"; exit 1; }
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap debian-archive-keyring >/dev/null
  fi
  mirror=$(debian_mirror)
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  mkdir -p "$work/debs"
  root=$(mktemp -d "$work/rootfs.XXXXXX")
  cleanup_root() { rm -rf --one-file-system "$root"; }
  trap cleanup_root EXIT
  log "debootstrap $suite ($variant, ${#packages[@]} extra packages) into $root"
  inc=$(IFS=,; printf '%s' "${packages[*]}")
  keyopt=()
  [[ -r $keyring ]] && keyopt=(--keyring="$keyring")
  if ! debootstrap --variant="$variant" --include="$inc" --cache-dir="$work/debs" \
      "${keyopt[@]}" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 30 "$work/debootstrap.log" >&2
    [[ -f $root/debootstrap/debootstrap.log ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    log "debootstrap failed (full log: $work/debootstrap.log)"; exit 1
  fi
  # Slim the tree: no package lists or cached archives in the image.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/debootstrap
  : >"$root/etc/machine-id"
  log "importing $root as $base_image"
  tar --numeric-owner --xattrs -C "$root" -cf - . |
    docker import \
      --change "LABEL drover.base-spec=$spec_hash" \
      --change 'ENV container=docker LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      - "$base_image" >/dev/null
  cleanup_root
  trap - EXIT
fi

log "building $host_image"
build_log=$(mktemp)
if ! docker build -t "$host_image" --build-arg "BASE=$base_image" \
    -f "$here/host/Dockerfile" "$here/host" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  rm -f "$build_log"
  log "docker build of $host_image failed"; exit 1
fi
rm -f "$build_log"
log "done: $base_image, $host_image"

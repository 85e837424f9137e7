#!/usr/bin/env bash
# Build the images of drover's test fleet, without pulling anything from a
# container registry:
#   drover-base:bookworm  Debian bookworm from debootstrap (--variant=minbase),
#                         imported with `docker import`; every package the
#                         hosts need is installed here, at debootstrap time.
#   drover-host:latest    docker/host/Dockerfile FROM the base (runs no apt):
#                         systemd as PID 1, sshd (keys only), nginx, python3,
#                         rootful podman (crun, overlay storage, no cgroups)...
#
# Usage: docker/build.sh [--force-base] [-h|--help]
#
# Cached: the base image carries a label with a hash of its spec (suite,
# variant, package list, import changes); rebuilt only when that changes (or with
# --force-base). The host image uses Docker's build cache, so a second run of
# an unchanged tree takes a few seconds.
#
# Environment:
#   DROVER_BASE_IMAGE      (default drover-base:bookworm)
#   DROVER_HOST_IMAGE      (default drover-host:latest)
#   DROVER_DEBIAN_MIRROR, DROVER_DEBOOTSTRAP_DIR: see docker/lib/debootstrap.sh
#                          (mirror from this machine's apt sources; .debs
#                          cached in /var/cache/drover-debootstrap/debs)
set -euo pipefail

usage() { sed -n 's/^# \{0,1\}Usage: /usage: /p' "$0"; }
# -h: the whole comment at the top of this file.
help() { sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
base_image=${DROVER_BASE_IMAGE:-drover-base:bookworm}
host_image=${DROVER_HOST_IMAGE:-drover-host:latest}
# Everything the hosts need, installed by debootstrap (image builds run no apt).
packages=(
  systemd systemd-sysv dbus
  openssh-server
  nginx
  python3
  curl ca-certificates
  sudo logrotate cron
  iproute2 iputils-ping procps netbase less
  # Rootful podman for container releases (docker/NOTES.md, "Podman in the
  # hosts"): crun runtime; netavark, the provider of podman's virtual
  # dependency container-network-stack (debootstrap cannot pick one), with
  # aardvark-dns and iptables for its bridge network and -p; uidmap for
  # --userns; catatonit for --init.
  podman crun conmon uidmap netavark aardvark-dns iptables catatonit
)

force_base=0
for arg in "$@"; do
  case $arg in
    --force-base) force_base=1 ;;
    -h|--help) help; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

log() { printf 'build.sh: %s\n' "$*" >&2; }
# shellcheck source-path=SCRIPTDIR source=lib/debootstrap.sh
. "$here/lib/debootstrap.sh"

drover_build_begin
debootstrap_image "$base_image" "$force_base" - "${packages[@]}" -- \
  'ENV container=docker LANG=C.UTF-8' 'CMD ["/bin/bash"]'

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

# shellcheck shell=bash
# Make a Debian image without any registry: debootstrap a root, let the caller
# adjust it, `docker import` it. Cached: the image carries a label with a hash
# of everything that shapes it, and is rebuilt only when that changes.
# Sourced by docker/build.sh (the fleet hosts' base) and
# examples/agent/container/build.sh (the agent containers' base).
#
# Environment:
#   DROVER_DEBIAN_MIRROR   Debian mirror URI; default: read from this machine's
#                          apt sources (/etc/apt/sources.list.d/*.sources,
#                          /etc/apt/sources.list, /etc/apt/sources.list.d/*.list)
#   DROVER_DEBOOTSTRAP_DIR work folder, outside the repo
#                          (default /var/cache/drover-debootstrap); the unpacked
#                          root is removed after import, downloaded .debs are
#                          kept in its debs/ (shared by every image) for a
#                          faster rebuild.

# The caller defines log (message to stderr) before sourcing.

# Part of every image's cache key: bump it when the way images are made here
# changes in a way their package lists do not show.
debootstrap_rev=2

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
    log "no Debian mirror found in /etc/apt sources; set DROVER_DEBIAN_MIRROR"; return 1
  fi
  printf '%s\n' "${uri%/}"
}

# Check for docker and take the machine-wide build lock (one image build at a
# time: tests may start several, and debootstraps share the .deb cache). The
# lock is held on fd 9 until the calling script exits.
drover_build_begin() {
  command -v docker >/dev/null || { log "docker CLI not found"; return 1; }
  if command -v flock >/dev/null; then
    exec 9>"${TMPDIR:-/tmp}/drover-build.lock"
    flock -w 1800 9 || { log "another image build holds the lock"; return 1; }
  fi
  docker info >/dev/null 2>&1 || { log "no Docker engine answers (docker info failed)"; return 1; }
}

# debootstrap_image IMAGE FORCE CUSTOMIZE PACKAGES... [-- CHANGE...]
#   IMAGE      the tag to make, e.g. drover-base:bookworm
#   FORCE      1: rebuild even when the label says it is current
#   CUSTOMIZE  a function called with the root dir before import (its body is
#              part of the cache key), or "-" for none
#   PACKAGES   given to debootstrap --include (bookworm, --variant=minbase)
#   CHANGE     each given to `docker import --change`
# The image gets the label drover.base-spec=<hash>.
debootstrap_image() {
  local image=$1 force=$2 customize=$3
  shift 3
  local -a packages=() changes=()
  while (($#)); do
    [[ $1 == -- ]] && { shift; changes=("$@"); break; }
    packages+=("$1"); shift
  done
  local body=""
  [[ $customize != - ]] && body=$(declare -f "$customize")
  local spec hash have
  spec="rev=$debootstrap_rev suite=bookworm variant=minbase packages=${packages[*]} changes=${changes[*]} customize=$body"
  hash=$(printf '%s' "$spec" | sha256sum | cut -c1-16)
  have=$(docker image inspect --format '{{ index .Config.Labels "drover.base-spec" }}' "$image" 2>/dev/null || true)
  if [[ $force == 0 && $have == "$hash" ]]; then
    log "$image is up to date (spec $hash)"; return 0
  fi
  [[ $(id -u) == 0 ]] || { log "building $image needs root (debootstrap)"; return 1; }
  if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap debian-archive-keyring >/dev/null
  fi
  local mirror work root rc=0
  mirror=$(debian_mirror) || return 1
  work=${DROVER_DEBOOTSTRAP_DIR:-/var/cache/drover-debootstrap}
  mkdir -p "$work/debs"
  root=$(mktemp -d "$work/rootfs.XXXXXX")
  # shellcheck disable=SC2064 # expand $root now: the root goes if the script dies
  trap "rm -rf --one-file-system '$root'" EXIT
  debootstrap_import "$image" "$hash" "$mirror" "$work" "$root" "$customize" \
    "${#packages[@]}" "${packages[@]}" "${changes[@]}" || rc=1
  rm -rf --one-file-system "$root"
  trap - EXIT
  return "$rc"
}

# debootstrap_import IMAGE HASH MIRROR WORK ROOT CUSTOMIZE NPKG PACKAGES... CHANGES...
# The body of debootstrap_image once the root dir exists; every step checked
# (errexit does not apply inside `f || rc=1`).
debootstrap_import() {
  local image=$1 hash=$2 mirror=$3 work=$4 root=$5 customize=$6 npkg=$7
  shift 7
  local -a packages=("${@:1:npkg}") changes=("${@:npkg+1}")
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg inc keyopt=()
  log "debootstrap bookworm (minbase, ${#packages[@]} extra packages) into $root"
  inc=$(IFS=,; printf '%s' "${packages[*]}")
  [[ -r $keyring ]] && keyopt=(--keyring="$keyring")
  local dlog="$work/debootstrap-${image//[^a-zA-Z0-9._-]/_}.log"
  if ! debootstrap --variant=minbase --include="$inc" --cache-dir="$work/debs" \
      "${keyopt[@]}" bookworm "$root" "$mirror" >"$dlog" 2>&1; then
    tail -n 30 "$dlog" >&2
    [[ -f $root/debootstrap/debootstrap.log ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    log "debootstrap failed (full log: $dlog)"; return 1
  fi
  # Slim the tree: no package lists or cached archives in the image.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/debootstrap || return 1
  : >"$root/etc/machine-id" || return 1
  # mktemp made the root 0700; the image's / must be searchable by every user
  # (Docker hides this, podman does not: "exec /usr/bin/python3: Permission denied").
  chmod 0755 "$root" || return 1
  if [[ $customize != - ]]; then "$customize" "$root" || { log "$customize failed"; return 1; }; fi
  log "importing $root as $image"
  local -a changeopts=(--change "LABEL drover.base-spec=$hash")
  local c
  for c in "${changes[@]}"; do changeopts+=(--change "$c"); done
  tar --numeric-owner --xattrs -C "$root" -cf - . |
    docker import "${changeopts[@]}" - "$image" >/dev/null || { log "docker import of $image failed"; return 1; }
}

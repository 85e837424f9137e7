#!/usr/bin/env bash
# drover's test fleet: N real hosts as containers (systemd as PID 1, sshd,
# nginx, python3, rootful podman) on a private Docker network, with fixed
# addresses.
#
# Usage: docker/fleet.sh up N | down | kill HOST | stop HOST | start HOST | partition HOST | heal HOST | ps | env
#
#   up N            start host-1..host-N (in parallel), wait until every host
#                   has booted and sshd lets the fleet's key in; write the state
#                   dir: id_ed25519(.pub), known_hosts (the hosts' real keys,
#                   read with docker exec), inventory.toml, fleet.env.
#                   An existing fleet of the same name is removed first.
#                   Exit 3 when the subnet is taken by another network.
#   down            remove the containers, the network and the state dir.
#   kill HOST       docker kill (SIGKILL: the host is lost at once).
#   stop HOST       docker stop (clean shutdown through systemd).
#   start HOST      start a killed/stopped host again (same address and host
#                   key) and wait until sshd answers.
#   partition HOST  disconnect it from the network: packets to it vanish, so
#                   TCP to it times out (is not refused).
#   heal HOST       reconnect it with its fixed address; wait until sshd answers.
#   ps              host, address, container state, network, memory.
#   env             print `export DROVER_INVENTORY=...` for this fleet.
# HOST is host-3 or just 3.
#
# Environment:
#   DROVER_FLEET_NAME    network name and container prefix (default drover-fleet;
#                        containers are <name>-host-1...)
#   DROVER_FLEET_DIR     state dir (default /tmp/<name>)
#   DROVER_FLEET_SUBNET  a /24 (default 172.29.0.0/24); host-i gets .(10+i)
#   DROVER_HOST_IMAGE    image (default drover-host:latest, from docker/build.sh)
#   DROVER_FLEET_TIMEOUT seconds to wait for hosts to boot (default 90)
set -euo pipefail

usage() { sed -n 's/^# \{0,1\}Usage: /usage: /p' "$0"; }
# -h: the whole comment at the top of this file.
help() { sed -n '2,/^set -euo pipefail/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
log() { printf 'fleet.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

name=${DROVER_FLEET_NAME:-drover-fleet}
[[ $name =~ ^[a-z][a-z0-9-]{0,39}$ ]] || die "DROVER_FLEET_NAME must match [a-z][a-z0-9-]{0,39}: '$name'"
state=$(realpath -m -- "${DROVER_FLEET_DIR:-/tmp/$name}")
subnet=${DROVER_FLEET_SUBNET:-172.29.0.0/24}
[[ $subnet =~ ^([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})\.0/24$ ]] ||
  die "DROVER_FLEET_SUBNET must be a /24 like 172.29.0.0/24: '$subnet'"
prefix=${BASH_REMATCH[1]}
image=${DROVER_HOST_IMAGE:-drover-host:latest}
boot_timeout=${DROVER_FLEET_TIMEOUT:-90}
label=drover.fleet=$name
max_hosts=200

now_ms() { date +%s%3N; }
container() { printf '%s-%s' "$name" "$1"; }
address() { printf '%s.%d' "$prefix" $((10 + ${1#host-})); }

# "3" or "host-3" -> "host-3"
host_arg() {
  local h=${1:-}
  [[ $h =~ ^(host-)?([0-9]+)$ ]] || die "not a host: '$h' (want host-N or N)"
  local i=$((10#${BASH_REMATCH[2]}))
  ((i >= 1 && i <= max_hosts)) || die "no such host: '$h'"
  docker container inspect "$(container "host-$i")" >/dev/null 2>&1 ||
    die "fleet '$name' has no host-$i"
  printf 'host-%d' "$i"
}

need_docker() {
  command -v ssh-keygen >/dev/null || die "ssh-keygen not found (install openssh-client)"
  command -v docker >/dev/null || die "docker CLI not found"
  docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
}

ssh_opts() {
  printf '%s\n' -F /dev/null -i "$state/id_ed25519" -o IdentitiesOnly=yes \
    -o UserKnownHostsFile="$state/known_hosts" -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=2 -o LogLevel=ERROR
}

# Wait until sshd at the host's address sends its banner and, when an ssh
# client is here, lets the fleet's key log in as deploy with the recorded
# host key. $1 host, $2 deadline (epoch ms).
wait_sshd() {
  local host=$1 deadline=$2 addr banner opts
  addr=$(address "$host")
  mapfile -t opts < <(ssh_opts)
  while :; do
    # shellcheck disable=SC2016 # $1 expands in the inner shell
    banner=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 8 <&3' _ "$addr" 2>/dev/null || true)
    if [[ $banner == SSH-2.0-* ]]; then
      if ! command -v ssh >/dev/null; then return 0; fi
      if ssh "${opts[@]}" "deploy@$addr" true </dev/null 2>/dev/null; then return 0; fi
    fi
    if (($(now_ms) > deadline)); then
      log "$host ($addr): sshd did not answer in time (banner: '${banner:-none}')"
      return 1
    fi
    sleep 0.2
  done
}

# Wait until systemd in the host finished booting. $1 host, $2 deadline.
wait_boot() {
  local host=$1 deadline=$2 c st left
  c=$(container "$host")
  while :; do
    left=$(((deadline - $(now_ms)) / 1000))
    ((left > 0)) || { log "$host: systemd did not finish booting in ${boot_timeout}s"; return 1; }
    st=$(timeout "$left" docker exec "$c" systemctl is-system-running --wait 2>/dev/null || true)
    case $st in
      running) return 0 ;;
      degraded)
        log "$host: systemd is degraded; failed units: $(docker exec "$c" systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')"
        return 0 ;;
    esac
    [[ $(docker container inspect -f '{{.State.Running}}' "$c" 2>/dev/null) == true ]] ||
      { log "$host: container is not running"; docker logs --tail 20 "$c" >&2 || true; return 1; }
    sleep 0.2
  done
}

# Run "$@" for host-1..host-N in parallel; fail when any fails.
parallel_hosts() {
  local n=$1 i rc=0; shift
  local -a pids=()
  for ((i = 1; i <= n; i++)); do
    "$@" "host-$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return "$rc"
}

# Podman in the hosts (docker/NOTES.md) needs seccomp unconfined (Docker's
# default profile refuses pivot_root, so crun cannot start a container) and
# /var/lib/containers on a volume, i.e. on a real filesystem where the kernel's
# overlay works (the host's root is fuse-overlayfs). `down` (rm -v) removes it.
start_container() {
  local host=$1
  docker run -d --name "$(container "$host")" --hostname "$host" \
    --network "$name" --ip "$(address "$host")" \
    --label "$label" --label "drover.fleet.host=$host" \
    --cap-add SYS_ADMIN --cap-add SYS_PTRACE --cgroupns private \
    --security-opt seccomp=unconfined \
    --tmpfs /run:rw,nosuid,nodev,exec,mode=755,size=64m \
    --tmpfs /run/lock:rw,nosuid,nodev,noexec,size=8m \
    -v "$state/authorized_keys:/etc/drover/authorized_keys:ro" \
    -v /var/lib/containers \
    --stop-timeout 10 \
    "$image" >/dev/null
}

boot_and_key() {
  local host=$1 key ktype kdata
  wait_boot "$host" "$deadline" || return 1
  key=$(docker exec "$(container "$host")" cat /etc/ssh/ssh_host_ed25519_key.pub) || return 1
  # "ssh-ed25519 AAAA... [comment]" -> "ADDR ssh-ed25519 AAAA..."
  read -r ktype kdata _ <<<"$key"
  [[ $ktype == ssh-ed25519 && -n $kdata ]] || { log "$host: bad host key '$key'"; return 1; }
  printf '%s %s %s\n' "$(address "$host")" "$ktype" "$kdata" >"$state/.hostkeys/$host"
}

wait_sshd_host() { wait_sshd "$1" "$deadline"; }

tenant_names=(acme globex initech umbrella hooli stark wayne wonka tyrell cyberdyne soylent aperture)

write_inventory() {
  local n=$1 i j k t a b g hs
  {
    printf '# Generated by docker/fleet.sh up %d (fleet "%s"); rewritten on every up.\n' "$n" "$name"
    printf '# Hosts are containers on the private network %s (%s).\n\n' "$name" "$subnet"
    printf '[defaults]\nuser = "deploy"\n'
    printf 'identity = "%s/id_ed25519"\n' "$state"
    printf 'known_hosts = "%s/known_hosts"\n' "$state"
    printf 'become = "sudo"\nconnect_timeout = "3s"\ncommand_timeout = "60s"\nport = 22\n'
    for ((i = 1; i <= n; i++)); do
      if ((i == 1)); then g='["eu", "canary"]'; elif ((i % 2)); then g='["eu"]'; else g='["us"]'; fi
      printf '\n[hosts.host-%d]\naddress = "%s"\ngroups = %s\n' "$i" "$(address "host-$i")" "$g"
    done
    # Tenants, each on two hosts: first on neighbours (i, i+1), then on
    # opposite hosts (i, i+n/2). For 4 hosts: 6 tenants, three per host.
    local -a pairs=()
    if ((n == 1)); then
      pairs=("1 1")
    else
      for ((i = 1; i <= n; i++)); do pairs+=("$i $((i % n + 1))"); done
      for ((i = 1; i <= n / 2 && n > 2; i++)); do pairs+=("$i $((i + n / 2))"); done
    fi
    k=0
    for j in "${pairs[@]}"; do
      read -r a b <<<"$j"
      if ((k < ${#tenant_names[@]})); then t=${tenant_names[k]}; else t=tenant-$((k + 1)); fi
      if ((a == b)); then hs="\"host-$a\""; elif ((a < b)); then hs="\"host-$a\", \"host-$b\""; else hs="\"host-$b\", \"host-$a\""; fi
      printf '\n[tenants.%s]\nhosts = [%s]\nport = %d\nvars = { tier = "%s" }\n' \
        "$t" "$hs" $((8100 + 10 * k)) "$( ((k % 2)) && echo silver || echo gold)"
      k=$((k + 1))
    done
  } >"$state/inventory.toml.tmp"
  mv "$state/inventory.toml.tmp" "$state/inventory.toml"
}

cmd_down() {
  local ids
  ids=$(docker ps -aq --filter "label=$label")
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086 # one id per word
    docker rm -f -v $ids >/dev/null
  fi
  if docker network inspect "$name" >/dev/null 2>&1; then
    docker network rm "$name" >/dev/null
  fi
  if [[ -d $state ]]; then
    if [[ -f $state/fleet.env || -z $(ls -A "$state") ]]; then
      rm -rf -- "$state"
    else
      log "left $state alone: it has no fleet.env, so it is not a fleet state dir"
    fi
  fi
}

# Every host's systemd takes inotify instances (its .path units, journald, logind) from
# the one kernel they share; Debian's default of 128 per user runs out near 20 hosts and
# their boot ends "degraded" (systemd-ask-password-*.path failed). Raise it, as root,
# when it is lower than the fleet needs (about 40 per host, plus the machine's own).
raise_inotify() {
  local want=$((512 + 64 * $1)) have
  have=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)
  ((have >= want)) && return 0
  if [[ $(id -u) == 0 ]]; then
    sysctl -q -w fs.inotify.max_user_instances="$want" >/dev/null ||
      log "could not raise fs.inotify.max_user_instances to $want (it is $have)"
  else
    log "fs.inotify.max_user_instances is $have; $1 hosts want $want: sudo sysctl -w fs.inotify.max_user_instances=$want"
  fi
}

cmd_up() {
  local n=${1:-}
  if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > max_hosts)); then die "up needs a host count 1..$max_hosts"; fi
  local t0 out
  t0=$(now_ms)
  docker image inspect "$image" >/dev/null 2>&1 || die "image $image not found: run docker/build.sh"
  raise_inotify "$n"
  cmd_down
  mkdir -p "$state/.hostkeys"
  chmod 700 "$state"
  printf 'DROVER_FLEET_NAME=%s\nDROVER_FLEET_SUBNET=%s\nDROVER_FLEET_DIR=%s\nDROVER_FLEET_HOSTS=%d\n' \
    "$name" "$subnet" "$state" "$n" >"$state/fleet.env"
  ssh-keygen -q -t ed25519 -N '' -C "drover-fleet@$name" -f "$state/id_ed25519"
  install -m 0644 "$state/id_ed25519.pub" "$state/authorized_keys"
  if ! out=$(docker network create --driver bridge --subnet "$subnet" \
      --label "$label" --label "drover.fleet.dir=$state" "$name" 2>&1); then
    cmd_down
    if [[ $out == *overlap* ]]; then log "subnet $subnet is taken: $out"; exit 3; fi
    die "docker network create failed: $out"
  fi
  deadline=$(($(now_ms) + boot_timeout * 1000))
  if ! parallel_hosts "$n" start_container; then cmd_down; die "starting containers failed"; fi
  if ! parallel_hosts "$n" boot_and_key; then die "hosts did not boot (fleet left up for a look: fleet.sh ps / down)"; fi
  local i
  for ((i = 1; i <= n; i++)); do cat "$state/.hostkeys/host-$i"; done >"$state/known_hosts"
  rm -rf "$state/.hostkeys"
  write_inventory "$n"
  if ! parallel_hosts "$n" wait_sshd_host; then die "sshd did not answer on every host"; fi
  log "fleet $name: $n hosts up in $(($(now_ms) - t0))ms; inventory: $state/inventory.toml"
}

cmd_start() {
  local host; host=$(host_arg "${1:-}")
  docker start "$(container "$host")" >/dev/null
  deadline=$(($(now_ms) + boot_timeout * 1000))
  wait_boot "$host" "$deadline"
  wait_sshd "$host" "$deadline"
}

cmd_partition() {
  local host; host=$(host_arg "${1:-}")
  docker network disconnect "$name" "$(container "$host")"
}

cmd_heal() {
  local host c; host=$(host_arg "${1:-}")
  c=$(container "$host")
  if [[ -z $(docker container inspect -f "{{with index .NetworkSettings.Networks \"$name\"}}x{{end}}" "$c") ]]; then
    docker network connect --ip "$(address "$host")" "$name" "$c"
  fi
  if [[ $(docker container inspect -f '{{.State.Running}}' "$c") == true ]]; then
    wait_sshd "$host" $(($(now_ms) + 20000))
  fi
}

# Memory in use by a container, as docker stats counts it (usage less
# inactive file cache), read from its cgroup; "-" when unreadable.
container_mem() {
  local id=$1 d usage inactive
  for d in "/sys/fs/cgroup/memory/docker/$id" "/sys/fs/cgroup/system.slice/docker-$id.scope" "/sys/fs/cgroup/docker/$id"; do
    if [[ -r $d/memory.usage_in_bytes ]]; then
      usage=$(<"$d/memory.usage_in_bytes")
      inactive=$(awk '$1 == "total_inactive_file" { print $2 }' "$d/memory.stat")
      echo "$(((usage - ${inactive:-0}) / 1048576))MiB"; return
    elif [[ -r $d/memory.current ]]; then
      usage=$(<"$d/memory.current")
      inactive=$(awk '$1 == "inactive_file" { print $2 }' "$d/memory.stat")
      echo "$(((usage - ${inactive:-0}) / 1048576))MiB"; return
    fi
  done
  echo -
}

cmd_ps() {
  local fmt host id st net
  fmt="{{.Id}} {{index .Config.Labels \"drover.fleet.host\"}} {{.State.Status}} {{with index .NetworkSettings.Networks \"$name\"}}connected{{else}}partitioned{{end}}"
  printf '%-10s %-15s %-10s %-12s %s\n' HOST ADDRESS STATE NETWORK MEMORY
  docker ps -aq --filter "label=$label" | while read -r id; do
    docker container inspect -f "$fmt" "$id"
  done | sort -t- -k2,2n | while read -r id host st net; do
    [[ $st == running ]] || net=-
    printf '%-10s %-15s %-10s %-12s %s\n' "$host" "$(address "$host")" "$st" "$net" \
      "$([[ $st == running ]] && container_mem "$id" || echo -)"
  done
}

cmd=${1:-}
[[ -n $cmd ]] || { usage >&2; exit 2; }
shift
case $cmd in
  -h|--help|help) help ;;
  up) need_docker; cmd_up "$@" ;;
  down) need_docker; cmd_down ;;
  kill) need_docker; docker kill "$(container "$(host_arg "${1:-}")")" >/dev/null ;;
  stop) need_docker; docker stop "$(container "$(host_arg "${1:-}")")" >/dev/null ;;
  start) need_docker; cmd_start "$@" ;;
  partition) need_docker; cmd_partition "$@" ;;
  heal) need_docker; cmd_heal "$@" ;;
  ps) need_docker; cmd_ps ;;
  env) printf 'export DROVER_INVENTORY=%q\n' "$state/inventory.toml" ;;
  *) usage >&2; exit 2 ;;
esac

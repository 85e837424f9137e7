//! The status script itself: what runs on each host to gather the lines that
//! `script.rs` parses (its module docs give the format).
//!
//! A host's status used to cost about thirty processes per tenant (a subshell and a
//! `head | tr` pipeline for every line); on a fleet whose hosts share few cores the
//! forks, not the checks, set `drover status`'s time. Now the shell starts only what
//! must run on its own, side by side: one `systemctl show` for every unit, one
//! `podman ps` when a drover unit runs a container, and one `curl` (or the recorded
//! health command) per color, each writing into a temp dir.
//! Then one `df` and one `awk` (`collect.awk`) print every line. About 20 processes
//! for a host of three tenants, against about 100 before.
//!
//! Without a temp dir (a full or read-only `/tmp`) the tenants are looked at one after
//! the other by the slower shell functions below, which need no files.

use std::fmt::Write as _;

use super::script::{TenantQuery, q, unit_words};

/// The awk program that prints every line (see the comment at its top).
const COLLECT_AWK: &str = include_str!("collect.awk");

const HEAD: &str = r#"LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/sbin:/sbin"; export PATH
echo '@drover-status 1'
drover_now=$(date +%s)
set --
for p in / /opt/drover /var/lib/drover; do [ -e "$p" ] && set -- "$@" "$p"; done
drover_paths="$*"
drover_tmp=$(mktemp -d /tmp/drover-status.XXXXXX 2>/dev/null) || drover_tmp=
drover_nocurl=
command -v curl >/dev/null 2>&1 || drover_nocurl=1
drover_probe() {
  w=$drover_tmp/$1.$2; hc=/var/lib/drover/.health/$1.$2.sh
  if [ -f "$hc" ] && [ "$(stat -c %u "$hc" 2>/dev/null)" = 0 ]; then
    t0=$(date +%s%N); timeout -k 1 5 sh "$hc" > "$w.err" 2>&1; rc=$?; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    : > "$w.probe"
    echo "$rc 000 $((ms / 1000)).$(printf %03d $((ms % 1000)))" > "$w.h"
  elif [ -z "$drover_nocurl" ]; then
    curl -sS -m 2 -o "$w.body" -w '%{http_code} %{time_total}' "http://127.0.0.1:$3/health" > "$w.h" 2> "$w.err"
    echo "$?" > "$w.rc"
  fi
}
drover_prefix() { while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' "$1" "$l"; done; }
drover_tenant() {
  n=$1; base=$2; w=/tmp/drover-status-$n.$$
  for c in blue green; do
    [ "$base" = - ] && continue
    if [ "$c" = blue ]; then port=$base; else port=$((base + 1)); fi
    echo "T $n port.$c $port"
    if [ -n "$drover_nocurl" ]; then
      echo "T $n health.$c 127 000 0"
      echo "T $n error.$c curl is not installed"
      continue
    fi
    r=$(curl -sS -m 2 -o "$w.$c.body" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port/health" 2>"$w.$c.err"); rc=$?
    echo "T $n health.$c $rc $r"
    printf 'T %s body.%s %s\n' "$n" "$c" "$(head -c 2048 "$w.$c.body" 2>/dev/null | tr -d '\r\n')"
    printf 'T %s error.%s %s\n' "$n" "$c" "$(head -c 512 "$w.$c.err" 2>/dev/null | tr '\r\n' '  ')"
    rm -f "$w.$c.body" "$w.$c.err"
  done
  d=/var/lib/drover/$n
  [ -r "$d/state.json" ] && printf 'T %s state %s\n' "$n" "$(head -c 8192 "$d/state.json" | tr -d '\r\n')"
  if [ -d "$d/lock.d" ]; then
    echo "T $n lock.age $(( $(date +%s) - $(stat -c %Y "$d/lock.d" 2>/dev/null || date +%s) ))"
    [ -r "$d/lock.d/owner" ] && drover_prefix "T $n lock" < "$d/lock.d/owner"
  fi
  a=$(tac /var/log/drover/audit.log 2>/dev/null | grep -m 1 -F " tenant=$n ")
  [ -n "$a" ] && echo "T $n audit $a"
  r=$(sed -n 's/^[[:space:]]*server 127\.0\.0\.1:\([0-9][0-9]*\)[ ;].*/\1/p' "/etc/nginx/conf.d/drover-$n.conf" 2>/dev/null | head -n 1)
  [ -n "$r" ] && echo "T $n route $r"
  w=$(sed -n 's/^# Managed by drover:.*, \([0-9][0-9]*\)% of traffic\.$/\1/p' "/etc/nginx/conf.d/drover-$n.conf" 2>/dev/null | head -n 1)
  [ -n "$w" ] && echo "T $n weight $w"
  echo "T $n done"
}
"#;

/// The status script for a host's tenants: their colors are checked side by side
/// (each health check waits at most 2 s), then one awk prints everything.
#[must_use]
pub fn status_script(tenants: &[TenantQuery]) -> String {
    let mut s = String::from(HEAD);
    // Every unit in one systemctl call: it is the costliest command here (D-Bus).
    let units = if tenants.is_empty() {
        "true".to_string()
    } else {
        format!(
            "systemctl show -p Id -p LoadState -p ActiveState -p SubState -p Result -p NRestarts \
             -p ActiveEnterTimestampMonotonic -p MainPID{}",
            unit_words(tenants.iter().map(|t| t.name.as_str()), "")
        )
    };
    let port = |t: &TenantQuery| t.port.map_or_else(|| "-".to_string(), |p| p.to_string());
    s.push_str("if [ -n \"$drover_tmp\" ]; then\n");
    let _ = writeln!(s, "  {units} > \"$drover_tmp/units\" 2>/dev/null &");
    // Container colors' images: one podman call for the host, and only when a drover
    // unit runs podman (podman is slow to start, and most hosts run none).
    s.push_str(
        "  if command -v podman >/dev/null 2>&1 && grep -qs podman /etc/systemd/system/drover-*.service; then\n    \
         podman ps -a --no-trunc --filter name=^drover- --format '{{.Names}} {{.Image}} {{.ImageID}}' > \"$drover_tmp/images\" 2>/dev/null &\n  \
         fi\n",
    );
    let mut listed = String::new();
    for t in tenants {
        let _ = writeln!(listed, "{}\n{}", t.name, port(t));
        if let Some(base) = t.port {
            for (color, p) in [("blue", base), ("green", base.saturating_add(1))] {
                let _ = writeln!(s, "  drover_probe {} {color} {p} &", q(&t.name));
            }
        }
        let lock = format!("/var/lib/drover/{}/lock.d", t.name);
        let _ = writeln!(
            s,
            "  [ -d {lock} ] && stat -c %Y {lock} > \"$drover_tmp\"/{mtime} 2>/dev/null",
            lock = q(&lock),
            mtime = q(&format!("{}.lock", t.name)),
        );
    }
    s.push_str("  wait\nfi\n");
    let _ = writeln!(
        s,
        "df -P -k \"$@\" 2>/dev/null | awk -v now=\"$drover_now\" -v paths=\"$drover_paths\" \
         -v dir=\"$drover_tmp\" -v nocurl=\"$drover_nocurl\" -v tenants={} {}",
        q(listed.trim_end()),
        q(COLLECT_AWK),
    );
    s.push_str("if [ -z \"$drover_tmp\" ]; then\n");
    let _ = writeln!(s, "  {units} 2>/dev/null | drover_prefix U");
    for t in tenants {
        let _ = writeln!(s, "  drover_tenant {} {} 2>/dev/null", q(&t.name), port(t));
    }
    s.push_str("else\n  rm -rf \"$drover_tmp\"\nfi\necho '@end'\n");
    s
}

//! Looking at a fleet host behind drover's back (`docker exec` as root, which also
//! works while the host is cut off the network): shell, files, a tenant's
//! blue-green state, its lock, the audit log, nginx's upstream, units.

use std::collections::BTreeMap;
use std::process::Output;

use serde_json::Value;

use super::drover::text;
use super::fleet::Fleet;

/// `sh -c SCRIPT` as root on the host.
pub(crate) fn sh(fleet: &Fleet, host: &str, script: &str) -> Output {
    fleet.exec(host, &["sh", "-c", script])
}

/// Like [`sh`], failing the test unless the script succeeds; returns stdout.
#[track_caller]
pub(crate) fn sh_ok(fleet: &Fleet, host: &str, script: &str) -> String {
    let out = sh(fleet, host, script);
    assert!(
        out.status.success(),
        "{host}: `{script}` failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`sh`], whatever its exit status; returns stdout.
pub(crate) fn sh_out(fleet: &Fleet, host: &str, script: &str) -> String {
    String::from_utf8_lossy(&sh(fleet, host, script).stdout).into_owned()
}

/// A file on the host (argv, no shell: any file name works); fails the test when
/// it cannot be read.
#[track_caller]
pub(crate) fn read_file(fleet: &Fleet, host: &str, path: &str) -> String {
    let out = fleet.exec(host, &["cat", "--", path]);
    assert!(
        out.status.success(),
        "{host}: cannot read {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file on the host, or None when it is not there (or not readable).
pub(crate) fn file_if_present(fleet: &Fleet, host: &str, path: &str) -> Option<String> {
    let out = fleet.exec(host, &["cat", "--", path]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// /var/lib/drover/<tenant>/state.json, parsed (None when absent).
pub(crate) fn state(fleet: &Fleet, host: &str, tenant: &str) -> Option<Value> {
    let json = file_if_present(fleet, host, &format!("/var/lib/drover/{tenant}/state.json"))?;
    serde_json::from_str(&json).ok()
}

/// (active color, version) from the state file; ("", "") when there is none.
pub(crate) fn active(fleet: &Fleet, host: &str, tenant: &str) -> (String, String) {
    state(fleet, host, tenant).map_or_else(Default::default, |s| {
        (
            text(&s["active"]).to_owned(),
            text(&s["version"]).to_owned(),
        )
    })
}

/// The lock owner file of a tenant on a host, when the lock is held.
pub(crate) fn lock_owner(fleet: &Fleet, host: &str, tenant: &str) -> Option<String> {
    file_if_present(
        fleet,
        host,
        &format!("/var/lib/drover/{tenant}/lock.d/owner"),
    )
}

/// /var/log/drover/audit.log as it is ("" when there is none).
pub(crate) fn audit_text(fleet: &Fleet, host: &str) -> String {
    file_if_present(fleet, host, "/var/log/drover/audit.log").unwrap_or_default()
}

/// Each line of /var/log/drover/audit.log as key → value (the time under "at",
/// the whole line under "line").
pub(crate) fn audit(fleet: &Fleet, host: &str) -> Vec<BTreeMap<String, String>> {
    audit_text(fleet, host)
        .lines()
        .map(|line| {
            let mut words = line.split(' ');
            let mut map = BTreeMap::new();
            map.insert("at".to_owned(), words.next().unwrap_or("").to_owned());
            for w in words {
                if let Some((k, v)) = w.split_once('=') {
                    map.insert(k.to_owned(), v.to_owned());
                }
            }
            map.insert("line".to_owned(), line.to_owned());
            map
        })
        .collect()
}

/// The port nginx sends `tenant`'s traffic to on `host`.
pub(crate) fn nginx_port(fleet: &Fleet, host: &str, tenant: &str) -> Option<u16> {
    let conf = file_if_present(
        fleet,
        host,
        &format!("/etc/nginx/conf.d/drover-{tenant}.conf"),
    )?;
    conf.lines().find_map(|l| {
        l.trim()
            .strip_prefix("server 127.0.0.1:")
            .and_then(|p| p.trim_end_matches(';').parse().ok())
    })
}

/// GET /health through nginx from inside the host: (HTTP status, body).
pub(crate) fn proxied_inside(fleet: &Fleet, host: &str, tenant: &str) -> (String, String) {
    let out = sh_out(
        fleet,
        host,
        &format!(
            "curl -sS -m 3 -o /tmp/rollout-body -w '%{{http_code}}' -H 'Host: {tenant}' http://127.0.0.1/health; echo; cat /tmp/rollout-body"
        ),
    );
    let (code, body) = out.split_once('\n').unwrap_or((&out, ""));
    (code.trim().to_owned(), body.trim().to_owned())
}

/// GET /health of a tenant's agent on `port`, from inside the host, parsed.
#[track_caller]
pub(crate) fn agent_health(fleet: &Fleet, host: &str, port: u16) -> Value {
    let body = sh_ok(
        fleet,
        host,
        &format!("curl -fsS -m 5 http://127.0.0.1:{port}/health"),
    );
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{host}:{port}: /health is not JSON ({e}): {body}"))
}

/// The main PID of a systemd unit on the host.
#[track_caller]
pub(crate) fn main_pid(fleet: &Fleet, host: &str, unit: &str) -> String {
    sh_ok(
        fleet,
        host,
        &format!("systemctl show -p MainPID --value {unit}"),
    )
    .trim()
    .to_owned()
}

/// Revert timers still pending on the host (`drover-revert-*`).
pub(crate) fn pending_revert_timers(fleet: &Fleet, host: &str) -> String {
    sh_out(
        fleet,
        host,
        "systemctl list-timers --all --no-legend --plain 'drover-revert-*' 2>/dev/null",
    )
    .trim()
    .to_owned()
}

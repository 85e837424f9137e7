//! Fleet status, logs and diagnosis on the host side: the one shell script per host
//! that gathers everything `drover status` shows, its line-based output parsed back,
//! thresholds turned into problems, and the fan-out over hosts (bounded like
//! `drover run`). Also the scripts of `drover logs` and `drover diagnose`.
//!
//! # The status script's output
//!
//! One SSH command per host, run as root (`sudo -n` unless `become = "none"`), prints
//! simple lines, one fact per line, so parsing is trivial and robust to odd hosts:
//!
//! ```text
//! @drover-status 1                          header (format version)
//! H now 1732300000                          host clock, Unix seconds
//! H uptime 12345.67                         /proc/uptime
//! H cpus 2
//! H load 0.10 0.20 0.30                     /proc/loadavg
//! H mem TOTAL_KB AVAILABLE_KB               /proc/meminfo
//! H df PATH SIZE_KB USED_KB AVAIL_KB MOUNT  df -P -k of /, /opt/drover, /var/lib/drover
//! U Key=Value                             `systemctl show` of every drover-TENANT-COLOR
//! U                                       .service unit in one call; a bare `U` ends a unit
//! T TENANT port.COLOR PORT
//! T TENANT health.COLOR CURL_EXIT HTTP_CODE SECONDS
//! T TENANT body.COLOR BODY                  /health body, newlines removed
//! T TENANT error.COLOR TEXT                 curl's error text
//! T TENANT state JSON                       /var/lib/drover/TENANT/state.json, one line
//! T TENANT lock.age SECONDS                 lock.d exists (deploy lock held)
//! T TENANT lock key=value                   lock.d/owner lines
//! T TENANT audit LINE                       last audit.log line of the tenant
//! T TENANT route PORT                       the port nginx sends the tenant to
//! T TENANT done                             the tenant's section is complete
//! @end                                      the whole script ran to its end
//! ```
//!
//! Lines that are not understood are ignored, so newer scripts stay readable.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use super::deploy::as_root;
use crate::config::Host;
use crate::error::ExitCode;
use crate::plan::bluegreen::TenantState;
use crate::transport::{Connection, Connector, ExecOutput, RemoteCommand, TransportError};

/// Version of the JSON document `drover status --format json` prints. Fields are only
/// ever added within one version; a removal or change of meaning bumps it.
pub const SCHEMA_VERSION: u32 = 1;
/// A disk (of `/` or a drover directory) fuller than this is a problem.
pub const DISK_USED_THRESHOLD: f64 = 0.80;
/// Less available memory than this share of the total is a problem.
pub const MEMORY_AVAILABLE_THRESHOLD: f64 = 0.10;
/// A deploy lock older than this is stale: its run probably died.
pub const STALE_LOCK: Duration = Duration::from_secs(30 * 60);
/// The two colors of a blue-green target, in report order.
pub const COLORS: [&str; 2] = ["blue", "green"];

fn q(value: &str) -> String {
    shell_escape::unix::escape(value.into()).into_owned()
}

// ---------------------------------------------------------------------------------
// The report model (also the JSON schema: see docs/status.md)

/// The state of the whole selection: what `drover status` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// [`SCHEMA_VERSION`]
    pub schema_version: u32,
    /// when the report was made (control node clock, RFC 3339 UTC)
    pub generated_at: String,
    /// wall time of the whole status round, ms
    pub duration_ms: u64,
    /// counts, and the exit code
    pub summary: Summary,
    /// per host, in inventory order
    pub hosts: Vec<HostReport>,
    /// per target (tenant × host), in tenant then host order
    pub targets: Vec<TargetReport>,
}

/// Counts over the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// hosts queried
    pub hosts: usize,
    /// hosts that answered
    pub hosts_up: usize,
    /// hosts not reached
    pub hosts_unreachable: usize,
    /// hosts reached whose status could not be read
    pub hosts_error: usize,
    /// targets reported
    pub targets: usize,
    /// targets without a problem
    pub targets_ok: usize,
    /// targets with at least one problem
    pub targets_problem: usize,
    /// targets whose host could not be read
    pub targets_unknown: usize,
    /// problems in all (targets' and hosts')
    pub problems: usize,
    /// the process exit code: 0 all healthy, 1 a problem, 4 a host unreachable
    pub exit_code: i32,
}

/// How a host answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// the status script ran
    Up,
    /// no connection (connect, host key, authentication, connection lost)
    Unreachable,
    /// connected, but the status script failed (e.g. `sudo -n` refused, timeout)
    Error,
}

/// One host's resources and problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// inventory name
    pub host: String,
    /// address connected to
    pub address: String,
    /// up, unreachable or error
    pub state: HostState,
    /// why it is unreachable or in error
    pub error: Option<String>,
    /// seconds since the host booted
    pub uptime_seconds: Option<u64>,
    /// online CPUs
    pub cpus: Option<u32>,
    /// load averages
    pub load: Option<Load>,
    /// memory
    pub memory: Option<Memory>,
    /// `/`, `/opt/drover`, `/var/lib/drover` (those that exist)
    pub disks: Vec<Disk>,
    /// host problems (disk, memory, unreachable, error)
    pub problems: Vec<Problem>,
    /// connect + script time, ms
    pub duration_ms: u64,
}

/// Load averages over 1, 5 and 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// 1 minute
    pub one: f64,
    /// 5 minutes
    pub five: f64,
    /// 15 minutes
    pub fifteen: f64,
}

/// Memory from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// MemTotal
    pub total_bytes: u64,
    /// MemAvailable
    pub available_bytes: u64,
    /// 1 − available / total
    pub used_ratio: f64,
}

/// Disk use of one path (`df -P`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    /// the path asked about
    pub path: String,
    /// the mount point it is on
    pub mount: String,
    /// file system size
    pub size_bytes: u64,
    /// used
    pub used_bytes: u64,
    /// available to unprivileged users
    pub available_bytes: u64,
    /// used / (used + available), as `df` computes its percentage
    pub used_ratio: f64,
}

/// How a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// at least one problem
    Problem,
    /// its host could not be read
    Unknown,
    /// no problem
    Ok,
}

impl TargetState {
    /// The word used in reports.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            TargetState::Ok => "ok",
            TargetState::Problem => "problem",
            TargetState::Unknown => "unknown",
        }
    }
}

/// One target: a tenant on a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// tenant
    pub tenant: String,
    /// host
    pub host: String,
    /// ok, problem or unknown
    pub state: TargetState,
    /// the active color answers healthy (null when unknown)
    pub healthy: Option<bool>,
    /// the color nginx should send traffic to (state.json; else nginx; else the only
    /// running color)
    pub active_color: Option<String>,
    /// the color nginx's config actually points at
    pub routed_color: Option<String>,
    /// release recorded in state.json
    pub version: Option<String>,
    /// release the active color reports on /health
    pub running_version: Option<String>,
    /// the color before the last switch
    pub previous_color: Option<String>,
    /// its release
    pub previous_version: Option<String>,
    /// seconds since the active color's unit last (re)started
    pub uptime_seconds: Option<u64>,
    /// when it (re)started (host clock, RFC 3339 UTC)
    pub started_at: Option<String>,
    /// systemd's automatic restarts of the active color's unit (NRestarts)
    pub restarts: Option<u32>,
    /// the tenant's last audit line on this host
    pub last_deploy: Option<Deploy>,
    /// the deploy lock, when held
    pub lock: Option<Lock>,
    /// both colors in detail
    pub colors: Vec<ColorReport>,
    /// target problems
    pub problems: Vec<Problem>,
    /// why the state is unknown
    pub error: Option<String>,
}

/// One color of a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColorReport {
    /// blue or green
    pub color: String,
    /// its port (blue = tenant port, green = port + 1)
    pub port: Option<u16>,
    /// systemd unit
    pub unit: String,
    /// LoadState (`loaded`, `not-found`)
    pub load_state: Option<String>,
    /// ActiveState (`active`, `inactive`, `failed`, `activating`…)
    pub active_state: Option<String>,
    /// SubState (`running`, `dead`…)
    pub sub_state: Option<String>,
    /// Result of the last run (`success`, `exit-code`, `oom-kill`…)
    pub result: Option<String>,
    /// NRestarts
    pub restarts: Option<u32>,
    /// seconds since it became active
    pub uptime_seconds: Option<u64>,
    /// when it became active (host clock, RFC 3339 UTC)
    pub started_at: Option<String>,
    /// main process id
    pub main_pid: Option<u32>,
    /// GET /health
    pub health: Health,
}

/// The result of `GET http://127.0.0.1:PORT/health` on the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// answered 200 with `"status":"healthy"` (or a non-JSON 200)
    pub healthy: bool,
    /// HTTP status, when it answered
    pub http_status: Option<u16>,
    /// request time, ms
    pub latency_ms: Option<f64>,
    /// the body's `status`
    pub status: Option<String>,
    /// the body's `version`
    pub version: Option<String>,
    /// why it failed (curl's message, the HTTP status)
    pub error: Option<String>,
}

/// The last change recorded in `/var/log/drover/audit.log` for a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    /// when (host clock, RFC 3339 UTC)
    pub at: String,
    /// seconds before the report (host clock)
    pub age_seconds: Option<u64>,
    /// run id
    pub run: Option<String>,
    /// `user@machine`
    pub operator: Option<String>,
    /// deploy, rollback, auto-revert, force-unlock…
    pub action: Option<String>,
    /// `color@version` before
    pub from: Option<String>,
    /// `color@version` after
    pub to: Option<String>,
    /// ok, reverted…
    pub result: Option<String>,
}

/// A held deploy lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// run holding it
    pub run: Option<String>,
    /// who
    pub operator: Option<String>,
    /// since when (RFC 3339)
    pub since: Option<String>,
    /// seconds held
    pub age_seconds: Option<u64>,
    /// held longer than 30 minutes
    pub stale: bool,
}

/// Something flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// what kind
    pub kind: ProblemKind,
    /// for people
    pub message: String,
}

/// Kinds of problems (stable words in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// host: no connection
    Unreachable,
    /// host: connected, status unreadable
    StatusFailed,
    /// target: nothing of the tenant on the host
    NotDeployed,
    /// target: a unit is in the `failed` state
    UnitFailed,
    /// target: the active color's unit is not running
    ServiceDown,
    /// target: the active color does not answer healthy
    Unhealthy,
    /// target: the active color runs another release than state.json records
    VersionMismatch,
    /// target: nginx points at another color than state.json records
    RouteMismatch,
    /// target: deploy lock older than 30 minutes
    StaleLock,
    /// host: a disk more than 80 % used
    DiskUsage,
    /// host: less than 10 % of memory available
    MemoryLow,
}

impl ProblemKind {
    /// Words for people.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            ProblemKind::Unreachable => "unreachable",
            ProblemKind::StatusFailed => "status failed",
            ProblemKind::NotDeployed => "not deployed",
            ProblemKind::UnitFailed => "unit failed",
            ProblemKind::ServiceDown => "service down",
            ProblemKind::Unhealthy => "unhealthy",
            ProblemKind::VersionMismatch => "version mismatch",
            ProblemKind::RouteMismatch => "route mismatch",
            ProblemKind::StaleLock => "stale lock",
            ProblemKind::DiskUsage => "disk usage",
            ProblemKind::MemoryLow => "memory low",
        }
    }
}

fn problem(kind: ProblemKind, message: impl Into<String>) -> Problem {
    Problem {
        kind,
        message: message.into(),
    }
}

impl FleetStatus {
    /// The exit code: 4 when a host is unreachable, else 1 when anything is flagged
    /// (a target problem or unknown, a host problem), else 0.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        if self.hosts.iter().any(|h| h.state == HostState::Unreachable) {
            ExitCode::Unreachable
        } else if self.targets.iter().any(|t| t.state != TargetState::Ok)
            || self.hosts.iter().any(|h| !h.problems.is_empty())
        {
            ExitCode::Failed
        } else {
            ExitCode::Ok
        }
    }

    /// Builds the report from per-host results, computing the summary.
    #[must_use]
    pub fn new(
        hosts: Vec<HostReport>,
        targets: Vec<TargetReport>,
        generated_at: String,
        duration: Duration,
    ) -> Self {
        let mut status = FleetStatus {
            schema_version: SCHEMA_VERSION,
            generated_at,
            duration_ms: millis(duration),
            summary: Summary::default(),
            hosts,
            targets,
        };
        let count_hosts = |s: HostState| status.hosts.iter().filter(|h| h.state == s).count();
        let count_targets = |s: TargetState| status.targets.iter().filter(|t| t.state == s).count();
        let summary = Summary {
            hosts: status.hosts.len(),
            hosts_up: count_hosts(HostState::Up),
            hosts_unreachable: count_hosts(HostState::Unreachable),
            hosts_error: count_hosts(HostState::Error),
            targets: status.targets.len(),
            targets_ok: count_targets(TargetState::Ok),
            targets_problem: count_targets(TargetState::Problem),
            targets_unknown: count_targets(TargetState::Unknown),
            problems: status.hosts.iter().map(|h| h.problems.len()).sum::<usize>()
                + status
                    .targets
                    .iter()
                    .map(|t| t.problems.len())
                    .sum::<usize>(),
            exit_code: 0,
        };
        status.summary = summary;
        status.summary.exit_code = status.exit_code().code();
        status
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// RFC 3339 (seconds, UTC) of a Unix time.
#[must_use]
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn unix_of(text: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

// ---------------------------------------------------------------------------------
// The status script

/// A tenant to look at on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantQuery {
    /// tenant name (a validated identifier)
    pub name: String,
    /// base port (blue); without one, health is not checked
    pub port: Option<u16>,
}

/// What to ask one host.
#[derive(Debug, Clone)]
pub struct HostQuery {
    /// the host
    pub host: Host,
    /// its selected tenants
    pub tenants: Vec<TenantQuery>,
}

const STATUS_HEAD: &str = r#"LC_ALL=C; export LC_ALL
PATH="$PATH:/usr/sbin:/sbin"; export PATH
echo '@drover-status 1'
echo "H now $(date +%s)"
echo "H uptime $(cut -d' ' -f1 /proc/uptime 2>/dev/null)"
echo "H cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "H load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {if (t) print "H mem", t, a}' /proc/meminfo 2>/dev/null
for p in / /opt/drover /var/lib/drover; do
  [ -e "$p" ] && df -P -k "$p" 2>/dev/null | awk -v p="$p" 'NR==2 {print "H df", p, $(NF-4), $(NF-3), $(NF-2), $NF}'
done
drover_tmp=$(mktemp -d /tmp/drover-status.XXXXXX 2>/dev/null) || drover_tmp=
drover_prefix() { while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' "$1" "$l"; done; }
drover_tenant() {
  n=$1; base=$2; w=${drover_tmp:-/tmp}/drover-status-$n.$$
  for c in blue green; do
    [ "$base" = - ] && continue
    if [ "$c" = blue ]; then port=$base; else port=$((base + 1)); fi
    echo "T $n port.$c $port"
    if command -v curl >/dev/null 2>&1; then
      r=$(curl -sS -m 2 -o "$w.$c.body" -w '%{http_code} %{time_total}' "http://127.0.0.1:$port/health" 2>"$w.$c.err"); rc=$?
      echo "T $n health.$c $rc $r"
      printf 'T %s body.%s %s\n' "$n" "$c" "$(head -c 2048 "$w.$c.body" 2>/dev/null | tr -d '\r\n')"
      printf 'T %s error.%s %s\n' "$n" "$c" "$(head -c 512 "$w.$c.err" 2>/dev/null | tr '\r\n' '  ')"
      rm -f "$w.$c.body" "$w.$c.err"
    else
      echo "T $n health.$c 127 000 0"
      echo "T $n error.$c curl is not installed"
    fi
  done
  d=/var/lib/drover/$n
  [ -r "$d/state.json" ] && printf 'T %s state %s\n' "$n" "$(head -c 8192 "$d/state.json" | tr -d '\r\n')"
  if [ -d "$d/lock.d" ]; then
    echo "T $n lock.age $(( $(date +%s) - $(stat -c %Y "$d/lock.d" 2>/dev/null || date +%s) ))"
    [ -r "$d/lock.d/owner" ] && drover_prefix "T $n lock" < "$d/lock.d/owner"
  fi
  a=$(tac /var/log/drover/audit.log 2>/dev/null | grep -m 1 -F " tenant=$n ")
  [ -n "$a" ] && echo "T $n audit $a"
  r=$(sed -n 's/^[[:space:]]*server 127\.0\.0\.1:\([0-9][0-9]*\);.*/\1/p' "/etc/nginx/conf.d/drover-$n.conf" 2>/dev/null | head -n 1)
  [ -n "$r" ] && echo "T $n route $r"
  echo "T $n done"
}
"#;

/// The status script for a host's tenants. Tenants are looked at side by side (each
/// health check waits at most 2 s), their sections printed in order.
#[must_use]
pub fn status_script(tenants: &[TenantQuery]) -> String {
    let mut s = String::from(STATUS_HEAD);
    // Every unit in one systemctl call: it is the costliest command here (D-Bus).
    let units: String = tenants
        .iter()
        .flat_map(|t| COLORS.map(|c| format!(" {}", q(&format!("drover-{}-{c}.service", t.name)))))
        .collect();
    let units = if tenants.is_empty() {
        "true".to_string()
    } else {
        format!(
            "systemctl show -p Id -p LoadState -p ActiveState -p SubState -p Result -p NRestarts \
             -p ActiveEnterTimestampMonotonic -p MainPID{units} 2>/dev/null | drover_prefix U"
        )
    };
    s.push_str("if [ -n \"$drover_tmp\" ]; then\n");
    let _ = writeln!(s, "  {units} > \"$drover_tmp/units.out\" &");
    for (i, t) in tenants.iter().enumerate() {
        let port = t.port.map_or_else(|| "-".to_string(), |p| p.to_string());
        let _ = writeln!(
            s,
            "  drover_tenant {} {port} > \"$drover_tmp/{i:06}.out\" 2>/dev/null &",
            q(&t.name)
        );
    }
    s.push_str("  wait\n  cat \"$drover_tmp\"/*.out 2>/dev/null\n  rm -rf \"$drover_tmp\"\nelse\n");
    let _ = writeln!(s, "  {units}");
    for t in tenants {
        let port = t.port.map_or_else(|| "-".to_string(), |p| p.to_string());
        let _ = writeln!(s, "  drover_tenant {} {port} 2>/dev/null", q(&t.name));
    }
    s.push_str("fi\necho '@end'\n");
    s
}

// ---------------------------------------------------------------------------------
// Parsing the script's output

/// A host's answer, parsed but not judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawHost {
    /// the header was seen
    pub header: bool,
    /// `@end` was seen
    pub complete: bool,
    /// host clock
    pub now: Option<u64>,
    /// /proc/uptime seconds
    pub uptime: Option<f64>,
    /// CPUs
    pub cpus: Option<u32>,
    /// load averages
    pub load: Option<Load>,
    /// (total, available) in KiB
    pub mem_kb: Option<(u64, u64)>,
    /// disks
    pub disks: Vec<Disk>,
    /// per tenant
    pub tenants: BTreeMap<String, RawTenant>,
}

/// A tenant's lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTenant {
    /// systemctl show properties per color
    pub units: BTreeMap<String, BTreeMap<String, String>>,
    /// port per color
    pub ports: BTreeMap<String, u16>,
    /// (curl exit, http code, seconds) per color
    pub health: BTreeMap<String, (i32, u16, f64)>,
    /// /health body per color
    pub bodies: BTreeMap<String, String>,
    /// curl error per color
    pub errors: BTreeMap<String, String>,
    /// state.json text
    pub state: Option<String>,
    /// lock age, when the lock is held
    pub lock_age: Option<u64>,
    /// lock owner lines
    pub lock: BTreeMap<String, String>,
    /// last audit line
    pub audit: Option<String>,
    /// nginx upstream port
    pub route: Option<u16>,
    /// the section ran to its end
    pub done: bool,
}

/// Parses the status script's output (see the module docs for the format).
#[must_use]
pub fn parse_status(text: &str) -> RawHost {
    let mut raw = RawHost::default();
    let mut unit: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("@drover-status ") {
            raw.header = true;
            continue;
        }
        if line == "@end" {
            raw.complete = true;
            continue;
        }
        if line == "U" || line == "U " {
            add_unit(&mut raw, std::mem::take(&mut unit));
        } else if let Some(rest) = line.strip_prefix("U ") {
            if let Some((k, v)) = rest.split_once('=') {
                unit.insert(k.to_string(), v.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("H ") {
            parse_host_line(&mut raw, rest);
        } else if let Some(rest) = line.strip_prefix("T ") {
            let Some((tenant, rest)) = rest.split_once(' ') else {
                continue;
            };
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let t = raw.tenants.entry(tenant.to_string()).or_default();
            parse_tenant_line(t, key, value);
        }
    }
    add_unit(&mut raw, unit);
    raw
}

/// Files one unit's `systemctl show` properties under its tenant and color, by `Id`.
fn add_unit(raw: &mut RawHost, unit: BTreeMap<String, String>) {
    let Some(id) = unit.get("Id") else {
        return;
    };
    let Some(rest) = id.strip_prefix("drover-") else {
        return;
    };
    for color in COLORS {
        if let Some(tenant) = rest.strip_suffix(&format!("-{color}.service")) {
            raw.tenants
                .entry(tenant.to_string())
                .or_default()
                .units
                .insert(color.to_string(), unit);
            return;
        }
    }
}

fn parse_host_line(raw: &mut RawHost, rest: &str) {
    let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
    let words: Vec<&str> = value.split_whitespace().collect();
    match key {
        "now" => raw.now = value.trim().parse().ok(),
        "uptime" => raw.uptime = value.trim().parse().ok(),
        "cpus" => raw.cpus = value.trim().parse().ok(),
        "load" if words.len() >= 3 => {
            if let (Ok(one), Ok(five), Ok(fifteen)) =
                (words[0].parse(), words[1].parse(), words[2].parse())
            {
                raw.load = Some(Load { one, five, fifteen });
            }
        }
        "mem" if words.len() >= 2 => {
            if let (Ok(total), Ok(available)) = (words[0].parse(), words[1].parse()) {
                raw.mem_kb = Some((total, available));
            }
        }
        "df" if words.len() >= 5 => {
            let numbers: Option<Vec<u64>> = words[1..4].iter().map(|w| w.parse().ok()).collect();
            if let Some(n) = numbers {
                let (size, used, avail) = (n[0], n[1], n[2]);
                let ratio = if used + avail == 0 {
                    0.0
                } else {
                    used as f64 / (used + avail) as f64
                };
                raw.disks.push(Disk {
                    path: words[0].to_string(),
                    mount: words[4..].join(" "),
                    size_bytes: size * 1024,
                    used_bytes: used * 1024,
                    available_bytes: avail * 1024,
                    used_ratio: ratio,
                });
            }
        }
        _ => {}
    }
}

fn parse_tenant_line(t: &mut RawTenant, key: &str, value: &str) {
    let (what, color) = key.split_once('.').unwrap_or((key, ""));
    match what {
        "unit" => {
            if let Some((k, v)) = value.split_once('=') {
                t.units
                    .entry(color.to_string())
                    .or_default()
                    .insert(k.to_string(), v.to_string());
            }
        }
        "port" => {
            if let Ok(p) = value.trim().parse() {
                t.ports.insert(color.to_string(), p);
            }
        }
        "health" => {
            let w: Vec<&str> = value.split_whitespace().collect();
            let rc = w.first().and_then(|x| x.parse().ok()).unwrap_or(-1);
            let code = w.get(1).and_then(|x| x.parse().ok()).unwrap_or(0);
            let secs = w.get(2).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            t.health.insert(color.to_string(), (rc, code, secs));
        }
        "body" => {
            t.bodies.insert(color.to_string(), value.to_string());
        }
        "error" => {
            t.errors.insert(color.to_string(), value.trim().to_string());
        }
        "state" if !value.trim().is_empty() => t.state = Some(value.to_string()),
        "lock" if color == "age" => t.lock_age = value.trim().parse().ok(),
        "lock" => {
            if let Some((k, v)) = value.split_once('=') {
                t.lock.insert(k.to_string(), v.to_string());
            }
        }
        "audit" => t.audit = Some(value.to_string()),
        "route" => t.route = value.trim().parse().ok(),
        "done" => t.done = true,
        _ => {}
    }
}

/// Parses an audit line: `TIME run=R operator=O tenant=T action=A from=F to=T result=R`.
#[must_use]
pub fn parse_audit(line: &str, now: Option<u64>) -> Option<Deploy> {
    let mut words = line.split_whitespace();
    let at = words.next()?.to_string();
    let fields: HashMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
    let get = |k: &str| fields.get(k).map(|v| (*v).to_string());
    let age_seconds = match (now, unix_of(&at)) {
        (Some(now), Some(then)) => Some(now.saturating_sub(then)),
        _ => None,
    };
    Some(Deploy {
        at,
        age_seconds,
        run: get("run"),
        operator: get("operator"),
        action: get("action"),
        from: get("from"),
        to: get("to"),
        result: get("result"),
    })
}

fn health_of(raw: &RawTenant, color: &str) -> Health {
    let Some(&(rc, code, secs)) = raw.health.get(color) else {
        return Health {
            error: Some("not checked (the tenant has no port)".into()),
            ..Health::default()
        };
    };
    let body: Option<serde_json::Value> = raw
        .bodies
        .get(color)
        .and_then(|b| serde_json::from_str(b).ok());
    let field = |k: &str| {
        body.as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let status = field("status");
    let version = field("version");
    let http_status = (code != 0).then_some(code);
    let healthy = rc == 0 && code == 200 && status.as_deref().is_none_or(|s| s == "healthy");
    let error = if healthy {
        None
    } else if rc != 0 && rc != 22 {
        Some(
            raw.errors
                .get(color)
                .filter(|e| !e.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("curl exited {rc}")),
        )
    } else if code != 200 {
        Some(format!("HTTP {code}"))
    } else {
        Some(format!(
            "status {:?}",
            status.as_deref().unwrap_or("unknown")
        ))
    };
    Health {
        healthy,
        http_status,
        latency_ms: (rc == 0 || code != 0).then_some((secs * 1000.0 * 100.0).round() / 100.0),
        status,
        version,
        error,
    }
}

fn color_report(
    raw: &RawTenant,
    tenant: &str,
    color: &str,
    host_now: Option<u64>,
    host_uptime: Option<f64>,
) -> ColorReport {
    let props = raw.units.get(color);
    let prop = |k: &str| {
        props
            .and_then(|p| p.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let active_state = prop("ActiveState");
    let since_boot_us: Option<u64> = prop("ActiveEnterTimestampMonotonic")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let uptime_seconds = match (active_state.as_deref(), since_boot_us, host_uptime) {
        (Some("active" | "reloading" | "deactivating"), Some(us), Some(up)) => {
            let secs = up - us as f64 / 1e6;
            (secs >= 0.0).then_some(secs as u64)
        }
        _ => None,
    };
    ColorReport {
        color: color.to_string(),
        port: raw.ports.get(color).copied(),
        unit: format!("drover-{tenant}-{color}.service"),
        load_state: prop("LoadState"),
        active_state,
        sub_state: prop("SubState"),
        result: prop("Result"),
        restarts: prop("NRestarts").and_then(|v| v.parse().ok()),
        uptime_seconds,
        started_at: match (host_now, uptime_seconds) {
            (Some(now), Some(up)) => Some(rfc3339(now.saturating_sub(up))),
            _ => None,
        },
        main_pid: prop("MainPID")
            .and_then(|v| v.parse().ok())
            .filter(|p| *p > 0),
        health: health_of(raw, color),
    }
}

/// A target whose host could not be read.
#[must_use]
pub fn unknown_target(tenant: &str, host: &str, why: &str) -> TargetReport {
    TargetReport {
        tenant: tenant.to_string(),
        host: host.to_string(),
        state: TargetState::Unknown,
        healthy: None,
        active_color: None,
        routed_color: None,
        version: None,
        running_version: None,
        previous_color: None,
        previous_version: None,
        uptime_seconds: None,
        started_at: None,
        restarts: None,
        last_deploy: None,
        lock: None,
        colors: Vec::new(),
        problems: Vec::new(),
        error: Some(why.to_string()),
    }
}

/// Judges one tenant's lines: the target's report with its problems.
#[must_use]
pub fn evaluate_target(
    host: &str,
    query: &TenantQuery,
    raw: &RawTenant,
    host_now: Option<u64>,
    host_uptime: Option<f64>,
) -> TargetReport {
    let tenant = query.name.as_str();
    let colors: Vec<ColorReport> = COLORS
        .iter()
        .map(|c| color_report(raw, tenant, c, host_now, host_uptime))
        .collect();
    let state: Option<TenantState> = raw
        .state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let routed_color = match (raw.route, query.port) {
        (Some(r), Some(base)) if r == base => Some("blue".to_string()),
        (Some(r), Some(base)) if u32::from(r) == u32::from(base) + 1 => Some("green".to_string()),
        _ => None,
    };
    let running: Vec<&ColorReport> = colors
        .iter()
        .filter(|c| c.active_state.as_deref() == Some("active"))
        .collect();
    let active_color = state
        .as_ref()
        .map(|s| s.active.clone())
        .filter(|c| COLORS.contains(&c.as_str()))
        .or_else(|| routed_color.clone())
        .or_else(|| (running.len() == 1).then(|| running[0].color.clone()));
    let mut problems = Vec::new();
    let installed = colors
        .iter()
        .any(|c| c.load_state.as_deref().is_some_and(|s| s != "not-found"));
    if raw.state.is_some() && state.is_none() {
        problems.push(problem(
            ProblemKind::StatusFailed,
            format!("/var/lib/drover/{tenant}/state.json is not readable JSON"),
        ));
    }
    let active = active_color
        .as_deref()
        .and_then(|a| colors.iter().find(|c| c.color == a));
    match active {
        None if !installed && state.is_none() => problems.push(problem(
            ProblemKind::NotDeployed,
            format!("{tenant} is not deployed on {host} (no state file, no unit)"),
        )),
        None => problems.push(problem(
            ProblemKind::ServiceDown,
            format!(
                "no live color: no state file, no nginx route, and {} unit(s) running",
                running.len()
            ),
        )),
        Some(c) => {
            // A unit that is not running is the problem; its failing health check is
            // only the consequence (said in the same line).
            let health = match (&c.health.error, c.port) {
                (Some(e), Some(port)) if !c.health.healthy => format!("; port {port}: {e}"),
                _ => String::new(),
            };
            let unit_ok = match c.active_state.as_deref() {
                Some("active") => true,
                // No systemd to ask (or not allowed to): judge by health alone.
                None if c.load_state.is_none() => true,
                Some("failed") => {
                    problems.push(problem(
                        ProblemKind::UnitFailed,
                        format!(
                            "{} (live color) failed ({}){health}",
                            c.unit,
                            c.result.as_deref().unwrap_or("unknown result")
                        ),
                    ));
                    false
                }
                other => {
                    problems.push(problem(
                        ProblemKind::ServiceDown,
                        format!(
                            "{} (live color) is {}{}{health}",
                            c.unit,
                            other.unwrap_or("in an unknown state"),
                            c.sub_state
                                .as_deref()
                                .map(|s| format!(" ({s})"))
                                .unwrap_or_default()
                        ),
                    ));
                    false
                }
            };
            if unit_ok && c.port.is_some() && !c.health.healthy {
                problems.push(problem(
                    ProblemKind::Unhealthy,
                    format!(
                        "{} color on port {} is not healthy: {}",
                        c.color,
                        c.port.unwrap_or(0),
                        c.health.error.as_deref().unwrap_or("no answer")
                    ),
                ));
            }
        }
    }
    for c in &colors {
        if Some(c.color.as_str()) != active_color.as_deref()
            && c.active_state.as_deref() == Some("failed")
        {
            problems.push(problem(
                ProblemKind::UnitFailed,
                format!(
                    "{} (idle color) failed ({}): a rollback to it would not work",
                    c.unit,
                    c.result.as_deref().unwrap_or("unknown result")
                ),
            ));
        }
    }
    let running_version = active.and_then(|c| c.health.version.clone());
    if let (Some(s), Some(v)) = (&state, &running_version)
        && &s.version != v
        && active.is_some_and(|c| c.health.healthy)
    {
        problems.push(problem(
            ProblemKind::VersionMismatch,
            format!(
                "state.json records {} but the live color runs {v}",
                s.version
            ),
        ));
    }
    if let (Some(s), Some(r)) = (&state, &routed_color)
        && &s.active != r
    {
        problems.push(problem(
            ProblemKind::RouteMismatch,
            format!(
                "state.json says {} is live but nginx routes to {r}",
                s.active
            ),
        ));
    }
    let lock = raw.lock_age.map(|age| {
        let get = |k: &str| raw.lock.get(k).cloned();
        Lock {
            run: get("run"),
            operator: get("operator"),
            since: get("since"),
            age_seconds: Some(age),
            stale: age > STALE_LOCK.as_secs(),
        }
    });
    if let Some(l) = lock.as_ref().filter(|l| l.stale) {
        problems.push(problem(
            ProblemKind::StaleLock,
            format!(
                "deploy lock held for {} by run {} ({}): its run probably died; `drover deploy --force-unlock` takes it",
                human_duration(l.age_seconds.unwrap_or(0)),
                l.run.as_deref().unwrap_or("unknown"),
                l.operator.as_deref().unwrap_or("unknown operator")
            ),
        ));
    }
    let (healthy, uptime_seconds, started_at, restarts) = match active {
        Some(c) => (
            Some(c.health.healthy && c.active_state.as_deref() == Some("active")),
            c.uptime_seconds,
            c.started_at.clone(),
            c.restarts,
        ),
        None => (Some(false), None, None, None),
    };
    let mut report = TargetReport {
        tenant: tenant.to_string(),
        host: host.to_string(),
        state: if problems.is_empty() {
            TargetState::Ok
        } else {
            TargetState::Problem
        },
        healthy,
        active_color,
        routed_color,
        version: state.as_ref().map(|s| s.version.clone()),
        running_version,
        previous_color: state.as_ref().and_then(|s| s.previous.clone()),
        previous_version: state.as_ref().and_then(|s| s.previous_version.clone()),
        uptime_seconds,
        started_at,
        restarts,
        last_deploy: raw.audit.as_deref().and_then(|a| parse_audit(a, host_now)),
        lock,
        colors,
        problems,
        error: None,
    };
    if !raw.done {
        report.state = TargetState::Unknown;
        report.error = Some("the status script did not finish this tenant".into());
    }
    report
}

/// Judges a host's answer: the host's report and its targets'.
#[must_use]
pub fn evaluate_host(
    host: &Host,
    tenants: &[TenantQuery],
    raw: &RawHost,
    duration: Duration,
) -> (HostReport, Vec<TargetReport>) {
    let mut problems = Vec::new();
    let mut seen_mounts: Vec<&str> = Vec::new();
    for d in &raw.disks {
        if seen_mounts.contains(&d.mount.as_str()) {
            continue;
        }
        seen_mounts.push(&d.mount);
        if d.used_ratio > DISK_USED_THRESHOLD {
            problems.push(problem(
                ProblemKind::DiskUsage,
                format!(
                    "{} ({}) is {:.0}% used, {} available",
                    d.mount,
                    d.path,
                    d.used_ratio * 100.0,
                    human_bytes(d.available_bytes)
                ),
            ));
        }
    }
    let memory = raw
        .mem_kb
        .filter(|(t, _)| *t > 0)
        .map(|(total, avail)| Memory {
            total_bytes: total * 1024,
            available_bytes: avail * 1024,
            used_ratio: 1.0 - avail as f64 / total as f64,
        });
    if let Some(m) = memory
        && (m.available_bytes as f64) < m.total_bytes as f64 * MEMORY_AVAILABLE_THRESHOLD
    {
        problems.push(problem(
            ProblemKind::MemoryLow,
            format!(
                "only {} of {} memory available",
                human_bytes(m.available_bytes),
                human_bytes(m.total_bytes)
            ),
        ));
    }
    let complete = raw.header && raw.complete;
    let state = if raw.header {
        HostState::Up
    } else {
        HostState::Error
    };
    let error = (!complete).then(|| {
        if raw.header {
            "the status script stopped early".to_string()
        } else {
            "the status script printed nothing".to_string()
        }
    });
    if !raw.header {
        problems.push(problem(
            ProblemKind::StatusFailed,
            error.clone().unwrap_or_default(),
        ));
    }
    let targets = tenants
        .iter()
        .map(|t| match raw.tenants.get(&t.name) {
            Some(rt) if raw.header => evaluate_target(&host.name, t, rt, raw.now, raw.uptime),
            _ => unknown_target(
                &t.name,
                &host.name,
                error.as_deref().unwrap_or("no answer for this tenant"),
            ),
        })
        .collect();
    let report = HostReport {
        host: host.name.clone(),
        address: host.address.clone(),
        state,
        error,
        uptime_seconds: raw.uptime.map(|u| u as u64),
        cpus: raw.cpus,
        load: raw.load,
        memory,
        disks: raw.disks.clone(),
        problems,
        duration_ms: millis(duration),
    };
    (report, targets)
}

/// A host that could not be read: unreachable or in error, its targets unknown.
#[must_use]
pub fn failed_host(
    host: &Host,
    tenants: &[TenantQuery],
    state: HostState,
    why: &str,
    duration: Duration,
) -> (HostReport, Vec<TargetReport>) {
    let kind = if state == HostState::Unreachable {
        ProblemKind::Unreachable
    } else {
        ProblemKind::StatusFailed
    };
    let report = HostReport {
        host: host.name.clone(),
        address: host.address.clone(),
        state,
        error: Some(why.to_string()),
        uptime_seconds: None,
        cpus: None,
        load: None,
        memory: None,
        disks: Vec::new(),
        problems: vec![problem(kind, why)],
        duration_ms: millis(duration),
    };
    let word = if state == HostState::Unreachable {
        "host unreachable"
    } else {
        "status unreadable"
    };
    let targets = tenants
        .iter()
        .map(|t| unknown_target(&t.name, &host.name, word))
        .collect();
    (report, targets)
}

/// `3d4h`, `5h12m`, `7m3s`, `42s`.
#[must_use]
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `1.5 GiB`, `300 MiB`, `12 KiB`.
#[must_use]
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

// ---------------------------------------------------------------------------------
// Fan-out

/// Settings of a status round.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// hosts worked on at once
    pub forks: usize,
    /// time the host script may take (the inventory's command_timeout when shorter)
    pub timeout: Duration,
}

/// What happened when a script ran on a host.
#[derive(Debug)]
pub enum HostRun {
    /// it ran (whatever its exit status)
    Ran(ExecOutput),
    /// no connection, or it was lost
    Unreachable(String),
    /// connected, but the command could not run
    Failed(String),
}

/// Connects to a host, runs `script` as root there, closes.
pub async fn run_on_host<C: Connector>(
    connector: &C,
    host: &Host,
    script: String,
    timeout: Duration,
) -> HostRun {
    let connection = match connector.connect(host).await {
        Ok(c) => c,
        Err(e) => return HostRun::Unreachable(e.to_string()),
    };
    let timeout = timeout
        .min(host.command_timeout)
        .max(Duration::from_secs(1));
    let result = connection
        .exec(&RemoteCommand::new(as_root(script, host), timeout))
        .await;
    connection.close().await;
    match result {
        Ok(out) => HostRun::Ran(out),
        Err(e @ TransportError::ConnectionLost { .. }) => HostRun::Unreachable(e.to_string()),
        Err(e) => HostRun::Failed(e.to_string()),
    }
}

/// Runs `work` for every query, at most `forks` hosts at once, results in query order.
pub async fn fan_out<T, F, Fut>(queries: Vec<HostQuery>, forks: usize, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(HostQuery) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    // A permit is held from connect to close: at most `forks` connections at once.
    let limit = Arc::new(Semaphore::new(forks.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, query) in queries.into_iter().enumerate() {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            break;
        };
        let fut = work(query);
        tasks.spawn(async move {
            let out = fut.await;
            drop(permit);
            (index, out)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(pair) = joined {
            out.push(pair);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

/// Judges what a host run gave for the status script.
#[must_use]
pub fn judge_status_run(
    query: &HostQuery,
    run: HostRun,
    duration: Duration,
) -> (HostReport, Vec<TargetReport>) {
    match run {
        HostRun::Unreachable(why) => failed_host(
            &query.host,
            &query.tenants,
            HostState::Unreachable,
            &why,
            duration,
        ),
        HostRun::Failed(why) => failed_host(
            &query.host,
            &query.tenants,
            HostState::Error,
            &why,
            duration,
        ),
        HostRun::Ran(out) => {
            let raw = parse_status(&out.stdout.text());
            if !raw.header {
                let stderr = out.stderr.text();
                let why = if out.timed_out {
                    "the status script timed out".to_string()
                } else if stderr.trim().is_empty() {
                    format!(
                        "the status script printed nothing (exit {})",
                        out.exit_status.map_or("none".into(), |c| c.to_string())
                    )
                } else {
                    format!("the status script failed: {}", stderr.trim())
                };
                return failed_host(
                    &query.host,
                    &query.tenants,
                    HostState::Error,
                    &why,
                    duration,
                );
            }
            evaluate_host(&query.host, &query.tenants, &raw, duration)
        }
    }
}

/// One status round: the status script on every host, judged.
pub async fn status<C: Connector>(
    connector: Arc<C>,
    queries: Vec<HostQuery>,
    options: StatusOptions,
) -> FleetStatus {
    let started = Instant::now();
    let generated_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let timeout = options.timeout;
    let results = fan_out(queries, options.forks, |query| {
        let connector = Arc::clone(&connector);
        async move {
            let begun = Instant::now();
            let script = status_script(&query.tenants);
            let run = run_on_host(&*connector, &query.host, script, timeout).await;
            judge_status_run(&query, run, begun.elapsed())
        }
    })
    .await;
    let mut hosts = Vec::new();
    let mut targets = Vec::new();
    for (h, t) in results {
        hosts.push(h);
        targets.extend(t);
    }
    // Tenant then host order, as the selection lists targets.
    targets.sort_by(|a, b| {
        crate::config::inventory::natural_cmp(&a.tenant, &b.tenant)
            .then_with(|| crate::config::inventory::natural_cmp(&a.host, &b.host))
    });
    FleetStatus::new(hosts, targets, generated_at, started.elapsed())
}

// ---------------------------------------------------------------------------------
// drover logs

/// Which source a log line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// tenant
    pub tenant: String,
    /// `journal`, `blue`, `green` (the agent's log file of that color)
    pub source: String,
    /// the line
    pub text: String,
}

/// Parses one output line of [`logs_script`]: `TENANT SOURCE TEXT`.
#[must_use]
pub fn parse_log_line(line: &str) -> Option<LogLine> {
    let (tenant, rest) = line.split_once(' ')?;
    let (source, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(LogLine {
        tenant: tenant.to_string(),
        source: source.to_string(),
        text: text.to_string(),
    })
}

/// Settings of `drover logs`.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// lines of history per source
    pub lines: u32,
    /// journal entries newer than this
    pub since: Option<Duration>,
    /// keep streaming
    pub follow: bool,
}

/// The logs script for a host's tenants: the journal of both color units (systemd's
/// own lines) and the agents' log files (`/var/log/drover/<tenant>/<color>.log`, where
/// the units send stdout and stderr), every line prefixed `TENANT SOURCE `.
///
/// Following, the script runs until its standard input closes (drover closes the
/// channel on Ctrl-C), then ends every follower it started: closing an SSH channel
/// alone does not end processes that have no terminal.
#[must_use]
pub fn logs_script(tenants: &[String], options: LogOptions) -> String {
    let mut s = String::from(
        "LC_ALL=C; export LC_ALL\n\
         drover_prefix() { while IFS= read -r l || [ -n \"$l\" ]; do printf '%s %s\\n' \"$1\" \"$l\"; done; }\n",
    );
    let follow = if options.follow { " -f" } else { "" };
    let since = options
        .since
        .map(|d| format!(" --since=-{}s", d.as_secs().max(1)))
        .unwrap_or_default();
    for t in tenants {
        let units: String = COLORS
            .iter()
            .map(|c| format!(" -u {}", q(&format!("drover-{t}-{c}.service"))))
            .collect();
        let _ = writeln!(
            s,
            "{{ journalctl --no-pager -q -o short-iso -n {n}{since}{follow}{units} 2>&1 | drover_prefix {p}; }} &",
            n = options.lines,
            p = q(&format!("{t} journal")),
        );
        for c in COLORS {
            let file = q(&format!("/var/log/drover/{t}/{c}.log"));
            let p = q(&format!("{t} {c}"));
            if options.follow {
                let _ = writeln!(
                    s,
                    "{{ tail -n {n} -F {file} 2>/dev/null | drover_prefix {p}; }} &",
                    n = options.lines
                );
            } else {
                let _ = writeln!(
                    s,
                    "[ -f {file} ] && {{ tail -n {n} {file} 2>&1 | drover_prefix {p}; }} &",
                    n = options.lines
                );
            }
        }
    }
    if options.follow {
        // Until drover closes stdin (Ctrl-C, or the connection is gone), then end the
        // followers: they are in this shell's process group.
        s.push_str("cat >/dev/null\ntrap '' TERM\nkill -TERM 0 2>/dev/null\nexit 0\n");
    } else {
        s.push_str("wait\n");
    }
    s
}

/// The whole command sent for `drover logs` to a host: the script as root; when not
/// following, under `timeout(1)` like any command.
#[must_use]
pub fn logs_command(
    host: &Host,
    tenants: &[String],
    options: LogOptions,
    timeout: Duration,
) -> String {
    let script = as_root(logs_script(tenants, options), host);
    if options.follow {
        script
    } else {
        RemoteCommand::new(script, timeout).wrapped()
    }
}

// ---------------------------------------------------------------------------------
// drover diagnose

/// Settings of `drover diagnose`.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// hosts worked on at once
    pub forks: usize,
    /// time the host script may take
    pub timeout: Duration,
    /// journal lines per host
    pub lines: u32,
}

/// The section marker of the diagnose script: unlikely in any real output.
const SECTION: &str = "@@drover-diagnose-section-7f3a9c";

/// The diagnose script: the status script (section `status`), then the files of the
/// bundle, each after a marker line `@@drover-diagnose-section-… NAME`.
#[must_use]
pub fn diagnose_script(tenants: &[TenantQuery], lines: u32) -> String {
    let mut s = format!(
        "echo '{SECTION} status'\n(\n{}\n)\n",
        status_script(tenants)
    );
    let section = |s: &mut String, name: &str, body: &str| {
        let _ = write!(s, "echo '{SECTION} {name}'\n( {body} ) 2>&1\n");
    };
    let units: String = tenants
        .iter()
        .flat_map(|t| COLORS.map(|c| format!(" {}", q(&format!("drover-{}-{c}.service", t.name)))))
        .collect();
    let unit_args: String = tenants
        .iter()
        .flat_map(|t| {
            COLORS.map(|c| format!(" -u {}", q(&format!("drover-{}-{c}.service", t.name))))
        })
        .collect();
    section(
        &mut s,
        "units.txt",
        &format!("systemctl status --no-pager -l -n 0{units}; echo; systemctl --failed --no-pager"),
    );
    section(
        &mut s,
        "journal.txt",
        &format!("journalctl --no-pager -o short-iso -n {lines}{unit_args}"),
    );
    let mut agent_logs = String::new();
    for t in tenants {
        for c in COLORS {
            let file = format!("/var/log/drover/{}/{c}.log", t.name);
            let _ = write!(
                agent_logs,
                "[ -f {f} ] && {{ echo '==> {file} <=='; tail -n {lines} {f}; echo; }}; ",
                f = q(&file)
            );
        }
    }
    agent_logs.push_str("true");
    section(&mut s, "agent-logs.txt", &agent_logs);
    section(&mut s, "df.txt", "df -h; echo; df -i");
    section(&mut s, "free.txt", "free -h");
    section(
        &mut s,
        "top.txt",
        "uptime; echo; ps -eo pid,user,%cpu,%mem,rss,etime,comm --sort=-%cpu | head -n 25; echo; ps -eo pid,user,%cpu,%mem,rss,etime,comm --sort=-rss | head -n 15",
    );
    section(
        &mut s,
        "oom.txt",
        "{ journalctl -k --no-pager -q -n 5000 2>/dev/null; dmesg 2>/dev/null; } | grep -iE 'out of memory|oom-kill|oom_reaper|killed process' | tail -n 100; true",
    );
    section(
        &mut s,
        "audit.txt",
        "tail -n 100 /var/log/drover/audit.log 2>/dev/null || echo 'no audit log'",
    );
    for t in tenants {
        let dir = format!("/var/lib/drover/{}", t.name);
        section(
            &mut s,
            &format!("state-{}.json", t.name),
            &format!(
                "cat {} 2>/dev/null || echo 'no state file'",
                q(&format!("{dir}/state.json"))
            ),
        );
        section(
            &mut s,
            &format!("lock-{}.txt", t.name),
            &format!(
                "if [ -d {l} ]; then cat {l}/owner 2>/dev/null; echo \"age=$(( $(date +%s) - $(stat -c %Y {l}) ))s\"; else echo 'not locked'; fi",
                l = q(&format!("{dir}/lock.d"))
            ),
        );
        section(
            &mut s,
            &format!("nginx-{}.conf", t.name),
            &format!(
                "cat {} 2>/dev/null || echo 'no nginx config'",
                q(&format!("/etc/nginx/conf.d/drover-{}.conf", t.name))
            ),
        );
    }
    let _ = writeln!(s, "echo '{SECTION} end'");
    s
}

/// Splits the diagnose script's output into its sections (name → text), in order.
#[must_use]
pub fn split_sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end().strip_prefix(&format!("{SECTION} ")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
        }
    }
    out
}

/// The one-word verdicts of `drover diagnose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    /// the live color answers healthy (and the disk has room)
    Healthy,
    /// the live color is not running or not healthy
    ServiceDown,
    /// the host's disk is (nearly) full
    DiskFull,
    /// the agent was killed for lack of memory
    OutOfMemory,
    /// the host could not be reached (or read)
    Unreachable,
}

impl VerdictKind {
    /// Words for people.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            VerdictKind::Healthy => "healthy",
            VerdictKind::ServiceDown => "service down",
            VerdictKind::DiskFull => "disk full",
            VerdictKind::OutOfMemory => "out of memory",
            VerdictKind::Unreachable => "unreachable",
        }
    }
}

/// A target's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// tenant
    pub tenant: String,
    /// host
    pub host: String,
    /// the verdict
    pub verdict: VerdictKind,
    /// why
    pub detail: String,
}

/// A disk this full is "full" for a verdict, whatever the service does.
pub const DISK_FULL: f64 = 0.95;
/// A service that is down on a disk this full is down because of the disk.
pub const DISK_FULL_WHEN_DOWN: f64 = 0.90;

/// The verdict of a target from its status and the host's OOM evidence (kernel lines).
#[must_use]
pub fn verdict(host: &HostReport, target: &TargetReport, oom_lines: &str) -> Verdict {
    let make = |verdict: VerdictKind, detail: String| Verdict {
        tenant: target.tenant.clone(),
        host: target.host.clone(),
        verdict,
        detail,
    };
    if host.state != HostState::Up || target.state == TargetState::Unknown {
        return make(
            VerdictKind::Unreachable,
            host.error
                .clone()
                .or_else(|| target.error.clone())
                .unwrap_or_else(|| "no answer".into()),
        );
    }
    let fullest = host
        .disks
        .iter()
        .max_by(|a, b| a.used_ratio.total_cmp(&b.used_ratio));
    let disk_text = |d: &Disk| {
        format!(
            "{} is {:.0}% used ({} available)",
            d.mount,
            d.used_ratio * 100.0,
            human_bytes(d.available_bytes)
        )
    };
    let oom_unit = target.colors.iter().find(|c| {
        c.result.as_deref() == Some("oom-kill")
            || oom_lines
                .lines()
                .any(|l| l.contains(&c.unit) || l.contains(&format!("agent-{}", target.tenant)))
    });
    let healthy = target.healthy == Some(true);
    if !healthy {
        if let Some(c) = oom_unit {
            return make(
                VerdictKind::OutOfMemory,
                format!(
                    "{} was killed for lack of memory (result {}, see oom.txt)",
                    c.unit,
                    c.result.as_deref().unwrap_or("unknown")
                ),
            );
        }
        if let Some(d) = fullest.filter(|d| d.used_ratio >= DISK_FULL_WHEN_DOWN) {
            return make(VerdictKind::DiskFull, disk_text(d));
        }
        let why: Vec<&str> = target.problems.iter().map(|p| p.message.as_str()).collect();
        return make(
            VerdictKind::ServiceDown,
            if why.is_empty() {
                "the live color does not answer healthy".into()
            } else {
                why.join("; ")
            },
        );
    }
    if let Some(d) = fullest.filter(|d| d.used_ratio >= DISK_FULL) {
        return make(VerdictKind::DiskFull, disk_text(d));
    }
    let mut detail = format!(
        "{} {} answers healthy",
        target.active_color.as_deref().unwrap_or("?"),
        target
            .running_version
            .as_deref()
            .or(target.version.as_deref())
            .unwrap_or("?")
    );
    if let Some(c) = oom_unit {
        let _ = write!(detail, "; note: {} was OOM-killed earlier", c.unit);
    }
    for p in &target.problems {
        let _ = write!(detail, "; also {}: {}", p.kind.word(), p.message);
    }
    make(VerdictKind::Healthy, detail)
}

/// One host's diagnosis: the bundle's files, its status, the verdicts of its targets.
#[derive(Debug)]
pub struct HostDiagnosis {
    /// the host's status
    pub host: HostReport,
    /// its targets' status
    pub targets: Vec<TargetReport>,
    /// files of the bundle (name, content)
    pub files: Vec<(String, String)>,
    /// one per target
    pub verdicts: Vec<Verdict>,
}

/// True for names that can be files of a bundle.
#[must_use]
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Diagnoses every host: one SSH command each, bounded like `drover run`.
pub async fn diagnose<C: Connector>(
    connector: Arc<C>,
    queries: Vec<HostQuery>,
    options: DiagnoseOptions,
) -> Vec<HostDiagnosis> {
    let (timeout, lines) = (options.timeout, options.lines);
    fan_out(queries, options.forks, |query| {
        let connector = Arc::clone(&connector);
        async move {
            let begun = Instant::now();
            let script = diagnose_script(&query.tenants, lines);
            let run = run_on_host(&*connector, &query.host, script, timeout).await;
            let (files, run) = match run {
                HostRun::Ran(mut out) => {
                    let text = out.stdout.text();
                    let sections = split_sections(&text);
                    let status_text = sections
                        .iter()
                        .find(|(n, _)| n == "status")
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default();
                    let mut files: Vec<(String, String)> = sections
                        .into_iter()
                        .filter(|(n, _)| n != "end" && n != "status" && is_safe_file_name(n))
                        .collect();
                    files.push(("status-raw.txt".into(), status_text.clone()));
                    let stderr = out.stderr.text();
                    if !stderr.trim().is_empty() {
                        files.push(("stderr.txt".into(), stderr));
                    }
                    out.stdout = crate::transport::Captured::default();
                    out.stdout.push(status_text.as_bytes(), usize::MAX);
                    (files, HostRun::Ran(out))
                }
                HostRun::Unreachable(why) => (
                    vec![("unreachable.txt".into(), format!("{why}\n"))],
                    HostRun::Unreachable(why),
                ),
                HostRun::Failed(why) => (
                    vec![("error.txt".into(), format!("{why}\n"))],
                    HostRun::Failed(why),
                ),
            };
            let (host, targets) = judge_status_run(&query, run, begun.elapsed());
            let oom = files
                .iter()
                .find(|(n, _)| n == "oom.txt")
                .map(|(_, t)| t.as_str())
                .unwrap_or("");
            let verdicts = targets.iter().map(|t| verdict(&host, t, oom)).collect();
            HostDiagnosis {
                host,
                targets,
                files,
                verdicts,
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Inventory, SourceFile};

    const HEALTHY: &str = include_str!("../../tests/fixtures/status/healthy.txt");
    const PROBLEMS: &str = include_str!("../../tests/fixtures/status/problems.txt");

    fn host(name: &str) -> Host {
        let text = format!("[hosts.{name}]\naddress = \"10.0.0.1\"\n");
        Inventory::from_sources(vec![SourceFile::new("t.toml", text)])
            .unwrap()
            .hosts
            .remove(0)
    }

    fn tenants() -> Vec<TenantQuery> {
        [("acme", 8100), ("umbrella", 8130), ("hooli", 8140)]
            .iter()
            .map(|(n, p)| TenantQuery {
                name: (*n).into(),
                port: Some(*p),
            })
            .collect()
    }

    fn judge(text: &str) -> (HostReport, Vec<TargetReport>) {
        evaluate_host(
            &host("host-1"),
            &tenants(),
            &parse_status(text),
            Duration::from_millis(5),
        )
    }

    fn kinds(t: &TargetReport) -> Vec<ProblemKind> {
        t.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn the_captured_output_of_a_healthy_host_parses_line_by_line() {
        let raw = parse_status(HEALTHY);
        assert!(raw.header && raw.complete);
        assert_eq!(raw.now, Some(1_795_312_171));
        assert_eq!(raw.cpus, Some(2));
        assert_eq!(
            raw.load,
            Some(Load {
                one: 6.6,
                five: 12.66,
                fifteen: 15.15
            })
        );
        assert_eq!(raw.mem_kb, Some((24_684_092, 23_341_816)));
        let paths: Vec<&str> = raw.disks.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/", "/opt/drover", "/var/lib/drover"]);
        assert!(raw.disks.iter().all(|d| d.mount == "/"));
        assert!((raw.disks[0].used_ratio - 22_993_864.0 / 95_285_888.0).abs() < 1e-9);
        assert_eq!(raw.tenants.len(), 3);
        let acme = &raw.tenants["acme"];
        assert!(acme.done);
        // One systemctl call for all units; each block filed under its tenant and color.
        assert_eq!(acme.units["blue"]["ActiveState"], "active");
        assert_eq!(acme.units["green"]["MainPID"], "930");
        assert_eq!(
            raw.tenants["hooli"].units["green"]["LoadState"],
            "not-found"
        );
        assert_eq!(acme.ports["green"], 8101);
        assert_eq!(acme.health["green"], (0, 200, 0.004_422));
        let hooli = &raw.tenants["hooli"];
        assert_eq!(hooli.health["green"].0, 7);
        assert!(hooli.errors["green"].contains("Couldn't connect"));
        assert_eq!(acme.route, Some(8101));
        assert!(acme.audit.as_deref().unwrap().contains("action=deploy"));
        assert!(acme.lock_age.is_none());
    }

    #[test]
    fn a_healthy_host_has_every_target_ok_with_its_color_version_and_uptime() {
        let (h, targets) = judge(HEALTHY);
        assert_eq!(h.state, HostState::Up);
        assert!(h.problems.is_empty(), "{:?}", h.problems);
        assert_eq!(h.memory.unwrap().total_bytes, 24_684_092 * 1024);
        assert_eq!(targets.len(), 3);
        // acme was updated blue-green to 2.0.0; the others run 1.0.0 on blue.
        for t in &targets {
            let (color, version) = if t.tenant == "acme" {
                ("green", "2.0.0")
            } else {
                ("blue", "1.0.0")
            };
            assert_eq!(t.state, TargetState::Ok, "{t:?}");
            assert_eq!(t.healthy, Some(true));
            assert_eq!(t.active_color.as_deref(), Some(color));
            assert_eq!(t.routed_color.as_deref(), Some(color));
            assert_eq!(t.version.as_deref(), Some(version));
            assert_eq!(t.running_version.as_deref(), Some(version));
            assert_eq!(t.restarts, Some(0));
            assert!(t.lock.is_none());
        }
        let acme = &targets[0];
        assert_eq!(acme.previous_color.as_deref(), Some("blue"));
        assert_eq!(acme.previous_version.as_deref(), Some("1.0.0"));
        // 6408.43 s of host uptime, green entered active at 5854.77 s.
        assert_eq!(acme.uptime_seconds, Some(553));
        assert_eq!(acme.started_at.as_deref(), Some("2026-11-22T01:40:18Z"));
        assert_eq!(acme.colors[1].health.latency_ms, Some(4.42));
        assert!(acme.colors[0].health.healthy, "the old color stays warm");
        assert!(!targets[2].colors[1].health.healthy);
        let deploy = acme.last_deploy.as_ref().unwrap();
        assert_eq!(deploy.run.as_deref(), Some("20261122t014015z-20499"));
        assert_eq!(deploy.operator.as_deref(), Some("unknown@vm"));
        assert_eq!(deploy.from.as_deref(), Some("blue@1.0.0"));
        assert_eq!(deploy.to.as_deref(), Some("green@2.0.0"));
        assert_eq!(deploy.age_seconds, Some(552));
        let status = FleetStatus::new(vec![h], targets, "now".into(), Duration::ZERO);
        assert_eq!(status.exit_code(), ExitCode::Ok);
        assert_eq!(status.summary.targets_ok, 3);
        assert_eq!(status.summary.exit_code, 0);
    }

    #[test]
    fn a_stopped_live_unit_and_a_stale_lock_are_flagged_on_their_targets_only() {
        let (h, targets) = judge(PROBLEMS);
        let by: HashMap<&str, &TargetReport> =
            targets.iter().map(|t| (t.tenant.as_str(), t)).collect();
        let acme = by["acme"];
        assert_eq!(acme.state, TargetState::Ok, "{:?}", acme.problems);
        assert_eq!(acme.active_color.as_deref(), Some("green"));
        assert_eq!(acme.version.as_deref(), Some("2.0.0"));
        assert_eq!(acme.previous_color.as_deref(), Some("blue"));
        assert_eq!(acme.previous_version.as_deref(), Some("1.0.0"));
        let umbrella = by["umbrella"];
        assert_eq!(umbrella.state, TargetState::Problem);
        assert_eq!(umbrella.healthy, Some(false));
        assert_eq!(kinds(umbrella), [ProblemKind::ServiceDown]);
        let message = &umbrella.problems[0].message;
        assert!(message.contains("drover-umbrella-blue.service (live color) is inactive (dead)"));
        assert!(
            message.contains("; port 8130: curl: (7) Failed to connect"),
            "{message}"
        );
        assert_eq!(umbrella.uptime_seconds, None);
        let hooli = by["hooli"];
        assert_eq!(kinds(hooli), [ProblemKind::StaleLock]);
        let lock = hooli.lock.as_ref().unwrap();
        assert!(lock.stale);
        assert_eq!(lock.age_seconds, Some(7200));
        assert_eq!(lock.operator.as_deref(), Some("ops@laptop"));
        assert!(hooli.problems[0].message.contains("2h0m"));
        let status = FleetStatus::new(vec![h], targets, "now".into(), Duration::ZERO);
        assert_eq!(status.exit_code(), ExitCode::Failed);
        assert_eq!(status.summary.targets_problem, 2);
        assert_eq!(status.summary.problems, 2);
    }

    #[test]
    fn failed_units_full_disks_low_memory_and_mismatches_are_problems() {
        let text = PROBLEMS
            .replace("H df / 264212084 22993868 72292020 /", "H df / 100 85 15 /")
            .replace("H mem 24684092 23349540", "H mem 1000 50")
            .replace("T acme route 8101", "T acme route 8100")
            // A later block for the same unit wins: hooli's idle green has failed.
            .replace(
                "@end",
                "U Id=drover-hooli-green.service\nU LoadState=loaded\nU ActiveState=failed\nU Result=oom-kill\n@end",
            )
            .replace(
                "\"version\":\"2.0.0\",\"tenant\":\"acme\"",
                "\"version\":\"2.0.1\",\"tenant\":\"acme\"",
            );
        let (h, targets) = judge(&text);
        let host_kinds: Vec<ProblemKind> = h.problems.iter().map(|p| p.kind).collect();
        // The other two paths are on the same mount: one problem per file system.
        assert_eq!(host_kinds, [ProblemKind::DiskUsage, ProblemKind::MemoryLow]);
        assert!(
            h.problems[0].message.contains("85% used"),
            "{:?}",
            h.problems
        );
        let acme = &targets[0];
        assert_eq!(
            kinds(acme),
            [ProblemKind::VersionMismatch, ProblemKind::RouteMismatch]
        );
        let hooli = &targets[2];
        assert!(kinds(hooli).contains(&ProblemKind::UnitFailed));
        assert!(
            hooli
                .problems
                .iter()
                .any(|p| p.message.contains("oom-kill"))
        );
    }

    #[test]
    fn unhealthy_answers_say_why() {
        let mut raw = RawTenant::default();
        raw.health.insert("blue".into(), (22, 500, 0.01));
        raw.bodies.insert(
            "blue".into(),
            r#"{"status":"unhealthy","version":"3.0.0-broken"}"#.into(),
        );
        let h = health_of(&raw, "blue");
        assert!(!h.healthy);
        assert_eq!(h.http_status, Some(500));
        assert_eq!(h.version.as_deref(), Some("3.0.0-broken"));
        assert_eq!(h.error.as_deref(), Some("HTTP 500"));
        raw.health.insert("blue".into(), (0, 200, 0.01));
        raw.bodies
            .insert("blue".into(), r#"{"status":"degraded"}"#.into());
        assert_eq!(
            health_of(&raw, "blue").error.as_deref(),
            Some("status \"degraded\"")
        );
        raw.bodies.insert("blue".into(), "OK".into());
        assert!(health_of(&raw, "blue").healthy, "a plain 200 is healthy");
        raw.health.insert("blue".into(), (28, 0, 2.0));
        raw.errors
            .insert("blue".into(), "curl: (28) Operation timed out".into());
        let h = health_of(&raw, "blue");
        assert_eq!(h.error.as_deref(), Some("curl: (28) Operation timed out"));
        assert_eq!(h.latency_ms, None);
        assert!(
            health_of(&RawTenant::default(), "green")
                .error
                .unwrap()
                .contains("no port")
        );
    }

    #[test]
    fn output_cut_short_makes_targets_unknown_and_no_header_makes_the_host_an_error() {
        let cut: String = PROBLEMS
            .lines()
            .take_while(|l| !l.starts_with("T hooli"))
            .map(|l| format!("{l}\n"))
            .collect();
        let (h, targets) = judge(&cut);
        assert_eq!(h.state, HostState::Up);
        assert_eq!(h.error.as_deref(), Some("the status script stopped early"));
        assert_eq!(targets[2].state, TargetState::Unknown);
        assert_eq!(targets[0].state, TargetState::Ok);
        let (h, targets) = judge("sudo: a password is required\n");
        assert_eq!(h.state, HostState::Error);
        assert!(targets.iter().all(|t| t.state == TargetState::Unknown));
        let status = FleetStatus::new(vec![h], targets, "now".into(), Duration::ZERO);
        assert_eq!(status.exit_code(), ExitCode::Failed);
    }

    #[test]
    fn an_unreachable_host_makes_its_targets_unknown_and_the_exit_code_4() {
        let (healthy, mut targets) = judge(HEALTHY);
        let (down, lost) = failed_host(
            &host("host-2"),
            &tenants(),
            HostState::Unreachable,
            "connect to 10.0.0.2:22 timed out after 3s (tcp connect)",
            Duration::from_secs(3),
        );
        assert_eq!(down.problems[0].kind, ProblemKind::Unreachable);
        assert!(
            lost.iter()
                .all(|t| t.state == TargetState::Unknown && t.healthy.is_none())
        );
        targets.extend(lost);
        let status = FleetStatus::new(vec![healthy, down], targets, "now".into(), Duration::ZERO);
        assert_eq!(status.exit_code(), ExitCode::Unreachable);
        assert_eq!(status.summary.hosts_unreachable, 1);
        assert_eq!(status.summary.targets_unknown, 3);
        assert_eq!(status.summary.exit_code, 4);
    }

    #[test]
    fn a_target_without_anything_deployed_says_so() {
        let raw = parse_status(
            "@drover-status 1\nT acme port.blue 8100\nT acme health.blue 7 000 0\nT acme done\n@end\n",
        );
        let t = evaluate_target("h", &tenants()[0], &raw.tenants["acme"], None, None);
        assert_eq!(kinds(&t), [ProblemKind::NotDeployed]);
    }

    #[test]
    fn audit_lines_parse_into_their_fields() {
        let d = parse_audit(
            "2026-11-22T01:05:15Z run=r1 operator=ops@laptop tenant=acme action=rollback from=green@2.0.0 to=blue@1.0.0 result=ok",
            Some(1_795_309_575),
        )
        .unwrap();
        assert_eq!(d.action.as_deref(), Some("rollback"));
        assert_eq!(d.from.as_deref(), Some("green@2.0.0"));
        assert_eq!(d.age_seconds, Some(60));
        assert!(parse_audit("", None).is_none());
    }

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(7 * 60 + 3), "7m3s");
        assert_eq!(human_duration(5 * 3600 + 12 * 60), "5h12m");
        assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300 << 20), "300 MiB");
    }

    fn shell_ok(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh runs")
    }

    #[test]
    fn the_scripts_are_valid_shell_and_quote_tenant_names() {
        let t = tenants();
        for script in [
            status_script(&t),
            diagnose_script(&t, 50),
            logs_script(
                &["acme".into()],
                LogOptions {
                    lines: 5,
                    since: Some(Duration::from_secs(600)),
                    follow: true,
                },
            ),
        ] {
            // shellcheck too, when installed (CI installs it).
            let check = shell_ok(&format!(
                "command -v shellcheck >/dev/null || exit 0; printf '%s' {} | shellcheck -s sh -",
                q(&script)
            ));
            assert!(
                check.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&check.stdout)
            );
            let out = shell_ok(&format!("sh -n -c {}", q(&script)));
            assert!(
                out.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let s = status_script(&[TenantQuery {
            name: "a b".into(),
            port: None,
        }]);
        assert!(s.contains("drover_tenant 'a b' -"));
        let l = logs_script(
            &["acme".into()],
            LogOptions {
                lines: 5,
                since: Some(Duration::from_secs(600)),
                follow: false,
            },
        );
        assert!(l.contains(
            "-n 5 --since=-600s -u drover-acme-blue.service -u drover-acme-green.service"
        ));
        assert!(l.ends_with("wait\n"));
    }

    #[test]
    fn the_status_script_runs_here_and_its_output_parses() {
        // No systemd and nothing on the port here: the host part and an undeployed tenant.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let q = TenantQuery {
            name: "acme".into(),
            port: Some(port),
        };
        let out = shell_ok(&status_script(std::slice::from_ref(&q)));
        let text = String::from_utf8_lossy(&out.stdout);
        let raw = parse_status(&text);
        assert!(raw.header && raw.complete, "{text}");
        assert!(
            raw.now.is_some() && raw.load.is_some() && !raw.disks.is_empty(),
            "{text}"
        );
        let t = &raw.tenants["acme"];
        assert!(t.done);
        assert_ne!(t.health["blue"].0, 0, "{text}");
    }

    #[test]
    fn log_lines_and_diagnose_sections_split() {
        assert_eq!(
            parse_log_line("acme blue agent 1.0.0: listening"),
            Some(LogLine {
                tenant: "acme".into(),
                source: "blue".into(),
                text: "agent 1.0.0: listening".into()
            })
        );
        let text = format!(
            "junk\n{SECTION} status\n@drover-status 1\n{SECTION} df.txt\na\nb\n{SECTION} end\n"
        );
        let s = split_sections(&text);
        assert_eq!(
            s,
            [
                ("status".to_string(), "@drover-status 1\n".to_string()),
                ("df.txt".to_string(), "a\nb\n".to_string()),
                ("end".to_string(), String::new()),
            ]
        );
        assert!(is_safe_file_name("state-acme.json"));
        assert!(!is_safe_file_name("../x") && !is_safe_file_name(".x"));
    }

    #[test]
    fn verdicts_name_the_likely_cause() {
        let (h, targets) = judge(PROBLEMS);
        let v: Vec<VerdictKind> = targets.iter().map(|t| verdict(&h, t, "").verdict).collect();
        assert_eq!(
            v,
            [
                VerdictKind::Healthy,
                VerdictKind::ServiceDown,
                VerdictKind::Healthy
            ]
        );
        assert!(
            verdict(&h, &targets[2], "")
                .detail
                .contains("; also stale lock: deploy lock held")
        );
        let oom = "Memory cgroup out of memory: Killed process 563 (python3) oom_memcg=/system.slice/drover-umbrella-blue.service";
        assert_eq!(
            verdict(&h, &targets[1], oom).verdict,
            VerdictKind::OutOfMemory
        );
        let mut full = h.clone();
        full.disks[0].used_ratio = 0.97;
        assert_eq!(
            verdict(&full, &targets[0], "").verdict,
            VerdictKind::DiskFull
        );
        assert_eq!(
            verdict(&full, &targets[1], "").verdict,
            VerdictKind::DiskFull
        );
        let (down, lost) = failed_host(
            &host("host-1"),
            &tenants(),
            HostState::Unreachable,
            "gone",
            Duration::ZERO,
        );
        let v = verdict(&down, &lost[0], "");
        assert_eq!(
            (v.verdict, v.detail.as_str()),
            (VerdictKind::Unreachable, "gone")
        );
    }
}

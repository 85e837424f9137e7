//! The fleet status report (also the JSON schema: see docs/status.md), the thresholds
//! that turn facts into problems, and the words and numbers reports are written in.

use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::ExitCode;
use crate::plan::Color;

/// Version of the JSON document `drover status --format json` prints. Fields are only
/// ever added within one version; a removal or change of meaning bumps it.
pub const SCHEMA_VERSION: u32 = 1;
/// A disk (of `/` or a drover directory) fuller than this is a problem.
pub const DISK_USED_THRESHOLD: f64 = 0.80;
/// Less available memory than this share of the total is a problem.
pub const MEMORY_AVAILABLE_THRESHOLD: f64 = 0.10;
/// A deploy lock older than this is stale: its run probably died.
pub const STALE_LOCK: Duration = Duration::from_secs(30 * 60);

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
    pub active_color: Option<Color>,
    /// the color nginx's config actually points at
    pub routed_color: Option<Color>,
    /// release recorded in state.json
    pub version: Option<String>,
    /// release the active color reports on /health
    pub running_version: Option<String>,
    /// the color before the last switch
    pub previous_color: Option<Color>,
    /// its release
    pub previous_version: Option<String>,
    /// seconds since the active color's unit last (re)started
    pub uptime_seconds: Option<u64>,
    /// when it (re)started (host clock, RFC 3339 UTC)
    pub started_at: Option<String>,
    /// systemd's automatic restarts of the active color's unit (NRestarts)
    pub restarts: Option<u32>,
    /// share of the tenant's traffic nginx sends to the routed color, percent: below
    /// 100 while a weighted canary shifts it (null when unknown)
    #[serde(default)]
    pub traffic_percent: Option<u8>,
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
    pub color: Color,
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
    /// a container target's image: reference and short ID, e.g.
    /// `localhost/drover-agent:1.0.0 (1a5ea43b9d7b)`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
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
    /// left over: held longer than 30 minutes, or by a run this control node knows
    /// has ended or died
    pub stale: bool,
    /// what this control node's run journal says of the holding run: `ended`, `died`,
    /// `running`, `unknown` (null when not asked)
    #[serde(default)]
    pub holder: Option<String>,
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

pub(super) fn problem(kind: ProblemKind, message: impl Into<String>) -> Problem {
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

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// RFC 3339 (seconds, UTC) of a Unix time.
#[must_use]
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

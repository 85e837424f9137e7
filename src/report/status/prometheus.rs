//! `drover status --format prometheus`: the text exposition format, for node_exporter's
//! textfile collector (write it with `--output /var/lib/node_exporter/drover.prom`:
//! drover writes a temporary file and renames it, as the collector requires). No
//! sample timestamps (the collector refuses them); `drover_status_timestamp_seconds`
//! says when the report was made.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `drover_status_timestamp_seconds` | | when the report was made |
//! | `drover_status_duration_seconds` | | how long the status round took |
//! | `drover_host_up` | host | 1 reachable and readable, 0 not |
//! | `drover_host_disk_used_ratio` | host, mount | used / (used + available) |
//! | `drover_host_memory_total_bytes`, `drover_host_memory_available_bytes` | host | /proc/meminfo |
//! | `drover_host_load1`, `drover_host_load5`, `drover_host_load15` | host | load averages |
//! | `drover_host_problems` | host | problems flagged on the host |
//! | `drover_target_healthy` | tenant, host | 1 the live color answers healthy, else 0 (also unknown) |
//! | `drover_target_up` | tenant, host | 1 the target's host was read, 0 unknown |
//! | `drover_target_problems` | tenant, host | problems flagged on the target |
//! | `drover_target_info` | tenant, host, version, color, previous_version | always 1 |
//! | `drover_target_uptime_seconds` | tenant, host | since the live unit (re)started |
//! | `drover_target_restarts_total` | tenant, host, color | systemd's NRestarts of the unit |
//! | `drover_target_unit_active` | tenant, host, color | 1 when the unit is active |
//! | `drover_target_health_latency_seconds` | tenant, host, color | /health request time |
//! | `drover_target_lock_held`, `drover_target_lock_age_seconds` | tenant, host | deploy lock |
//! | `drover_target_traffic_percent` | tenant, host, color | share of traffic nginx sends to the routed color |
//! | `drover_target_last_deploy_timestamp_seconds` | tenant, host | the last audit line's time |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::status::{
    ColorReport, FleetStatus, HostReport, HostState, TargetReport, TargetState,
};

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A metric family: its name, Prometheus type and help text.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "gauge",
        help,
    }
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "counter",
        help,
    }
}

/// Every family drover exposes, in the order they are printed.
const FAMILIES: &[Family] = &[
    gauge(
        "drover_status_timestamp_seconds",
        "When drover status made this report (Unix time).",
    ),
    gauge(
        "drover_status_duration_seconds",
        "How long the status round over the hosts took.",
    ),
    gauge(
        "drover_host_up",
        "1 when drover could reach and read the host, else 0.",
    ),
    gauge(
        "drover_host_problems",
        "Problems flagged on the host (disk, memory, unreachable).",
    ),
    gauge(
        "drover_host_disk_used_ratio",
        "Used share of the file system (used / (used + available)).",
    ),
    gauge("drover_host_memory_total_bytes", "MemTotal of the host."),
    gauge(
        "drover_host_memory_available_bytes",
        "MemAvailable of the host.",
    ),
    gauge("drover_host_load1", "1-minute load average of the host."),
    gauge("drover_host_load5", "5-minute load average of the host."),
    gauge("drover_host_load15", "15-minute load average of the host."),
    gauge(
        "drover_target_up",
        "1 when the target's host was read, 0 when its state is unknown.",
    ),
    gauge(
        "drover_target_healthy",
        "1 when the target's live color answers healthy, else 0.",
    ),
    gauge("drover_target_problems", "Problems flagged on the target."),
    gauge(
        "drover_target_info",
        "The release and color a target runs (always 1).",
    ),
    gauge(
        "drover_target_uptime_seconds",
        "Seconds since the live color's unit last (re)started.",
    ),
    counter(
        "drover_target_restarts_total",
        "Automatic restarts of a color's unit (systemd NRestarts).",
    ),
    gauge(
        "drover_target_unit_active",
        "1 when the color's systemd unit is active.",
    ),
    gauge(
        "drover_target_health_latency_seconds",
        "Time of the color's GET /health on the host.",
    ),
    gauge(
        "drover_target_lock_held",
        "1 when the tenant's deploy lock on the host is held.",
    ),
    gauge(
        "drover_target_traffic_percent",
        "Share of the tenant's traffic nginx sends to the routed color (below 100 mid-shift).",
    ),
    gauge(
        "drover_target_lock_age_seconds",
        "Age of the held deploy lock.",
    ),
    gauge(
        "drover_target_last_deploy_timestamp_seconds",
        "Time of the tenant's last audit line on the host (Unix time).",
    ),
];

/// Collects samples per metric so each metric's HELP/TYPE appears once, its samples
/// together (the exposition format requires it).
#[derive(Default)]
struct Metrics {
    samples: BTreeMap<&'static str, Vec<String>>,
}

impl Metrics {
    fn add(&mut self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        debug_assert!(
            FAMILIES.iter().any(|f| f.name == name),
            "{name} is not in FAMILIES"
        );
        self.samples.entry(name).or_default().push(format!(
            "{name}{} {}",
            labels(pairs),
            number(value)
        ));
    }

    /// The families that have samples, in [`FAMILIES`] order.
    fn render(&self) -> String {
        let mut out = String::new();
        for Family { name, kind, help } in FAMILIES {
            let Some(samples) = self.samples.get(name) else {
                continue;
            };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

fn unix(text: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The exposition text.
#[must_use]
pub fn render(status: &FleetStatus) -> String {
    let mut m = Metrics::default();
    report_samples(&mut m, status);
    for h in &status.hosts {
        host_samples(&mut m, h);
    }
    for t in &status.targets {
        target_samples(&mut m, t);
    }
    m.render()
}

/// When the report was made and how long it took.
fn report_samples(m: &mut Metrics, status: &FleetStatus) {
    if let Some(t) = unix(&status.generated_at) {
        m.add("drover_status_timestamp_seconds", &[], t);
    }
    m.add(
        "drover_status_duration_seconds",
        &[],
        status.duration_ms as f64 / 1000.0,
    );
}

/// Reachability, problems, disks, memory and load of one host.
fn host_samples(m: &mut Metrics, h: &HostReport) {
    let host = [("host", h.host.as_str())];
    m.add("drover_host_up", &host, flag(h.state == HostState::Up));
    m.add("drover_host_problems", &host, h.problems.len() as f64);
    disk_samples(m, h);
    if let Some(mem) = h.memory {
        m.add(
            "drover_host_memory_total_bytes",
            &host,
            mem.total_bytes as f64,
        );
        m.add(
            "drover_host_memory_available_bytes",
            &host,
            mem.available_bytes as f64,
        );
    }
    if let Some(l) = h.load {
        m.add("drover_host_load1", &host, l.one);
        m.add("drover_host_load5", &host, l.five);
        m.add("drover_host_load15", &host, l.fifteen);
    }
}

/// One series per mount, although several paths on it may have been asked about.
fn disk_samples(m: &mut Metrics, h: &HostReport) {
    let mut mounts: Vec<&str> = Vec::new();
    for d in &h.disks {
        if mounts.contains(&d.mount.as_str()) {
            continue;
        }
        mounts.push(&d.mount);
        m.add(
            "drover_host_disk_used_ratio",
            &[("host", &h.host), ("mount", &d.mount)],
            d.used_ratio,
        );
    }
}

/// Health of one target; the rest only when its host was read.
fn target_samples(m: &mut Metrics, t: &TargetReport) {
    let target = [("tenant", t.tenant.as_str()), ("host", t.host.as_str())];
    let known = t.state != TargetState::Unknown;
    m.add("drover_target_up", &target, flag(known));
    m.add(
        "drover_target_healthy",
        &target,
        flag(t.healthy == Some(true)),
    );
    if !known {
        return;
    }
    m.add("drover_target_problems", &target, t.problems.len() as f64);
    info_sample(m, t);
    if let Some(up) = t.uptime_seconds {
        m.add("drover_target_uptime_seconds", &target, up as f64);
    }
    for c in &t.colors {
        color_samples(m, t, c);
    }
    m.add("drover_target_lock_held", &target, flag(t.lock.is_some()));
    if let (Some(p), Some(c)) = (t.traffic_percent, t.routed_color) {
        let labels = [
            ("tenant", t.tenant.as_str()),
            ("host", t.host.as_str()),
            ("color", c.as_str()),
        ];
        m.add("drover_target_traffic_percent", &labels, f64::from(p));
    }
    if let Some(age) = t.lock.as_ref().and_then(|l| l.age_seconds) {
        m.add("drover_target_lock_age_seconds", &target, age as f64);
    }
    if let Some(at) = t.last_deploy.as_ref().and_then(|d| unix(&d.at)) {
        m.add("drover_target_last_deploy_timestamp_seconds", &target, at);
    }
}

/// The release and color a target runs, as labels of a constant 1; none without a
/// live color.
fn info_sample(m: &mut Metrics, t: &TargetReport) {
    let Some(color) = &t.active_color else {
        return;
    };
    let version = t
        .version
        .as_deref()
        .or(t.running_version.as_deref())
        .unwrap_or("");
    m.add(
        "drover_target_info",
        &[
            ("tenant", &t.tenant),
            ("host", &t.host),
            ("version", version),
            ("color", color.as_str()),
            (
                "previous_version",
                t.previous_version.as_deref().unwrap_or(""),
            ),
        ],
        1.0,
    );
}

/// Restarts, state and health latency of one color's unit, when it is installed.
fn color_samples(m: &mut Metrics, t: &TargetReport, c: &ColorReport) {
    if c.load_state.as_deref() == Some("not-found") {
        return;
    }
    let color = [
        ("tenant", t.tenant.as_str()),
        ("host", t.host.as_str()),
        ("color", c.color.as_str()),
    ];
    if let Some(r) = c.restarts {
        m.add("drover_target_restarts_total", &color, f64::from(r));
    }
    m.add(
        "drover_target_unit_active",
        &color,
        flag(c.active_state.as_deref() == Some("active")),
    );
    if let (true, Some(ms)) = (c.health.healthy, c.health.latency_ms) {
        m.add("drover_target_health_latency_seconds", &color, ms / 1000.0);
    }
}

#[cfg(test)]
mod tests;

//! Renderers of `drover status`: a terminal table, JSON, a self-contained HTML page and
//! Prometheus text exposition, all from one [`FleetStatus`]. The shared reading order
//! is here: problems first, then unknowns, then the healthy rest.

pub mod html;
pub mod json;
pub mod prometheus;
pub mod table;

use crate::config::inventory::natural_cmp;
use crate::engine::status::{
    ColorReport, FleetStatus, HostReport, HostState, Problem, TargetReport, TargetState,
    human_bytes, human_duration,
};

/// Targets in reading order: tenants with a problem first (then those with an unknown
/// target), by name; within a tenant, problem targets first, then by host.
#[must_use]
pub fn ordered_targets(status: &FleetStatus) -> Vec<&TargetReport> {
    let mut rank: std::collections::HashMap<&str, TargetState> = std::collections::HashMap::new();
    for t in &status.targets {
        let r = rank.entry(t.tenant.as_str()).or_insert(t.state);
        if t.state < *r {
            *r = t.state;
        }
    }
    let mut targets: Vec<&TargetReport> = status.targets.iter().collect();
    targets.sort_by(|a, b| {
        rank[a.tenant.as_str()]
            .cmp(&rank[b.tenant.as_str()])
            .then_with(|| natural_cmp(&a.tenant, &b.tenant))
            .then_with(|| a.state.cmp(&b.state))
            .then_with(|| natural_cmp(&a.host, &b.host))
    });
    targets
}

fn host_rank(h: &HostReport) -> u8 {
    match (h.state, h.problems.is_empty()) {
        (HostState::Unreachable, _) => 0,
        (HostState::Error, _) => 1,
        (HostState::Up, false) => 2,
        (HostState::Up, true) => 3,
    }
}

/// Hosts in reading order: unreachable, in error, with problems, then the rest.
#[must_use]
pub fn ordered_hosts(status: &FleetStatus) -> Vec<&HostReport> {
    let mut hosts: Vec<&HostReport> = status.hosts.iter().collect();
    hosts.sort_by(|a, b| {
        host_rank(a)
            .cmp(&host_rank(b))
            .then_with(|| natural_cmp(&a.host, &b.host))
    });
    hosts
}

/// Every problem with what it is about (`host-2` or `acme@host-1`): hosts that could
/// not be read first, then targets' problems in reading order, then other host problems.
#[must_use]
pub fn problem_list(status: &FleetStatus) -> Vec<(String, &Problem)> {
    let mut out = Vec::new();
    for h in ordered_hosts(status) {
        if h.state != HostState::Up {
            out.extend(h.problems.iter().map(|p| (h.host.clone(), p)));
        }
    }
    for t in ordered_targets(status) {
        out.extend(
            t.problems
                .iter()
                .map(|p| (format!("{}@{}", t.tenant, t.host), p)),
        );
    }
    for h in ordered_hosts(status) {
        if h.state == HostState::Up {
            out.extend(h.problems.iter().map(|p| (h.host.clone(), p)));
        }
    }
    out
}

/// `12 targets: 11 ok, 1 problem — 4 hosts: 3 up, 1 unreachable — 0.84s`.
#[must_use]
pub fn summary_line(status: &FleetStatus) -> String {
    let s = &status.summary;
    let mut targets = format!(
        "{} target{}: {} ok",
        s.targets,
        plural(s.targets),
        s.targets_ok
    );
    if s.targets_problem > 0 {
        targets.push_str(&format!(", {} with problems", s.targets_problem));
    }
    if s.targets_unknown > 0 {
        targets.push_str(&format!(", {} unknown", s.targets_unknown));
    }
    let mut hosts = format!("{} host{}: {} up", s.hosts, plural(s.hosts), s.hosts_up);
    if s.hosts_unreachable > 0 {
        hosts.push_str(&format!(", {} unreachable", s.hosts_unreachable));
    }
    if s.hosts_error > 0 {
        hosts.push_str(&format!(", {} unreadable", s.hosts_error));
    }
    format!(
        "{targets} — {hosts} — {:.2}s",
        status.duration_ms as f64 / 1000.0
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A color in a word or two: `up 1.7ms`, `up, HTTP 500`, `inactive`, `FAILED (oom-kill)`, `-`.
#[must_use]
pub fn color_text(c: &ColorReport) -> String {
    if c.load_state.as_deref() == Some("not-found")
        || c.load_state.is_none() && c.active_state.is_none()
    {
        return if c.health.healthy {
            latency_text("up", c)
        } else {
            "-".into()
        };
    }
    match c.active_state.as_deref() {
        Some("active") if c.health.healthy => latency_text("up", c),
        Some("active") if c.port.is_none() => "up".into(),
        Some("active") => format!(
            "up, {}",
            match c.health.http_status {
                Some(code) => format!("HTTP {code}"),
                // A worker's recorded health command said no.
                None if c
                    .health
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("health command")) =>
                {
                    "unhealthy".into()
                }
                None => "no answer".into(),
            }
        ),
        Some("failed") => format!("FAILED ({})", c.result.as_deref().unwrap_or("?")),
        Some(other) => other.to_string(),
        None => "?".into(),
    }
}

fn latency_text(word: &str, c: &ColorReport) -> String {
    match c.health.latency_ms {
        Some(ms) => format!("{word} {}", latency(ms)),
        None => word.to_string(),
    }
}

/// `1.7ms`, `12ms`, `1.20s`.
#[must_use]
pub fn latency(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// The live color, with its share of the traffic while a weighted canary shifts it
/// (`green 25%`).
#[must_use]
pub fn live_text(t: &TargetReport) -> String {
    let live = t.active_color.map_or("-", crate::plan::Color::as_str);
    match t.traffic_percent {
        Some(p) if p < 100 => format!("{live} {p}%"),
        _ => live.to_owned(),
    }
}

/// `2.0.0 (prev 1.0.0)`, or the running version when nothing is recorded.
#[must_use]
pub fn version_text(t: &TargetReport) -> String {
    let version = t
        .version
        .as_deref()
        .or(t.running_version.as_deref())
        .unwrap_or("-");
    match &t.previous_version {
        Some(p) => format!("{version} (prev {p})"),
        None => version.to_string(),
    }
}

/// `5m3s ago by ops@laptop (run 2026…)`.
#[must_use]
pub fn last_deploy_text(t: &TargetReport) -> String {
    let Some(d) = &t.last_deploy else {
        return "-".into();
    };
    let when = d
        .age_seconds
        .map_or_else(|| d.at.clone(), |a| format!("{} ago", human_duration(a)));
    let action = d.action.as_deref().unwrap_or("change");
    let mut text = if action == "deploy" {
        when
    } else {
        format!("{action} {when}")
    };
    if let Some(op) = &d.operator {
        text.push_str(&format!(" by {op}"));
    }
    if let Some(run) = &d.run {
        text.push_str(&format!(" (run {run})"));
    }
    text
}

/// `held 3m by run R` / `STALE 2h0m, run R` / `-`.
#[must_use]
pub fn lock_text(t: &TargetReport) -> String {
    match &t.lock {
        None => "-".into(),
        Some(l) => {
            let age = l.age_seconds.map(human_duration).unwrap_or_default();
            let run = l.run.as_deref().unwrap_or("?");
            if l.stale {
                format!("STALE {age}, run {run}")
            } else {
                format!("held {age}, run {run}")
            }
        }
    }
}

/// `/ 23%` plus the drover dirs that are on another file system.
#[must_use]
pub fn disk_text(h: &HostReport) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let mut parts = Vec::new();
    for d in &h.disks {
        if seen.contains(&d.mount.as_str()) {
            continue;
        }
        seen.push(&d.mount);
        parts.push(format!("{} {:.0}%", d.mount, d.used_ratio * 100.0));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// `7% of 23.5 GiB`.
#[must_use]
pub fn memory_text(h: &HostReport) -> String {
    h.memory.map_or_else(
        || "-".into(),
        |m| {
            format!(
                "{:.0}% of {}",
                m.used_ratio * 100.0,
                human_bytes(m.total_bytes)
            )
        },
    )
}

/// `0.10 0.20 0.30 (2 cpus)`.
#[must_use]
pub fn load_text(h: &HostReport) -> String {
    let Some(l) = h.load else {
        return "-".into();
    };
    let cpus = h
        .cpus
        .map(|c| format!(" ({c} cpu{})", if c == 1 { "" } else { "s" }))
        .unwrap_or_default();
    format!("{:.2} {:.2} {:.2}{cpus}", l.one, l.five, l.fifteen)
}

/// The uptime of a target in a word.
#[must_use]
pub fn uptime_text(t: &TargetReport) -> String {
    t.uptime_seconds.map_or_else(|| "-".into(), human_duration)
}

#[cfg(test)]
pub(crate) mod sample {
    //! A small fleet status for the renderers' tests: two tenants on two hosts, one
    //! target down, one host unreachable.

    use crate::engine::status::*;
    use crate::plan::Color;
    use crate::plan::layout::unit_name;

    fn color(tenant: &str, color: Color, port: u16, up: bool) -> ColorReport {
        ColorReport {
            color,
            port: Some(port),
            unit: unit_name(tenant, color),
            load_state: Some("loaded".into()),
            active_state: Some(if up { "active" } else { "inactive" }.into()),
            sub_state: Some(if up { "running" } else { "dead" }.into()),
            result: Some("success".into()),
            restarts: Some(1),
            uptime_seconds: up.then_some(3700),
            started_at: up.then(|| "2026-11-22T00:00:00Z".into()),
            main_pid: up.then_some(42),
            image: None,
            health: Health {
                healthy: up,
                http_status: up.then_some(200),
                latency_ms: up.then_some(1.66),
                status: up.then(|| "healthy".into()),
                version: up.then(|| "2.0.0".into()),
                error: (!up).then(|| "curl: (7) Failed to connect".into()),
            },
        }
    }

    fn target(tenant: &str, host: &str, up: bool) -> TargetReport {
        let mut t = unknown_target(tenant, host, "");
        t.error = None;
        t.state = if up {
            TargetState::Ok
        } else {
            TargetState::Problem
        };
        t.healthy = Some(up);
        t.active_color = Some(Color::Green);
        t.routed_color = Some(Color::Green);
        t.version = Some("2.0.0".into());
        t.running_version = up.then(|| "2.0.0".into());
        t.previous_color = Some(Color::Blue);
        t.previous_version = Some("1.0.0".into());
        t.uptime_seconds = up.then_some(3700);
        t.restarts = Some(1);
        t.last_deploy = Some(Deploy {
            at: "2026-11-22T00:00:00Z".into(),
            age_seconds: Some(300),
            run: Some("20261122t000000z-00001".into()),
            operator: Some("ops@laptop".into()),
            action: Some("deploy".into()),
            from: Some("blue@1.0.0".into()),
            to: Some("green@2.0.0".into()),
            result: Some("ok".into()),
        });
        t.colors = vec![
            color(tenant, Color::Blue, 8100, true),
            color(tenant, Color::Green, 8101, up),
        ];
        if !up {
            t.problems = vec![
                Problem {
                    kind: ProblemKind::ServiceDown,
                    message: format!(
                        "drover-{tenant}-green.service (live color) is inactive (dead)"
                    ),
                },
                Problem {
                    kind: ProblemKind::Unhealthy,
                    message: "green color on port 8101 is not healthy: <connection refused>".into(),
                },
            ];
        }
        t
    }

    fn host(name: &str) -> HostReport {
        HostReport {
            host: name.into(),
            address: "10.0.0.1".into(),
            state: HostState::Up,
            error: None,
            uptime_seconds: Some(86_400),
            cpus: Some(2),
            load: Some(Load {
                one: 0.5,
                five: 0.25,
                fifteen: 0.1,
            }),
            memory: Some(Memory {
                total_bytes: 4 << 30,
                available_bytes: 3 << 30,
                used_ratio: 0.25,
            }),
            disks: vec![
                Disk {
                    path: "/".into(),
                    mount: "/".into(),
                    size_bytes: 100 << 30,
                    used_bytes: 85 << 30,
                    available_bytes: 15 << 30,
                    used_ratio: 0.85,
                },
                Disk {
                    path: "/var/lib/drover".into(),
                    mount: "/".into(),
                    size_bytes: 100 << 30,
                    used_bytes: 85 << 30,
                    available_bytes: 15 << 30,
                    used_ratio: 0.85,
                },
            ],
            problems: vec![Problem {
                kind: ProblemKind::DiskUsage,
                message: "/ (/) is 85% used, 15 GiB available".into(),
            }],
            duration_ms: 120,
        }
    }

    /// acme ok on web-1, down on web-2; beta ok on web-1, unknown on web-3 (unreachable).
    pub(crate) fn status() -> FleetStatus {
        let (down, lost) = failed_host(
            &crate::config::Inventory::from_sources(vec![crate::config::SourceFile::new(
                "t.toml",
                "[hosts.web-3]\naddress = \"10.0.0.3\"\n[tenants.beta]\nhosts = [\"web-3\"]\n",
            )])
            .unwrap()
            .hosts[0],
            &[TenantQuery {
                name: "beta".into(),
                port: Some(8110),
            }],
            HostState::Unreachable,
            "connect to 10.0.0.3:22 timed out after 3s (tcp connect)",
            std::time::Duration::from_secs(3),
        );
        let mut web2 = host("web-2");
        web2.problems.clear();
        web2.disks.truncate(1);
        web2.disks[0].used_ratio = 0.4;
        let mut targets = vec![
            target("acme", "web-1", true),
            target("acme", "web-2", false),
            target("beta", "web-1", true),
        ];
        targets.extend(lost);
        FleetStatus::new(
            vec![host("web-1"), web2, down],
            targets,
            "2026-11-22T00:05:00Z".into(),
            std::time::Duration::from_millis(840),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_come_first_then_unknowns_then_the_rest() {
        let status = sample::status();
        let order: Vec<String> = ordered_targets(&status)
            .iter()
            .map(|t| format!("{}@{}", t.tenant, t.host))
            .collect();
        assert_eq!(
            order,
            ["acme@web-2", "acme@web-1", "beta@web-3", "beta@web-1"]
        );
        let hosts: Vec<&str> = ordered_hosts(&status)
            .iter()
            .map(|h| h.host.as_str())
            .collect();
        assert_eq!(hosts, ["web-3", "web-1", "web-2"]);
        let subjects: Vec<String> = problem_list(&status).into_iter().map(|(s, _)| s).collect();
        assert_eq!(subjects, ["web-3", "acme@web-2", "acme@web-2", "web-1"]);
        assert_eq!(
            summary_line(&status),
            "4 targets: 2 ok, 1 with problems, 1 unknown — 3 hosts: 2 up, 1 unreachable — 0.84s"
        );
    }

    #[test]
    fn cells_read_in_a_few_words() {
        let status = sample::status();
        let t = &status.targets[1];
        assert_eq!(color_text(&t.colors[0]), "up 1.7ms");
        assert_eq!(color_text(&t.colors[1]), "inactive");
        assert_eq!(version_text(t), "2.0.0 (prev 1.0.0)");
        assert_eq!(
            last_deploy_text(t),
            "5m0s ago by ops@laptop (run 20261122t000000z-00001)"
        );
        assert_eq!(lock_text(t), "-");
        assert_eq!(disk_text(&status.hosts[0]), "/ 85%");
        assert_eq!(memory_text(&status.hosts[0]), "25% of 4.0 GiB");
        assert_eq!(load_text(&status.hosts[0]), "0.50 0.25 0.10 (2 cpus)");
        assert_eq!(latency(0.5), "0.5ms");
        assert_eq!(latency(1234.0), "1.23s");
    }
}

//! Judging a host's raw facts: its report and its targets' reports, with their problems.

use std::time::Duration;

use super::colors::color_report;
use super::locks::{lock_of, stale_lock_problem};
use super::report::{
    ColorReport, DISK_USED_THRESHOLD, Disk, HostReport, HostState, MEMORY_AVAILABLE_THRESHOLD,
    Memory, Problem, ProblemKind, TargetReport, TargetState, human_bytes, millis, problem,
};
use super::script::{RawHost, RawTenant, TenantQuery, parse_audit};
use crate::config::Host;
use crate::plan::Color;
use crate::plan::bluegreen::TenantState;

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
        traffic_percent: None,
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
    let colors: Vec<ColorReport> = Color::ALL
        .iter()
        .map(|&c| color_report(raw, tenant, c, host_now, host_uptime))
        .collect();
    let state: Option<TenantState> = raw
        .state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let routed_color = match (raw.route, query.port) {
        (Some(r), Some(base)) => Color::ALL.into_iter().find(|c| c.port(base) == r),
        _ => None,
    };
    let active_color = live_color(state.as_ref(), routed_color, &colors);
    let active = active_color.and_then(|a| colors.iter().find(|c| c.color == a));
    let mut problems = Vec::new();
    if raw.state.is_some() && state.is_none() {
        problems.push(problem(
            ProblemKind::StatusFailed,
            format!("/var/lib/drover/{tenant}/state.json is not readable JSON"),
        ));
    }
    match active {
        Some(c) => problems.extend(live_color_problems(c)),
        None => problems.push(no_live_color(tenant, host, &colors, state.is_some())),
    }
    problems.extend(idle_color_problems(&colors, active_color));
    let running_version = active.and_then(|c| c.health.version.clone());
    problems.extend(mismatches(
        state.as_ref(),
        active,
        running_version.as_deref(),
        routed_color,
    ));
    let lock = lock_of(raw);
    problems.extend(lock.as_ref().and_then(stale_lock_problem));
    let live = active.map(|c| (c.uptime_seconds, c.started_at.clone(), c.restarts));
    let (uptime_seconds, started_at, restarts) = live.unwrap_or_default();
    let mut report = TargetReport {
        tenant: tenant.to_string(),
        host: host.to_string(),
        state: if problems.is_empty() {
            TargetState::Ok
        } else {
            TargetState::Problem
        },
        healthy: Some(
            active.is_some_and(|c| c.health.healthy && c.active_state.as_deref() == Some("active")),
        ),
        active_color,
        routed_color,
        traffic_percent: raw.weight.or(raw.route.map(|_| 100)),
        version: state.as_ref().map(|s| s.version.clone()),
        running_version,
        previous_color: state.as_ref().and_then(|s| s.previous),
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

/// The color nginx should send traffic to: state.json's, else the one nginx routes
/// to, else the only one running.
fn live_color(
    state: Option<&TenantState>,
    routed: Option<Color>,
    colors: &[ColorReport],
) -> Option<Color> {
    let mut running = colors
        .iter()
        .filter(|c| c.active_state.as_deref() == Some("active"));
    let only_running = match (running.next(), running.next()) {
        (Some(c), None) => Some(c.color),
        _ => None,
    };
    state.map(|s| s.active).or(routed).or(only_running)
}

/// Why there is no live color: nothing deployed, or nothing that says which runs.
fn no_live_color(tenant: &str, host: &str, colors: &[ColorReport], has_state: bool) -> Problem {
    let installed = colors
        .iter()
        .any(|c| c.load_state.as_deref().is_some_and(|s| s != "not-found"));
    if !installed && !has_state {
        return problem(
            ProblemKind::NotDeployed,
            format!("{tenant} is not deployed on {host} (no state file, no unit)"),
        );
    }
    let running = colors
        .iter()
        .filter(|c| c.active_state.as_deref() == Some("active"))
        .count();
    problem(
        ProblemKind::ServiceDown,
        format!("no live color: no state file, no nginx route, and {running} unit(s) running"),
    )
}

/// The live color's unit is down or failed, or it does not answer healthy. A unit
/// that is not running is the problem; its failing health check is only the
/// consequence (said in the same line).
fn live_color_problems(c: &ColorReport) -> Vec<Problem> {
    let health = match (&c.health.error, c.port) {
        (Some(e), Some(port)) if !c.health.healthy => format!("; port {port}: {e}"),
        _ => String::new(),
    };
    let unit_ok = match c.active_state.as_deref() {
        Some("active") => true,
        // No systemd to ask (or not allowed to): judge by health alone.
        None => c.load_state.is_none(),
        Some(_) => false,
    };
    if !unit_ok {
        return vec![unit_down(c, &health)];
    }
    match c.port {
        Some(port) if !c.health.healthy => vec![problem(
            ProblemKind::Unhealthy,
            format!(
                "{} color on port {port} is not healthy: {}",
                c.color,
                c.health.error.as_deref().unwrap_or("no answer")
            ),
        )],
        _ => Vec::new(),
    }
}

/// The live color's unit failed, or is in another state than active.
fn unit_down(c: &ColorReport, health: &str) -> Problem {
    if c.active_state.as_deref() == Some("failed") {
        return problem(
            ProblemKind::UnitFailed,
            format!(
                "{} (live color) failed ({}){health}",
                c.unit,
                c.result.as_deref().unwrap_or("unknown result")
            ),
        );
    }
    problem(
        ProblemKind::ServiceDown,
        format!(
            "{} (live color) is {}{}{health}",
            c.unit,
            c.active_state.as_deref().unwrap_or("in an unknown state"),
            c.sub_state
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
    )
}

/// An idle color whose unit failed: a rollback to it would not work.
fn idle_color_problems(colors: &[ColorReport], live: Option<Color>) -> Vec<Problem> {
    colors
        .iter()
        .filter(|c| Some(c.color) != live && c.active_state.as_deref() == Some("failed"))
        .map(|c| {
            problem(
                ProblemKind::UnitFailed,
                format!(
                    "{} (idle color) failed ({}): a rollback to it would not work",
                    c.unit,
                    c.result.as_deref().unwrap_or("unknown result")
                ),
            )
        })
        .collect()
}

/// The host disagrees with state.json: another release runs, or nginx routes to
/// another color.
fn mismatches(
    state: Option<&TenantState>,
    live: Option<&ColorReport>,
    running_version: Option<&str>,
    routed: Option<Color>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(s) = state else {
        return problems;
    };
    if let Some(v) = running_version
        && s.version != v
        && live.is_some_and(|c| c.health.healthy)
    {
        problems.push(problem(
            ProblemKind::VersionMismatch,
            format!(
                "state.json records {} but the live color runs {v}",
                s.version
            ),
        ));
    }
    if let Some(r) = routed
        && s.active != r
    {
        problems.push(problem(
            ProblemKind::RouteMismatch,
            format!(
                "state.json says {} is live but nginx routes to {r}",
                s.active
            ),
        ));
    }
    problems
}

/// Judges a host's answer: the host's report and its targets'.
#[must_use]
pub fn evaluate_host(
    host: &Host,
    tenants: &[TenantQuery],
    raw: &RawHost,
    duration: Duration,
) -> (HostReport, Vec<TargetReport>) {
    let mut problems = disk_problems(&raw.disks);
    let memory = raw
        .mem_kb
        .filter(|(t, _)| *t > 0)
        .map(|(total, avail)| Memory {
            total_bytes: total * 1024,
            available_bytes: avail * 1024,
            used_ratio: 1.0 - avail as f64 / total as f64,
        });
    problems.extend(memory.as_ref().and_then(memory_problem));
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

/// A file system of `/` or a drover folder fuller than [`DISK_USED_THRESHOLD`] (each
/// mount once).
fn disk_problems(disks: &[Disk]) -> Vec<Problem> {
    let mut seen_mounts: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    for d in disks {
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
    problems
}

/// Less than [`MEMORY_AVAILABLE_THRESHOLD`] of the memory available.
fn memory_problem(m: &Memory) -> Option<Problem> {
    ((m.available_bytes as f64) < m.total_bytes as f64 * MEMORY_AVAILABLE_THRESHOLD).then(|| {
        problem(
            ProblemKind::MemoryLow,
            format!(
                "only {} of {} memory available",
                human_bytes(m.available_bytes),
                human_bytes(m.total_bytes)
            ),
        )
    })
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::colors::health_of;
    use super::super::fixtures::{HEALTHY, PROBLEMS, host, judge, tenants};
    use super::super::{FleetStatus, parse_status};
    use super::*;
    use crate::error::ExitCode;

    fn kinds(t: &TargetReport) -> Vec<ProblemKind> {
        t.problems.iter().map(|p| p.kind).collect()
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
            assert_eq!(t.active_color.map(Color::as_str), Some(color));
            assert_eq!(t.routed_color.map(Color::as_str), Some(color));
            assert_eq!(t.version.as_deref(), Some(version));
            assert_eq!(t.running_version.as_deref(), Some(version));
            assert_eq!(t.restarts, Some(0));
            assert!(t.lock.is_none());
        }
        let acme = &targets[0];
        assert_eq!(acme.previous_color, Some(Color::Blue));
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
        assert_eq!(acme.active_color, Some(Color::Green));
        assert_eq!(acme.version.as_deref(), Some("2.0.0"));
        assert_eq!(acme.previous_color, Some(Color::Blue));
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
        let h = health_of(&raw, Color::Blue);
        assert!(!h.healthy);
        assert_eq!(h.http_status, Some(500));
        assert_eq!(h.version.as_deref(), Some("3.0.0-broken"));
        assert_eq!(h.error.as_deref(), Some("HTTP 500"));
        raw.health.insert("blue".into(), (0, 200, 0.01));
        raw.bodies
            .insert("blue".into(), r#"{"status":"degraded"}"#.into());
        assert_eq!(
            health_of(&raw, Color::Blue).error.as_deref(),
            Some("status \"degraded\"")
        );
        raw.bodies.insert("blue".into(), "OK".into());
        assert!(
            health_of(&raw, Color::Blue).healthy,
            "a plain 200 is healthy"
        );
        raw.health.insert("blue".into(), (28, 0, 2.0));
        raw.errors
            .insert("blue".into(), "curl: (28) Operation timed out".into());
        let h = health_of(&raw, Color::Blue);
        assert_eq!(h.error.as_deref(), Some("curl: (28) Operation timed out"));
        assert_eq!(h.latency_ms, None);
        assert!(
            health_of(&RawTenant::default(), Color::Green)
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
}

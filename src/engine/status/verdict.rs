//! The one-word verdicts of `drover diagnose`: a target's likely cause, from its status.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::report::{Disk, HostReport, HostState, TargetReport, TargetState, human_bytes};

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
        target.active_color.map_or("?", crate::plan::Color::as_str),
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::failed_host;
    use super::super::fixtures::{PROBLEMS, host, judge, tenants};
    use super::*;

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

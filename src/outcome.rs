//! What became of a step, a target, a host: plain data. The engine makes it, events
//! carry it, reporters and the command line read it; it imports none of them.

mod hook;

use std::time::Duration;

use serde::Serialize;

use crate::transport::Captured;

pub use hook::HookRun;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// already as wanted
    Ok,
    /// changed the host (or, in dry-run, would have)
    Changed,
    /// failed; the target stops here
    Failed,
    /// not run (`when` false, or an earlier step failed)
    Skipped,
}

/// How a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// every step ok, nothing changed
    Ok,
    /// every step ok, something changed
    Changed,
    /// a step failed
    Failed,
    /// the host could not be reached, or was lost
    Unreachable,
    /// not started (halted)
    Skipped,
}

/// One step's result on one target.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    /// step name
    pub name: String,
    /// step kind
    pub kind: &'static str,
    /// result
    pub status: StepStatus,
    /// attempts made
    pub attempts: u32,
    /// wall time of all attempts, ms
    pub duration_ms: u64,
    /// exit status of the last attempt
    pub exit_code: Option<u32>,
    /// output without drover's markers (secrets redacted)
    pub stdout: String,
    /// error output (secrets redacted)
    pub stderr: String,
    /// unified diff of a file step, with `--diff`
    pub diff: Option<String>,
    /// bytes sent to the host for the step's content (image steps: 0 when the host had
    /// the image); absent for steps that do not count
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
}

/// One target's result.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    /// tenant
    pub tenant: String,
    /// host
    pub host: String,
    /// result
    pub status: TargetStatus,
    /// step results, in order
    pub steps: Vec<StepOutcome>,
    /// the step that failed, if any
    pub failed_step: Option<String>,
    /// connection problem, if any
    pub error: Option<String>,
    /// wall time, ms
    pub duration_ms: u64,
    /// the rollout batch it ran in (1-based; none when it never started)
    pub batch: Option<usize>,
    /// where its time went, phase by phase
    pub phases: Phases,
    /// how a canary's traffic was judged (blue-green canaries only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryReport>,
}

/// The last judgement of a canary's step: the numbers that decided it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CanaryReport {
    /// `pass`, `fail` or `inconclusive`
    pub verdict: String,
    /// the failed check, in words (`error rate 21.0% > 1.0%`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// share of the traffic the new color had in the step that decided, percent
    pub weight: u8,
    /// checks made in that step
    pub checks: u32,
    /// from the step's start to the decision, ms
    pub elapsed_ms: u64,
    /// requests that failed for the user (5xx through nginx) in that step
    pub failed_requests: u64,
    /// requests the old color answered after the new one failed them
    pub saved_by_fallback: u64,
    /// the new color's traffic
    pub new: ColorStats,
    /// the old color's traffic
    pub old: ColorStats,
}

/// Attempts nginx made on one color, as its access log tells.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ColorStats {
    /// `blue` or `green`
    pub color: String,
    /// attempts (a request retried on the other color counts on both)
    pub requests: u64,
    /// attempts that failed: 5xx, refused, reset, timed out
    pub errors: u64,
    /// errors / requests (0 without requests)
    pub error_rate: f64,
    /// latency percentiles, ms (none without requests)
    pub p50_ms: Option<u64>,
    /// 95th percentile, ms
    pub p95_ms: Option<u64>,
    /// 99th percentile, ms
    pub p99_ms: Option<u64>,
}

/// Where a target's time went: named phases in the order they first ran, in ms. A
/// blue-green target goes through `lock`, `state`, `upload`, `steps`, `healthy`,
/// `arm`, `switch`, `verify`, `confirm`, `drain`, `record`; its steps are sorted into
/// `upload` (release uploads), `healthy` (starting services, health checks) and
/// `steps` (the rest). Serialized as a JSON object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phases(Vec<(&'static str, u64)>);

impl Phases {
    /// Adds `ms` to phase `name` (a phase that runs twice counts both).
    pub fn add(&mut self, name: &'static str, ms: u64) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += ms,
            None => self.0.push((name, ms)),
        }
    }

    /// Adds the time since `since` to phase `name`.
    pub fn since(&mut self, name: &'static str, since: std::time::Instant) {
        self.add(name, millis(since.elapsed()));
    }

    /// The phases of a target's steps, by their kind, when they took `wall` on the
    /// control node: what the host did not account for (round trips, `sudo`, the
    /// login shell) counts as `steps`, so the phases add up to the wall time.
    #[must_use]
    pub fn of_steps_in(steps: &[StepOutcome], wall: Duration) -> Self {
        let mut phases = Self::of_steps(steps);
        let overhead = millis(wall).saturating_sub(phases.total());
        phases.add("steps", overhead);
        phases
    }

    /// The phases of a target's steps, by their kind (host-side times).
    #[must_use]
    pub fn of_steps(steps: &[StepOutcome]) -> Self {
        let mut phases = Self::default();
        for step in steps.iter().filter(|s| s.status != StepStatus::Skipped) {
            let name = match step.kind {
                "upload" => "upload",
                "service" | "health" => "healthy",
                _ => "steps",
            };
            phases.add(name, step.duration_ms);
        }
        phases
    }

    /// Adds every phase of `other`.
    pub fn extend(&mut self, other: &Phases) {
        for &(name, ms) in &other.0 {
            self.add(name, ms);
        }
    }

    /// The phases in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().copied()
    }

    /// The time of one phase (0 when it did not run).
    #[must_use]
    pub fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, ms)| *ms)
    }

    /// All phases together, ms.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, ms)| ms).sum()
    }

    /// Whether no phase was timed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Phases {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, ms) in &self.0 {
            map.serialize_entry(name, ms)?;
        }
        map.end()
    }
}

/// Milliseconds of a duration, saturating.
#[must_use]
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TargetOutcome {
    /// An outcome with no step results yet.
    #[must_use]
    pub fn new(tenant: &str, host: &str, status: TargetStatus, error: Option<String>) -> Self {
        Self {
            tenant: tenant.to_owned(),
            host: host.to_owned(),
            status,
            steps: Vec::new(),
            failed_step: None,
            error,
            duration_ms: 0,
            batch: None,
            phases: Phases::default(),
            canary: None,
        }
    }

    /// A target that failed at `step` before any of its steps ran.
    #[must_use]
    pub fn failed_at(tenant: &str, host: &str, step: &str, why: String) -> Self {
        let mut o = Self::new(tenant, host, TargetStatus::Failed, Some(why));
        o.failed_step = Some(step.to_owned());
        o
    }

    /// `tenant@host`, the name a target goes by in reports and the journal.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}@{}", self.tenant, self.host)
    }

    /// Whether its steps all succeeded (changed or not).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        matches!(self.status, TargetStatus::Ok | TargetStatus::Changed)
    }

    /// Whether it counts against a rollout's failure budget.
    #[must_use]
    pub fn counts_as_failure(&self) -> bool {
        matches!(
            self.status,
            TargetStatus::Failed | TargetStatus::Unreachable
        )
    }
}

impl TargetStatus {
    /// The word used in reports and the journal.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            TargetStatus::Ok => "ok",
            TargetStatus::Changed => "changed",
            TargetStatus::Failed => "failed",
            TargetStatus::Unreachable => "unreachable",
            TargetStatus::Skipped => "skipped",
        }
    }
}

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Exit status 0.
    Ok,
    /// Non-zero exit status or killed by a signal.
    Failed,
    /// Ran past its timeout and was ended.
    TimedOut,
    /// Could not connect, verify or authenticate, or the connection was lost.
    Unreachable,
    /// Never started because the run was halted.
    Skipped,
}

impl HostStatus {
    /// The word used in reports.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Failed => "failed",
            HostStatus::TimedOut => "timed out",
            HostStatus::Unreachable => "unreachable",
            HostStatus::Skipped => "skipped",
        }
    }
}

/// The result of a command on one host.
#[derive(Debug, Clone)]
pub struct HostOutcome {
    /// Inventory name.
    pub host: String,
    /// Address connected to.
    pub address: String,
    /// How it ended.
    pub status: HostStatus,
    /// Exit status, if the command exited.
    pub exit_code: Option<u32>,
    /// Signal, if it was killed by one.
    pub signal: Option<String>,
    /// Captured standard output.
    pub stdout: Captured,
    /// Captured standard error.
    pub stderr: Captured,
    /// Connect + command time.
    pub duration: Duration,
    /// Why it did not run, for unreachable hosts (and transport failures).
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &'static str, ms: u64, status: StepStatus) -> StepOutcome {
        StepOutcome {
            name: kind.into(),
            kind,
            status,
            attempts: 1,
            duration_ms: ms,
            exit_code: Some(0),
            stdout: String::new(),
            stderr: String::new(),
            diff: None,
            bytes_sent: None,
        }
    }

    #[test]
    fn steps_fall_into_upload_healthy_and_the_rest_and_phases_serialize_in_order() {
        let steps = [
            step("user", 10, StepStatus::Ok),
            step("upload", 200, StepStatus::Changed),
            step("unit", 30, StepStatus::Changed),
            step("service", 400, StepStatus::Changed),
            step("health", 150, StepStatus::Ok),
            step("cron", 5, StepStatus::Skipped),
        ];
        let mut phases = Phases::default();
        phases.add("lock", 12);
        phases.extend(&Phases::of_steps(&steps));
        phases.add("switch", 80);
        phases.add("lock", 3);
        assert_eq!(phases.get("steps"), 40);
        assert_eq!(phases.get("healthy"), 550);
        assert_eq!(phases.get("lock"), 15);
        assert_eq!(phases.get("confirm"), 0);
        assert_eq!(
            serde_json::to_string(&phases).unwrap(),
            r#"{"lock":15,"steps":40,"upload":200,"healthy":550,"switch":80}"#
        );
    }
}

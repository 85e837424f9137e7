//! What became of a step, a target, a host: plain data. The engine makes it, events
//! carry it, reporters and the command line read it; it imports none of them.

use std::time::Duration;

use serde::Serialize;

use crate::transport::Captured;

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

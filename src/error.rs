//! The process exit codes: stable, documented in README.md, tested. How outcomes map
//! to them is decided here, once.

use crate::outcome::{HostOutcome, HostStatus, TargetOutcome, TargetStatus};

/// How a drover invocation ended, as seen by scripts and CI.
///
/// The numbers are part of drover's interface and never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// Everything selected succeeded.
    Ok = 0,
    /// At least one target failed (non-zero exit, timeout), none was unreachable.
    Failed = 1,
    /// Bad input: unreadable or invalid inventory, bad flags, empty selection.
    BadInput = 2,
    /// A rollout was halted (failure budget spent, `drover halt`, Ctrl-C).
    Halted = 3,
    /// At least one host could not be reached (connect, host key, authentication).
    Unreachable = 4,
}

impl ExitCode {
    /// The numeric process exit status.
    #[must_use]
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The exit code for a numeric status (unknown numbers count as bad input).
    #[must_use]
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => Self::Ok,
            1 => Self::Failed,
            3 => Self::Halted,
            4 => Self::Unreachable,
            _ => Self::BadInput,
        }
    }
}

impl ExitCode {
    /// How a run over hosts ended: an unreachable host first (4), then a halt (3),
    /// then a failure or timeout (1).
    #[must_use]
    pub fn for_hosts(outcomes: &[HostOutcome], halted: bool) -> Self {
        let any = |s: HostStatus| outcomes.iter().any(|o| o.status == s);
        if any(HostStatus::Unreachable) {
            Self::Unreachable
        } else if halted {
            Self::Halted
        } else if any(HostStatus::Failed) || any(HostStatus::TimedOut) {
            Self::Failed
        } else {
            Self::Ok
        }
    }

    /// How a deploy or rollback ended: a halt first (3: the rollout stopped early;
    /// resume it), then an unreachable target (4), then a failed one (1).
    #[must_use]
    pub fn for_targets(outcomes: &[TargetOutcome], halted: bool) -> Self {
        let any = |s: TargetStatus| outcomes.iter().any(|o| o.status == s);
        if halted {
            Self::Halted
        } else if any(TargetStatus::Unreachable) {
            Self::Unreachable
        } else if any(TargetStatus::Failed) {
            Self::Failed
        } else {
            Self::Ok
        }
    }
}

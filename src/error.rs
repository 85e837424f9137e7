//! The process exit codes: stable, documented in README.md, tested.

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

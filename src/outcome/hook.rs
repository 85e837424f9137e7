//! What became of one run of a playbook hook (`[hooks]`), for the journal and reports.

/// What one run of a hook did.
#[derive(Debug, Clone)]
pub struct HookRun {
    /// where in the deploy it ran (`pre-deploy`, `post-switch`, …)
    pub point: String,
    /// `tenant@host` for a per-target hook
    pub target: Option<String>,
    /// the command, as written
    pub command: String,
    /// its exit code (`None`: killed, timed out, or not started)
    pub exit_code: Option<i32>,
    /// killed at the hook timeout
    pub timed_out: bool,
    /// stdout then stderr (bounded), or why it did not start
    pub output: String,
    /// wall time
    pub duration_ms: u64,
    /// its time limit
    pub timeout_ms: u64,
}

impl HookRun {
    /// Whether it exited 0 in time.
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// How it ended, in words: `exit 0`, `exit 3`, `timed out after 60s`.
    #[must_use]
    pub fn ending(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => format!("timed out after {}s", self.timeout_ms / 1000),
            (false, Some(code)) => format!("exit {code}"),
            (false, None) => "did not run to an exit".into(),
        }
    }
}

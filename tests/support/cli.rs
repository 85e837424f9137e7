//! Runs the real `drover` binary in an isolated environment (its own HOME, no agent).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The result of one drover invocation.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Parses `--json` output: one object per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }
}

/// A drover command with HOME set to `home` (so ~/.ssh is the test's own) and the
/// caller's ssh-agent hidden.
pub fn drover(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("DROVER_INVENTORY")
        .env_remove("DROVER_KEY_PASSPHRASE")
        .env("NO_COLOR", "1")
        .current_dir(home);
    cmd
}

/// Runs the command to completion (the binary has its own timeouts; tests assert on them).
pub fn run(cmd: &mut Command) -> Run {
    let started = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("drover runs");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Runs `drover -i INVENTORY ARGS...` with HOME set to `home` (see [`drover`]).
pub fn run_with_inventory(home: &Path, inventory: &Path, args: &[&str]) -> Run {
    run(drover(home).arg("-i").arg(inventory).args(args))
}

/// Runs the command for at most `limit`, then kills it: for inputs that could make drover
/// hang. Returns its result (exit -1 when killed, with `elapsed` from its start) and whether
/// it was killed.
pub fn run_within(cmd: &mut Command, limit: Duration) -> (Run, bool) {
    let started = Instant::now();
    let (output, killed) = super::fleet::run_bounded(cmd, limit);
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    (run, killed)
}

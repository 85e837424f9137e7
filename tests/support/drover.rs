//! Running drover against a test fleet the way the fleet tests do, its exit codes,
//! and what its `--json` reports say per target.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::fleet::{Finished, Fleet, Running};

/// The secret the reference playbook's env step needs (`API_KEY`), given to every
/// drover run of [`Drover`]; a test can look for it in drover's output.
pub(crate) const API_KEY: &str = "fleet-test-api-key-4f9c2e71";

/// Exit codes (README: stable).
pub(crate) const EXIT_OK: i32 = 0;
/// Some targets failed; the run went on to the end.
pub(crate) const EXIT_FAILED: i32 = 1;
/// Bad input, found before connecting anywhere.
pub(crate) const EXIT_BAD_INPUT: i32 = 2;
/// A rollout halted (failure budget spent, or `drover halt`).
pub(crate) const EXIT_HALTED: i32 = 3;
/// Some hosts were unreachable.
pub(crate) const EXIT_UNREACHABLE: i32 = 4;

/// The drover binary run in `dir`, with no inventory taken from the environment
/// and no colour.
pub(crate) fn binary_in(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_drover"));
    cmd.current_dir(dir)
        .env_remove("DROVER_INVENTORY")
        .env("NO_COLOR", "1");
    cmd
}

/// One drover invocation against a fleet: `drover -i <inventory>... ARGS` in the
/// fleet's scratch dir, with [`API_KEY`] as `DROVER_SECRET_API_KEY`.
pub(crate) struct Drover {
    cmd: Command,
}

impl Drover {
    /// With the fleet's own inventory.
    pub(crate) fn on(fleet: &Fleet) -> Drover {
        Drover::with_inventory(fleet, &fleet.inventory())
    }

    /// With `inventory` in place of the fleet's own (e.g. another login user).
    pub(crate) fn with_inventory(fleet: &Fleet, inventory: &Path) -> Drover {
        let mut cmd = binary_in(fleet.work_dir());
        cmd.arg("-i")
            .arg(inventory)
            .env("DROVER_SECRET_API_KEY", API_KEY);
        Drover { cmd }
    }

    /// Merges another inventory into the fleet's (`-i fleet -i extra`).
    pub(crate) fn also_inventory(mut self, extra: impl AsRef<OsStr>) -> Drover {
        self.cmd.arg("-i").arg(extra);
        self
    }

    /// Sets an environment variable (the last value set wins).
    pub(crate) fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Drover {
        self.cmd.env(name, value);
        self
    }

    /// Sets each (name, value) of `vars`.
    pub(crate) fn envs<V: AsRef<OsStr>>(mut self, vars: &[(&str, V)]) -> Drover {
        for (name, value) in vars {
            self.cmd.env(name, value);
        }
        self
    }

    /// The command with `args`, for a caller that reads its output itself.
    pub(crate) fn command<S: AsRef<OsStr>>(mut self, args: &[S]) -> Command {
        self.cmd.args(args);
        self.cmd
    }

    /// Starts drover with `args` without waiting for it.
    pub(crate) fn spawn<S: AsRef<OsStr>>(self, args: &[S]) -> Running {
        Running::start(&mut self.command(args))
    }

    /// Runs drover with `args`; fails the test (after killing it) past `limit`.
    pub(crate) fn run<S: AsRef<OsStr>>(self, args: &[S], limit: Duration) -> Finished {
        self.spawn(args).wait(limit)
    }
}

/// `drover -i <fleet inventory> ARGS...`, bounded by `limit` (see [`Drover`]).
pub(crate) fn drover<S: AsRef<OsStr>>(fleet: &Fleet, args: &[S], limit: Duration) -> Finished {
    Drover::on(fleet).run(args, limit)
}

/// `drover -i <fleet inventory> ARGS...` started in the background.
pub(crate) fn spawn_drover<S: AsRef<OsStr>>(fleet: &Fleet, args: &[S]) -> Running {
    Drover::on(fleet).spawn(args)
}

/// Fails the test unless the run exited with `code`.
#[track_caller]
pub(crate) fn assert_exit(run: &Finished, code: i32, what: &str) {
    assert_eq!(
        run.code(),
        Some(code),
        "{what}: want exit {code}\n{}",
        run.describe()
    );
}

/// A JSON string field, or "" when it is missing or not a string.
pub(crate) fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The `tenant@host` key of a target's JSON object.
pub(crate) fn target_key(object: &Value) -> String {
    format!("{}@{}", text(&object["tenant"]), text(&object["host"]))
}

/// Target objects by `tenant@host`; fails the test on two objects for one target
/// (`context` goes into the message).
#[track_caller]
pub(crate) fn keyed_by_target(
    objects: impl IntoIterator<Item = Value>,
    context: &str,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for object in objects {
        let key = target_key(&object);
        if out.insert(key.clone(), object).is_some() {
            panic!("two JSON objects for {key}\n{context}");
        }
    }
    out
}

/// The JSON lines of a `--json` deploy, rollback or resume, by `tenant@host`.
#[track_caller]
pub(crate) fn by_target(run: &Finished) -> BTreeMap<String, Value> {
    keyed_by_target(run.json_lines(), &run.describe())
}

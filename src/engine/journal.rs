//! The run journal on the control node: `.drover/runs/<run>.jsonl`, one JSON object
//! per line (the run's start with its arguments, each finished target, halts, the
//! end), plus `<run>.halt`, the file `drover halt` creates to stop a running rollout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::outcome::{HostOutcome, TargetOutcome};

/// The kind of a `drover deploy` run (and of journals written before kinds were).
pub const KIND_DEPLOY: &str = "deploy";
/// The kind of a `drover run` run.
pub const KIND_RUN: &str = "run";

/// Where journals live: `$DROVER_STATE_DIR/runs`, default `.drover/runs`.
#[must_use]
pub fn runs_dir() -> PathBuf {
    std::env::var_os("DROVER_STATE_DIR")
        .map_or_else(|| PathBuf::from(".drover"), PathBuf::from)
        .join("runs")
}

/// A new run id: UTC time plus the process id, sortable and unique per machine.
#[must_use]
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = now.chars().filter(char::is_ascii_alphanumeric).collect();
    format!(
        "{}-{:05}",
        compact.to_lowercase(),
        std::process::id() % 100_000
    )
}

/// True for strings that can be run ids (they become file names).
#[must_use]
pub fn is_run_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Path of a run's halt request.
#[must_use]
pub fn halt_path(run: &str) -> PathBuf {
    runs_dir().join(format!("{run}.halt"))
}

/// Path of a run's journal.
#[must_use]
pub fn journal_path(run: &str) -> PathBuf {
    runs_dir().join(format!("{run}.jsonl"))
}

/// An open journal, appended to line by line. This module is the only one that
/// writes or reads the journal's lines: the command line opens it with the run's
/// arguments ([`Journal::start`]); the rollout records its targets and its end.
#[derive(Debug)]
pub struct Journal {
    file: Mutex<std::fs::File>,
}

impl Journal {
    /// Opens (creating) the journal of `run` for appending and records its start: the
    /// command line (what `drover resume` replays) and the number of targets.
    ///
    /// # Errors
    /// The I/O error.
    pub fn start(run: &str, args: &[String], targets: usize) -> std::io::Result<Self> {
        Self::start_kind(run, KIND_DEPLOY, args, targets)
    }

    /// Like [`Journal::start`], for a run of another kind ([`KIND_RUN`]: `drover run`).
    ///
    /// # Errors
    /// The I/O error.
    pub fn start_kind(
        run: &str,
        kind: &str,
        args: &[String],
        targets: usize,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(runs_dir())?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(journal_path(run))?;
        let journal = Self {
            file: Mutex::new(file),
        };
        journal.record(
            "start",
            json!({
                "run": run, "kind": kind, "args": replayable(args), "targets": targets,
                "pid": std::process::id(),
            }),
        );
        Ok(journal)
    }

    /// A target is done (or was found failing later, by the canary soak).
    pub fn target(&self, outcome: &TargetOutcome) {
        self.record(
            "target",
            json!({
                "tenant": outcome.tenant, "host": outcome.host, "status": outcome.status,
                "failed_step": outcome.failed_step, "error": outcome.error,
                "batch": outcome.batch, "duration_ms": outcome.duration_ms,
                "phases": outcome.phases, "canary": outcome.canary,
            }),
        );
    }

    /// A host of `drover run` is done: its status and exit code (never its output).
    pub fn host(&self, outcome: &HostOutcome) {
        self.record(
            "host",
            json!({
                "host": outcome.host, "status": outcome.status,
                "exit_code": outcome.exit_code, "error": outcome.error,
            }),
        );
    }

    /// A canary's traffic moved to a new weight (percent to the new color; 0: back on
    /// the old color), or was judged: where its traffic stands, for a reader of the
    /// journal after a halt or a kill.
    pub fn canary(&self, target: &str, weight: u8, note: &str) {
        self.record(
            "canary",
            json!({ "target": target, "weight": weight, "note": note }),
        );
    }

    /// The run halted (why, and which targets it switched back).
    pub fn halted(&self, reason: &str, rolled_back: &[String]) {
        self.record(
            "halted",
            json!({ "reason": reason, "rolled_back": rolled_back }),
        );
    }

    /// A hook ran (`[hooks]`): where, how it ended, and what it printed.
    pub fn hook(&self, ran: &super::hooks::HookRun) {
        self.record(
            "hook",
            json!({
                "point": ran.point, "target": ran.target, "command": ran.command,
                "exit_code": ran.exit_code, "timed_out": ran.timed_out,
                "output": ran.output, "duration_ms": ran.duration_ms,
            }),
        );
    }

    /// The run got to its end.
    pub fn finished(&self) {
        self.record("finished", json!({}));
    }

    /// Appends one event (with a timestamp), flushed at once so a killed run keeps it.
    fn record(&self, event: &str, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("event".into(), json!(event));
            map.insert("at".into(), json!(crate::engine::now_rfc3339()));
        }
        if let Ok(mut file) = self.file.lock() {
            let _ = writeln!(file, "{fields}");
            let _ = file.flush();
        }
    }
}

/// What a journal says about its run.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// the command line of the run
    pub args: Vec<String>,
    /// whether it finished (not halted, not killed)
    pub finished: bool,
    /// whether it halted
    pub halted: bool,
    /// [`KIND_DEPLOY`] or [`KIND_RUN`]
    pub kind: String,
    /// targets recorded as done (`tenant@host` → status)
    pub targets: Vec<(String, String)>,
    /// hosts of a `drover run` (host → status)
    pub hosts: Vec<(String, String)>,
    /// the process of its latest start (a resumed run has a pid of its own)
    pub pid: Option<u32>,
}

/// Reads a run's journal.
///
/// # Errors
/// The I/O error, or a journal without its start line.
pub fn read(run: &str) -> Result<RunRecord, String> {
    read_path(&journal_path(run))
}

fn read_path(path: &std::path::Path) -> Result<RunRecord, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut record = RunRecord::default();
    let mut started = false;
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match value["event"].as_str() {
            Some("start") => {
                // A resume starts the run again: its latest start is what is going on.
                started = true;
                record.finished = false;
                record.halted = false;
                record.pid = value["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
                record.kind = value["kind"].as_str().unwrap_or(KIND_DEPLOY).to_string();
                record.args = value["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
            }
            Some("target") => record.targets.push((
                format!(
                    "{}@{}",
                    value["tenant"].as_str().unwrap_or(""),
                    value["host"].as_str().unwrap_or("")
                ),
                value["status"].as_str().unwrap_or("").to_string(),
            )),
            Some("host") => record.hosts.push((
                value["host"].as_str().unwrap_or("").to_string(),
                value["status"].as_str().unwrap_or("").to_string(),
            )),
            Some("halted") => record.halted = true,
            Some("finished") => record.finished = true,
            _ => {}
        }
    }
    if started {
        Ok(record)
    } else {
        Err(format!("{} has no start record", path.display()))
    }
}

/// A run's command line without its `--run-id`: what `drover resume` replays (it adds
/// the id itself). Journals written before this was stored clean are cleaned too.
#[must_use]
pub fn replayable(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
        } else if arg == "--run-id" {
            skip_value = true;
        } else if !arg.starts_with("--run-id=") {
            out.push(arg.clone());
        }
    }
    out
}

/// Whether the run that holds a lock is still alive, as far as this control node can
/// tell from its journal and its process (the run id ends with the pid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// its journal here says it halted or finished
    Ended,
    /// its journal here has no end and no drover process with its pid runs
    Died,
    /// its journal has no end and its process runs
    Running,
    /// no journal of it here (another control node, or an old run)
    Unknown,
}

impl Liveness {
    /// The word used in reports.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Liveness::Ended => "ended",
            Liveness::Died => "died",
            Liveness::Running => "running",
            Liveness::Unknown => "unknown",
        }
    }
}

/// Judges the run `run` (see [`Liveness`]).
#[must_use]
pub fn liveness(run: &str) -> Liveness {
    if !is_run_id(run) {
        return Liveness::Unknown;
    }
    let Ok(record) = read(run) else {
        return Liveness::Unknown;
    };
    if record.finished || record.halted {
        return Liveness::Ended;
    }
    let pid = record
        .pid
        .or_else(|| run.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()));
    match pid {
        Some(pid) if !process_is_drover(pid) => Liveness::Died,
        Some(_) => Liveness::Running,
        None => Liveness::Unknown,
    }
}

fn process_is_drover(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| cmd.contains("drover"))
}

/// The newest run of `kind` that has a journal, other than `except` (a resumed run
/// looking for the run before it), if any.
#[must_use]
pub fn latest_run_of(kind: &str, except: Option<&str>) -> Option<String> {
    let mut runs = run_ids()?;
    runs.reverse();
    runs.into_iter()
        .filter(|run| Some(run.as_str()) != except)
        .find(|run| read(run).is_ok_and(|r| r.kind == kind))
}

/// The newest run that has a journal, if any.
#[must_use]
pub fn latest_run() -> Option<String> {
    run_ids()?.pop()
}

/// Every run with a journal, oldest first.
fn run_ids() -> Option<Vec<String>> {
    let mut runs: Vec<String> = std::fs::read_dir(runs_dir())
        .ok()?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .map(str::to_string)
        })
        .collect();
    runs.sort();
    Some(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_command_line_has_no_run_id_however_often_it_was_resumed() {
        let args: Vec<String> = [
            "drover",
            "deploy",
            "p.toml",
            "--all",
            "--run-id",
            "r-1",
            "--run-id=r-1",
            "--json",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            replayable(&args),
            ["drover", "deploy", "p.toml", "--all", "--json"]
        );
        assert_eq!(replayable(&replayable(&args)), replayable(&args));
    }

    #[test]
    fn a_resumed_run_is_judged_by_its_latest_start() {
        let dir = tempfile::tempdir().unwrap();
        let run = "20261202t101010z-00001";
        let path = dir.path().join(format!("{run}.jsonl"));
        let lines = [
            r#"{"event":"start","args":["drover","deploy"],"pid":1}"#,
            r#"{"event":"halted","reason":"x"}"#,
            r#"{"event":"start","args":["drover","deploy","--run-id","x"],"pid":4242}"#,
            r#"{"event":"target","tenant":"a","host":"h","status":"changed"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let record = read_path(&path).unwrap();
        assert!(!record.halted && !record.finished);
        assert_eq!(record.pid, Some(4242));
        assert_eq!(record.targets, [("a@h".to_string(), "changed".to_string())]);
    }

    #[test]
    fn a_run_journal_has_its_kind_and_hosts_and_an_old_one_is_a_deploy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let lines = [
            r#"{"event":"start","kind":"run","args":["drover","run","--all","--","true"]}"#,
            r#"{"event":"host","host":"h1","status":"ok","exit_code":0}"#,
            r#"{"event":"host","host":"h2","status":"unreachable","exit_code":null}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let record = read_path(&path).unwrap();
        assert_eq!(record.kind, KIND_RUN);
        assert_eq!(
            record.hosts[1],
            ("h2".to_string(), "unreachable".to_string())
        );
        std::fs::write(&path, r#"{"event":"start","args":["drover","deploy"]}"#).unwrap();
        assert_eq!(read_path(&path).unwrap().kind, KIND_DEPLOY);
    }

    #[test]
    fn run_ids_are_safe_file_names() {
        let id = new_run_id();
        assert!(is_run_id(&id), "{id}");
        assert!(!is_run_id("../x"));
        assert!(!is_run_id(""));
    }
}

//! The run journal on the control node: `.drover/runs/<run>.jsonl`, one JSON object
//! per line (the run's start with its arguments, each finished target, halts, the
//! end), plus `<run>.halt`, the file `drover halt` creates to stop a running rollout.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Value, json};

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

/// An open journal, appended to line by line.
#[derive(Debug)]
pub struct Journal {
    file: Mutex<std::fs::File>,
}

impl Journal {
    /// Opens (creating) the journal of `run` for appending.
    ///
    /// # Errors
    /// The I/O error.
    pub fn open(run: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(runs_dir())?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(journal_path(run))?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends one event (with a timestamp), flushed at once so a killed run keeps it.
    pub fn record(&self, event: &str, mut fields: Value) {
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
    /// targets recorded as done (`tenant@host` → status)
    pub targets: Vec<(String, String)>,
}

/// Reads a run's journal.
///
/// # Errors
/// The I/O error, or a journal without its start line.
pub fn read(run: &str) -> Result<RunRecord, String> {
    let path = journal_path(run);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut record = RunRecord::default();
    let mut started = false;
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match value["event"].as_str() {
            Some("start") => {
                started = true;
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

/// The newest run that has a journal, if any.
#[must_use]
pub fn latest_run() -> Option<String> {
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
    runs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_safe_file_names() {
        let id = new_run_id();
        assert!(is_run_id(&id), "{id}");
        assert!(!is_run_id("../x"));
        assert!(!is_run_id(""));
    }
}

//! Final output of `drover run`: grouped text with a summary line, or JSON lines.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::group::{fold, group};
use crate::outcome::{HostOutcome, HostStatus};

/// Counts per status.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// exit 0
    pub ok: usize,
    /// non-zero exit or signal
    pub failed: usize,
    /// ended after the timeout
    pub timed_out: usize,
    /// not reached
    pub unreachable: usize,
    /// not started (halted)
    pub skipped: usize,
}

impl Tally {
    /// Counts the outcomes.
    #[must_use]
    pub fn of(outcomes: &[HostOutcome]) -> Self {
        let mut t = Self::default();
        for o in outcomes {
            t.add(o.status);
        }
        t
    }

    /// Counts one more.
    pub fn add(&mut self, status: HostStatus) {
        match status {
            HostStatus::Ok => self.ok += 1,
            HostStatus::Failed => self.failed += 1,
            HostStatus::TimedOut => self.timed_out += 1,
            HostStatus::Unreachable => self.unreachable += 1,
            HostStatus::Skipped => self.skipped += 1,
        }
    }

    /// Hosts counted.
    #[must_use]
    pub fn total(&self) -> usize {
        self.ok + self.failed + self.timed_out + self.unreachable + self.skipped
    }

    /// `ok 48, failed 1, unreachable 1` (zero counts after `ok` are left out).
    #[must_use]
    pub fn line(&self) -> String {
        let mut parts = vec![format!("ok {}", self.ok)];
        for (n, word) in [
            (self.failed, "failed"),
            (self.timed_out, "timed out"),
            (self.unreachable, "unreachable"),
            (self.skipped, "skipped"),
        ] {
            if n > 0 {
                parts.push(format!("{word} {n}"));
            }
        }
        parts.join(", ")
    }
}

fn headline(o: &HostOutcome) -> String {
    match o.status {
        HostStatus::Ok => "ok".to_string(),
        HostStatus::Failed => match (&o.exit_code, &o.signal, &o.error) {
            (Some(code), _, _) => format!("failed, exit {code}"),
            (None, Some(sig), _) => format!("failed, killed by signal {sig}"),
            (None, None, Some(e)) => format!("failed: {e}"),
            (None, None, None) => "failed".to_string(),
        },
        HostStatus::TimedOut | HostStatus::Unreachable | HostStatus::Skipped => {
            let e = o
                .error
                .as_deref()
                .unwrap_or_default()
                .replace(&o.address, "<address>");
            format!("{}: {e}", o.status.word())
        }
    }
}

fn push_stream(out: &mut String, label: Option<&str>, bytes: &[u8], dropped: u64) {
    if bytes.is_empty() && dropped == 0 {
        return;
    }
    if let Some(label) = label {
        let _ = writeln!(out, "{label}:");
    }
    let text = String::from_utf8_lossy(bytes);
    out.push_str(&text);
    if !text.ends_with('\n') && !text.is_empty() {
        out.push('\n');
    }
    if dropped > 0 {
        let _ = writeln!(out, "[… {dropped} more bytes not kept]");
    }
}

/// Grouped text: one block per distinct result, largest first, then the summary line.
#[must_use]
pub fn render_text(outcomes: &[HostOutcome], elapsed: Duration) -> String {
    let mut out = String::new();
    for g in group(outcomes) {
        let first = g.first();
        let names = fold(g.hosts.iter().map(|o| o.host.as_str()));
        let rule = "-".repeat(15);
        let _ = writeln!(
            out,
            "{rule}\n{names} ({}) {}\n{rule}",
            g.hosts.len(),
            headline(first)
        );
        push_stream(&mut out, None, &first.stdout.bytes, first.stdout.dropped);
        push_stream(
            &mut out,
            Some("stderr"),
            &first.stderr.bytes,
            first.stderr.dropped,
        );
    }
    let tally = Tally::of(outcomes);
    let _ = writeln!(
        out,
        "{} — {} hosts in {:.2}s",
        tally.line(),
        tally.total(),
        elapsed.as_secs_f64()
    );
    out
}

/// The documented JSON object for one host (`drover run --json`, one per line).
#[derive(Debug, Serialize)]
pub struct JsonOutcome<'a> {
    /// inventory name
    pub host: &'a str,
    /// address connected to
    pub address: &'a str,
    /// ok, failed, timed_out, unreachable or skipped
    pub status: HostStatus,
    /// exit status, null when none
    pub exit_code: Option<u32>,
    /// signal name, null when none
    pub signal: Option<&'a str>,
    /// standard output (lossy UTF-8)
    pub stdout: String,
    /// standard error (lossy UTF-8)
    pub stderr: String,
    /// bytes of stdout past the cap, not kept
    pub stdout_dropped: u64,
    /// bytes of stderr past the cap, not kept
    pub stderr_dropped: u64,
    /// connect + command time in milliseconds
    pub duration_ms: u64,
    /// why the host did not run the command, null when it did
    pub error: Option<&'a str>,
}

/// One JSON object per line, in host order.
#[must_use]
pub fn render_json(outcomes: &[HostOutcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let json = JsonOutcome {
            host: &o.host,
            address: &o.address,
            status: o.status,
            exit_code: o.exit_code,
            signal: o.signal.as_deref(),
            stdout: o.stdout.text(),
            stderr: o.stderr.text(),
            stdout_dropped: o.stdout.dropped,
            stderr_dropped: o.stderr.dropped,
            duration_ms: u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
            error: o.error.as_deref(),
        };
        if let Ok(line) = serde_json::to_string(&json) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

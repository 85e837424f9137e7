//! Live progress while a run works: an aggregate indicatif bar on a terminal (counts,
//! the slowest running hosts, failures printed above it), plain lines otherwise.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::Receiver;

use super::run::Tally;
use crate::engine::journal::Journal;
use crate::engine::{HostStatus, StepStatus, TargetStatus};
use crate::events::Event;
use std::sync::Arc;

/// How live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// An indicatif bar on stderr (a terminal).
    Bar,
    /// One line per finished host on stderr (CI logs, pipes).
    Lines,
    /// Nothing (`--quiet`, or JSON on a pipe).
    Silent,
}

/// Failures printed above the bar before the rest are only counted, so a fleet-wide
/// outage does not scroll thousands of lines.
const MAX_PRINTED_FAILURES: usize = 20;

/// Consumes events until the run ends.
pub async fn report(events: Receiver<Event>, mode: LiveMode) {
    report_with_journal(events, mode, None).await;
}

/// Consumes events until the run ends, also appending finished targets to the run
/// journal.
pub async fn report_with_journal(
    mut events: Receiver<Event>,
    mode: LiveMode,
    journal: Option<Arc<Journal>>,
) {
    let bar = (mode == LiveMode::Bar).then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let mut tally = Tally::default();
    let mut running: HashMap<String, Instant> = HashMap::new();
    let mut printed = 0usize;
    let stderr = std::io::stderr();
    while let Some(event) = events.recv().await {
        match event {
            Event::RunStarted { hosts } => {
                if let Some(bar) = &bar {
                    bar.set_length(hosts as u64);
                }
            }
            Event::HostStarted { host } => {
                if bar.is_some() {
                    running.insert(host, Instant::now());
                }
            }
            Event::HostFinished(outcome) => {
                running.remove(&outcome.host);
                tally.add(outcome.status);
                let line = match outcome.status {
                    HostStatus::Ok => format!(
                        "[{}] ok in {:.2}s",
                        outcome.host,
                        outcome.duration.as_secs_f64()
                    ),
                    HostStatus::Failed => format!(
                        "[{}] failed{} in {:.2}s",
                        outcome.host,
                        outcome
                            .exit_code
                            .map(|c| format!(", exit {c}"))
                            .unwrap_or_default(),
                        outcome.duration.as_secs_f64()
                    ),
                    _ => format!(
                        "[{}] {}: {}",
                        outcome.host,
                        outcome.status.word(),
                        outcome.error.as_deref().unwrap_or_default()
                    ),
                };
                match (&bar, mode) {
                    (Some(bar), _) => {
                        if outcome.status != HostStatus::Ok {
                            if printed < MAX_PRINTED_FAILURES {
                                bar.println(line);
                            } else if printed == MAX_PRINTED_FAILURES {
                                bar.println("[… further failures are counted, not printed]");
                            }
                            printed += 1;
                        }
                        bar.inc(1);
                        bar.set_message(message(&tally, &running));
                    }
                    (None, LiveMode::Lines) => {
                        let _ = writeln!(stderr.lock(), "{line}");
                    }
                    _ => {}
                }
            }
            Event::TargetFinished(outcome) => {
                if let Some(j) = &journal {
                    j.record(
                        "target",
                        serde_json::json!({
                            "tenant": outcome.tenant, "host": outcome.host, "status": outcome.status,
                            "failed_step": outcome.failed_step, "error": outcome.error,
                        }),
                    );
                }
                let name = format!("{}@{}", outcome.tenant, outcome.host);
                running.remove(&name);
                let status = match outcome.status {
                    TargetStatus::Ok => HostStatus::Ok,
                    TargetStatus::Changed => HostStatus::Ok,
                    TargetStatus::Failed => HostStatus::Failed,
                    TargetStatus::Unreachable => HostStatus::Unreachable,
                    TargetStatus::Skipped => HostStatus::Skipped,
                };
                tally.add(status);
                let changed = outcome
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Changed)
                    .count();
                let line = match (&outcome.failed_step, &outcome.error) {
                    (_, Some(e)) => format!("[{name}] {}: {e}", status.word()),
                    (Some(step), None) => format!("[{name}] failed at step `{step}`"),
                    (None, None) => format!(
                        "[{name}] ok, {changed} changed in {:.2}s",
                        outcome.duration_ms as f64 / 1000.0
                    ),
                };
                match (&bar, mode) {
                    (Some(bar), _) => {
                        if status != HostStatus::Ok && printed < MAX_PRINTED_FAILURES {
                            bar.println(line);
                            printed += 1;
                        }
                        bar.inc(1);
                        bar.set_message(message(&tally, &running));
                    }
                    (None, LiveMode::Lines) => {
                        let _ = writeln!(stderr.lock(), "{line}");
                    }
                    _ => {}
                }
            }
            Event::BatchStarted {
                number,
                of,
                targets,
            } => {
                let line = format!(
                    "batch {number}/{of}: {targets} target{}",
                    if targets == 1 { "" } else { "s" }
                );
                match (&bar, mode) {
                    (Some(bar), _) => bar.println(line),
                    (None, LiveMode::Lines) => {
                        let _ = writeln!(stderr.lock(), "{line}");
                    }
                    _ => {}
                }
            }
            Event::Soaking { seconds } => {
                let line = format!("canary soak: {seconds}s, then the canaries are checked again");
                match (&bar, mode) {
                    (Some(bar), _) => bar.println(line),
                    (None, LiveMode::Lines) => {
                        let _ = writeln!(stderr.lock(), "{line}");
                    }
                    _ => {}
                }
            }
            Event::Halting => {
                if let Some(bar) = &bar {
                    bar.println("halting: no new host will start (Ctrl-C again to abort)");
                } else if mode == LiveMode::Lines {
                    let _ = writeln!(stderr.lock(), "halting: no new host will start");
                }
            }
            Event::RunFinished => break,
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

fn message(tally: &Tally, running: &HashMap<String, Instant>) -> String {
    let mut text = tally.line();
    if !running.is_empty() {
        let mut slowest: Vec<(&String, &Instant)> = running.iter().collect();
        slowest.sort_by_key(|(_, started)| **started);
        let names: Vec<&str> = slowest.iter().take(3).map(|(n, _)| n.as_str()).collect();
        text.push_str(&format!(" · waiting on {}", names.join(", ")));
        if running.len() > 3 {
            text.push_str(&format!(" +{}", running.len() - 3));
        }
    }
    text
}

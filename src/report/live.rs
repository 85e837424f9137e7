//! Live progress while a run works: an aggregate indicatif bar on a terminal (counts,
//! the slowest running hosts, failures printed above it), plain lines otherwise.
//!
//! Plain lines name every host of a small run. A large one (more than
//! [`PER_HOST_LINES_MAX`] hosts or targets) would scroll thousands of lines past, so it
//! prints its failures (the first [`MAX_PRINTED_FAILURES`]) and an aggregate line at
//! every tenth of the run and every [`SUMMARY_EVERY`] while it waits.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::Receiver;

use super::run::Tally;
use crate::events::Event;
use crate::outcome::{HostOutcome, HostStatus, StepStatus, TargetOutcome, TargetStatus};

/// How live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// An indicatif bar on stderr (a terminal).
    Bar,
    /// Plain lines on stderr (CI logs, pipes).
    Lines,
    /// Nothing (`--quiet`, or JSON on a pipe).
    Silent,
}

/// Failures printed before the rest are only counted, so a fleet-wide outage does not
/// scroll thousands of lines.
const MAX_PRINTED_FAILURES: usize = 20;

/// Runs up to this size get a plain line per host or target.
pub const PER_HOST_LINES_MAX: usize = 50;

/// How often a large plain-lines run says where it stands while nothing else prints.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Consumes events until the run ends.
pub async fn report(mut events: Receiver<Event>, mode: LiveMode) {
    let mut progress = Progress::new(mode, std::io::stderr());
    let mut tick = tokio::time::interval(SUMMARY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tick.tick() => {
                progress.tick();
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            Event::RunStarted { hosts } => progress.start(hosts),
            Event::HostStarted { host } => progress.started(host),
            Event::HostFinished(outcome) => {
                let (name, status, line) = host_line(&outcome);
                progress.finished(name, status, line);
            }
            Event::TargetFinished(outcome) => {
                let (name, status, line) = target_line(&outcome);
                progress.finished(name, status, line);
            }
            Event::BatchStarted {
                number,
                of,
                targets,
            } => progress.note(format!(
                "batch {number}/{of}: {targets} target{}",
                if targets == 1 { "" } else { "s" }
            )),
            Event::Soaking { seconds } => progress.note(format!(
                "canary soak: {seconds}s, then the canaries are checked again"
            )),
            Event::HookRan(ran) => progress.note(super::hooks::render(&ran).trim_end().to_string()),
            Event::LockWait { target, text } => progress.note(format!("{target}: {text}")),
            Event::Halting => progress.note(match mode {
                LiveMode::Bar => "halting: no new host will start (Ctrl-C again to abort)".into(),
                _ => "halting: no new host will start".into(),
            }),
            Event::RunFinished => break,
        }
    }
    progress.finish();
}

/// A finished host's name, status and line.
fn host_line(outcome: &HostOutcome) -> (String, HostStatus, String) {
    let seconds = outcome.duration.as_secs_f64();
    let line = match outcome.status {
        HostStatus::Ok => format!("[{}] ok in {seconds:.2}s", outcome.host),
        HostStatus::Failed => format!(
            "[{}] failed{} in {seconds:.2}s",
            outcome.host,
            outcome
                .exit_code
                .map(|c| format!(", exit {c}"))
                .unwrap_or_default(),
        ),
        _ => format!(
            "[{}] {}: {}",
            outcome.host,
            outcome.status.word(),
            outcome.error.as_deref().unwrap_or_default()
        ),
    };
    (outcome.host.clone(), outcome.status, line)
}

/// A finished target's `tenant@host`, status (as a host's) and line.
fn target_line(outcome: &TargetOutcome) -> (String, HostStatus, String) {
    let name = outcome.name();
    let status = match outcome.status {
        TargetStatus::Ok | TargetStatus::Changed => HostStatus::Ok,
        TargetStatus::Failed => HostStatus::Failed,
        TargetStatus::Unreachable => HostStatus::Unreachable,
        TargetStatus::Skipped => HostStatus::Skipped,
    };
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
    (name, status, line)
}

/// What has been shown of a run so far, and where it goes.
struct Progress<W: Write> {
    mode: LiveMode,
    bar: Option<ProgressBar>,
    out: W,
    total: usize,
    tally: Tally,
    running: HashMap<String, Instant>,
    printed_failures: usize,
    /// tenths of the run a summary line has been printed for (large plain runs)
    tenths_said: usize,
    /// when the last line was printed (large plain runs)
    last_line: Instant,
}

impl<W: Write> Progress<W> {
    fn new(mode: LiveMode, out: W) -> Self {
        let bar = (mode == LiveMode::Bar).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self {
            mode,
            bar,
            out,
            total: 0,
            tally: Tally::default(),
            running: HashMap::new(),
            printed_failures: 0,
            tenths_said: 0,
            last_line: Instant::now(),
        }
    }

    /// Plain lines, more than [`PER_HOST_LINES_MAX`]: aggregate lines, not one per host.
    fn large(&self) -> bool {
        self.mode == LiveMode::Lines && self.total > PER_HOST_LINES_MAX
    }

    fn start(&mut self, total: usize) {
        self.total = total;
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn started(&mut self, name: String) {
        if self.mode != LiveMode::Silent {
            self.running.insert(name, Instant::now());
        }
    }

    /// A line that always shows: batches, soaks, halts.
    fn note(&mut self, line: String) {
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(line),
            (None, LiveMode::Lines) => self.print(&line),
            _ => {}
        }
    }

    fn finished(&mut self, name: String, status: HostStatus, line: String) {
        self.running.remove(&name);
        self.tally.add(status);
        let failed = status != HostStatus::Ok;
        if let Some(bar) = &self.bar {
            if failed {
                if self.printed_failures < MAX_PRINTED_FAILURES {
                    bar.println(line);
                } else if self.printed_failures == MAX_PRINTED_FAILURES {
                    bar.println("[… further failures are counted, not printed]");
                }
                self.printed_failures += 1;
            }
            bar.inc(1);
            bar.set_message(message(&self.tally, &self.running));
            return;
        }
        if self.mode != LiveMode::Lines {
            return;
        }
        if !self.large() {
            self.print(&line);
            return;
        }
        if failed {
            if self.printed_failures < MAX_PRINTED_FAILURES {
                self.print(&line);
            } else if self.printed_failures == MAX_PRINTED_FAILURES {
                self.print("[… further failures are counted, not printed]");
            }
            self.printed_failures += 1;
        }
        let tenths = self.tally.total() * 10 / self.total.max(1);
        if tenths > self.tenths_said {
            self.tenths_said = tenths;
            self.summary();
        }
    }

    /// A large plain run that printed nothing for a while says where it stands.
    fn tick(&mut self) {
        if self.large()
            && self.tally.total() < self.total
            && self.last_line.elapsed() >= SUMMARY_EVERY
        {
            self.summary();
        }
    }

    fn summary(&mut self) {
        let done = self.tally.total();
        let line = format!(
            "progress {done}/{} ({}%): {}",
            self.total,
            done * 100 / self.total.max(1),
            message(&self.tally, &self.running)
        );
        self.print(&line);
    }

    fn print(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
        self.last_line = Instant::now();
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn message(tally: &Tally, running: &HashMap<String, Instant>) -> String {
    let mut text = tally.line();
    if !running.is_empty() {
        // The three that started first, without sorting thousands on every event.
        let mut slowest: Vec<(&String, &Instant)> = running.iter().collect();
        if slowest.len() > 3 {
            slowest.select_nth_unstable_by_key(2, |(name, started)| (**started, *name));
            slowest.truncate(3);
        }
        slowest.sort_by_key(|(name, started)| (**started, *name));
        let names: Vec<&str> = slowest.iter().map(|(n, _)| n.as_str()).collect();
        text.push_str(&format!(" · waiting on {}", names.join(", ")));
        if running.len() > 3 {
            text.push_str(&format!(" +{}", running.len() - 3));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_for(total: usize, failing: &[usize]) -> Vec<String> {
        let mut out = Vec::new();
        {
            let mut p = Progress::new(LiveMode::Lines, &mut out);
            p.start(total);
            for i in 0..total {
                p.started(format!("h{i}"));
            }
            for i in 0..total {
                let status = if failing.contains(&i) {
                    HostStatus::Failed
                } else {
                    HostStatus::Ok
                };
                p.finished(format!("h{i}"), status, format!("[h{i}] {}", status.word()));
            }
            p.finish();
        }
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_small_plain_run_names_every_host() {
        let lines = lines_for(PER_HOST_LINES_MAX, &[3]);
        assert_eq!(lines.len(), PER_HOST_LINES_MAX);
        assert_eq!(lines[3], "[h3] failed");
    }

    #[test]
    fn a_large_plain_run_prints_its_failures_and_ten_summaries_not_a_line_per_host() {
        let failing: Vec<usize> = (0..30).map(|i| i * 50 + 7).collect();
        let lines = lines_for(2000, &failing);
        let failures: Vec<&String> = lines.iter().filter(|l| l.ends_with("failed")).collect();
        assert_eq!(failures.len(), MAX_PRINTED_FAILURES, "{lines:#?}");
        assert_eq!(failures[0], "[h7] failed");
        assert!(lines.contains(&"[… further failures are counted, not printed]".to_owned()));
        let summaries: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("progress "))
            .collect();
        assert_eq!(summaries.len(), 10, "{lines:#?}");
        assert!(
            summaries[0].starts_with("progress 200/2000 (10%): "),
            "{}",
            summaries[0]
        );
        // The three running longest are named, the rest counted.
        let waiting = summaries[0]
            .split(" · waiting on ")
            .nth(1)
            .expect("waiting on");
        assert_eq!(waiting.split(", ").count(), 3, "{waiting}");
        assert!(waiting.ends_with(" +1797"), "{waiting}");
        assert!(
            summaries[9].starts_with("progress 2000/2000 (100%): "),
            "{}",
            summaries[9]
        );
        assert!(summaries[9].contains("failed 30"), "{}", summaries[9]);
        assert_eq!(lines.len(), MAX_PRINTED_FAILURES + 1 + 10);
    }
}

//! `drover run SELECT -- CMD`: an ad-hoc command on many hosts, results grouped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use super::{ConnectOpts, Context, SelectOpts};
use crate::config::{Selection, duration};
use crate::engine::{HostOutcome, RunOptions, run_command};
use crate::error::ExitCode;
use crate::events::Event;
use crate::report::live::{self};
use crate::report::run::{Tally, render_json, render_text};

#[derive(Debug, Args)]
pub(crate) struct Opts {
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// Print one JSON object per host per line instead of grouped text.
    #[arg(long)]
    json: bool,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
    /// End the command after this long (overrides the inventory's command_timeout).
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    timeout: Option<Duration>,
    /// The command, passed to `sh -c` on each host.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Exit code of a finished run: unreachable hosts take precedence over failures.
pub(crate) fn exit_code(outcomes: &[HostOutcome], halted: bool) -> ExitCode {
    let tally = Tally::of(outcomes);
    if tally.unreachable > 0 {
        ExitCode::Unreachable
    } else if halted {
        ExitCode::Halted
    } else if tally.failed + tally.timed_out > 0 {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

/// Raises the open-file limit to the hard limit and caps concurrency below it: each
/// connection is one descriptor, and a thousand hosts exceed common soft limits.
pub(crate) fn fit_forks(forks: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let usable = usize::try_from(limit.saturating_sub(64) / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    forks.clamp(1, usable)
}

pub(crate) fn run(cx: &Context, opts: Opts) -> ExitCode {
    let inventory = match cx.load_inventory() {
        Ok(inv) => Arc::new(inv),
        Err(code) => return code,
    };
    let selection = Selection::from(opts.select.clone());
    let hosts = match selection.hosts(&inventory) {
        Ok(hosts) => hosts.into_iter().cloned().collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::BadInput;
        }
    };
    let connector = match opts.connect.connector(&inventory) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    let mode = super::live_mode(cx, opts.json);
    let options = RunOptions {
        forks: fit_forks(opts.forks),
        timeout: opts.timeout,
    };
    let script = opts.command.join(" ");
    let Some(runtime) = super::runtime() else {
        return ExitCode::BadInput;
    };
    let started = Instant::now();
    let halt = Arc::new(AtomicBool::new(false));
    let (outcomes, halted) = runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let reporter = tokio::spawn(live::report(rx, mode));
        let watcher = tokio::spawn(watch_interrupts(Arc::clone(&halt), tx.clone()));
        let outcomes = run_command(connector, hosts, script, options, Arc::clone(&halt), tx).await;
        watcher.abort();
        let _ = reporter.await;
        (outcomes, halt.load(Ordering::Relaxed))
    });
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!("{}", render_text(&outcomes, started.elapsed()));
    }
    exit_code(&outcomes, halted)
}

/// First Ctrl-C: start no new host, let running ones finish. Second: abort now.
pub(crate) async fn watch_interrupts(halt: Arc<AtomicBool>, events: crate::events::EventSender) {
    if tokio::signal::ctrl_c().await.is_ok() {
        halt.store(true, Ordering::Relaxed);
        let _ = events.send(Event::Halting).await;
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("aborted");
            std::process::exit(ExitCode::Halted.code());
        }
    }
}

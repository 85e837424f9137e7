//! The preamble of every verb that reaches hosts: the inventory, the SSH connector
//! and the async runtime, made once; and running a verb's work with live progress
//! and Ctrl-C (or `drover halt`) watched.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{CliError, ConnectOpts, Context};
use crate::config::{Host, Inventory};
use crate::error::ExitCode;
use crate::events::{Event, EventSender};
use crate::report::live::{self, LiveMode};
use crate::transport::SshConnector;

/// Events buffered between the engine and the live reporter.
const EVENT_QUEUE: usize = 1024;

/// What a verb that reaches hosts works with.
pub(crate) struct Reach {
    /// the validated inventory
    pub(crate) inventory: Arc<Inventory>,
    /// SSH with the inventory's known_hosts and ssh_config
    pub(crate) connector: Arc<SshConnector>,
    runtime: tokio::runtime::Runtime,
}

impl Context {
    /// Loads the inventory, builds the connector and starts the runtime.
    pub(crate) fn reach(&self, connect: &ConnectOpts) -> Result<Reach, CliError> {
        let inventory = Arc::new(self.load_inventory()?);
        let connector = Arc::new(connect.connector(&inventory)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        Ok(Reach {
            inventory,
            connector,
            runtime,
        })
    }
}

impl Reach {
    /// The inventory's hosts by name.
    pub(crate) fn hosts_by_name(&self) -> HashMap<String, Host> {
        self.inventory
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.clone()))
            .collect()
    }

    /// Runs a future to its end (work without live progress).
    pub(crate) fn block_on<F: Future>(&self, work: F) -> F::Output {
        self.runtime.block_on(work)
    }

    /// Runs `work` with its events shown live (`mode`) and halts watched: the first
    /// Ctrl-C, or `halt_file` appearing (`drover halt`), sets the halt flag `work` is
    /// given; a second Ctrl-C aborts at once. Returns what `work` returned and whether
    /// a halt was asked for.
    pub(crate) fn run_live<T, F, Fut>(
        &self,
        mode: LiveMode,
        halt_file: Option<PathBuf>,
        work: F,
    ) -> (T, bool)
    where
        F: FnOnce(EventSender, Arc<AtomicBool>) -> Fut,
        Fut: Future<Output = T>,
    {
        let halt = Arc::new(AtomicBool::new(false));
        let out = self.runtime.block_on(async {
            let (tx, rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
            let reporter = tokio::spawn(live::report(rx, mode));
            let interrupts = tokio::spawn(watch_interrupts(Arc::clone(&halt), tx.clone()));
            let file = halt_file.map(|f| tokio::spawn(watch_halt_file(f, Arc::clone(&halt))));
            let out = work(tx, Arc::clone(&halt)).await;
            interrupts.abort();
            if let Some(file) = file {
                file.abort();
            }
            let _ = reporter.await;
            out
        });
        (out, halt.load(Ordering::Relaxed))
    }
}

/// First Ctrl-C: start nothing new, let running work finish. Second: abort now.
async fn watch_interrupts(halt: Arc<AtomicBool>, events: EventSender) {
    if tokio::signal::ctrl_c().await.is_ok() {
        halt.store(true, Ordering::Relaxed);
        let _ = events.send(Event::Halting).await;
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("aborted");
            // No destructor runs past exit: the run's image registry goes by its PID.
            crate::engine::image::abort();
            std::process::exit(ExitCode::Halted.code());
        }
    }
}

/// `drover halt` from another terminal creates this file; the work stops at its next
/// boundary.
async fn watch_halt_file(path: PathBuf, halt: Arc<AtomicBool>) {
    loop {
        if path.exists() {
            halt.store(true, Ordering::Relaxed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Live progress on stderr: a bar on a terminal, plain lines otherwise, nothing with
/// --quiet (or with --json on a pipe, where stdout is for machines).
pub(crate) fn live_mode(cx: &Context, json: bool) -> LiveMode {
    use std::io::IsTerminal as _;
    if cx.quiet {
        LiveMode::Silent
    } else if std::io::stderr().is_terminal() && cx.verbose == 0 {
        LiveMode::Bar
    } else if json {
        LiveMode::Silent
    } else {
        LiveMode::Lines
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

//! Ad-hoc commands: one connection per host, one command, the outcome of each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::Host;
use crate::events::{Event, EventSender};
use crate::transport::{Captured, Connection, Connector, RemoteCommand, TransportError};

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Exit status 0.
    Ok,
    /// Non-zero exit status or killed by a signal.
    Failed,
    /// Ran past its timeout and was ended.
    TimedOut,
    /// Could not connect, verify or authenticate, or the connection was lost.
    Unreachable,
    /// Never started because the run was halted.
    Skipped,
}

impl HostStatus {
    /// The word used in reports.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Failed => "failed",
            HostStatus::TimedOut => "timed out",
            HostStatus::Unreachable => "unreachable",
            HostStatus::Skipped => "skipped",
        }
    }
}

/// The result of a command on one host.
#[derive(Debug, Clone)]
pub struct HostOutcome {
    /// Inventory name.
    pub host: String,
    /// Address connected to.
    pub address: String,
    /// How it ended.
    pub status: HostStatus,
    /// Exit status, if the command exited.
    pub exit_code: Option<u32>,
    /// Signal, if it was killed by one.
    pub signal: Option<String>,
    /// Captured standard output.
    pub stdout: Captured,
    /// Captured standard error.
    pub stderr: Captured,
    /// Connect + command time.
    pub duration: Duration,
    /// Why it did not run, for unreachable hosts (and transport failures).
    pub error: Option<String>,
}

/// Settings for [`run_command`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Hosts worked on at once.
    pub forks: usize,
    /// Overrides the inventory's per-host command timeout.
    pub timeout: Option<Duration>,
}

/// Runs `script` on every host, at most `forks` at a time, and returns the outcomes in
/// the order of `hosts`. Setting `halt` stops new hosts from starting; they are
/// reported as skipped.
pub async fn run_command<C: Connector>(
    connector: Arc<C>,
    hosts: Vec<Host>,
    script: String,
    options: RunOptions,
    halt: Arc<AtomicBool>,
    events: EventSender,
) -> Vec<HostOutcome> {
    let _ = events.send(Event::RunStarted { hosts: hosts.len() }).await;
    // The semaphore is the fork limit: a permit is held from connect to close, so at
    // most `forks` connections (and file descriptors) exist at once.
    let forks = Arc::new(Semaphore::new(options.forks.max(1)));
    let script: Arc<str> = script.into();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, host) in hosts.into_iter().enumerate() {
        let Ok(permit) = Arc::clone(&forks).acquire_owned().await else { break };
        let (connector, script, events, halt) =
            (Arc::clone(&connector), Arc::clone(&script), events.clone(), Arc::clone(&halt));
        let timeout = options.timeout.unwrap_or(host.command_timeout);
        tasks.spawn(async move {
            let outcome = if halt.load(Ordering::Relaxed) {
                skipped(&host)
            } else {
                let _ = events.send(Event::HostStarted { host: host.name.clone() }).await;
                run_one(&*connector, &host, &script, timeout).await
            };
            drop(permit);
            let outcome = Arc::new(outcome);
            let _ = events.send(Event::HostFinished(Arc::clone(&outcome))).await;
            (index, outcome)
        });
    }
    let mut outcomes: Vec<(usize, Arc<HostOutcome>)> = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(pair) = joined {
            outcomes.push(pair);
        }
    }
    let _ = events.send(Event::RunFinished).await;
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes
        .into_iter()
        .map(|(_, o)| Arc::try_unwrap(o).unwrap_or_else(|shared| (*shared).clone()))
        .collect()
}

fn skipped(host: &Host) -> HostOutcome {
    HostOutcome {
        host: host.name.clone(),
        address: host.address.clone(),
        status: HostStatus::Skipped,
        exit_code: None,
        signal: None,
        stdout: Captured::default(),
        stderr: Captured::default(),
        duration: Duration::ZERO,
        error: Some("not started: the run was halted".into()),
    }
}

fn unreachable(host: &Host, started: Instant, error: &TransportError) -> HostOutcome {
    HostOutcome {
        status: HostStatus::Unreachable,
        duration: started.elapsed(),
        error: Some(error.to_string()),
        ..skipped(host)
    }
}

async fn run_one<C: Connector>(connector: &C, host: &Host, script: &str, timeout: Duration) -> HostOutcome {
    let started = Instant::now();
    let connection = match connector.connect(host).await {
        Ok(c) => c,
        Err(e) => return unreachable(host, started, &e),
    };
    let result = connection.exec(&RemoteCommand::new(script, timeout)).await;
    connection.close().await;
    match result {
        Err(e @ TransportError::ConnectionLost { .. }) => unreachable(host, started, &e),
        Err(e) => HostOutcome {
            status: HostStatus::Failed,
            duration: started.elapsed(),
            error: Some(e.to_string()),
            ..skipped(host)
        },
        Ok(out) => HostOutcome {
            host: host.name.clone(),
            address: host.address.clone(),
            status: if out.timed_out {
                HostStatus::TimedOut
            } else if out.exit_status == Some(0) {
                HostStatus::Ok
            } else {
                HostStatus::Failed
            },
            exit_code: out.exit_status,
            signal: out.signal,
            stdout: out.stdout,
            stderr: out.stderr,
            duration: started.elapsed(),
            error: out
                .timed_out
                .then(|| format!("command timed out after {}s and was ended", timeout.as_secs_f64())),
        },
    }
}

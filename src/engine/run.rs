//! Ad-hoc commands: one connection per host, one command, the outcome of each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::fan_out::fan_out;
use crate::config::Host;
use crate::events::{Event, EventSender};
use crate::outcome::{HostOutcome, HostStatus};
use crate::transport::{Captured, Connection, Connector, RemoteCommand, TransportError};

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
    let script: Arc<str> = script.into();
    let outcomes = fan_out(hosts, options.forks, |host, _slot| {
        let (connector, script, events, halt) = (
            Arc::clone(&connector),
            Arc::clone(&script),
            events.clone(),
            Arc::clone(&halt),
        );
        let timeout = options.timeout.unwrap_or(host.command_timeout);
        async move {
            let outcome = if halt.load(Ordering::Relaxed) {
                skipped(&host)
            } else {
                let name = host.name.clone();
                let _ = events.send(Event::HostStarted { host: name }).await;
                run_one(&*connector, &host, &script, timeout).await
            };
            let outcome = Arc::new(outcome);
            let _ = events.send(Event::HostFinished(Arc::clone(&outcome))).await;
            outcome
        }
    })
    .await;
    let _ = events.send(Event::RunFinished).await;
    outcomes
        .into_iter()
        .map(|o| Arc::try_unwrap(o).unwrap_or_else(|shared| (*shared).clone()))
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

async fn run_one<C: Connector>(
    connector: &C,
    host: &Host,
    script: &str,
    timeout: Duration,
) -> HostOutcome {
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
            error: out.timed_out.then(|| {
                format!(
                    "command timed out after {}s and was ended",
                    timeout.as_secs_f64()
                )
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Inventory, SourceFile};
    use crate::transport::{Connection, ExecOutput};
    use std::sync::atomic::AtomicUsize;

    /// A scripted stand-in for SSH: behaviour is chosen by host name.
    struct Scripted {
        running: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    struct ScriptedConnection {
        host: String,
        running: Arc<AtomicUsize>,
    }

    impl Connector for Scripted {
        type Connection = ScriptedConnection;

        async fn connect(&self, host: &Host) -> Result<ScriptedConnection, TransportError> {
            if host.name.starts_with("down") {
                return Err(TransportError::ConnectionLost {
                    reason: Some("scripted".into()),
                });
            }
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            Ok(ScriptedConnection {
                host: host.name.clone(),
                running: Arc::clone(&self.running),
            })
        }
    }

    impl Connection for ScriptedConnection {
        async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let code = if self.host.starts_with("bad") { 3 } else { 0 };
            let mut stdout = Captured::default();
            stdout.push(command.script.as_bytes(), 1024);
            Ok(ExecOutput {
                exit_status: Some(code),
                signal: None,
                stdout,
                stderr: Captured::default(),
                timed_out: self.host.starts_with("slow"),
                duration: Duration::from_millis(5),
            })
        }

        async fn close(self) {
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn hosts(names: &[&str]) -> Vec<Host> {
        let text: String = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("[hosts.{n}]\naddress = \"10.0.0.{}\"\n", i + 1))
            .collect();
        Inventory::from_sources(vec![SourceFile::new("t.toml", text)])
            .unwrap()
            .hosts
    }

    async fn go(names: &[&str], forks: usize, halt: bool) -> (Vec<HostOutcome>, usize) {
        let peak = Arc::new(AtomicUsize::new(0));
        let connector = Arc::new(Scripted {
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::clone(&peak),
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let options = RunOptions {
            forks,
            timeout: None,
        };
        let outcomes = run_command(
            connector,
            hosts(names),
            "echo x".into(),
            options,
            Arc::new(AtomicBool::new(halt)),
            tx,
        )
        .await;
        drain.await.unwrap();
        (outcomes, peak.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn outcomes_come_back_in_host_order_with_their_status() {
        let (outcomes, _) = go(&["a", "bad-1", "down-1", "slow-1"], 8, false).await;
        let got: Vec<(&str, HostStatus)> = outcomes
            .iter()
            .map(|o| (o.host.as_str(), o.status))
            .collect();
        assert_eq!(
            got,
            [
                ("a", HostStatus::Ok),
                ("bad-1", HostStatus::Failed),
                ("down-1", HostStatus::Unreachable),
                ("slow-1", HostStatus::TimedOut),
            ]
        );
        assert_eq!(outcomes[1].exit_code, Some(3));
        assert!(outcomes[2].error.as_deref().unwrap().contains("scripted"));
    }

    #[tokio::test]
    async fn no_more_than_forks_hosts_are_connected_at_once() {
        let names: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (outcomes, peak) = go(&refs, 4, false).await;
        assert_eq!(outcomes.len(), 40);
        assert!((1..=4).contains(&peak), "peak {peak}");
    }

    #[tokio::test]
    async fn a_halted_run_starts_no_host() {
        let (outcomes, peak) = go(&["a", "b"], 4, true).await;
        assert!(outcomes.iter().all(|o| o.status == HostStatus::Skipped));
        assert_eq!(peak, 0);
    }
}

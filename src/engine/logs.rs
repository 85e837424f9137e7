//! `drover logs` over many hosts: every host's log command streamed at once (connects
//! bounded by `forks`; a following stream holds no place once connected), its lines
//! passed on as they arrive, until each command ends or the caller asks to stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::fan_out::fan_out;
use super::status::{HostQuery, LogLine, LogOptions, logs_command, parse_log_line};
use crate::transport::{CommandStream, Connection, Connector, StreamEvent};

/// What the host streams tell the printer, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A log line of one of the host's tenants.
    Line {
        /// the host
        host: Arc<str>,
        /// tenant, source and text
        line: LogLine,
    },
    /// Something the host's log command printed on stderr (or an unprefixed line).
    Stderr {
        /// the host
        host: Arc<str>,
        /// the text
        text: String,
    },
    /// The host is done.
    Done {
        /// the host
        host: Arc<str>,
        /// how
        end: HostEnd,
    },
}

/// How a host's log stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEnd {
    /// The command ended with this exit status.
    Finished(Option<u32>),
    /// Stopped by the caller (Ctrl-C, or nobody reads any more).
    Stopped,
    /// No connection, or it was lost.
    Unreachable(String),
    /// Connected, but the command could not start.
    Failed(String),
}

/// Settings of a logs run.
#[derive(Debug, Clone, Copy)]
pub struct LogsRun {
    /// what to read: lines, since, follow
    pub options: LogOptions,
    /// hosts connecting at once
    pub forks: usize,
    /// without follow: time the log command may take on a host
    pub timeout: Duration,
}

/// Streams the logs of every query's tenants into `out` until each host's command
/// ends or `stop` turns true. Returns how each host ended, in query order.
pub async fn stream_logs<C: Connector>(
    connector: Arc<C>,
    queries: Vec<HostQuery>,
    run: LogsRun,
    stop: watch::Receiver<bool>,
    out: mpsc::Sender<LogEvent>,
) -> Vec<(Arc<str>, HostEnd)> {
    fan_out(queries, run.forks, |query, slot| {
        let (connector, mut stop, out) = (Arc::clone(&connector), stop.clone(), out.clone());
        async move {
            let host: Arc<str> = query.host.name.clone().into();
            let tenants: Vec<String> = query.tenants.iter().map(|t| t.name.clone()).collect();
            let command = logs_command(&query.host, &tenants, run.options, run.timeout);
            let end = if *stop.borrow() {
                HostEnd::Stopped
            } else {
                match connector.connect(&query.host).await {
                    Err(e) => HostEnd::Unreachable(e.to_string()),
                    Ok(connection) => {
                        // Connected: a long follow no longer holds a place.
                        slot.release();
                        let end = match connection.stream(&command, run.options.follow).await {
                            Err(e) => HostEnd::Failed(e.to_string()),
                            Ok(stream) => pump(&host, stream, &mut stop, &out).await,
                        };
                        connection.close().await;
                        end
                    }
                }
            };
            let done = LogEvent::Done {
                host: Arc::clone(&host),
                end: end.clone(),
            };
            let _ = out.send(done).await;
            (host, end)
        }
    })
    .await
}

/// Passes one host's stream on until it ends, the caller stops, or nobody reads.
async fn pump(
    host: &Arc<str>,
    mut stream: CommandStream,
    stop: &mut watch::Receiver<bool>,
    out: &mpsc::Sender<LogEvent>,
) -> HostEnd {
    loop {
        let event = tokio::select! {
            _ = stop.changed() => {
                stream.stop().await;
                return HostEnd::Stopped;
            }
            event = stream.next() => event,
        };
        let host = Arc::clone(host);
        let sent = match event {
            Some(StreamEvent::Stdout(text)) => match parse_log_line(&text) {
                Some(line) => out.send(LogEvent::Line { host, line }).await,
                None => out.send(LogEvent::Stderr { host, text }).await,
            },
            Some(StreamEvent::Stderr(text)) => out.send(LogEvent::Stderr { host, text }).await,
            Some(StreamEvent::Exited { status, .. }) => return HostEnd::Finished(status),
            Some(StreamEvent::Lost) | None => {
                return HostEnd::Unreachable("connection lost".into());
            }
        };
        if sent.is_err() {
            stream.stop().await;
            return HostEnd::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Host, Inventory, SourceFile};
    use crate::engine::status::TenantQuery;
    use crate::transport::{ExecOutput, RemoteCommand, TransportError};

    /// Hosts named `down-*` refuse to connect; `quiet-*` stream until stopped; the
    /// others print two lines of `acme` and exit 0.
    struct Scripted;

    struct Streams(String);

    impl Connector for Scripted {
        type Connection = Streams;
        async fn connect(&self, host: &Host) -> Result<Streams, TransportError> {
            if host.name.starts_with("down") {
                return Err(TransportError::ConnectionLost {
                    reason: Some("scripted".into()),
                });
            }
            Ok(Streams(host.name.clone()))
        }
    }

    impl Connection for Streams {
        async fn exec(&self, _command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
            unreachable!("logs stream, they do not exec")
        }

        async fn stream(
            &self,
            command: &str,
            follow: bool,
        ) -> Result<CommandStream, TransportError> {
            assert!(command.contains("journalctl"), "{command}");
            if self.0.starts_with("quiet") {
                assert!(follow);
                let (feed, stream) = CommandStream::fed(4);
                // Keeps the stream open until the stream is stopped (feed dropped then).
                tokio::spawn(async move {
                    let _ = feed
                        .send(StreamEvent::Stdout("acme journal started".into()))
                        .await;
                    feed.closed().await;
                });
                return Ok(stream);
            }
            Ok(CommandStream::of(vec![
                StreamEvent::Stdout("acme blue hello".into()),
                StreamEvent::Stdout("acme journal unit started".into()),
                StreamEvent::Stderr("tail: file truncated".into()),
                StreamEvent::Exited {
                    status: Some(0),
                    signal: None,
                },
            ]))
        }

        async fn close(self) {}
    }

    fn queries(names: &[&str]) -> Vec<HostQuery> {
        let text: String = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "[hosts.{n}]\naddress = \"10.0.0.{}\"\nbecome = \"none\"\n",
                    i + 1
                )
            })
            .collect();
        let inventory = Inventory::from_sources(vec![SourceFile::new("t.toml", text)]).unwrap();
        inventory
            .hosts
            .into_iter()
            .map(|host| HostQuery {
                host,
                tenants: vec![TenantQuery {
                    name: "acme".into(),
                    port: Some(8100),
                }],
            })
            .collect()
    }

    fn run(follow: bool) -> LogsRun {
        LogsRun {
            options: LogOptions {
                lines: 10,
                since: None,
                follow,
            },
            forks: 1,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn every_hosts_lines_arrive_prefixed_and_each_host_says_how_it_ended() {
        let (tx, mut rx) = mpsc::channel(64);
        let (_stop_tx, stop) = watch::channel(false);
        let ends = stream_logs(
            Arc::new(Scripted),
            queries(&["web-1", "down-1"]),
            run(false),
            stop,
            tx,
        )
        .await;
        let ends: std::collections::BTreeMap<String, HostEnd> =
            ends.into_iter().map(|(h, e)| (h.to_string(), e)).collect();
        assert_eq!(ends["web-1"], HostEnd::Finished(Some(0)));
        assert!(matches!(&ends["down-1"], HostEnd::Unreachable(why) if why.contains("scripted")));
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        let lines: Vec<(String, String)> = events
            .iter()
            .filter_map(|e| match e {
                LogEvent::Line { line, .. } => Some((line.source.clone(), line.text.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("blue".into(), "hello".into()),
                ("journal".into(), "unit started".into())
            ]
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, LogEvent::Stderr { text, .. } if text.contains("truncated")))
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, LogEvent::Done { .. }))
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn following_streams_run_side_by_side_beyond_the_fork_limit_until_stopped() {
        let (tx, mut rx) = mpsc::channel(64);
        let (stop_tx, stop) = watch::channel(false);
        // forks = 1, three hosts that never end on their own: each must still start.
        let hosts = queries(&["quiet-1", "quiet-2", "quiet-3"]);
        let logs = tokio::spawn(stream_logs(Arc::new(Scripted), hosts, run(true), stop, tx));
        let mut started = 0;
        while started < 3 {
            let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a line from every host")
                .expect("open");
            if matches!(event, LogEvent::Line { .. }) {
                started += 1;
            }
        }
        stop_tx.send(true).unwrap();
        let ends = tokio::time::timeout(Duration::from_secs(5), logs)
            .await
            .expect("stopping ends every stream")
            .unwrap();
        assert!(ends.iter().all(|(_, e)| *e == HostEnd::Stopped), "{ends:?}");
    }
}

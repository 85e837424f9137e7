//! `drover logs SELECT [--follow] [--since 10m] [--lines N]`: the selected tenants'
//! logs from every selected host, interleaved as they arrive, each line prefixed
//! `host/tenant SOURCE |`. Sources: `journal` (systemd's lines about the two color
//! units) and `blue` / `green` (the agent's own output: the units append stdout and
//! stderr to `/var/log/drover/<tenant>/<color>.log`, so journald does not have it).
//!
//! `--since` filters the journal; the log files carry no timestamps drover can trust,
//! so only `--lines` applies to them. `--follow` streams until Ctrl-C; the remote
//! followers are ended when drover closes their channel.
//!
//! Exit codes: 0; 1 when a host's log command failed (e.g. `sudo -n` refused); 4 when a
//! host was unreachable or lost.

use std::collections::HashMap;
use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::{Semaphore, mpsc, watch};

use super::{ConnectOpts, Context, SelectOpts};
use crate::config::{Selection, duration};
use crate::engine::status::{LogOptions, logs_command, parse_log_line};
use crate::error::ExitCode;
use crate::transport::stream::StreamEvent;
use crate::transport::{Connection, Connector};

#[derive(Debug, Args)]
pub(crate) struct Opts {
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// Keep streaming new lines until Ctrl-C.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only journal entries newer than this, e.g. 10m (the log files are cut by --lines).
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    since: Option<Duration>,
    /// Lines of history per source (journal, blue log, green log) and tenant.
    #[arg(long, short = 'n', default_value_t = 20, value_name = "N")]
    lines: u32,
    /// Hosts connected to at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
    /// Without --follow: time the log command may take on a host.
    #[arg(long, default_value = "60s", value_parser = duration::parse, value_name = "DURATION")]
    timeout: Duration,
}

/// What the host tasks tell the printer.
enum Output {
    Line {
        host: Arc<str>,
        tenant: String,
        source: String,
        text: String,
    },
    Stderr {
        host: Arc<str>,
        text: String,
    },
    Done {
        host: Arc<str>,
        outcome: HostEnd,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostEnd {
    Finished(Option<u32>),
    Stopped,
    Unreachable(String),
    Failed(String),
}

const PALETTE: [&str; 6] = ["36", "33", "35", "32", "34", "96"];

pub(crate) fn run(cx: &Context, opts: Opts) -> ExitCode {
    let inventory = match cx.load_inventory() {
        Ok(inv) => Arc::new(inv),
        Err(code) => return code,
    };
    let queries =
        match super::status::host_queries(&inventory, &Selection::from(opts.select.clone())) {
            Ok(q) => q
                .into_iter()
                .filter(|q| !q.tenants.is_empty())
                .collect::<Vec<_>>(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::BadInput;
            }
        };
    if queries.is_empty() {
        eprintln!("error: no tenant is placed on the selected hosts");
        return ExitCode::BadInput;
    }
    let connector = match opts.connect.connector(&inventory) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    let Some(runtime) = super::runtime() else {
        return ExitCode::BadInput;
    };
    let options = LogOptions {
        lines: opts.lines,
        since: opts.since,
        follow: opts.follow,
    };
    // Prefixes are padded to the longest `host/tenant source` so the lines align.
    let width = queries
        .iter()
        .flat_map(|q| {
            q.tenants
                .iter()
                .map(move |t| q.host.name.len() + 1 + t.name.len() + " journal".len())
        })
        .max()
        .unwrap_or(0);
    let color = cx.color && std::io::stdout().is_terminal();
    let forks = super::run::fit_forks(opts.forks);
    let (follow, timeout) = (opts.follow, opts.timeout);
    let ends = runtime.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<Output>(1024);
        let (stop_tx, stop_rx) = watch::channel(false);
        // Limits connections being made at once; a following stream holds none.
        let connecting = Arc::new(Semaphore::new(forks));
        let mut tasks = tokio::task::JoinSet::new();
        for query in queries {
            let (connector, tx, mut stop_rx, connecting) = (
                Arc::clone(&connector),
                tx.clone(),
                stop_rx.clone(),
                Arc::clone(&connecting),
            );
            tasks.spawn(async move {
                let host: Arc<str> = query.host.name.clone().into();
                let tenants: Vec<String> = query.tenants.iter().map(|t| t.name.clone()).collect();
                let command = logs_command(&query.host, &tenants, options, timeout);
                let session = {
                    let _permit = connecting.acquire().await;
                    if *stop_rx.borrow() {
                        return;
                    }
                    connector.connect(&query.host).await
                };
                let session = match session {
                    Ok(s) => s,
                    Err(e) => {
                        let outcome = HostEnd::Unreachable(e.to_string());
                        let _ = tx.send(Output::Done { host, outcome }).await;
                        return;
                    }
                };
                let outcome = match session.stream(&command, follow).await {
                    Err(e) => HostEnd::Failed(e.to_string()),
                    Ok(mut stream) => loop {
                        let event = tokio::select! {
                            _ = stop_rx.changed() => {
                                stream.stop().await;
                                break HostEnd::Stopped;
                            }
                            event = stream.next() => event,
                        };
                        match event {
                            Some(StreamEvent::Stdout(line)) => {
                                let out = match parse_log_line(&line) {
                                    Some(l) => Output::Line {
                                        host: Arc::clone(&host),
                                        tenant: l.tenant,
                                        source: l.source,
                                        text: l.text,
                                    },
                                    None => Output::Stderr {
                                        host: Arc::clone(&host),
                                        text: line,
                                    },
                                };
                                if tx.send(out).await.is_err() {
                                    break HostEnd::Stopped;
                                }
                            }
                            Some(StreamEvent::Stderr(text)) => {
                                let _ = tx
                                    .send(Output::Stderr {
                                        host: Arc::clone(&host),
                                        text,
                                    })
                                    .await;
                            }
                            Some(StreamEvent::Exited { status, .. }) => {
                                break HostEnd::Finished(status);
                            }
                            Some(StreamEvent::Lost) | None => {
                                break HostEnd::Unreachable("connection lost".into());
                            }
                        }
                    },
                };
                session.close().await;
                let _ = tx.send(Output::Done { host, outcome }).await;
            });
        }
        drop(tx);
        let mut colors: HashMap<String, &str> = HashMap::new();
        let mut ends: Vec<(Arc<str>, HostEnd)> = Vec::new();
        let mut interrupted = false;
        let mut stdout = std::io::stdout().lock();
        loop {
            let msg = tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    if interrupted {
                        eprintln!("aborted");
                        std::process::exit(if follow { 0 } else { ExitCode::Halted.code() });
                    }
                    interrupted = true;
                    let _ = stop_tx.send(true);
                    continue;
                }
                msg = rx.recv() => msg,
            };
            let Some(msg) = msg else { break };
            match msg {
                Output::Line {
                    host,
                    tenant,
                    source,
                    text,
                } => {
                    let prefix = format!("{host}/{tenant} {source}");
                    let padded = format!("{prefix:<width$} |");
                    let next = PALETTE[colors.len() % PALETTE.len()];
                    let code = *colors.entry(format!("{host}/{tenant}")).or_insert(next);
                    let shown = if color {
                        format!("\x1b[{code}m{padded}\x1b[0m")
                    } else {
                        padded
                    };
                    if writeln!(stdout, "{shown} {text}").is_err() {
                        // stdout is gone (a closed pipe): stop everything.
                        let _ = stop_tx.send(true);
                    }
                    let _ = stdout.flush();
                }
                Output::Stderr { host, text } => eprintln!("{host}: {text}"),
                Output::Done { host, outcome } => {
                    match &outcome {
                        HostEnd::Unreachable(why) => eprintln!("{host}: unreachable: {why}"),
                        HostEnd::Failed(why) => eprintln!("{host}: failed: {why}"),
                        HostEnd::Finished(Some(code)) if *code != 0 && !follow => {
                            eprintln!("{host}: the log command exited {code}");
                        }
                        _ => {}
                    }
                    ends.push((host, outcome));
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        (ends, interrupted)
    });
    let (ends, interrupted) = ends;
    if ends
        .iter()
        .any(|(_, e)| matches!(e, HostEnd::Unreachable(_)))
    {
        ExitCode::Unreachable
    } else if ends.iter().any(|(_, e)| {
        matches!(e, HostEnd::Failed(_))
            || (!follow && !interrupted && matches!(e, HostEnd::Finished(Some(c)) if *c != 0))
    }) {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

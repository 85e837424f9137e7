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
use tokio::sync::{mpsc, watch};

use super::reach::fit_forks;
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::{Selection, duration};
use crate::engine::logs::{HostEnd, LogEvent, LogsRun, stream_logs};
use crate::engine::status::LogOptions;
use crate::error::ExitCode;

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

const PALETTE: [&str; 6] = ["36", "33", "35", "32", "34", "96"];

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let queries: Vec<_> =
        super::status::host_queries(&reach.inventory, &Selection::from(opts.select))?
            .into_iter()
            .filter(|q| !q.tenants.is_empty())
            .collect();
    if queries.is_empty() {
        return Err(CliError::Input(
            "no tenant is placed on the selected hosts".into(),
        ));
    }
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
    let mut printer = Printer {
        width,
        color: cx.color && std::io::stdout().is_terminal(),
        colors: HashMap::new(),
    };
    let run = LogsRun {
        options: LogOptions {
            lines: opts.lines,
            since: opts.since,
            follow: opts.follow,
        },
        forks: fit_forks(opts.forks),
        timeout: opts.timeout,
    };
    let connector = Arc::clone(&reach.connector);
    let (ends, interrupted) = reach.block_on(async move {
        let (tx, mut rx) = mpsc::channel::<LogEvent>(1024);
        let (stop_tx, stop) = watch::channel(false);
        let streams = tokio::spawn(stream_logs(connector, queries, run, stop, tx));
        let mut interrupted = false;
        loop {
            let event = tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    if interrupted {
                        eprintln!("aborted");
                        std::process::exit(if run.options.follow { 0 } else { ExitCode::Halted.code() });
                    }
                    interrupted = true;
                    let _ = stop_tx.send(true);
                    continue;
                }
                event = rx.recv() => event,
            };
            let Some(event) = event else { break };
            if !printer.print(event, run.options.follow) {
                // stdout is gone (a closed pipe): stop everything.
                let _ = stop_tx.send(true);
            }
        }
        (streams.await.unwrap_or_default(), interrupted)
    });
    Ok(exit_code(&ends, opts.follow, interrupted))
}

/// 0; 1 when a host's log command failed (unless following or interrupted, where
/// the commands are ended on purpose); 4 when a host was unreachable or lost.
fn exit_code(ends: &[(Arc<str>, HostEnd)], follow: bool, interrupted: bool) -> ExitCode {
    let any = |f: &dyn Fn(&HostEnd) -> bool| ends.iter().any(|(_, e)| f(e));
    if any(&|e| matches!(e, HostEnd::Unreachable(_))) {
        ExitCode::Unreachable
    } else if any(&|e| {
        matches!(e, HostEnd::Failed(_))
            || (!follow && !interrupted && matches!(e, HostEnd::Finished(Some(c)) if *c != 0))
    }) {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

/// Prints log events: lines on stdout, prefixed and (on a terminal) coloured per
/// `host/tenant`; the rest on stderr.
struct Printer {
    width: usize,
    color: bool,
    colors: HashMap<String, &'static str>,
}

impl Printer {
    /// Prints one event; false when stdout is gone.
    fn print(&mut self, event: LogEvent, follow: bool) -> bool {
        match event {
            LogEvent::Line { host, line } => {
                let prefix = format!("{host}/{} {}", line.tenant, line.source);
                let padded = format!("{prefix:<width$} |", width = self.width);
                let next = PALETTE[self.colors.len() % PALETTE.len()];
                let code = *self
                    .colors
                    .entry(format!("{host}/{}", line.tenant))
                    .or_insert(next);
                let shown = if self.color {
                    format!("\x1b[{code}m{padded}\x1b[0m")
                } else {
                    padded
                };
                let mut stdout = std::io::stdout().lock();
                let ok = writeln!(stdout, "{shown} {}", line.text).is_ok();
                let _ = stdout.flush();
                return ok;
            }
            LogEvent::Stderr { host, text } => eprintln!("{host}: {text}"),
            LogEvent::Done { host, end } => match &end {
                HostEnd::Unreachable(why) => eprintln!("{host}: unreachable: {why}"),
                HostEnd::Failed(why) => eprintln!("{host}: failed: {why}"),
                HostEnd::Finished(Some(code)) if *code != 0 && !follow => {
                    eprintln!("{host}: the log command exited {code}");
                }
                _ => {}
            },
        }
        true
    }
}

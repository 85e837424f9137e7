//! `drover run SELECT -- CMD`: an ad-hoc command on many hosts, results grouped.

use std::time::{Duration, Instant};

use clap::Args;

use super::reach::{fit_forks, live_mode};
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::{Selection, duration};
use crate::engine::{RunOptions, run_command};
use crate::error::ExitCode;
use crate::report::run::{render_json, render_text};

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

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let hosts: Vec<_> = Selection::from(opts.select)
        .hosts(&reach.inventory)?
        .into_iter()
        .cloned()
        .collect();
    let options = RunOptions {
        forks: fit_forks(opts.forks),
        timeout: opts.timeout,
    };
    let script = opts.command.join(" ");
    let started = Instant::now();
    let connector = std::sync::Arc::clone(&reach.connector);
    let (outcomes, halted) = reach.run_live(live_mode(cx, opts.json), None, |events, halt| {
        run_command(connector, hosts, script, options, halt, events)
    });
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!("{}", render_text(&outcomes, started.elapsed()));
    }
    Ok(ExitCode::for_hosts(&outcomes, halted))
}

//! `drover run SELECT -- CMD`: an ad-hoc command on many hosts, results grouped. Each
//! run is journaled (`.drover/runs/<run>.jsonl`: each host's status and exit code,
//! never its output), so `drover run --rerun-failed [RUN]` can run again on exactly
//! the hosts that failed or were unreachable.

use std::time::{Duration, Instant};

use clap::Args;

use super::reach::{fit_forks, live_mode};
use super::rerun::{self, LATEST};
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::{Host, Inventory, Selection, duration};
use crate::engine::journal::{self, Journal, KIND_RUN};
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
    /// Run again on exactly the hosts that failed, timed out or were unreachable in
    /// RUN (default: the newest `drover run`), with its command unless one is given.
    /// Selectors, when given, narrow those hosts further.
    #[arg(long, value_name = "RUN", num_args = 0..=1, default_missing_value = LATEST)]
    rerun_failed: Option<String>,
    /// The command, passed to `sh -c` on each host.
    #[arg(
        last = true,
        required_unless_present = "rerun_failed",
        value_name = "CMD"
    )]
    command: Vec<String>,
}

/// The hosts and the command: as selected, or those a recorded run failed on.
fn what_to_run(inventory: &Inventory, opts: &Opts) -> Result<(Vec<Host>, Vec<String>), CliError> {
    let selection = Selection::from(opts.select.clone());
    let Some(run) = &opts.rerun_failed else {
        let hosts = selection.hosts(inventory)?.into_iter().cloned().collect();
        return Ok((hosts, opts.command.clone()));
    };
    let (id, failed, args) = rerun::failed_hosts(run)?;
    let command = if opts.command.is_empty() {
        rerun::recorded_command(&args)
    } else {
        opts.command.clone()
    };
    if command.is_empty() {
        return Err(CliError::Input(format!("run {id} recorded no command")));
    }
    let hosts: Vec<Host> = rerun::widen(selection)
        .hosts(inventory)?
        .into_iter()
        .filter(|h| failed.contains(&h.name))
        .cloned()
        .collect();
    eprintln!(
        "re-running run {id} on {} of its {} failed host(s): {}",
        hosts.len(),
        failed.len(),
        hosts
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((hosts, command))
}

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let (hosts, command) = what_to_run(&reach.inventory, &opts)?;
    if hosts.is_empty() {
        eprintln!("nothing to re-run: no host failed");
        return Ok(ExitCode::Ok);
    }
    let options = RunOptions {
        forks: fit_forks(opts.forks),
        timeout: opts.timeout,
    };
    let run_id = journal::new_run_id();
    // A re-run may take its command from the journal: record it, so a re-run of the
    // re-run has it too.
    let mut args = cx.argv.clone();
    if !args.iter().any(|a| a == "--") {
        args.push("--".into());
        args.extend(command.iter().cloned());
    }
    let journal = Journal::start_kind(&run_id, KIND_RUN, &args, hosts.len())
        .map_err(|e| {
            eprintln!("warning: no run journal ({e}); --rerun-failed will not know this run")
        })
        .ok();
    let script = command.join(" ");
    let started = Instant::now();
    let connector = std::sync::Arc::clone(&reach.connector);
    let (outcomes, halted) = reach.run_live(live_mode(cx, opts.json), None, |events, halt| {
        run_command(connector, hosts, script, options, halt, events)
    });
    if let Some(journal) = &journal {
        outcomes.iter().for_each(|o| journal.host(o));
        journal.finished();
    }
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!("{}", render_text(&outcomes, started.elapsed()));
    }
    if !cx.quiet && !opts.json {
        eprintln!("run {run_id}");
    }
    Ok(ExitCode::for_hosts(&outcomes, halted))
}

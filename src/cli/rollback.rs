//! `drover rollback SELECT`: the selected targets back to their previous color (kept
//! warm, so this takes seconds), after checking that color answers healthy.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;

use super::reach::{fit_forks, live_mode};
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::Selection;
use crate::engine::journal;
use crate::engine::{Actor, BecomePassword, RollbackOptions, rollback};
use crate::error::ExitCode;
use crate::plan::render::{Plan, TargetPlan};
use crate::plan::targets::targets;
use crate::report::deploy::{render_json, render_text};

#[derive(Debug, Args)]
pub(crate) struct Opts {
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// Take deploy locks held by other runs (audited on the host).
    #[arg(long)]
    force_unlock: bool,
    /// Ask once for the sudo password of the hosts' login users (see `deploy`).
    #[arg(long)]
    ask_become_pass: bool,
    /// One JSON object per target per line.
    #[arg(long)]
    json: bool,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
}

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let selected = targets(&reach.inventory, &Selection::from(opts.select))?;
    let plan = Plan {
        playbook: "rollback".into(),
        targets: selected
            .iter()
            .map(|(t, h)| TargetPlan {
                tenant: t.name.clone(),
                host: h.name.clone(),
                steps: Vec::new(),
            })
            .collect(),
        secret_values: Vec::new(),
        base_ports: selected
            .iter()
            .filter_map(|(t, _)| t.port.map(|p| (t.name.clone(), p)))
            .collect(),
    };
    let options = RollbackOptions {
        forks: fit_forks(opts.forks),
        actor: Actor {
            run: journal::new_run_id(),
            operator: super::operator(),
            force_unlock: opts.force_unlock,
            lock_wait: None,
        },
        script_timeout: super::SCRIPT_TIMEOUT,
    };
    let started = Instant::now();
    let password = super::r#become::password(opts.ask_become_pass)?;
    let connector = Arc::new(BecomePassword::new(Arc::clone(&reach.connector), password));
    let hosts = reach.hosts_by_name();
    let (outcomes, halted) = reach.run_live(live_mode(cx, opts.json), None, |events, halt| {
        rollback(connector, hosts, plan, options, halt, events)
    });
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!(
            "{}",
            render_text(&outcomes, started.elapsed(), false, false)
        );
    }
    Ok(ExitCode::for_targets(&outcomes, halted))
}

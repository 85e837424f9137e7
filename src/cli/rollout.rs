//! `drover rollback`, `drover halt`, `drover resume`: acting on rollouts.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::{ConnectOpts, Context, SelectOpts};
use crate::config::FailureBudget;
use crate::config::Selection;
use crate::engine::journal;
use crate::engine::{DeployOptions, RolloutOptions, Strategy, TargetStatus, rollback};
use crate::error::ExitCode;
use crate::plan::render::{Plan, TargetPlan};
use crate::plan::targets::targets;
use crate::report::deploy::{render_json, render_text};
use crate::report::live::{self};

#[derive(Debug, Args)]
pub(crate) struct RollbackOpts {
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// Take deploy locks held by other runs (audited on the host).
    #[arg(long)]
    force_unlock: bool,
    /// One JSON object per target per line.
    #[arg(long)]
    json: bool,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
}

/// Switches the selected targets back to their previous color (kept warm, so this
/// takes seconds), after checking that color answers healthy.
pub(crate) fn rollback_run(cx: &Context, opts: RollbackOpts) -> ExitCode {
    let inventory = match cx.load_inventory() {
        Ok(inv) => Arc::new(inv),
        Err(code) => return code,
    };
    let selected = match targets(&inventory, &Selection::from(opts.select.clone())) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::BadInput;
        }
    };
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
    let hosts = super::hosts_by_name(&inventory);
    let connector = match opts.connect.connector(&inventory) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    let run = journal::new_run_id();
    let options = RolloutOptions {
        strategy: Strategy::BlueGreen,
        deploy: DeployOptions {
            forks: super::run::fit_forks(opts.forks),
            max_per_host: 16,
            dry_run: false,
            diff: false,
        },
        max_failures: FailureBudget::Count(usize::MAX),
        pause: Duration::ZERO,
        version: String::new(),
        run,
        operator: super::deploy::operator(),
        force_unlock: opts.force_unlock,
        revert_after: None,
        rollback_on_halt: false,
        drain: None,
        script_timeout: Duration::from_secs(120),
    };
    let mode = super::live_mode(cx, opts.json);
    let Some(runtime) = super::runtime() else {
        return ExitCode::BadInput;
    };
    let started = Instant::now();
    let outcomes = runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let reporter = tokio::spawn(live::report(rx, mode));
        let outcomes = rollback(connector, hosts, plan, options, tx).await;
        let _ = reporter.await;
        outcomes
    });
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!(
            "{}",
            render_text(&outcomes, started.elapsed(), false, false)
        );
    }
    if outcomes
        .iter()
        .any(|o| o.status == TargetStatus::Unreachable)
    {
        ExitCode::Unreachable
    } else if outcomes.iter().any(|o| o.status == TargetStatus::Failed) {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

#[derive(Debug, Args)]
pub(crate) struct HaltOpts {
    /// The run to halt (default: the newest run in the journal).
    run: Option<String>,
}

/// Asks a running rollout to stop at its next boundary (no new batch or target starts;
/// running targets finish).
pub(crate) fn halt_run(opts: &HaltOpts) -> ExitCode {
    let Some(run) = opts.run.clone().or_else(journal::latest_run) else {
        eprintln!(
            "error: no run to halt: {} holds no journal",
            journal::runs_dir().display()
        );
        return ExitCode::BadInput;
    };
    if !journal::is_run_id(&run) || !journal::journal_path(&run).exists() {
        eprintln!("error: unknown run `{run}`");
        return ExitCode::BadInput;
    }
    match std::fs::write(journal::halt_path(&run), b"halt\n") {
        Ok(()) => {
            println!("halt requested for run {run}: it stops at the next boundary");
            ExitCode::Ok
        }
        Err(e) => {
            eprintln!(
                "error: cannot write {}: {e}",
                journal::halt_path(&run).display()
            );
            ExitCode::BadInput
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct ResumeOpts {
    /// The halted or interrupted run.
    run: String,
}

/// Continues a halted or crashed rollout with its original arguments and run id:
/// targets already live on the new version are detected on the host and left alone.
pub(crate) fn resume_run(opts: &ResumeOpts) -> ExitCode {
    if !journal::is_run_id(&opts.run) {
        eprintln!("error: `{}` is not a run id", opts.run);
        return ExitCode::BadInput;
    }
    let record = match journal::read(&opts.run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::BadInput;
        }
    };
    if record.finished {
        eprintln!("run {} finished; nothing to resume", opts.run);
        return ExitCode::Ok;
    }
    if !record.args.iter().any(|a| a == "deploy") {
        eprintln!("error: run {} was not a deploy", opts.run);
        return ExitCode::BadInput;
    }
    let _ = std::fs::remove_file(journal::halt_path(&opts.run));
    let done = record
        .targets
        .iter()
        .filter(|(_, s)| s == "changed" || s == "ok")
        .count();
    eprintln!("resuming run {} ({done} target(s) recorded done)", opts.run);
    let mut args: Vec<OsString> = record.args.iter().map(OsString::from).collect();
    args.retain(|a| a != "--run-id");
    args.push("--run-id".into());
    args.push(opts.run.clone().into());
    ExitCode::from_code(super::main(args))
}

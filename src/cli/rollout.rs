//! `drover halt` and `drover resume`: acting on a rollout from outside it.

use std::ffi::OsString;

use clap::Args;

use super::CliError;
use crate::engine::journal;
use crate::error::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct HaltOpts {
    /// The run to halt (default: the newest deploy in the journal).
    run: Option<String>,
}

/// Asks a running rollout to stop at its next boundary (no new batch or target starts;
/// running targets finish).
pub(crate) fn halt_run(opts: &HaltOpts) -> Result<ExitCode, CliError> {
    let run = opts
        .run
        .clone()
        .or_else(|| journal::latest_run_of(journal::KIND_DEPLOY, None))
        .ok_or_else(|| {
            CliError::Input(format!(
                "no run to halt: {} holds no journal",
                journal::runs_dir().display()
            ))
        })?;
    if !journal::is_run_id(&run) || !journal::journal_path(&run).exists() {
        return Err(CliError::Input(format!("unknown run `{run}`")));
    }
    let path = journal::halt_path(&run);
    std::fs::write(&path, b"halt\n").map_err(|source| CliError::Write { path, source })?;
    println!("halt requested for run {run}: it stops at the next boundary");
    Ok(ExitCode::Ok)
}

#[derive(Debug, Args)]
pub(crate) struct ResumeOpts {
    /// The halted or interrupted run.
    run: String,
}

/// Continues a halted or crashed rollout with its original arguments and run id:
/// targets already live on the new version are detected on the host and left alone,
/// and the run takes its own tenant locks again. A resume may itself be interrupted
/// and resumed, any number of times.
pub(crate) fn resume_run(opts: &ResumeOpts) -> Result<ExitCode, CliError> {
    if !journal::is_run_id(&opts.run) {
        return Err(CliError::Input(format!("`{}` is not a run id", opts.run)));
    }
    let record = journal::read(&opts.run).map_err(CliError::Input)?;
    if record.finished {
        eprintln!("run {} finished; nothing to resume", opts.run);
        return Ok(ExitCode::Ok);
    }
    if !record.args.iter().any(|a| a == "deploy") {
        return Err(CliError::Input(format!(
            "run {} was not a deploy",
            opts.run
        )));
    }
    let _ = std::fs::remove_file(journal::halt_path(&opts.run));
    let done = record
        .targets
        .iter()
        .filter(|(_, s)| s == "changed" || s == "ok")
        .count();
    eprintln!("resuming run {} ({done} target(s) recorded done)", opts.run);
    let mut args: Vec<OsString> = journal::replayable(&record.args)
        .into_iter()
        .map(OsString::from)
        .collect();
    args.push("--run-id".into());
    args.push(opts.run.clone().into());
    Ok(ExitCode::from_code(super::main(args)))
}

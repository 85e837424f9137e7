//! `drover diagnose SELECT [--output DIR]`: the first step of an emergency, for the
//! whole selection at once. One SSH command per host gathers a bundle — unit status,
//! the units' journal, the agents' log tails, `df -h`, `free -h`, top processes, OOM
//! kernel lines, drover's state files, locks, nginx configs, the audit tail — written
//! to `DIR/<host>/…`, with `DIR/status.json` (the `drover status` document) and
//! `DIR/verdicts.txt`. Each target gets a one-line verdict on standard output:
//! healthy, service down, disk full, out of memory, unreachable.
//!
//! Exit codes as `drover status`: 0 all healthy, 1 something flagged, 4 a host
//! unreachable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::reach::fit_forks;
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::{Selection, duration};
use crate::engine::status::{
    DiagnoseOptions, FleetStatus, HostDiagnosis, Verdict, VerdictKind, diagnose, is_safe_file_name,
};
use crate::error::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct Opts {
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// Folder for the bundle (default: drover-diagnose-<UTC time> here). Files of a
    /// previous bundle in it are replaced.
    #[arg(long, short = 'o', value_name = "DIR")]
    output: Option<PathBuf>,
    /// Journal and log lines gathered per host (and per log file).
    #[arg(long, short = 'n', default_value_t = 200, value_name = "N")]
    lines: u32,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
    /// Time the diagnosis may take on a host.
    #[arg(long, default_value = "60s", value_parser = duration::parse, value_name = "DURATION")]
    timeout: Duration,
}

/// `host-1/acme: service down — drover-acme-blue.service (live color) is inactive (dead)`.
fn verdict_line(v: &Verdict) -> String {
    format!(
        "{}/{}: {} — {}",
        v.host,
        v.tenant,
        v.verdict.word(),
        v.detail
    )
}

fn paint(text: &str, kind: VerdictKind, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match kind {
        VerdictKind::Healthy => "32",
        VerdictKind::Unreachable => "33",
        _ => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Writes the bundle: `DIR/<host>/<file>`, `DIR/status.json`, `DIR/verdicts.txt`.
fn write_bundle(
    dir: &Path,
    hosts: &[HostDiagnosis],
    status: &FleetStatus,
) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut files = 0;
    for h in hosts {
        if !is_safe_file_name(&h.host.host) {
            continue;
        }
        let host_dir = dir.join(&h.host.host);
        std::fs::create_dir_all(&host_dir)?;
        for (name, text) in &h.files {
            std::fs::write(host_dir.join(name), text)?;
            files += 1;
        }
    }
    std::fs::write(
        dir.join("status.json"),
        crate::report::status::json::render(status),
    )?;
    let verdicts: String = hosts
        .iter()
        .flat_map(|h| h.verdicts.iter())
        .map(|v| verdict_line(v) + "\n")
        .collect();
    std::fs::write(dir.join("verdicts.txt"), verdicts)?;
    Ok(files + 2)
}

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let queries = super::status::host_queries(&reach.inventory, &Selection::from(opts.select))?;
    let dir = opts.output.clone().unwrap_or_else(|| {
        let now = crate::engine::now_rfc3339();
        let compact: String = now.chars().filter(char::is_ascii_alphanumeric).collect();
        PathBuf::from(format!("drover-diagnose-{}", compact.to_lowercase()))
    });
    let options = DiagnoseOptions {
        forks: fit_forks(opts.forks),
        timeout: opts.timeout,
        lines: opts.lines,
    };
    let started = std::time::Instant::now();
    let generated_at = crate::engine::now_rfc3339();
    let hosts = reach.block_on(diagnose(Arc::clone(&reach.connector), queries, options));
    let status = FleetStatus::new(
        hosts.iter().map(|h| h.host.clone()).collect(),
        hosts.iter().flat_map(|h| h.targets.clone()).collect(),
        generated_at,
        started.elapsed(),
    );
    let written = write_bundle(&dir, &hosts, &status).map_err(|source| CliError::Write {
        path: dir.clone(),
        source,
    })?;
    let color = cx.color && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut verdicts: Vec<&Verdict> = hosts.iter().flat_map(|h| h.verdicts.iter()).collect();
    verdicts.sort_by(|a, b| {
        (a.verdict == VerdictKind::Healthy)
            .cmp(&(b.verdict == VerdictKind::Healthy))
            .then_with(|| crate::config::inventory::natural_cmp(&a.tenant, &b.tenant))
            .then_with(|| crate::config::inventory::natural_cmp(&a.host, &b.host))
    });
    for v in &verdicts {
        println!("{}", paint(&verdict_line(v), v.verdict, color));
    }
    for h in &hosts {
        if h.verdicts.is_empty() {
            let state = match h.host.state {
                crate::engine::status::HostState::Up => "reachable, no tenant selected".to_string(),
                _ => format!("unreachable: {}", h.host.error.as_deref().unwrap_or("?")),
            };
            println!("{}: {state}", h.host.host);
        }
    }
    if !cx.quiet {
        eprintln!(
            "bundle: {} ({written} files, {} host{}) — {}",
            dir.display(),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            crate::report::status::summary_line(&status)
        );
    }
    Ok(status.exit_code())
}

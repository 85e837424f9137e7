//! `drover check`: validate the inventory and playbooks without connecting anywhere.
//! Playbooks are rendered for every target of every tenant, so a template that does
//! not render fails here, not in the middle of a deploy.

use clap::{Args, ValueEnum};

use std::path::PathBuf;

use super::{CliError, Context};
use crate::config::playbook::Playbook;
use crate::config::{Diagnostics, Host, Inventory, Tenant};
use crate::error::ExitCode;
use crate::plan::Color;
use crate::plan::render::{PlanOptions, plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct Opts {
    /// Output format: annotated text, or a JSON array of
    /// {file, line, column, end_line, end_column, code, message, help}.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Playbooks to check (default: every playbooks/*.toml).
    #[arg(value_name = "PLAYBOOK")]
    playbooks: Vec<PathBuf>,
}

fn default_playbooks() -> Vec<PathBuf> {
    super::toml_files_in("playbooks")
}

/// Loads and renders each playbook for every target; returns (playbooks, steps, targets).
fn check_playbooks(
    inv: &Inventory,
    paths: &[PathBuf],
    problems: &mut Diagnostics,
) -> (usize, usize, usize) {
    let targets: Vec<(&Tenant, &Host)> = inv
        .tenants
        .iter()
        .flat_map(|t| {
            t.hosts
                .iter()
                .filter_map(move |h| inv.host(h).map(|h| (t, h)))
        })
        .collect();
    let (mut steps, mut rendered) = (0, 0);
    for path in paths {
        let playbook = match Playbook::load(path) {
            Ok(p) => p,
            Err(d) => {
                problems.0.extend(d.0);
                continue;
            }
        };
        steps += playbook.steps.len();
        for color in Color::ALL {
            let options = PlanOptions {
                color,
                ..PlanOptions::default()
            };
            match plan(inv, &playbook, &targets, &options) {
                Ok(p) => rendered += p.targets.len(),
                Err(d) => {
                    problems.0.extend(d.0);
                    break;
                }
            }
        }
    }
    (paths.len(), steps, rendered / 2)
}

pub(crate) fn run(cx: &Context, opts: &Opts) -> Result<ExitCode, CliError> {
    if cx.inventory_paths.is_empty() {
        return Err(CliError::NoInventory);
    }
    let playbooks = if opts.playbooks.is_empty() {
        default_playbooks()
    } else {
        opts.playbooks.clone()
    };
    let mut summary = String::new();
    let loaded = Inventory::load(&cx.inventory_paths).and_then(|inv| {
        let mut problems = Diagnostics::default();
        let (n, steps, targets) = check_playbooks(&inv, &playbooks, &mut problems);
        if n > 0 {
            summary = format!(
                "; {n} playbook{} ({steps} step{}) rendered for {targets} target{}",
                plural(n),
                plural(steps),
                plural(targets)
            );
        }
        if problems.is_empty() {
            Ok(inv)
        } else {
            problems.sort();
            Err(problems)
        }
    });
    match (loaded, opts.format) {
        (Ok(inv), Format::Text) => {
            if !cx.quiet {
                println!(
                    "ok: {} host{}, {} tenant{}, {} group{} in {} file{}{summary}",
                    inv.hosts.len(),
                    plural(inv.hosts.len()),
                    inv.tenants.len(),
                    plural(inv.tenants.len()),
                    inv.groups().len(),
                    plural(inv.groups().len()),
                    cx.inventory_paths.len(),
                    plural(cx.inventory_paths.len()),
                );
            }
            Ok(ExitCode::Ok)
        }
        (Ok(_), Format::Json) => {
            println!("[]");
            Ok(ExitCode::Ok)
        }
        (Err(diagnostics), Format::Text) => Err(CliError::Diagnostics(diagnostics)),
        (Err(diagnostics), Format::Json) => {
            let list: Vec<_> = diagnostics
                .0
                .iter()
                .map(crate::config::Diagnostic::to_json)
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&list).unwrap_or_default()
            );
            Ok(ExitCode::BadInput)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

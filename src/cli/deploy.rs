//! `drover deploy PLAYBOOK SELECT`: apply a playbook to the selected targets.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::{ConnectOpts, Context, SelectOpts};
use crate::config::Selection;
use crate::engine::{DeployOptions, TargetStatus, deploy};
use crate::error::ExitCode;
use crate::playbook::Playbook;
use crate::plan::render::{PlanOptions, plan};
use crate::plan::targets::targets;
use crate::report::deploy::{render_json, render_text};
use crate::report::live::{self, LiveMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Strategy {
    /// Every target at once (bounded by --forks and --max-per-host).
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    Blue,
    Green,
}

#[derive(Debug, Args)]
pub(crate) struct Opts {
    /// The playbook file, e.g. playbooks/agent.toml.
    playbook: PathBuf,
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// How targets are rolled out.
    #[arg(long, value_enum, default_value_t = Strategy::All)]
    strategy: Strategy,
    /// Show what each step would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Show file diffs (with --dry-run, or of what was changed).
    #[arg(long)]
    diff: bool,
    /// The color deployed into (blue = tenant port, green = tenant port + 1).
    #[arg(long = "into", value_enum, default_value_t = Color::Blue, value_name = "COLOR")]
    into: Color,
    /// Set a playbook variable, e.g. --set version=2.0.0 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
    /// A TOML file of secret values (NAME = "value"), kept outside git. Secrets are also
    /// read from DROVER_SECRET_<NAME> in the environment.
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// One JSON object per target per line.
    #[arg(long)]
    json: bool,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
    /// Targets of one host worked on at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    max_per_host: usize,
}

fn parse_set(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("expected NAME=VALUE")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a variable name"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Secret values: the --secrets file, then DROVER_SECRET_* (the environment wins).
fn load_secrets(file: Option<&PathBuf>) -> Result<HashMap<String, String>, String> {
    let mut values = HashMap::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| format!("{}: invalid TOML: {}", path.display(), e.message()))?;
        for (k, v) in table {
            let value = v.as_str().ok_or_else(|| format!("{}: secret `{k}` must be a string", path.display()))?;
            values.insert(k, value.to_string());
        }
    }
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("DROVER_SECRET_") {
            values.insert(name.to_string(), v);
        }
    }
    Ok(values)
}

pub(crate) fn run(cx: &Context, opts: Opts) -> ExitCode {
    let inventory = match cx.load_inventory() {
        Ok(inv) => Arc::new(inv),
        Err(code) => return code,
    };
    let playbook = match Playbook::load(&opts.playbook) {
        Ok(p) => p,
        Err(d) => {
            cx.print_diagnostics(&d);
            return ExitCode::BadInput;
        }
    };
    let selection = Selection::from(opts.select.clone());
    let selected = match targets(&inventory, &selection) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::BadInput;
        }
    };
    let secrets = match load_secrets(opts.secrets.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::BadInput;
        }
    };
    let plan_options = PlanOptions {
        color: match opts.into {
            Color::Blue => "blue".into(),
            Color::Green => "green".into(),
        },
        overrides: opts.set.clone(),
        secrets: Some(secrets),
    };
    // Planning is complete before any connection: bad input never half-applies.
    let plan = match plan(&inventory, &playbook, &selected, &plan_options) {
        Ok(p) => p,
        Err(d) => {
            cx.print_diagnostics(&d);
            return ExitCode::BadInput;
        }
    };
    let hosts: HashMap<String, crate::config::Host> =
        inventory.hosts.iter().map(|h| (h.name.clone(), h.clone())).collect();
    let connector = match opts.connect.connector(&inventory) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    let mode = if cx.quiet {
        LiveMode::Silent
    } else if std::io::stderr().is_terminal() && cx.verbose == 0 {
        LiveMode::Bar
    } else if opts.json {
        LiveMode::Silent
    } else {
        LiveMode::Lines
    };
    let options = DeployOptions {
        forks: super::run::fit_forks(opts.forks),
        max_per_host: opts.max_per_host,
        dry_run: opts.dry_run,
        diff: opts.diff,
    };
    let Some(runtime) = super::runtime() else { return ExitCode::BadInput };
    let started = Instant::now();
    let halt = Arc::new(AtomicBool::new(false));
    let outcomes = runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let reporter = tokio::spawn(live::report(rx, mode));
        let watcher = tokio::spawn(super::run::watch_interrupts(Arc::clone(&halt), tx.clone()));
        let outcomes = deploy(connector, &hosts, plan, options, Arc::clone(&halt), tx).await;
        watcher.abort();
        let _ = reporter.await;
        outcomes
    });
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!("{}", render_text(&outcomes, started.elapsed(), opts.dry_run, opts.diff));
    }
    let any = |s: TargetStatus| outcomes.iter().any(|o| o.status == s);
    if any(TargetStatus::Unreachable) {
        ExitCode::Unreachable
    } else if halt.load(Ordering::Relaxed) {
        ExitCode::Halted
    } else if any(TargetStatus::Failed) {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

//! `drover deploy PLAYBOOK SELECT`: apply a playbook to the selected targets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::{ConnectOpts, Context, SelectOpts};
use crate::config::playbook::Playbook;
use crate::config::{BatchSize, FailureBudget};
use crate::config::{Selection, Strategy, duration};
use crate::engine::journal::{self, Journal};
use crate::engine::{
    DeployOptions, RolloutOptions, Strategy as EngineStrategy, TargetStatus, rollout,
};
use crate::error::ExitCode;
use crate::plan::batch::plan_batches;
use crate::plan::bluegreen::is_safe_version;
use crate::plan::render::{PlanOptions, plan};
use crate::plan::targets::targets;
use crate::report::deploy::{render_json, render_text};
use crate::report::live::{self};

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
    /// How targets are rolled out (default: the playbook's [rollout] strategy, else all).
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
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
    /// Targets of one host worked on at once (and per batch: tenants sharing a server
    /// are not all restarted together).
    /// Default: the playbook's [rollout] max_per_host, else 16.
    #[arg(long, value_name = "N")]
    max_per_host: Option<usize>,
    /// Batch sizes: a count, a percentage, or a growing list like 1,10%,50% (the last
    /// size repeats). Default: one batch.
    #[arg(long, value_delimiter = ',', value_parser = BatchSize::parse, value_name = "SIZES")]
    batch: Vec<BatchSize>,
    /// A canary batch of N targets first; with --pause it soaks, then is checked again.
    #[arg(long, value_name = "N")]
    canary: Option<usize>,
    /// Soak time after the canary batch.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pause: Option<Duration>,
    /// Failures tolerated before the rollout halts: N or P% (default 0: the first halts).
    #[arg(long, value_parser = FailureBudget::parse, value_name = "N|P%")]
    max_failures: Option<FailureBudget>,
    /// When the rollout halts, switch back the targets this run switched (blue-green).
    #[arg(long)]
    rollback_on_halt: bool,
    /// Take deploy locks held by other runs (audited on the host).
    #[arg(long)]
    force_unlock: bool,
    /// Deadline for confirming a switch over a fresh connection; unconfirmed, the host
    /// switches back by itself ("0s"… is refused; use --no-revert-timer to disable).
    /// Default: the playbook's [rollout] revert_after, else 60s.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    revert_after: Option<Duration>,
    /// Do not arm the self-reverting switch timer.
    #[arg(long)]
    no_revert_timer: bool,
    /// Stop the old color after this drain period instead of keeping it warm.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    drain: Option<Duration>,
    /// Run id (normally generated; `drover resume` passes the halted run's).
    #[arg(long, hide = true)]
    run_id: Option<String>,
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| format!("{}: invalid TOML: {}", path.display(), e.message()))?;
        for (k, v) in table {
            let value = v
                .as_str()
                .ok_or_else(|| format!("{}: secret `{k}` must be a string", path.display()))?;
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
    // Flags win over the playbook's [rollout] table, which wins over built-in defaults.
    let settings = &playbook.rollout;
    let strategy = opts.strategy.or(settings.strategy).unwrap_or(Strategy::All);
    let batch = if opts.batch.is_empty() {
        settings.batch.clone()
    } else {
        opts.batch.clone()
    };
    let canary = opts.canary.or(settings.canary).unwrap_or(0);
    let pause = opts.pause.or(settings.pause);
    let max_failures = opts
        .max_failures
        .or(settings.max_failures)
        .unwrap_or(FailureBudget::Count(0));
    let max_per_host = opts.max_per_host.or(settings.max_per_host).unwrap_or(16);
    let revert_after = opts
        .revert_after
        .or(settings.revert_after)
        .unwrap_or(Duration::from_secs(60));
    let drain = opts.drain.or(settings.drain);
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
    let version = opts
        .set
        .iter()
        .rev()
        .find(|(k, _)| k == "version")
        .map(|(_, v)| v.clone())
        .or_else(|| {
            playbook
                .vars
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if strategy == Strategy::BlueGreen && !is_safe_version(&version) {
        eprintln!(
            "error: blue-green needs a release version (playbook var `version` or --set version=…) made of letters, digits and . _ + -; found {version:?}"
        );
        return ExitCode::BadInput;
    }
    let colors: &[&str] = match (strategy, opts.into) {
        (Strategy::BlueGreen, _) => &["blue", "green"],
        (_, Color::Blue) => &["blue"],
        (_, Color::Green) => &["green"],
    };
    // Planning is complete, for every color a target may need, before any connection:
    // bad input never half-applies.
    let mut plans = HashMap::new();
    for color in colors {
        let plan_options = PlanOptions {
            color: (*color).into(),
            overrides: opts.set.clone(),
            secrets: Some(secrets.clone()),
        };
        match plan(&inventory, &playbook, &selected, &plan_options) {
            Ok(p) => {
                // The in-place plan is keyed "blue" whatever its color: it is the one used.
                let key = if colors.len() == 1 { "blue" } else { color };
                plans.insert(key.to_string(), p);
            }
            Err(d) => {
                cx.print_diagnostics(&d);
                return ExitCode::BadInput;
            }
        }
    }
    let target_hosts: Vec<&str> = selected.iter().map(|(_, h)| h.name.as_str()).collect();
    let batches = match strategy {
        Strategy::All => plan_batches(&target_hosts, &[], 0, 0),
        Strategy::Rolling | Strategy::BlueGreen => {
            plan_batches(&target_hosts, &batch, canary, max_per_host)
        }
    };
    let run_id = match &opts.run_id {
        Some(id) if journal::is_run_id(id) => id.clone(),
        Some(id) => {
            eprintln!("error: `{id}` is not a run id");
            return ExitCode::BadInput;
        }
        None => journal::new_run_id(),
    };
    let hosts = super::hosts_by_name(&inventory);
    let connector = match opts.connect.connector(&inventory) {
        Ok(c) => Arc::new(c),
        Err(code) => return code,
    };
    let mode = super::live_mode(cx, opts.json);
    let options = RolloutOptions {
        strategy: if strategy == Strategy::BlueGreen {
            EngineStrategy::BlueGreen
        } else {
            EngineStrategy::InPlace
        },
        deploy: DeployOptions {
            forks: super::run::fit_forks(opts.forks),
            max_per_host,
            dry_run: opts.dry_run,
            diff: opts.diff,
        },
        max_failures,
        pause: pause.unwrap_or_default(),
        version,
        run: run_id.clone(),
        operator: operator(),
        force_unlock: opts.force_unlock,
        revert_after: (!opts.no_revert_timer).then_some(revert_after),
        rollback_on_halt: opts.rollback_on_halt,
        drain,
        script_timeout: Duration::from_secs(120),
    };
    let journal = if opts.dry_run {
        None
    } else {
        match Journal::open(&run_id) {
            Ok(j) => {
                j.record("start", serde_json::json!({ "run": run_id, "args": cx.argv, "targets": selected.len() }));
                Some(Arc::new(j))
            }
            Err(e) => {
                eprintln!("warning: no run journal ({e}); `drover resume` will not know this run");
                None
            }
        }
    };
    if !cx.quiet && !opts.json {
        eprintln!(
            "run {run_id}: {} target(s) in {} batch(es)",
            selected.len(),
            batches.iter().count()
        );
    }
    let Some(runtime) = super::runtime() else {
        return ExitCode::BadInput;
    };
    let started = Instant::now();
    let halt = Arc::new(AtomicBool::new(false));
    let result = runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let reporter = tokio::spawn(live::report_with_journal(rx, mode, journal.clone()));
        let watcher = tokio::spawn(super::run::watch_interrupts(Arc::clone(&halt), tx.clone()));
        let halt_file = tokio::spawn(watch_halt_file(
            journal::halt_path(&run_id),
            Arc::clone(&halt),
        ));
        let result = rollout(
            connector,
            hosts,
            plans,
            &batches,
            options,
            Arc::clone(&halt),
            tx,
        )
        .await;
        watcher.abort();
        halt_file.abort();
        let _ = reporter.await;
        result
    });
    let _ = std::fs::remove_file(journal::halt_path(&run_id));
    if let Some(j) = &journal {
        match &result.halted {
            Some(reason) => j.record("halted", serde_json::json!({ "reason": reason.to_string(), "rolled_back": result.rolled_back })),
            None => j.record("finished", serde_json::json!({})),
        }
    }
    let outcomes = result.targets;
    if opts.json {
        print!("{}", render_json(&outcomes));
    } else {
        print!(
            "{}",
            render_text(&outcomes, started.elapsed(), opts.dry_run, opts.diff)
        );
        if let Some(reason) = &result.halted {
            println!("HALTED: {reason}; resume with: drover resume {run_id}");
            if !result.rolled_back.is_empty() {
                println!("rolled back: {}", result.rolled_back.join(", "));
            }
        }
    }
    let any = |s: TargetStatus| outcomes.iter().any(|o| o.status == s);
    if result.halted.is_some() || halt.load(Ordering::Relaxed) {
        ExitCode::Halted
    } else if any(TargetStatus::Unreachable) {
        ExitCode::Unreachable
    } else if any(TargetStatus::Failed) {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}

/// `user@machine`, for locks and audit lines.
pub(crate) fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let clean = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect::<String>()
    };
    format!("{}@{}", clean(&user), clean(&machine))
}

/// `drover halt` from another terminal creates this file; the rollout stops at the
/// next boundary.
async fn watch_halt_file(path: PathBuf, halt: Arc<AtomicBool>) {
    loop {
        if path.exists() {
            halt.store(true, Ordering::Relaxed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

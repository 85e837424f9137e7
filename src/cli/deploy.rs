//! `drover deploy PLAYBOOK SELECT`: apply a playbook to the selected targets, in place
//! or blue-green, batch after batch. Everything is planned (every color a target may
//! need) before any connection: bad input never half-applies.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::hooks::HookContext;
use super::reach::{fit_forks, live_mode};
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::group_cap::GroupCap;
use crate::config::progressive::{Progressive, parse_weights};
use crate::config::rollout::{Resolved, RolloutSettings};
use crate::config::{BatchSize, FailureBudget, Host, Playbook, Strategy, Tenant, duration};
use crate::engine::journal::{self, Journal};
use crate::engine::{
    Actor, BecomePassword, Plans, RolloutOptions, RolloutOutcome, StepOptions, rollout,
};
use crate::error::ExitCode;
use crate::plan::Color;
use crate::plan::batch::{Batches, plan_batches, plan_capped_batches};
use crate::plan::bluegreen::is_safe_version;
use crate::plan::group_limits::GroupLimits;
use crate::plan::render::{Plan, PlanOptions, plan};
use crate::report::deploy::{render_json, render_text};

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
    #[arg(long = "into", default_value = "blue", value_parser = parse_color, value_name = "COLOR")]
    into: Color,
    /// Set a playbook variable, e.g. --set version=2.0.0 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    set: Vec<(String, String)>,
    /// A TOML file of secret values (NAME = "value"), kept outside git. Secrets are also
    /// read from DROVER_SECRET_<NAME> in the environment.
    #[arg(long, value_name = "FILE")]
    secrets: Option<PathBuf>,
    /// A local command printing secret values (KEY=VALUE lines or TOML), run once, e.g.
    /// "sops -d secrets.env". Default: the playbook's secrets_command, else the
    /// inventory's [defaults] one.
    #[arg(long, value_name = "COMMAND")]
    secrets_cmd: Option<String>,
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
    /// No batch takes more than N hosts sharing a group that matches PATTERN (a glob
    /// with `*`, else a prefix), e.g. zone-*=1 or rack=1; repeatable.
    /// Default: the playbook's [rollout] max_per_group.
    #[arg(long, value_name = "PATTERN=N")]
    max_per_group: Vec<GroupCap>,
    /// Deploy only the targets that failed or were unreachable in RUN (default: the
    /// newest deploy); selectors, when given, narrow them further.
    #[arg(long, value_name = "RUN", num_args = 0..=1, default_missing_value = super::rerun::LATEST)]
    only_failed: Option<String>,
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
    /// Ask once for the sudo password of the hosts' login users (on a terminal); without
    /// it, DROVER_BECOME_PASS is used when set. Fed to `sudo -S` on stdin, never shown.
    #[arg(long)]
    ask_become_pass: bool,
    /// Take deploy locks held by other runs (audited on the host).
    #[arg(long)]
    force_unlock: bool,
    /// Wait up to this long for a tenant locked by another live run (re-checking with
    /// backoff) instead of failing. Default: the playbook's [rollout] lock_wait, else 0.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    lock_wait: Option<Duration>,
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
    /// Weighted canary steps (blue-green): the canary's share of its tenant's traffic,
    /// each step held for --pause and judged, then 100% (e.g. 5%,25%,50%).
    /// Default: the playbook's [rollout] canary_weights.
    #[arg(long, value_delimiter = ',', value_name = "P%,…")]
    canary_weights: Vec<String>,
    /// Run id (normally generated; `drover resume` passes the halted run's).
    #[arg(long, hide = true)]
    run_id: Option<String>,
}

impl Opts {
    /// The rollout settings given as flags (unset ones fall back to the playbook's).
    fn rollout_flags(&self) -> RolloutSettings {
        RolloutSettings {
            strategy: self.strategy,
            batch: self.batch.clone(),
            canary: self.canary,
            pause: self.pause,
            max_failures: self.max_failures,
            max_per_host: self.max_per_host,
            max_per_group: self.max_per_group.clone(),
            revert_after: self.revert_after,
            drain: self.drain,
            lock_wait: self.lock_wait,
        }
    }
}

fn parse_set(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("expected NAME=VALUE")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a variable name"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn parse_color(text: &str) -> Result<Color, String> {
    Color::parse(text).ok_or_else(|| format!("expected blue or green, found `{text}`"))
}

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let playbook = Playbook::load(&opts.playbook).map_err(CliError::Diagnostics)?;
    let settings = opts.rollout_flags().or(&playbook.rollout).resolve();
    let selected = super::rerun::only_failed_targets(
        &reach.inventory,
        &opts.select,
        opts.only_failed.as_deref(),
        opts.run_id.as_deref(),
    )?;
    if selected.is_empty() {
        return Ok(ExitCode::Ok);
    }
    let version = release_version(&opts.set, &playbook, settings.strategy)?;
    let plans = plans(&reach, &opts, &playbook, &selected, settings.strategy)?;
    let batches = batches(&selected, &settings);
    let run_id = run_id(opts.run_id.as_deref())?;
    let journal = (!opts.dry_run)
        .then(|| open_journal(cx, &run_id, selected.len()))
        .flatten();
    if !cx.quiet && !opts.json {
        let count = batches.iter().count();
        eprintln!(
            "run {run_id}: {} target(s) in {count} batch(es)",
            selected.len()
        );
        if opts.dry_run {
            eprint!("{}", super::batches::render(&selected, &batches, &settings));
        }
    }
    let hook_cx = HookContext {
        playbook_path: &opts.playbook,
        playbook: &playbook,
        run_id: &run_id,
        operator: &super::operator(),
        version: &version,
        strategy: settings.strategy.word(),
        selected: &selected,
    };
    let hooks = super::hooks::runner(&hook_cx, opts.dry_run, journal.clone());
    super::hooks::pre_deploy(&reach, hooks.as_deref(), journal.as_deref(), cx.quiet)?;
    let mut options = rollout_options(&opts, &settings, version, &run_id);
    options.hooks = hooks.clone();
    options.keep_releases = Some(playbook.keep_releases);
    options.keep_images.clone_from(&playbook.keep_images);
    options.progressive = progressive(&opts, &playbook)?;
    let started = Instant::now();
    let password = super::r#become::password(opts.ask_become_pass)?;
    let connector = Arc::new(BecomePassword::new(Arc::clone(&reach.connector), password));
    let hosts = reach.hosts_by_name();
    let halt_file = journal::halt_path(&run_id);
    let (result, interrupted) = reach.run_live(
        live_mode(cx, opts.json),
        Some(halt_file.clone()),
        |events, halt| {
            rollout(
                connector, hosts, plans, &batches, options, halt, events, journal,
            )
        },
    );
    let _ = std::fs::remove_file(halt_file);
    print_result(&opts, &result, &run_id, started.elapsed(), cx.verbose > 0);
    let halted = result.halted.is_some() || interrupted;
    let code = ExitCode::for_targets(&result.targets, halted);
    super::hooks::after(&reach, hooks.as_deref(), &result, halted, code, cx.quiet);
    Ok(code)
}

/// The playbook's progressive delivery, with `--canary-weights` over its own.
fn progressive(opts: &Opts, playbook: &Playbook) -> Result<Progressive, CliError> {
    let mut progressive = playbook.progressive.clone();
    if !opts.canary_weights.is_empty() {
        progressive.canary_weights = parse_weights(opts.canary_weights.iter().map(String::as_str))
            .map_err(|e| CliError::Input(format!("--canary-weights: {e}")))?;
    }
    Ok(progressive)
}

/// The release a blue-green rollout deploys and verifies through the proxy: the last
/// `--set version=…`, else the playbook's `version` variable.
fn release_version(
    set: &[(String, String)],
    playbook: &Playbook,
    strategy: Strategy,
) -> Result<String, CliError> {
    let version = set
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
        return Err(CliError::Input(format!(
            "blue-green needs a release version (playbook var `version` or --set version=…) made of letters, digits and . _ + -; found {version:?}"
        )));
    }
    Ok(version)
}

/// The playbook rendered for every target, for each color a target may need.
fn plans(
    reach: &super::Reach,
    opts: &Opts,
    playbook: &Playbook,
    selected: &[(&Tenant, &Host)],
    strategy: Strategy,
) -> Result<Plans, CliError> {
    let command =
        super::secrets::command_for(opts.secrets_cmd.as_deref(), playbook, &reach.inventory);
    let secrets = super::secrets::load(command.as_ref(), opts.secrets.as_deref())?;
    let render = |color: Color| -> Result<Plan, CliError> {
        let options = PlanOptions {
            color,
            overrides: opts.set.clone(),
            secrets: Some(secrets.clone()),
        };
        plan(&reach.inventory, playbook, selected, &options).map_err(CliError::Diagnostics)
    };
    Ok(match strategy {
        Strategy::BlueGreen => Plans::BlueGreen {
            blue: render(Color::Blue)?,
            green: render(Color::Green)?,
        },
        Strategy::All | Strategy::Rolling => Plans::InPlace(render(opts.into)?),
    })
}

/// The batches: one for `all`, else as the settings say.
fn batches(selected: &[(&Tenant, &Host)], settings: &Resolved) -> Batches {
    let hosts: Vec<&str> = selected.iter().map(|(_, h)| h.name.as_str()).collect();
    if settings.strategy.batched() {
        let groups = super::batches::capped_groups(selected, &settings.max_per_group);
        plan_capped_batches(
            &hosts,
            &settings.batch,
            settings.canary,
            settings.max_per_host,
            &GroupLimits::new(&groups, &settings.max_per_group),
        )
    } else {
        plan_batches(&hosts, &[], 0, 0)
    }
}

/// The run id: the one `drover resume` passes, else a new one.
fn run_id(given: Option<&str>) -> Result<String, CliError> {
    match given {
        Some(id) if journal::is_run_id(id) => Ok(id.to_string()),
        Some(id) => Err(CliError::Input(format!("`{id}` is not a run id"))),
        None => Ok(journal::new_run_id()),
    }
}

/// The run's journal, opened with its command line; a run without one still deploys.
fn open_journal(cx: &Context, run_id: &str, targets: usize) -> Option<Arc<Journal>> {
    match Journal::start(run_id, &cx.argv, targets) {
        Ok(j) => Some(Arc::new(j)),
        Err(e) => {
            eprintln!("warning: no run journal ({e}); `drover resume` will not know this run");
            None
        }
    }
}

fn rollout_options(
    opts: &Opts,
    settings: &Resolved,
    version: String,
    run_id: &str,
) -> RolloutOptions {
    RolloutOptions {
        forks: fit_forks(opts.forks),
        steps: StepOptions {
            dry_run: opts.dry_run,
            diff: opts.diff,
            // one per run: the registry it may start stops when the run's options go
            images: crate::engine::image::Images::default(),
        },
        actor: Actor {
            run: run_id.to_string(),
            operator: super::operator(),
            force_unlock: opts.force_unlock,
            lock_wait: settings.lock_wait,
        },
        max_failures: settings.max_failures,
        pause: settings.pause,
        version,
        revert_after: (!opts.no_revert_timer).then_some(settings.revert_after),
        rollback_on_halt: opts.rollback_on_halt,
        drain: settings.drain,
        script_timeout: super::SCRIPT_TIMEOUT,
        hooks: None,
        keep_releases: None,
        keep_images: None,
        progressive: Progressive::default(),
    }
}

fn print_result(opts: &Opts, result: &RolloutOutcome, run_id: &str, took: Duration, verbose: bool) {
    // Where the time went: on stderr, like the other -v output, so --json stays clean.
    if verbose {
        eprint!("{}", crate::report::phases::render(&result.targets));
    }
    if opts.json {
        print!("{}", render_json(&result.targets));
        return;
    }
    print!(
        "{}",
        render_text(&result.targets, took, opts.dry_run, opts.diff)
    );
    if let Some(reason) = &result.halted {
        println!("HALTED: {reason}; resume with: drover resume {run_id}");
        if !result.rolled_back.is_empty() {
            println!("rolled back: {}", result.rolled_back.join(", "));
        }
    }
}

//! The playbook's hooks at the edges of `drover deploy`: `pre-deploy` before anything
//! connects (its failure stops the deploy, exit 2), and after the rollout `on-rollback`,
//! `on-halt` and `post-deploy` (reported, never changing the exit code). `post-switch`
//! runs inside the rollout, per target. No hook runs on `--dry-run`.

use std::path::Path;
use std::sync::Arc;

use super::{CliError, Reach};
use crate::config::hooks::HookPoint;
use crate::config::{Host, Playbook, Tenant};
use crate::engine::RolloutOutcome;
use crate::engine::hooks::{HookRun, HookRunner};
use crate::engine::journal::Journal;
use crate::error::ExitCode;
use crate::report::hooks::render;

/// What every hook of a deploy is told.
pub(crate) struct HookContext<'a> {
    pub(crate) playbook_path: &'a Path,
    pub(crate) playbook: &'a Playbook,
    pub(crate) run_id: &'a str,
    pub(crate) operator: &'a str,
    pub(crate) version: &'a str,
    pub(crate) strategy: &'a str,
    pub(crate) selected: &'a [(&'a Tenant, &'a Host)],
}

/// The run's hooks, or `None` when there are none or nothing is really deployed.
pub(crate) fn runner(
    cx: &HookContext<'_>,
    dry_run: bool,
    journal: Option<Arc<Journal>>,
) -> Option<Arc<HookRunner>> {
    let hooks = &cx.playbook.hooks;
    let none = [
        HookPoint::PreDeploy,
        HookPoint::PostSwitch,
        HookPoint::OnHalt,
        HookPoint::OnRollback,
        HookPoint::PostDeploy,
    ]
    .iter()
    .all(|p| hooks.command(*p).is_none());
    if dry_run || none {
        return None;
    }
    let targets: Vec<String> = cx
        .selected
        .iter()
        .map(|(t, h)| format!("{}@{}", t.name, h.name))
        .collect();
    let env = vec![
        ("DROVER_RUN_ID".into(), cx.run_id.to_string()),
        (
            "DROVER_PLAYBOOK".into(),
            cx.playbook_path.display().to_string(),
        ),
        ("DROVER_PLAYBOOK_NAME".into(), cx.playbook.name.clone()),
        ("DROVER_OPERATOR".into(), cx.operator.to_string()),
        ("DROVER_VERSION".into(), cx.version.to_string()),
        ("DROVER_STRATEGY".into(), cx.strategy.to_string()),
        ("DROVER_TARGETS".into(), targets.join(" ")),
    ];
    Some(Arc::new(HookRunner::new(
        hooks.clone(),
        cx.playbook.dir(),
        env,
        journal,
    )))
}

/// Runs `pre-deploy`: a failure (or timeout) stops the deploy before any connection.
pub(crate) fn pre_deploy(
    reach: &Reach,
    hooks: Option<&HookRunner>,
    journal: Option<&Journal>,
    quiet: bool,
) -> Result<(), CliError> {
    let Some(hooks) = hooks else { return Ok(()) };
    let Some(ran) = reach.block_on(hooks.fire(HookPoint::PreDeploy, None, &[])) else {
        return Ok(());
    };
    show(&ran, quiet);
    if ran.succeeded() {
        return Ok(());
    }
    let why = format!("pre-deploy hook `{}` {}", ran.command, ran.ending());
    if let Some(journal) = journal {
        journal.halted(&why, &[]);
    }
    Err(CliError::Input(format!(
        "{why}; nothing was deployed, no host was contacted"
    )))
}

/// After the rollout: `on-rollback` when targets were switched back, `on-halt` when it
/// halted, then `post-deploy` with the result. A failing one is reported, not fatal.
pub(crate) fn after(
    reach: &Reach,
    hooks: Option<&HookRunner>,
    result: &RolloutOutcome,
    halted: bool,
    code: ExitCode,
    quiet: bool,
) {
    let Some(hooks) = hooks else { return };
    let mut fired = Vec::new();
    if !result.rolled_back.is_empty() {
        let env = [
            ("DROVER_RESULT", "rolled-back".to_string()),
            ("DROVER_ROLLED_BACK", result.rolled_back.join(" ")),
        ];
        fired.push(reach.block_on(hooks.fire(HookPoint::OnRollback, None, &env)));
    }
    if halted {
        let reason = result
            .halted
            .as_ref()
            .map_or_else(|| "halt requested".to_string(), ToString::to_string);
        let env = [
            ("DROVER_RESULT", "halted".to_string()),
            ("DROVER_HALT_REASON", reason),
        ];
        fired.push(reach.block_on(hooks.fire(HookPoint::OnHalt, None, &env)));
    }
    let env = [("DROVER_RESULT", result_word(code).to_string())];
    fired.push(reach.block_on(hooks.fire(HookPoint::PostDeploy, None, &env)));
    for ran in fired.into_iter().flatten() {
        show(&ran, quiet);
    }
}

/// The deploy's result as `DROVER_RESULT` says it.
fn result_word(code: ExitCode) -> &'static str {
    match code {
        ExitCode::Ok => "ok",
        ExitCode::Failed => "failed",
        ExitCode::Halted => "halted",
        ExitCode::Unreachable => "unreachable",
        ExitCode::BadInput => "bad-input",
    }
}

/// A hook's output on stderr (stdout stays the report's, `--json` stays clean); a
/// failure is shown even with `--quiet`.
fn show(ran: &HookRun, quiet: bool) {
    if !quiet || !ran.succeeded() {
        eprint!("{}", render(ran));
    }
}

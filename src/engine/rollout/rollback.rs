//! Switching a tenant back to its previous color: `drover rollback`, a canary that
//! failed its soak, `--rollback-on-halt`. The previous color is kept warm, so this
//! takes seconds; it must answer its health check directly before nginx goes back to
//! it (started first if it was stopped).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::context::{Actor, Ctx, ScriptError, StateError, TargetTask, checked};
use super::lock;
use crate::config::Host;
use crate::engine::fan_out::fan_out;
use crate::events::{Event, EventSender};
use crate::outcome::millis;
use crate::outcome::{Phases, StepOutcome, StepStatus, TargetOutcome, TargetStatus};
use crate::plan::bluegreen::{self, TenantState};
use crate::plan::render::{Plan, TargetPlan};
use crate::plan::{Color, TenantLayout, live};
use crate::shell::quote;
use crate::transport::Connector;

/// Settings of `drover rollback`.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// targets worked on at once
    pub forks: usize,
    /// who is acting, for locks and the audit log
    pub actor: Actor,
    /// per-attempt time limit of drover's own host scripts
    pub script_timeout: Duration,
}

/// Why a target could not be switched back.
#[derive(Debug, thiserror::Error)]
pub(super) enum RollbackError {
    /// Its host could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// Its state could not be read.
    #[error("{0}")]
    State(StateError),
    /// Nothing was ever deployed there blue-green.
    #[error("nothing deployed here yet")]
    NothingDeployed,
    /// A first deploy has no previous color.
    #[error("no previous color to go back to")]
    NoPrevious,
    /// The inventory gives the tenant no port.
    #[error("tenant has no port")]
    NoPort,
    /// The previous color does not answer healthy: nginx stays where it is.
    #[error("{0}")]
    PreviousUnhealthy(ScriptError),
    /// nginx could not be switched back.
    #[error("{0}")]
    Switch(ScriptError),
    /// Switched, but the previous release does not answer through the proxy.
    #[error("after switching back: {0}")]
    Verify(ScriptError),
}

impl RollbackError {
    /// Whether the switch-back script ran (and so released the lock it carried).
    fn ran_script(&self) -> bool {
        matches!(
            self,
            RollbackError::PreviousUnhealthy(_)
                | RollbackError::Switch(_)
                | RollbackError::Verify(_)
        )
    }

    fn lost(&self) -> bool {
        match self {
            RollbackError::Unreachable(_) => true,
            RollbackError::State(StateError::Script(e))
            | RollbackError::PreviousUnhealthy(e)
            | RollbackError::Switch(e)
            | RollbackError::Verify(e) => e.lost(),
            _ => false,
        }
    }
}

/// Switches the tenant on `host` back to its previous color; says which
/// (`green@1.0.0`).
pub(super) async fn switch_back<C: Connector>(
    cx: &Ctx<C>,
    tenant: &str,
    host: &str,
) -> Result<String, RollbackError> {
    let plan = TargetPlan {
        tenant: tenant.to_owned(),
        host: host.to_owned(),
        steps: Vec::new(),
    };
    let task = cx
        .task(&plan)
        .await
        .map_err(|o| RollbackError::Unreachable(o.error.unwrap_or_default()))?;
    back(&task).await
}

/// The switch back on a connected target, its state read in an exec of its own.
async fn back<C: Connector>(task: &TargetTask<'_, C>) -> Result<String, RollbackError> {
    let state = task.state().await.map_err(RollbackError::State)?;
    back_from(task, state, None).await
}

/// Exit statuses of the switch-back script, one per stage, so a single exec still
/// says which stage failed.
const WARM_FAILED: u32 = 81;
const SWITCH_FAILED: u32 = 82;
const VERIFY_FAILED: u32 = 83;

/// The switch back from `state`, in one exec: warm up the previous color, switch
/// nginx to it, verify through the proxy (each stage a subshell, as each ends with
/// `exit`). `leave` (the lock's release) runs when the script ends, however it ends.
async fn back_from<C: Connector>(
    task: &TargetTask<'_, C>,
    state: Option<TenantState>,
    leave: Option<&str>,
) -> Result<String, RollbackError> {
    let state = state.ok_or(RollbackError::NothingDeployed)?;
    let (Some(previous), Some(version)) = (state.previous, state.previous_version.clone()) else {
        return Err(RollbackError::NoPrevious);
    };
    let base = task
        .cx
        .base_port(task.tenant)
        .ok_or(RollbackError::NoPort)?;
    let switch = task
        .switch(Some(state), (previous, &version), None, "rollback")
        .ok_or(RollbackError::NoPort)?;
    let mut script = leave.map_or_else(String::new, |l| format!("trap {} EXIT\n", quote(l)));
    let _ = write!(
        script,
        "( {warm} ) || exit {WARM_FAILED}\n( {switch} ) || exit {SWITCH_FAILED}\n\
         ( {verify} ) || exit {VERIFY_FAILED}\n",
        warm = warm_up(task.tenant, previous, base),
        switch = switch.switch(),
        verify = live::verify_live(task.tenant, previous, &version, 20),
    );
    // Warm-up (15 s at most) and verification (20 tries) wait by design: the time
    // limit covers them on top of the usual one.
    let timeout = task.cx.script_timeout + Duration::from_secs(30);
    match checked(task.root_for(script, timeout).await) {
        Ok(_) => Ok(format!("{previous}@{version}")),
        Err(e) => Err(match e.status() {
            Some(WARM_FAILED) => RollbackError::PreviousUnhealthy(e),
            Some(VERIFY_FAILED) => RollbackError::Verify(e),
            _ => RollbackError::Switch(e),
        }),
    }
}

/// Starts the color's unit if it is not running and waits (15 s at most) until it
/// answers healthy on its port (a worker: until its health command passes).
fn warm_up(tenant: &str, color: Color, base_port: u16) -> String {
    let port = color.port(base_port);
    let http = format!(
        "i=0\n\
         while [ $i -lt 30 ]; do curl -fsS -m 2 http://127.0.0.1:{port}/health >/dev/null 2>&1 && exit 0; i=$((i+1)); sleep 0.5; done\n\
         echo 'previous color {color} does not answer healthy on port {port}' >&2\n\
         exit 1\n"
    );
    format!(
        "systemctl is-active --quiet {svc} || systemctl start {svc}\n{check}",
        svc = quote(&TenantLayout::of(tenant).unit(color)),
        check = live::command_health_or(tenant, color, 30, &http),
    )
}

/// `drover rollback`: every target of `plan` back to its previous color, each under
/// its tenant's lock. Outcomes in plan order; after `halt` is set, targets not yet
/// started are skipped.
pub async fn rollback<C: Connector>(
    connector: Arc<C>,
    hosts: HashMap<String, Host>,
    plan: Plan,
    options: RollbackOptions,
    halt: Arc<AtomicBool>,
    events: EventSender,
) -> Vec<TargetOutcome> {
    let total = plan.targets.len();
    let _ = events.send(Event::RunStarted { hosts: total }).await;
    let cx = Arc::new(Ctx::new(
        connector,
        hosts,
        plan.base_ports.clone(),
        options.actor,
        options.script_timeout,
        events.clone(),
        None,
    ));
    for t in &plan.targets {
        cx.pool.expect(&t.host, 1).await;
    }
    let outcomes = fan_out(plan.targets, options.forks, |target, _slot| {
        let (cx, halt) = (Arc::clone(&cx), Arc::clone(&halt));
        async move {
            if halt.load(Ordering::Relaxed) {
                let why = Some("not started: the run was halted".to_string());
                let outcome =
                    TargetOutcome::new(&target.tenant, &target.host, TargetStatus::Skipped, why);
                cx.finished(&outcome).await;
                cx.pool.done(&target.host).await;
                return outcome;
            }
            let started = Instant::now();
            cx.started(&target).await;
            let mut outcome = match cx.task(&target).await {
                Err(outcome) => outcome,
                Ok(task) => locked_back(&task, millis(started.elapsed())).await,
            };
            outcome.duration_ms = millis(started.elapsed());
            cx.finished(&outcome).await;
            cx.pool.done(&target.host).await;
            outcome
        }
    })
    .await;
    let _ = events.send(Event::RunFinished).await;
    outcomes
}

/// One target of `drover rollback` in two execs: lock and read the state; switch
/// back and unlock. Its phases: `connect` (`connected` ms), `lock`, `switch`.
async fn locked_back<C: Connector>(task: &TargetTask<'_, C>, connected: u64) -> TargetOutcome {
    let mut phases = Phases::default();
    phases.add("connect", connected);
    let at = Instant::now();
    let (guard, out) = match lock::take_then(task, &bluegreen::read_state(task.tenant)).await {
        Ok(taken) => taken,
        Err(refused) => return refused,
    };
    phases.since("lock", at);
    let at = Instant::now();
    let text = out.stdout.text();
    let result = match serde_json::from_str(&text) {
        _ if text.trim().is_empty() => back_from(task, None, Some(&guard.leave)).await,
        Ok(state) => back_from(task, Some(state), Some(&guard.leave)).await,
        Err(e) => Err(RollbackError::State(StateError::Unreadable(e))),
    };
    phases.since("switch", at);
    // The switch-back script released the lock when it ran; when it did not run (or
    // the state was unreadable), release it here.
    if result.as_ref().err().is_some_and(|e| !e.ran_script()) {
        lock::release(task, guard).await;
    }
    let (tenant, host) = (task.tenant, task.host.name.as_str());
    let mut outcome = match result {
        Ok(now) => {
            let mut o = TargetOutcome::new(tenant, host, TargetStatus::Changed, None);
            o.steps.push(StepOutcome {
                name: format!("switch back to {now}"),
                kind: "rollback",
                status: StepStatus::Changed,
                attempts: 1,
                duration_ms: phases.get("switch"),
                exit_code: Some(0),
                stdout: String::new(),
                stderr: String::new(),
                diff: None,
                bytes_sent: None,
            });
            o
        }
        Err(e) if e.lost() => {
            TargetOutcome::new(tenant, host, TargetStatus::Unreachable, Some(e.to_string()))
        }
        Err(e) => TargetOutcome::failed_at(tenant, host, "rollback", e.to_string()),
    };
    outcome.phases = phases;
    outcome
}

//! A blue-green target, phase by phase. Each phase is one function with its own error;
//! [`deploy`] reads as the sequence:
//!
//! | phase | function | when it fails |
//! |---|---|---|
//! | read state; a resumed run's target already live? | [`prepare`] | nothing changed |
//! | deploy the idle color (the playbook, its health check included) | [`run_target`] | live color untouched |
//! | arm the host-side revert timer | [`arm`] | live color untouched |
//! | switch nginx (`nginx -t`, graceful reload, state, audit) | [`switch`] | timer disarmed; live color unchanged |
//! | verify through the proxy | [`verify`] | switched back (or the timer will) |
//! | confirm over a fresh connection | [`confirm`] | the host switches back by itself |
//! | drain the old color (`--drain`) | [`drain`] | ignored; otherwise it stays warm |
//!
//! A failure before the switch leaves the live color untouched; after it, the tenant
//! goes back to the color it had. A lost connection makes the target unreachable, not
//! failed (exit code 4, as for any host that cannot be reached).

use std::time::Instant;

use super::super::target::run_target;
use super::Rollout;
use super::confirm::{Unconfirmed, confirm_fresh};
use super::context::{ScriptError, StateError, TargetTask};
use crate::outcome::{Phases, TargetOutcome, TargetStatus};
use crate::plan::bluegreen::{self, REVERT_FIRED, Switch, TenantState};
use crate::plan::{Color, TenantLayout, live};
use crate::transport::Connector;

/// Why a blue-green target did not complete, by phase.
#[derive(Debug, thiserror::Error)]
pub(super) enum PhaseError {
    /// The tenant's state could not be read: nothing was changed.
    #[error("{0}")]
    ReadState(StateError),
    /// A resumed run found its switch live but could not disarm the revert timer.
    #[error("live on {version}, but its revert timer may still fire: {cause}")]
    Disarm {
        /// the release that is live
        version: String,
        /// what the disarm script ran into
        cause: ScriptError,
    },
    /// The inventory gives the tenant no port, so there is nothing to switch between.
    #[error("blue-green needs the tenant's `port` in the inventory")]
    NoPort,
    /// The revert timer could not be armed: nothing was switched.
    #[error("{0}")]
    Arm(ScriptError),
    /// nginx refused or failed the new config: the old one stays.
    #[error("nginx switch failed, the live color is unchanged: {0}")]
    Switch(ScriptError),
    /// The new color did not answer through the proxy; what became of switching back.
    #[error("{cause}; {back}")]
    Verify {
        /// what the verification saw
        cause: ScriptError,
        /// whether the tenant is back on its old color
        back: SwitchBack,
    },
    /// The switch was not confirmed over a fresh connection.
    #[error(transparent)]
    Confirm(Unconfirmed),
}

impl PhaseError {
    /// The phase, as a target's outcome names the step that failed.
    pub(super) fn phase(&self) -> &'static str {
        match self {
            PhaseError::ReadState(_) => "read state",
            PhaseError::Disarm { .. } => "disarm revert timer",
            PhaseError::NoPort | PhaseError::Switch(_) => "switch",
            PhaseError::Arm(_) => "arm revert timer",
            PhaseError::Verify { .. } => "verify through proxy",
            PhaseError::Confirm(_) => "confirm switch",
        }
    }

    /// Whether the host was lost on the way (the target is unreachable).
    pub(super) fn lost(&self) -> bool {
        match self {
            PhaseError::ReadState(StateError::Script(e))
            | PhaseError::Disarm { cause: e, .. }
            | PhaseError::Arm(e)
            | PhaseError::Switch(e)
            | PhaseError::Verify { cause: e, .. } => e.lost(),
            PhaseError::Confirm(u) => matches!(u, Unconfirmed::Unreachable { .. }),
            PhaseError::ReadState(StateError::Unreadable(_)) | PhaseError::NoPort => false,
        }
    }

    /// `outcome` (the steps that ran) marked as stopped by this error.
    pub(super) fn stop(self, mut outcome: TargetOutcome) -> TargetOutcome {
        outcome.status = if self.lost() {
            TargetStatus::Unreachable
        } else {
            TargetStatus::Failed
        };
        outcome.failed_step = Some(self.phase().to_owned());
        outcome.error = Some(self.to_string());
        outcome
    }
}

/// After a failed verification: whether the tenant is back on its old color.
#[derive(Debug)]
pub(super) enum SwitchBack {
    /// a first deploy has no old color
    Nothing,
    /// back on the old color
    Done,
    /// switching back failed; the armed revert timer will do it
    TimerWill(ScriptError),
    /// switching back failed, and no timer is armed
    Failed(ScriptError),
}

impl std::fmt::Display for SwitchBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SwitchBack::Nothing => f.write_str("first deploy: nothing to switch back to"),
            SwitchBack::Done => f.write_str("switched back"),
            SwitchBack::TimerWill(e) => write!(
                f,
                "switching back failed ({e}); the host's revert timer will"
            ),
            SwitchBack::Failed(e) => write!(f, "switching back failed: {e}"),
        }
    }
}

/// One blue-green target under its lock: the phases in order, each timed.
pub(super) async fn deploy<C: Connector>(
    rollout: &Rollout<C>,
    task: &TargetTask<'_, C>,
    index: usize,
) -> TargetOutcome {
    let (tenant, host) = (task.tenant, task.host.name.as_str());
    let version = rollout.options.version.as_str();
    let mut phases = Phases::default();
    let started = Instant::now();
    let prepared = prepare(task, version).await;
    phases.since("state", started);
    let before = match prepared {
        Ok(Prepared::Live) => {
            let mut live = TargetOutcome::new(tenant, host, TargetStatus::Ok, None);
            live.phases = phases;
            return live;
        }
        Ok(Prepared::Deploy(before)) => before,
        Err(e) => return e.stop(TargetOutcome::new(tenant, host, TargetStatus::Failed, None)),
    };
    let idle = Color::idle(before.as_ref().map(|s| s.active));
    let target = &rollout.plans.of(idle).targets[index];
    let (options, secrets) = (&rollout.options.steps, &rollout.secrets);
    let at = Instant::now();
    let mut steps = run_target(&*task.conn, task.host, target, options, secrets).await;
    phases.extend(&Phases::of_steps_in(&steps.steps, at.elapsed()));
    if !steps.succeeded() {
        // Before the switch: the live color was never touched.
        steps.phases = phases;
        return steps;
    }
    let soaking = rollout.soaking.contains(&index);
    let result = match rollout.pending_switch(task, before, (idle, version), soaking) {
        None => Err(PhaseError::NoPort),
        Some(switch) => switch_over(rollout, task, &switch, soaking, &mut phases).await,
    };
    steps.phases = phases;
    match result {
        Ok(()) => TargetOutcome {
            status: TargetStatus::Changed,
            ..steps
        },
        Err(e) => e.stop(steps),
    }
}

/// The phases from the timer to the drain, once the idle color is deployed and
/// healthy, each timed into `phases`. A `soaking` canary stops after the switch (its
/// first weighted step) or its verification: the soak confirms or aborts it.
async fn switch_over<C: Connector>(
    rollout: &Rollout<C>,
    task: &TargetTask<'_, C>,
    switch: &Switch,
    soaking: bool,
    phases: &mut Phases,
) -> Result<(), PhaseError> {
    // Taken before the timer is armed, so this side's deadline is never later than
    // the host's.
    let armed_at = Instant::now();
    let armed = arm(task, switch).await;
    phases.since("arm", armed_at);
    let armed = armed?;
    let at = Instant::now();
    let switched = self::switch(task, switch).await;
    phases.since("switch", at);
    switched?;
    let weighted = switch.traffic.is_some_and(|t| t.weight.is_some());
    if soaking && weighted {
        // At 5 % the new release answers few requests through nginx: the canary's
        // steps judge it, and its last step (100 %) verifies it through the proxy.
        return Ok(());
    }
    let at = Instant::now();
    let verified = verify(task, switch, &rollout.options.version, armed).await;
    phases.since("verify", at);
    verified?;
    if soaking {
        return Ok(());
    }
    let at = Instant::now();
    let confirmed = if armed {
        confirm(rollout, task, switch, armed_at).await
    } else {
        finalize(task, switch).await
    };
    phases.since("confirm", at);
    confirmed?;
    let at = Instant::now();
    drain(rollout, task, switch.before.as_ref()).await;
    if rollout.options.drain.is_some() {
        phases.since("drain", at);
    }
    Ok(())
}

/// What [`prepare`] found.
enum Prepared {
    /// A resumed or repeated run: the tenant already serves this release, confirmed.
    Live,
    /// To deploy, from this state (`None` on a first deploy).
    Deploy(Option<TenantState>),
}

/// Reads the tenant's state; a target already live on `version` (a resumed run, a
/// repeated command) is left alone, its pending revert timer disarmed.
/// Half-seconds a resumed target's live color gets to answer through nginx.
const RESUME_PATIENCE: u32 = 24;

async fn prepare<C: Connector>(
    task: &TargetTask<'_, C>,
    version: &str,
) -> Result<Prepared, PhaseError> {
    // A canary a killed run left between two weights goes back to its old color
    // first: the rollout starts it over from a known weight.
    let settle = bluegreen::settle_weighted(task.tenant);
    let before = task
        .state_after(settle)
        .await
        .map_err(PhaseError::ReadState)?;
    let live = before.as_ref().is_some_and(|s| s.version == version);
    let serving = match &before {
        // Patience past nginx's fail_timeout (10 s): a new color that answered 503 before
        // the killed run died is skipped for the backup until then, and answers after.
        Some(state) if live => serves(task, state.active, version, RESUME_PATIENCE).await,
        _ => false,
    };
    if !serving {
        return Ok(Prepared::Deploy(before));
    }
    // A run killed between its switch and the confirmation left the revert timer
    // armed, and the old color behind the new one: the switch is live and verified
    // now, so disarm it and make it final.
    let port = before
        .as_ref()
        .zip(task.cx.base_port(task.tenant))
        .map(|(s, base)| s.active.port(base));
    let mut script = bluegreen::disarm(task.tenant);
    if let Some(port) = port {
        script = format!(
            "(\n{script}\n) || exit $?\n{}",
            bluegreen::settle_final(task.tenant, port)
        );
    }
    match task.run(script).await {
        Ok(_) => Ok(Prepared::Live),
        // The timer won the race: the host is back on the old color, so this target
        // is deployed like any other, from the state it is in now.
        Err(e) if e.status() == Some(REVERT_FIRED) => task
            .state()
            .await
            .map(Prepared::Deploy)
            .map_err(PhaseError::ReadState),
        Err(cause) => Err(PhaseError::Disarm {
            version: version.to_owned(),
            cause,
        }),
    }
}

/// Whether the tenant answers healthy with `version` through nginx (a worker: its
/// color's health command passes).
async fn serves<C: Connector>(
    task: &TargetTask<'_, C>,
    color: Color,
    version: &str,
    attempts: u32,
) -> bool {
    let check = live::verify_live(task.tenant, color, version, attempts);
    task.run(check).await.is_ok()
}

/// Arms the host-side revert timer when a deadline is set: unless confirmed in time,
/// the host switches back by itself. Whether a timer is armed.
async fn arm<C: Connector>(task: &TargetTask<'_, C>, switch: &Switch) -> Result<bool, PhaseError> {
    let Some(script) = switch.arm() else {
        return Ok(false);
    };
    task.run(script)
        .await
        .map(|_| true)
        .map_err(PhaseError::Arm)
}

/// Points nginx at the new color and records the state and the audit line.
async fn switch<C: Connector>(task: &TargetTask<'_, C>, switch: &Switch) -> Result<(), PhaseError> {
    if let Err(cause) = task.run(switch.switch()).await {
        // Nothing was switched: the timer must not "revert" it later.
        let _ = task.root(switch.confirm()).await;
        return Err(PhaseError::Switch(cause));
    }
    Ok(())
}

/// Checks the new color through the proxy (a worker: its health command); when it
/// does not answer, switches back.
async fn verify<C: Connector>(
    task: &TargetTask<'_, C>,
    switch: &Switch,
    version: &str,
    armed: bool,
) -> Result<(), PhaseError> {
    let check = live::verify_live(task.tenant, switch.after.active, version, 20);
    let Err(cause) = task.run(check).await else {
        return Ok(());
    };
    let back = match switch.revert_script("revert-after-failed-verify") {
        None => SwitchBack::Nothing,
        Some(revert) => match task.run(revert).await {
            Ok(_) => {
                let _ = task.root(switch.confirm()).await;
                SwitchBack::Done
            }
            Err(e) if armed => SwitchBack::TimerWill(e),
            Err(e) => SwitchBack::Failed(e),
        },
    };
    Err(PhaseError::Verify { cause, back })
}

/// Confirms the switch over a fresh connection before the timer's deadline, which
/// disarms the timer: proof that the control node still reaches the host.
async fn confirm<C: Connector>(
    rollout: &Rollout<C>,
    task: &TargetTask<'_, C>,
    switch: &Switch,
    armed_at: Instant,
) -> Result<(), PhaseError> {
    let Some(deadline) = rollout.options.revert_after else {
        return Ok(());
    };
    let within = deadline.saturating_sub(armed_at.elapsed());
    let connector = task.cx.pool.connector();
    let (script, limit) = (confirm_script(switch), task.cx.script_timeout);
    confirm_fresh(connector, task.host, &script, limit, within)
        .await
        .map_err(PhaseError::Confirm)
}

/// Disarms the timer and, once it is disarmed, makes the switch final (the old color
/// no longer behind the new one).
pub(super) fn confirm_script(switch: &Switch) -> String {
    match switch.finalize() {
        None => switch.confirm(),
        Some(finalize) => format!("(\n{}\n) || exit $?\n{finalize}", switch.confirm()),
    }
}

/// Without a revert timer there is nothing to disarm: the switch is made final.
async fn finalize<C: Connector>(
    task: &TargetTask<'_, C>,
    switch: &Switch,
) -> Result<(), PhaseError> {
    let Some(script) = switch.finalize() else {
        return Ok(());
    };
    task.run(script)
        .await
        .map(|_| ())
        .map_err(PhaseError::Switch)
}

/// With `--drain`, stops the old color once in-flight requests had time to finish;
/// otherwise it stays warm for an instant rollback.
pub(super) async fn drain<C: Connector>(
    rollout: &Rollout<C>,
    task: &TargetTask<'_, C>,
    before: Option<&TenantState>,
) {
    let (Some(drain), Some(old)) = (rollout.options.drain, before) else {
        return;
    };
    let unit = TenantLayout::of(task.tenant).unit(old.active);
    let script = bluegreen::stop_after_drain(&unit, drain);
    let _ = task.root_for(script, task.cx.script_timeout + drain).await;
}

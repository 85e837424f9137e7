//! Rollouts: targets in batches (canary first), a failure budget that halts the
//! rollout, per-tenant deploy locks, and for blue-green the switch of each target in
//! named phases ([`bluegreen`]). A failure before the switch leaves the live color
//! untouched; after it, drover switches back. No path leaves a tenant without a live
//! color.
//!
//! | concept | where |
//! |---|---|
//! | batches, budget, halt, the canary soak | here, [`soak`] |
//! | what every target task shares | [`context`] |
//! | the tenant's deploy lock | [`lock`] |
//! | a blue-green target, phase by phase | [`bluegreen`], [`confirm`] |
//! | switching back (`drover rollback`, soak failures, `--rollback-on-halt`) | [`rollback`] |

mod analysis;
mod bluegreen;
mod canary;
mod confirm;
mod context;
mod lock;
mod lock_wait;
mod prune;
mod rollback;
mod soak;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use context::Actor;
pub use rollback::{RollbackOptions, rollback};

use self::context::{Ctx, TargetTask};
use super::fan_out::fan_out;
use super::hooks::HookRunner;
use super::journal::Journal;
use super::target::{StepOptions, run_target};
use crate::config::hooks::HookPoint;
use crate::config::progressive::Progressive;
use crate::config::{FailureBudget, Host};
use crate::events::{Event, EventSender};
use crate::outcome::{Phases, TargetOutcome, TargetStatus, millis};
use crate::plan::Color;
use crate::plan::batch::Batches;
use crate::plan::render::{Plan, TargetPlan};
use crate::transport::Connector;

/// What a rollout deploys: the steps in place, or rendered for each color.
#[derive(Debug, Clone)]
pub enum Plans {
    /// One plan, deployed where it says (`--into`), under the tenant's lock.
    InPlace(Plan),
    /// Blue-green: a target gets the plan of its idle color, then nginx switches.
    BlueGreen {
        /// rendered for blue (the tenant's port)
        blue: Plan,
        /// rendered for green (the tenant's port + 1)
        green: Plan,
    },
}

impl Plans {
    /// The targets, in plan order (the same in every color).
    #[must_use]
    pub fn targets(&self) -> &[TargetPlan] {
        &self.first().targets
    }

    fn first(&self) -> &Plan {
        match self {
            Plans::InPlace(plan) | Plans::BlueGreen { blue: plan, .. } => plan,
        }
    }

    /// The plan rendered for `color` (in place: the one plan).
    fn of(&self, color: Color) -> &Plan {
        match (self, color) {
            (Plans::InPlace(plan), _) | (Plans::BlueGreen { blue: plan, .. }, Color::Blue) => plan,
            (Plans::BlueGreen { green, .. }, Color::Green) => green,
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = match self {
            Plans::InPlace(plan) => plan.secret_values.clone(),
            Plans::BlueGreen { blue, green } => blue
                .secret_values
                .iter()
                .chain(&green.secret_values)
                .cloned()
                .collect(),
        };
        secrets.sort();
        secrets.dedup();
        secrets
    }
}

/// Settings of a rollout.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// targets worked on at once, across hosts (`--forks`)
    pub forks: usize,
    /// dry run, diffs
    pub steps: StepOptions,
    /// who is acting, for locks and the audit log
    pub actor: Actor,
    /// failures tolerated before the rollout halts
    pub max_failures: FailureBudget,
    /// soak time after the canary batch, then its health is checked again
    pub pause: Duration,
    /// release being deployed (blue-green verifies it through the proxy)
    pub version: String,
    /// deadline of the self-reverting switch; `None` disables the timer
    pub revert_after: Option<Duration>,
    /// switch back the targets this run switched when it halts
    pub rollback_on_halt: bool,
    /// stop the old color after this drain period; `None` keeps it warm
    pub drain: Option<Duration>,
    /// per-attempt time limit of drover's own host scripts
    pub script_timeout: Duration,
    /// the playbook's hooks (`post-switch` runs here, per target)
    pub hooks: Option<Arc<HookRunner>>,
    /// after a successful switch or deploy, keep this many releases of the tenant
    /// (live ones always); `None` prunes nothing
    pub keep_releases: Option<u32>,
    /// after a successful switch or deploy, keep this many images of the container
    /// step's repository on the host (those a color names always); `None` prunes none
    pub keep_images: Option<crate::config::playbook::KeepImages>,
    /// weighted canary steps, fallback and traffic analysis
    pub progressive: Progressive,
}

/// Why a rollout stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaltReason {
    /// more failures than the budget allows
    Budget {
        /// failed targets so far
        failed: usize,
        /// failures allowed
        allowed: usize,
    },
    /// `drover halt`, Ctrl-C
    Requested,
}

impl std::fmt::Display for HaltReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaltReason::Budget { failed, allowed } => write!(
                f,
                "failure budget spent: {failed} target(s) failed, {allowed} allowed"
            ),
            HaltReason::Requested => f.write_str("halt requested"),
        }
    }
}

/// The result of a rollout.
#[derive(Debug, Clone)]
pub struct RolloutOutcome {
    /// per target, in plan order
    pub targets: Vec<TargetOutcome>,
    /// set when the rollout halted
    pub halted: Option<HaltReason>,
    /// targets this run switched back: canaries that failed their soak, and those
    /// switched back because of --rollback-on-halt
    pub rolled_back: Vec<String>,
}

/// A rollout in progress: what its target tasks share beyond [`Ctx`].
struct Rollout<C: Connector> {
    cx: Ctx<C>,
    plans: Plans,
    options: RolloutOptions,
    secrets: Vec<String>,
    halt: Arc<AtomicBool>,
    /// targets of the canary batch that soak afterwards: their switch stays pending
    /// (the old color behind the new one) until the soak passes
    soaking: HashSet<usize>,
    /// canaries switched back after a failed soak or an aborted step (`tenant@host`)
    soak_rolled_back: std::sync::Mutex<Vec<String>>,
}

/// Runs a rollout, batch after batch, and records it in `journal` (when given).
#[allow(clippy::too_many_arguments)] // the rollout's inputs, each its own concept
pub async fn rollout<C: Connector>(
    connector: Arc<C>,
    hosts: HashMap<String, Host>,
    plans: Plans,
    batches: &Batches,
    options: RolloutOptions,
    halt: Arc<AtomicBool>,
    events: EventSender,
    journal: Option<Arc<Journal>>,
) -> RolloutOutcome {
    let total = plans.targets().len();
    let _ = events.send(Event::RunStarted { hosts: total }).await;
    let cx = Ctx::new(
        connector,
        hosts,
        plans.first().base_ports.clone(),
        options.actor.clone(),
        options.script_timeout,
        events,
        journal,
    );
    for t in plans.targets() {
        cx.pool.expect(&t.host, 1).await;
    }
    let soaks = batches.iter().count() > 1 && !options.steps.dry_run && !options.pause.is_zero();
    let soaking = match &batches.canary {
        Some(canary) if soaks => canary.iter().copied().collect(),
        _ => HashSet::new(),
    };
    let rollout = Arc::new(Rollout {
        cx,
        soaking,
        secrets: plans.secrets(),
        plans,
        options,
        halt,
        soak_rolled_back: std::sync::Mutex::default(),
    });
    let (outcomes, halted) = rollout.batches(batches).await;
    rollout.finish(outcomes, halted).await
}

impl<C: Connector> Rollout<C> {
    /// Every batch in order until the last or a halt; the outcome of each target that
    /// ran, and why the rollout halted.
    async fn batches(
        self: &Arc<Self>,
        batches: &Batches,
    ) -> (Vec<Option<TargetOutcome>>, Option<HaltReason>) {
        let mut outcomes: Vec<Option<TargetOutcome>> = vec![None; self.plans.targets().len()];
        let allowed = self.options.max_failures.allowed(outcomes.len());
        let mut failed = 0usize;
        let list: Vec<&Vec<usize>> = batches.iter().collect();
        for (number, batch) in list.iter().enumerate() {
            if self.halt.load(Ordering::Relaxed) {
                return (outcomes, Some(HaltReason::Requested));
            }
            let _ = self
                .cx
                .events
                .send(Event::BatchStarted {
                    number: number + 1,
                    of: list.len(),
                    targets: batch.len(),
                })
                .await;
            let done = fan_out(batch.iter().copied(), self.options.forks, |i, _slot| {
                let rollout = Arc::clone(self);
                async move { (i, rollout.target(i, number + 1).await) }
            })
            .await;
            for (i, outcome) in done {
                failed += usize::from(outcome.counts_as_failure());
                outcomes[i] = Some(outcome);
            }
            let batches_left = number + 1 < list.len();
            // Halting means stopping early: past the last batch there is nothing left
            // to stop, and the failures speak for themselves (exit 1, not 3).
            if failed > allowed && batches_left {
                return (outcomes, Some(HaltReason::Budget { failed, allowed }));
            }
            let soaks = number == 0 && batches.canary.is_some() && batches_left;
            if soaks && !self.options.steps.dry_run && !self.options.pause.is_zero() {
                failed += self.soak(batch, &mut outcomes).await;
                if failed > allowed {
                    return (outcomes, Some(HaltReason::Budget { failed, allowed }));
                }
            }
        }
        (outcomes, None)
    }

    /// One target of batch `batch`, start to end: connected, locked, deployed,
    /// reported.
    async fn target(self: &Arc<Self>, index: usize, batch: usize) -> TargetOutcome {
        let plan = &self.plans.targets()[index];
        let started = Instant::now();
        self.cx.started(plan).await;
        let connected = self.cx.task(plan).await;
        let connect = millis(started.elapsed());
        let mut outcome = match connected {
            Err(outcome) => outcome,
            Ok(task) => self.deploy(&task, index).await,
        };
        outcome.duration_ms = millis(started.elapsed());
        outcome.batch = Some(batch);
        // The first target of a host pays for the login; the others find it open.
        let mut phases = Phases::default();
        phases.add("connect", connect);
        phases.extend(&outcome.phases);
        outcome.phases = phases;
        if outcome.status == TargetStatus::Changed && !self.options.steps.dry_run {
            self.post_switch(&outcome).await;
        }
        self.cx.finished(&outcome).await;
        self.cx.pool.done(&plan.host).await;
        outcome
    }

    /// The `post-switch` hook of a target now on the new release; its output is shown
    /// through the events, its failure changes nothing (the switch is done).
    async fn post_switch(&self, outcome: &TargetOutcome) {
        let Some(hooks) = &self.options.hooks else {
            return;
        };
        let env = [
            ("DROVER_TENANT", outcome.tenant.clone()),
            ("DROVER_HOST", outcome.host.clone()),
            ("DROVER_TARGETS", outcome.name()),
            ("DROVER_RESULT", "switched".to_string()),
        ];
        let target = Some(outcome.name());
        if let Some(ran) = hooks.fire(HookPoint::PostSwitch, target, &env).await {
            let _ = self.cx.events.send(Event::HookRan(Arc::new(ran))).await;
        }
    }

    /// The work of a target on its connection, by strategy.
    async fn deploy(&self, task: &TargetTask<'_, C>, index: usize) -> TargetOutcome {
        let (steps, secrets) = (&self.options.steps, &self.secrets);
        let at = Instant::now();
        let mut outcome = match &self.plans {
            Plans::InPlace(plan) if steps.dry_run => {
                run_target(&*task.conn, task.host, &plan.targets[index], steps, secrets).await
            }
            // The lock travels with the steps: usually one exec for the whole target.
            Plans::InPlace(plan) => {
                lock::with_steps(task, &plan.targets[index], steps, secrets).await
            }
            Plans::BlueGreen { blue, .. } if steps.dry_run => {
                run_target(&*task.conn, task.host, &blue.targets[index], steps, secrets).await
            }
            Plans::BlueGreen { .. } => return self.locked_switch(task, index).await,
        };
        outcome.phases = Phases::of_steps_in(&outcome.steps, at.elapsed());
        self.prune(task, &mut outcome).await;
        self.prune_images(task, &mut outcome).await;
        outcome
    }

    /// A blue-green target under its lock, the lock's time counted as phases too.
    async fn locked_switch(&self, task: &TargetTask<'_, C>, index: usize) -> TargetOutcome {
        let at = Instant::now();
        let guard = match lock::take(task).await {
            Err(refused) => return refused,
            Ok(guard) => guard,
        };
        let mut phases = Phases::default();
        phases.since("lock", at);
        let mut outcome = bluegreen::deploy(self, task, index).await;
        self.prune(task, &mut outcome).await;
        self.prune_images(task, &mut outcome).await;
        let at = Instant::now();
        lock::release(task, guard).await;
        phases.extend(&outcome.phases);
        phases.since("record", at);
        outcome.phases = phases;
        outcome
    }

    /// After a halt: switch back what this run switched (`--rollback-on-halt`); then
    /// the outcome of every target, those never started as skipped.
    async fn finish(
        &self,
        outcomes: Vec<Option<TargetOutcome>>,
        halted: Option<HaltReason>,
    ) -> RolloutOutcome {
        let cx = &self.cx;
        if halted.is_some() {
            let _ = cx.events.send(Event::Halting).await;
        }
        let mut rolled_back = self
            .soak_rolled_back
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        let blue_green = matches!(self.plans, Plans::BlueGreen { .. });
        if halted.is_some() && self.options.rollback_on_halt && blue_green {
            for outcome in outcomes.iter().flatten() {
                if outcome.status == TargetStatus::Changed
                    && rollback::switch_back(cx, &outcome.tenant, &outcome.host)
                        .await
                        .is_ok()
                {
                    rolled_back.push(outcome.name());
                }
            }
        }
        let targets = outcomes
            .into_iter()
            .zip(self.plans.targets())
            .map(|(o, plan)| {
                o.unwrap_or_else(|| {
                    let reason = halted
                        .as_ref()
                        .map_or("not started".to_string(), |h| format!("not started: {h}"));
                    TargetOutcome::new(
                        &plan.tenant,
                        &plan.host,
                        TargetStatus::Skipped,
                        Some(reason),
                    )
                })
            })
            .collect();
        if let Some(journal) = &cx.journal {
            match &halted {
                Some(reason) => journal.halted(&reason.to_string(), &rolled_back),
                None => journal.finished(),
            }
        }
        let _ = cx.events.send(Event::RunFinished).await;
        RolloutOutcome {
            targets,
            halted,
            rolled_back,
        }
    }
}

/// Current UTC time as RFC 3339 (seconds).
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests;

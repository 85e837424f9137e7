//! Rollouts: targets in batches (canary first), a failure budget that halts the
//! rollout, per-tenant deploy locks, and for blue-green the switch procedure:
//! lock → steps into the idle color → arm the self-reverting timer → switch nginx →
//! verify through the proxy → confirm over a fresh connection → record → unlock.
//! A failure before the switch leaves the live color untouched; after it, drover
//! switches back. No path leaves a tenant without a live color.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OnceCell, Semaphore};

use super::confirm::confirm_fresh;
use super::deploy::{
    DeployOptions, TargetOutcome, TargetStatus, as_root, become_refused, empty_outcome,
    sudo_refused,
};
use super::target::{Guard, Refused, enter_alone, run_guarded, run_target};
use crate::config::FailureBudget;
use crate::config::Host;
use crate::events::{Event, EventSender};
use crate::plan::batch::Batches;
use crate::plan::bluegreen::{self, LOCK_HELD, LockOwner, Switch, TenantState};
use crate::plan::render::{Plan, TargetPlan};
use crate::transport::{Connection, Connector, ExecOutput, RemoteCommand, TransportError};

/// How targets are updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The playbook in place (into one color), batches as configured.
    InPlace,
    /// Into the idle color, then switch nginx to it.
    BlueGreen,
}

/// Settings of a rollout.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// in place or blue-green
    pub strategy: Strategy,
    /// forks, per-host limit, dry-run, diff
    pub deploy: DeployOptions,
    /// failures tolerated before the rollout halts
    pub max_failures: FailureBudget,
    /// soak time after the canary batch, then its health is checked again
    pub pause: Duration,
    /// release being deployed (blue-green verifies it through the proxy)
    pub version: String,
    /// run id (journal, locks, audit)
    pub run: String,
    /// `user@machine`
    pub operator: String,
    /// take locks held by other runs (audited)
    pub force_unlock: bool,
    /// deadline of the self-reverting switch; `None` disables the timer
    pub revert_after: Option<Duration>,
    /// switch back the targets this run switched when it halts
    pub rollback_on_halt: bool,
    /// stop the old color after this drain period; `None` keeps it warm
    pub drain: Option<Duration>,
    /// per-attempt time limit of drover's own host scripts
    pub script_timeout: Duration,
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
            HaltReason::Budget { failed, allowed } => {
                write!(
                    f,
                    "failure budget spent: {failed} target(s) failed, {allowed} allowed"
                )
            }
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
    /// targets switched back because of --rollback-on-halt
    pub rolled_back: Vec<String>,
}

type Shared<C> = Arc<OnceCell<Result<Arc<<C as Connector>::Connection>, String>>>;

/// One connection per host for the whole rollout, opened on first use and closed when
/// the host's last target is done.
struct Pool<C: Connector> {
    connector: Arc<C>,
    cells: Mutex<HashMap<String, (Shared<C>, usize)>>,
}

impl<C: Connector> Pool<C> {
    async fn get(&self, host: &Host) -> Result<Arc<C::Connection>, String> {
        let cell = {
            let mut cells = self.cells.lock().await;
            Arc::clone(
                &cells
                    .entry(host.name.clone())
                    .or_insert_with(|| (Arc::new(OnceCell::new()), 0))
                    .0,
            )
        };
        cell.get_or_init(|| async {
            self.connector
                .connect(host)
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    async fn expect(&self, host: &str, targets: usize) {
        let mut cells = self.cells.lock().await;
        cells
            .entry(host.to_string())
            .or_insert_with(|| (Arc::new(OnceCell::new()), 0))
            .1 += targets;
    }

    async fn done(&self, host: &str) {
        let finished = {
            let mut cells = self.cells.lock().await;
            match cells.get_mut(host) {
                Some((_, left)) => {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        cells.remove(host).map(|(c, _)| c)
                    } else {
                        None
                    }
                }
                None => None,
            }
        };
        if let Some(cell) = finished
            && let Some(Ok(conn)) = Arc::try_unwrap(cell).ok().and_then(OnceCell::into_inner)
            && let Ok(conn) = Arc::try_unwrap(conn)
        {
            conn.close().await;
        }
    }
}

/// Everything a target task needs.
struct Ctx<C: Connector> {
    pool: Pool<C>,
    hosts: HashMap<String, Host>,
    options: RolloutOptions,
    secrets: Vec<String>,
    halt: Arc<AtomicBool>,
    events: EventSender,
    forks: Semaphore,
    base_ports: HashMap<String, u16>,
}

impl<C: Connector> Ctx<C> {
    fn new(
        connector: Arc<C>,
        hosts: HashMap<String, Host>,
        base_ports: HashMap<String, u16>,
        options: RolloutOptions,
        secrets: Vec<String>,
        halt: Arc<AtomicBool>,
        events: EventSender,
    ) -> Self {
        Self {
            pool: Pool {
                connector,
                cells: Mutex::new(HashMap::new()),
            },
            hosts,
            // Targets in flight at once across hosts (the --forks limit).
            forks: Semaphore::new(options.deploy.forks.max(1)),
            base_ports,
            options,
            secrets,
            halt,
            events,
        }
    }
}

/// Runs a rollout. `plans` holds the plan rendered per color ("blue", "green"); an
/// in-place rollout uses the first.
pub async fn rollout<C: Connector>(
    connector: Arc<C>,
    hosts: HashMap<String, Host>,
    plans: HashMap<String, Plan>,
    batches: &Batches,
    options: RolloutOptions,
    halt: Arc<AtomicBool>,
    events: EventSender,
) -> RolloutOutcome {
    let blue = plans
        .get("blue")
        .or_else(|| plans.values().next())
        .cloned()
        .unwrap_or_default();
    let total = blue.targets.len();
    let _ = events.send(Event::RunStarted { hosts: total }).await;
    let mut secrets: Vec<String> = plans
        .values()
        .flat_map(|p| p.secret_values.clone())
        .collect();
    secrets.sort();
    secrets.dedup();
    let ctx = Arc::new(Ctx::new(
        connector,
        hosts,
        blue.base_ports.clone(),
        options,
        secrets,
        halt,
        events,
    ));
    for t in &blue.targets {
        ctx.pool.expect(&t.host, 1).await;
    }
    let plans = Arc::new(plans);
    let allowed = ctx.options.max_failures.allowed(total);
    let mut outcomes: Vec<Option<TargetOutcome>> = vec![None; total];
    let mut failed = 0usize;
    let mut halted = None;
    let batch_list: Vec<&Vec<usize>> = batches.iter().collect();
    for (number, batch) in batch_list.iter().enumerate() {
        if ctx.halt.load(Ordering::Relaxed) && halted.is_none() {
            halted = Some(HaltReason::Requested);
        }
        if halted.is_some() {
            break;
        }
        let _ = ctx
            .events
            .send(Event::BatchStarted {
                number: number + 1,
                of: batch_list.len(),
                targets: batch.len(),
            })
            .await;
        let mut tasks = tokio::task::JoinSet::new();
        for &i in batch.iter() {
            let (ctx, plans) = (Arc::clone(&ctx), Arc::clone(&plans));
            tasks.spawn(async move { (i, run_one(&ctx, &plans, i).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, outcome)) = joined {
                if matches!(
                    outcome.status,
                    TargetStatus::Failed | TargetStatus::Unreachable
                ) {
                    failed += 1;
                }
                let _ = ctx
                    .events
                    .send(Event::TargetFinished(Arc::new(outcome.clone())))
                    .await;
                ctx.pool.done(&outcome.host).await;
                outcomes[i] = Some(outcome);
            }
        }
        let batches_left = number + 1 < batch_list.len();
        // Halting means stopping early: past the last batch there is nothing left to
        // stop, and the failures speak for themselves (exit 1, not 3).
        if failed > allowed && batches_left {
            halted = Some(HaltReason::Budget { failed, allowed });
            break;
        }
        let is_canary = number == 0 && batches.canary.is_some();
        if is_canary
            && !ctx.options.deploy.dry_run
            && !ctx.options.pause.is_zero()
            && number + 1 < batch_list.len()
        {
            // Soak, then check the canaries again: a release that passes its first
            // health check and dies later (a crash loop) is caught here.
            let _ = ctx
                .events
                .send(Event::Soaking {
                    seconds: ctx.options.pause.as_secs(),
                })
                .await;
            let until = Instant::now() + ctx.options.pause;
            while Instant::now() < until && !ctx.halt.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200).min(until - Instant::now())).await;
            }
            for &i in batch.iter() {
                let Some(outcome) = outcomes[i].as_mut() else {
                    continue;
                };
                if !matches!(outcome.status, TargetStatus::Ok | TargetStatus::Changed) {
                    continue;
                }
                if let Err(why) = recheck(&ctx, &blue.targets[i]).await {
                    // The canary's new color died after passing its first check: go
                    // back to the previous color (kept warm) so the tenant stays live.
                    let why = if ctx.options.strategy == Strategy::BlueGreen {
                        match rollback_target(&ctx, &blue.targets[i]).await {
                            Ok(now) => format!("{why}; switched back to {now}"),
                            Err(e) => format!("{why}; switching back failed: {e}"),
                        }
                    } else {
                        why
                    };
                    outcome.status = TargetStatus::Failed;
                    outcome.failed_step = Some("canary re-check".into());
                    outcome.error = Some(why);
                    failed += 1;
                    let _ = ctx
                        .events
                        .send(Event::TargetFinished(Arc::new(outcome.clone())))
                        .await;
                }
            }
            if failed > allowed {
                halted = Some(HaltReason::Budget { failed, allowed });
                break;
            }
        }
    }
    if halted.is_some() {
        let _ = ctx.events.send(Event::Halting).await;
    }
    let mut rolled_back = Vec::new();
    if halted.is_some()
        && ctx.options.rollback_on_halt
        && ctx.options.strategy == Strategy::BlueGreen
    {
        for (i, outcome) in outcomes.iter().enumerate() {
            let Some(outcome) = outcome else { continue };
            if outcome.status == TargetStatus::Changed {
                let target = &blue.targets[i];
                if rollback_target(&ctx, target).await.is_ok() {
                    rolled_back.push(format!("{}@{}", target.tenant, target.host));
                }
            }
        }
    }
    let targets = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| {
                let reason = halted
                    .as_ref()
                    .map_or("not started".to_string(), |h| format!("not started: {h}"));
                empty_outcome(&blue.targets[i], TargetStatus::Skipped, Some(reason))
            })
        })
        .collect();
    let _ = ctx.events.send(Event::RunFinished).await;
    RolloutOutcome {
        targets,
        halted,
        rolled_back,
    }
}

async fn exec_root<C: Connection>(
    conn: &C,
    host: &Host,
    script: String,
    timeout: Duration,
) -> Result<ExecOutput, TransportError> {
    conn.exec(&RemoteCommand::new(as_root(script, host), timeout))
        .await
}

/// Marks a target whose steps ran as failed at a later stage, keeping the step results.
fn fail_after(mut outcome: TargetOutcome, step: &str, why: String) -> TargetOutcome {
    outcome.status = TargetStatus::Failed;
    outcome.failed_step = Some(step.to_string());
    outcome.error = Some(why);
    outcome
}

fn fail(target: &TargetPlan, step: &str, why: String) -> TargetOutcome {
    let mut o = empty_outcome(target, TargetStatus::Failed, Some(why));
    o.failed_step = Some(step.to_string());
    o
}

async fn run_one<C: Connector>(
    ctx: &Arc<Ctx<C>>,
    plans: &HashMap<String, Plan>,
    index: usize,
) -> TargetOutcome {
    let _fork = ctx.forks.acquire().await;
    let blue = &plans["blue"].targets[index];
    let Some(host) = ctx.hosts.get(&blue.host) else {
        return fail(blue, "connect", "host not in inventory".into());
    };
    let _ = ctx
        .events
        .send(Event::HostStarted {
            host: format!("{}@{}", blue.tenant, blue.host),
        })
        .await;
    let started = Instant::now();
    let conn = match ctx.pool.get(host).await {
        Ok(c) => c,
        Err(e) => return empty_outcome(blue, TargetStatus::Unreachable, Some(e)),
    };
    let mut outcome = if ctx.options.deploy.dry_run {
        run_target(&*conn, host, blue, &ctx.options.deploy, &ctx.secrets).await
    } else {
        match ctx.options.strategy {
            // The lock travels with the steps: usually one exec for the whole target.
            Strategy::InPlace => {
                let guard = lock_guard(ctx, blue);
                let deploy = &ctx.options.deploy;
                run_guarded(&*conn, host, blue, deploy, &ctx.secrets, Some(&guard))
                    .await
                    .unwrap_or_else(|refused| lock_refused(host, blue, refused))
            }
            Strategy::BlueGreen => match locked(ctx, &*conn, host, blue).await {
                Err(outcome) => outcome,
                Ok(guard) => {
                    let outcome = bluegreen_target(ctx, &*conn, host, plans, index).await;
                    let _ = exec_root(&*conn, host, guard.leave, guard.timeout).await;
                    outcome
                }
            },
        }
    };
    outcome.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    outcome
}

/// The tenant's deploy lock for this run, as a guard around a target's steps.
fn lock_guard<C: Connector>(ctx: &Ctx<C>, target: &TargetPlan) -> Guard {
    let owner = LockOwner {
        run: ctx.options.run.clone(),
        operator: ctx.options.operator.clone(),
        since: now_rfc3339(),
    };
    Guard {
        enter: bluegreen::lock(&target.tenant, &owner, ctx.options.force_unlock),
        leave: bluegreen::unlock(&target.tenant, &ctx.options.run),
        timeout: ctx.options.script_timeout,
    }
}

/// Takes the tenant's lock on the host in an exec of its own, or explains who holds it.
/// The guard it returns releases the lock (`leave`).
async fn locked<C: Connector>(
    ctx: &Ctx<C>,
    conn: &C::Connection,
    host: &Host,
    target: &TargetPlan,
) -> Result<Guard, TargetOutcome> {
    let guard = lock_guard(ctx, target);
    match enter_alone(conn, host, &guard).await {
        Ok(()) => Ok(guard),
        Err(refused) => Err(lock_refused(host, target, refused)),
    }
}

/// The outcome of a target whose lock could not be taken: who holds it, or why not.
fn lock_refused(host: &Host, target: &TargetPlan, refused: Refused) -> TargetOutcome {
    match refused {
        Refused::Said {
            exit_status: Some(LOCK_HELD),
            stdout,
            ..
        } => {
            let (holder, age) = bluegreen::parse_lock_owner(&stdout);
            let verdict = holder_verdict(&holder.run, age);
            fail(
                target,
                "lock",
                format!(
                    "tenant {} on {} is locked by run {} (operator {}, since {}){verdict}; use --force-unlock if that run is gone",
                    target.tenant, target.host, holder.run, holder.operator, holder.since,
                ),
            )
        }
        Refused::Said {
            exit_status,
            stderr,
            ..
        } => {
            let why = if sudo_refused(&stderr) {
                become_refused(host, stderr.trim())
            } else if stderr.trim().is_empty() {
                match exit_status {
                    Some(code) => format!("cannot take the lock: the lock script exited {code}"),
                    None => "cannot take the lock: the lock script did not finish".into(),
                }
            } else {
                format!("cannot take the lock: {}", stderr.trim())
            };
            fail(target, "lock", why)
        }
        Refused::Lost(e) => empty_outcome(target, TargetStatus::Unreachable, Some(e.to_string())),
    }
}

/// Whether the run holding a lock is still alive, as far as this control node can tell:
/// its journal here says it ended, or its process (the run id ends with its pid) is
/// gone; else a lock older than 30 minutes is called stale.
fn holder_verdict(run: &str, age: Option<u64>) -> String {
    if super::journal::is_run_id(run)
        && let Ok(record) = super::journal::read(run)
    {
        if record.finished || record.halted {
            return " — that run has ended (its journal here says so); the lock is left over"
                .into();
        }
        let pid = run.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.contains("drover"));
            if !alive {
                return " — that run died (its journal here has no end and no drover process runs); `drover resume` it, or --force-unlock".into();
            }
        }
    }
    if age.is_some_and(|a| a > 1800) {
        " — the lock looks stale (older than 30 minutes), its run probably died".into()
    } else {
        String::new()
    }
}

async fn read_state<C: Connection>(
    conn: &C,
    host: &Host,
    tenant: &str,
    timeout: Duration,
) -> Result<Option<TenantState>, String> {
    let out = exec_root(conn, host, bluegreen::read_state(tenant), timeout)
        .await
        .map_err(|e| e.to_string())?;
    let text = out.stdout.text();
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("unreadable state file: {e}"))
}

async fn bluegreen_target<C: Connector>(
    ctx: &Arc<Ctx<C>>,
    conn: &C::Connection,
    host: &Host,
    plans: &HashMap<String, Plan>,
    index: usize,
) -> TargetOutcome {
    let timeout = ctx.options.script_timeout;
    let blue = &plans["blue"].targets[index];
    let mut before = match read_state(conn, host, &blue.tenant, timeout).await {
        Ok(s) => s,
        Err(e) => return fail(blue, "read state", e),
    };
    let version = ctx.options.version.clone();
    // Resume and re-runs: a target already live on this version is left alone.
    if let Some(state) = &before
        && state.version == version
    {
        let check = bluegreen::verify_through_proxy(&blue.tenant, &version, 2);
        if exec_root(conn, host, check, timeout)
            .await
            .is_ok_and(|o| o.exit_status == Some(0))
        {
            // A run killed between its switch and the confirmation left the revert
            // timer armed: the switch is live and verified now, so disarm it.
            let disarm = bluegreen::disarm(&blue.tenant);
            match exec_root(conn, host, disarm, timeout).await {
                Ok(o) if o.exit_status == Some(0) => {
                    let mut o = empty_outcome(blue, TargetStatus::Ok, None);
                    o.steps = Vec::new();
                    return o;
                }
                // The timer won the race: the host is back on the old color, so this
                // target is deployed like any other, from the state it is in now.
                Ok(o) if o.exit_status == Some(bluegreen::REVERT_FIRED) => {
                    before = match read_state(conn, host, &blue.tenant, timeout).await {
                        Ok(s) => s,
                        Err(e) => return fail(blue, "read state", e),
                    };
                }
                other => {
                    let why = other.map_or_else(|e| e.to_string(), |o| o.stderr.text());
                    return fail(
                        blue,
                        "disarm revert timer",
                        format!(
                            "live on {version}, but its revert timer may still fire: {}",
                            why.trim()
                        ),
                    );
                }
            }
        }
    }
    let idle = before
        .as_ref()
        .map_or("blue", |s| bluegreen::other(&s.active));
    let target = &plans[idle].targets[index];
    let mut outcome = run_target(conn, host, target, &ctx.options.deploy, &ctx.secrets).await;
    if outcome.status == TargetStatus::Failed || outcome.status == TargetStatus::Unreachable {
        // Before the switch: the live color was never touched.
        return outcome;
    }
    let Some(base) = ctx.base_ports.get(&target.tenant).copied() else {
        return fail(
            target,
            "switch",
            "blue-green needs the tenant's `port` in the inventory".into(),
        );
    };
    let after = TenantState {
        tenant: target.tenant.clone(),
        active: idle.to_string(),
        version: version.clone(),
        previous: before.as_ref().map(|s| s.active.clone()),
        previous_version: before.as_ref().map(|s| s.version.clone()),
        run: ctx.options.run.clone(),
        updated: now_rfc3339(),
    };
    let switch = Switch {
        tenant: target.tenant.clone(),
        base_port: base,
        before: before.clone(),
        after,
        run: ctx.options.run.clone(),
        operator: ctx.options.operator.clone(),
        revert_after: ctx.options.revert_after,
        action: "deploy".into(),
    };
    // Taken before the timer is armed, so this side's deadline is never later than
    // the host's.
    let armed_at = Instant::now();
    let armed = match switch.arm() {
        Some(script) => match exec_root(conn, host, script, timeout).await {
            Ok(o) if o.exit_status == Some(0) => true,
            Ok(o) => return fail_after(outcome, "arm revert timer", o.stderr.text()),
            Err(e) => return fail_after(outcome, "arm revert timer", e.to_string()),
        },
        None => false,
    };
    match exec_root(conn, host, switch.switch(), timeout).await {
        Ok(o) if o.exit_status == Some(0) => {}
        other => {
            let why = other.map_or_else(|e| e.to_string(), |o| o.stderr.text());
            let _ = exec_root(conn, host, switch.confirm(), timeout).await;
            return fail_after(
                outcome,
                "switch",
                format!(
                    "nginx switch failed, the live color is unchanged: {}",
                    why.trim()
                ),
            );
        }
    }
    let verify = bluegreen::verify_through_proxy(&target.tenant, &version, 20);
    let verified = exec_root(conn, host, verify, timeout).await;
    if !verified.as_ref().is_ok_and(|o| o.exit_status == Some(0)) {
        let why = verified.map_or_else(|e| e.to_string(), |o| o.stderr.text());
        let back = match switch.revert_script("revert-after-failed-verify") {
            None => "first deploy: nothing to switch back to".to_string(),
            Some(revert) => match exec_root(conn, host, revert, timeout).await {
                Ok(o) if o.exit_status == Some(0) => {
                    let _ = exec_root(conn, host, switch.confirm(), timeout).await;
                    "switched back".to_string()
                }
                Ok(o) if armed => format!(
                    "switching back failed ({}); the host's revert timer will",
                    o.stderr.text().trim()
                ),
                Err(e) if armed => {
                    format!("switching back failed ({e}); the host's revert timer will")
                }
                Ok(o) => format!("switching back failed: {}", o.stderr.text().trim()),
                Err(e) => format!("switching back failed: {e}"),
            },
        };
        return fail_after(
            outcome,
            "verify through proxy",
            format!("{}; {back}", why.trim()),
        );
    }
    if let (true, Some(revert_after)) = (armed, ctx.options.revert_after) {
        let within = revert_after.saturating_sub(armed_at.elapsed());
        let connector = &*ctx.pool.connector;
        let confirmed = confirm_fresh(connector, host, &switch.confirm(), timeout, within).await;
        if let Err(why) = confirmed {
            return fail_after(outcome, "confirm switch", why.to_string());
        }
    }
    if let (Some(drain), Some(old)) = (ctx.options.drain, before.as_ref()) {
        let service = format!("drover-{}-{}.service", target.tenant, old.active);
        let _ = exec_root(
            conn,
            host,
            bluegreen::stop_after_drain(&service, drain),
            timeout + drain,
        )
        .await;
    }
    outcome.status = TargetStatus::Changed;
    outcome
}

/// The canary re-check after the soak: the live color answers healthy through nginx
/// (blue-green) or the playbook's health step passes again (in place).
async fn recheck<C: Connector>(ctx: &Arc<Ctx<C>>, target: &TargetPlan) -> Result<(), String> {
    let host = ctx.hosts.get(&target.host).ok_or("host not in inventory")?;
    let conn = ctx.pool.get(host).await?;
    match ctx.options.strategy {
        Strategy::BlueGreen => {
            let state =
                read_state(&*conn, host, &target.tenant, ctx.options.script_timeout).await?;
            if let Some(state) = state {
                let check = bluegreen::soak_check(&target.tenant, &state.active);
                let out = exec_root(&*conn, host, check, ctx.options.script_timeout)
                    .await
                    .map_err(|e| e.to_string())?;
                if out.exit_status != Some(0) {
                    return Err(format!(
                        "unhealthy after the soak: {}",
                        out.stderr.text().trim()
                    ));
                }
            }
            let script = bluegreen::verify_through_proxy(&target.tenant, &ctx.options.version, 4);
            let out = exec_root(&*conn, host, script, ctx.options.script_timeout)
                .await
                .map_err(|e| e.to_string())?;
            if out.exit_status == Some(0) {
                Ok(())
            } else {
                Err(format!(
                    "unhealthy after the soak: {}",
                    out.stderr.text().trim()
                ))
            }
        }
        Strategy::InPlace => {
            let health: Vec<_> = target
                .steps
                .iter()
                .filter(|s| s.kind == "health" && s.spec.is_some())
                .cloned()
                .collect();
            let probe = TargetPlan {
                tenant: target.tenant.clone(),
                host: target.host.clone(),
                steps: health,
            };
            let out = run_target(&*conn, host, &probe, &ctx.options.deploy, &ctx.secrets).await;
            if out.status == TargetStatus::Failed {
                Err(format!(
                    "unhealthy after the soak: {}",
                    out.steps
                        .last()
                        .map(|s| s.stderr.trim().to_string())
                        .unwrap_or_default()
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// Switches a target back to its previous color: the previous color must answer its
/// health check directly first (it is kept warm; started if it was stopped).
async fn rollback_target<C: Connector>(
    ctx: &Arc<Ctx<C>>,
    target: &TargetPlan,
) -> Result<String, String> {
    let host = ctx.hosts.get(&target.host).ok_or("host not in inventory")?;
    let conn = ctx.pool.get(host).await?;
    let timeout = ctx.options.script_timeout;
    let state = read_state(&*conn, host, &target.tenant, timeout)
        .await?
        .ok_or("nothing deployed here yet")?;
    let (Some(previous), Some(previous_version)) =
        (state.previous.clone(), state.previous_version.clone())
    else {
        return Err("no previous color to go back to".into());
    };
    let base = ctx
        .base_ports
        .get(&target.tenant)
        .copied()
        .ok_or("tenant has no port")?;
    let port = bluegreen::color_port(base, &previous);
    let service = format!("drover-{}-{previous}.service", target.tenant);
    let start = format!(
        "systemctl is-active --quiet {svc} || systemctl start {svc}\ni=0\nwhile [ $i -lt 30 ]; do curl -fsS -m 2 http://127.0.0.1:{port}/health >/dev/null 2>&1 && exit 0; i=$((i+1)); sleep 0.5; done\necho 'previous color {previous} does not answer healthy on port {port}' >&2\nexit 1\n",
        svc = shell_escape::unix::escape(service.as_str().into()),
    );
    let out = exec_root(&*conn, host, start, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if out.exit_status != Some(0) {
        return Err(out.stderr.text().trim().to_string());
    }
    let after = TenantState {
        tenant: target.tenant.clone(),
        active: previous.clone(),
        version: previous_version.clone(),
        previous: Some(state.active.clone()),
        previous_version: Some(state.version.clone()),
        run: ctx.options.run.clone(),
        updated: now_rfc3339(),
    };
    let switch = Switch {
        tenant: target.tenant.clone(),
        base_port: base,
        before: Some(state),
        after,
        run: ctx.options.run.clone(),
        operator: ctx.options.operator.clone(),
        revert_after: None,
        action: "rollback".into(),
    };
    let out = exec_root(&*conn, host, switch.switch(), timeout)
        .await
        .map_err(|e| e.to_string())?;
    if out.exit_status != Some(0) {
        return Err(out.stderr.text().trim().to_string());
    }
    let verify = bluegreen::verify_through_proxy(&target.tenant, &previous_version, 20);
    let out = exec_root(&*conn, host, verify, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if out.exit_status != Some(0) {
        return Err(format!(
            "after switching back: {}",
            out.stderr.text().trim()
        ));
    }
    Ok(format!("{previous}@{previous_version}"))
}

/// `drover rollback`: every selected target back to its previous color, under its lock.
pub async fn rollback<C: Connector>(
    connector: Arc<C>,
    hosts: HashMap<String, Host>,
    plan: Plan,
    options: RolloutOptions,
    events: EventSender,
) -> Vec<TargetOutcome> {
    let _ = events
        .send(Event::RunStarted {
            hosts: plan.targets.len(),
        })
        .await;
    let ctx = Arc::new(Ctx::new(
        connector,
        hosts,
        plan.base_ports.clone(),
        options,
        Vec::new(),
        Arc::new(AtomicBool::new(false)),
        events.clone(),
    ));
    for t in &plan.targets {
        ctx.pool.expect(&t.host, 1).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in plan.targets.into_iter().enumerate() {
        let ctx = Arc::clone(&ctx);
        tasks.spawn(async move {
            let _fork = ctx.forks.acquire().await;
            let started = Instant::now();
            let mut outcome = match ctx.hosts.get(&target.host).cloned() {
                None => fail(&target, "connect", "host not in inventory".into()),
                Some(host) => match ctx.pool.get(&host).await {
                    Err(e) => empty_outcome(&target, TargetStatus::Unreachable, Some(e)),
                    Ok(conn) => match locked(&ctx, &*conn, &host, &target).await {
                        Err(o) => o,
                        Ok(guard) => {
                            let result = rollback_target(&ctx, &target).await;
                            let _ = exec_root(&*conn, &host, guard.leave, guard.timeout).await;
                            match result {
                                Ok(now) => {
                                    let mut o = empty_outcome(&target, TargetStatus::Changed, None);
                                    o.failed_step = None;
                                    o.error = None;
                                    o.steps.push(super::deploy::StepOutcome {
                                        name: format!("switch back to {now}"),
                                        kind: "rollback",
                                        status: super::deploy::StepStatus::Changed,
                                        attempts: 1,
                                        duration_ms: 0,
                                        exit_code: Some(0),
                                        stdout: String::new(),
                                        stderr: String::new(),
                                        diff: None,
                                    });
                                    o
                                }
                                Err(why) => fail(&target, "rollback", why),
                            }
                        }
                    },
                },
            };
            outcome.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let _ = ctx
                .events
                .send(Event::TargetFinished(Arc::new(outcome.clone())))
                .await;
            ctx.pool.done(&target.host).await;
            (i, outcome)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(pair) = joined {
            out.push(pair);
        }
    }
    let _ = events.send(Event::RunFinished).await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

/// Current UTC time as RFC 3339 (seconds).
#[must_use]
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

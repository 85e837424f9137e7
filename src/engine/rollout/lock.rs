//! The tenant's deploy lock on a host: taken before a target's first change, released
//! after its last, held by one run at a time (re-entrant for the same run id, so a
//! resumed run takes its own locks again). A refusal says who holds the lock and
//! whether that run is still alive, as far as this control node can tell.

use super::super::journal::{self, Liveness};
use super::super::root::{as_root, become_refused, sudo_refused};
use super::super::status::STALE_LOCK;
use super::super::target::{Guard, Refused, StepOptions, enter_alone, run_guarded};
use super::context::TargetTask;
use super::lock_wait::{Waiting, wait_again};
use crate::outcome::{TargetOutcome, TargetStatus};
use crate::plan::bluegreen::{self, LOCK_HELD, LockOwner};
use crate::plan::render::TargetPlan;
use crate::transport::{Connection as _, Connector, ExecOutput, RemoteCommand};

/// The tenant's lock for this run, as a guard around a target's work.
fn guard<C: Connector>(task: &TargetTask<'_, C>) -> Guard {
    let actor = &task.cx.actor;
    let owner = LockOwner {
        run: actor.run.clone(),
        operator: actor.operator.clone(),
        since: super::now_rfc3339(),
    };
    Guard {
        enter: bluegreen::lock(task.tenant, &owner, actor.force_unlock),
        leave: bluegreen::unlock(task.tenant, &actor.run),
        timeout: task.cx.script_timeout,
    }
}

/// An in-place target: its steps with the lock carried in their execs (usually one).
pub(super) async fn with_steps<C: Connector>(
    task: &TargetTask<'_, C>,
    target: &TargetPlan,
    options: &StepOptions,
    secrets: &[String],
) -> TargetOutcome {
    let guard = guard(task);
    let mut waiting = Waiting::of(task.cx.actor.lock_wait);
    loop {
        // A refusal is the lock's, before any step ran: trying again is safe.
        let tried = run_guarded(
            &*task.conn,
            task.host,
            target,
            options,
            secrets,
            Some(&guard),
        )
        .await;
        match tried {
            Ok(outcome) => return outcome,
            Err(refused) if wait_again(task, &refused, waiting.as_mut()).await => {}
            Err(refused) => return refusal(task, refused, waiting.as_ref()),
        }
    }
}

/// Takes the lock in an exec of its own, or says who holds it. The guard it returns
/// is given back to [`release`].
pub(super) async fn take<C: Connector>(task: &TargetTask<'_, C>) -> Result<Guard, TargetOutcome> {
    take_then(task, "").await.map(|(guard, _)| guard)
}

/// [`take`], and once the lock is held `then` runs in the same exec (one round trip
/// instead of two): the guard and what `then` printed.
pub(super) async fn take_then<C: Connector>(
    task: &TargetTask<'_, C>,
    then: &str,
) -> Result<(Guard, ExecOutput), TargetOutcome> {
    let guard = guard(task);
    // The lock script ends with `exit`: a subshell keeps `then` reachable, and its
    // refusal (LOCK_HELD, owner on stdout) still ends the exec.
    let enter = Guard {
        enter: format!("( {} ) || exit $?\n{then}", guard.enter),
        ..guard.clone()
    };
    let mut waiting = Waiting::of(task.cx.actor.lock_wait);
    loop {
        match enter_alone(&*task.conn, task.host, &enter).await {
            Ok(out) => return Ok((guard, out)),
            Err(refused) if wait_again(task, &refused, waiting.as_mut()).await => {}
            Err(refused) => return Err(refusal(task, refused, waiting.as_ref())),
        }
    }
}

/// Releases a lock taken with [`take`] (if this run still holds it).
pub(super) async fn release<C: Connector>(task: &TargetTask<'_, C>, guard: Guard) {
    let command = RemoteCommand::new(as_root(guard.leave, task.host), guard.timeout);
    let _ = task.conn.exec(&command).await;
}

/// The outcome of a target whose lock could not be taken: who holds it, or why not.
fn refusal<C: Connector>(
    task: &TargetTask<'_, C>,
    refused: Refused,
    waiting: Option<&Waiting>,
) -> TargetOutcome {
    let (tenant, host) = (task.tenant, task.host.name.as_str());
    let why = match refused {
        Refused::Said {
            exit_status: Some(LOCK_HELD),
            stdout,
            ..
        } => {
            let (holder, age) = bluegreen::parse_lock_owner(&stdout);
            let waited = waiting
                .and_then(Waiting::waited)
                .map_or_else(String::new, |w| format!(" (waited {}s)", w.as_secs()));
            format!(
                "tenant {tenant} on {host} is locked by run {} (operator {}, since {}){}{waited}; use --force-unlock if that run is gone",
                holder.run,
                holder.operator,
                holder.since,
                holder_verdict(&holder.run, age),
            )
        }
        Refused::Said {
            exit_status,
            stderr,
            ..
        } => {
            if sudo_refused(&stderr) {
                become_refused(task.host, stderr.trim())
            } else if !stderr.trim().is_empty() {
                format!("cannot take the lock: {}", stderr.trim())
            } else if let Some(code) = exit_status {
                format!("cannot take the lock: the lock script exited {code}")
            } else {
                "cannot take the lock: the lock script did not finish".into()
            }
        }
        Refused::Lost(e) => {
            return TargetOutcome::new(
                tenant,
                host,
                TargetStatus::Unreachable,
                Some(e.to_string()),
            );
        }
    };
    TargetOutcome::failed_at(tenant, host, "lock", why)
}

/// What this control node knows of the run holding a lock, as a clause for messages.
fn holder_verdict(run: &str, age: Option<u64>) -> String {
    match journal::liveness(run) {
        Liveness::Ended => {
            " — that run has ended (its journal here says so); the lock is left over".into()
        }
        Liveness::Died => " — that run died (its journal here has no end and no drover process runs); `drover resume` it, or --force-unlock".into(),
        Liveness::Running | Liveness::Unknown if age.is_some_and(|a| a > STALE_LOCK.as_secs()) => {
            " — the lock looks stale (older than 30 minutes), its run probably died".into()
        }
        Liveness::Running | Liveness::Unknown => String::new(),
    }
}

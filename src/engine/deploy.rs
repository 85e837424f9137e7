//! Deploys: the planned steps of every target, one connection per host, targets of a
//! host side by side (bounded), steps of a target in order. A failing step stops its
//! target; the other targets carry on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::{Become, Host};
use crate::events::{Event, EventSender};
use crate::plan::render::{Plan, TargetPlan};
use crate::transport::{Connection, Connector};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// already as wanted
    Ok,
    /// changed the host (or, in dry-run, would have)
    Changed,
    /// failed; the target stops here
    Failed,
    /// not run (`when` false, or an earlier step failed)
    Skipped,
}

/// How a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// every step ok, nothing changed
    Ok,
    /// every step ok, something changed
    Changed,
    /// a step failed
    Failed,
    /// the host could not be reached, or was lost
    Unreachable,
    /// not started (halted)
    Skipped,
}

/// One step's result on one target.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    /// step name
    pub name: String,
    /// step kind
    pub kind: &'static str,
    /// result
    pub status: StepStatus,
    /// attempts made
    pub attempts: u32,
    /// wall time of all attempts, ms
    pub duration_ms: u64,
    /// exit status of the last attempt
    pub exit_code: Option<u32>,
    /// output without drover's markers (secrets redacted)
    pub stdout: String,
    /// error output (secrets redacted)
    pub stderr: String,
    /// unified diff of a file step, with `--diff`
    pub diff: Option<String>,
}

/// One target's result.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutcome {
    /// tenant
    pub tenant: String,
    /// host
    pub host: String,
    /// result
    pub status: TargetStatus,
    /// step results, in order
    pub steps: Vec<StepOutcome>,
    /// the step that failed, if any
    pub failed_step: Option<String>,
    /// connection problem, if any
    pub error: Option<String>,
    /// wall time, ms
    pub duration_ms: u64,
}

/// Settings for [`deploy`].
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// hosts worked on at once
    pub forks: usize,
    /// targets of one host worked on at once
    pub max_per_host: usize,
    /// report what would change, change nothing
    pub dry_run: bool,
    /// show file diffs
    pub diff: bool,
}

/// Runs a plan. Outcomes come back in plan order.
pub async fn deploy<C: Connector>(
    connector: Arc<C>,
    hosts: &HashMap<String, Host>,
    plan: Plan,
    options: DeployOptions,
    halt: Arc<AtomicBool>,
    events: EventSender,
) -> Vec<TargetOutcome> {
    let _ = events
        .send(Event::RunStarted {
            hosts: plan.targets.len(),
        })
        .await;
    let secrets: Arc<Vec<String>> = Arc::new(plan.secret_values.clone());
    // Group targets by host, remembering their plan position.
    let mut by_host: Vec<(Host, Vec<(usize, TargetPlan)>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, target) in plan.targets.into_iter().enumerate() {
        let Some(host) = hosts.get(&target.host) else {
            continue;
        };
        let at = *index.entry(target.host.clone()).or_insert_with(|| {
            by_host.push((host.clone(), Vec::new()));
            by_host.len() - 1
        });
        by_host[at].1.push((i, target));
    }
    // A fork permit is held from connect to close: at most `forks` hosts at once.
    let forks = Arc::new(Semaphore::new(options.forks.max(1)));
    let options = Arc::new(options);
    let mut tasks = tokio::task::JoinSet::new();
    for (host, targets) in by_host {
        let Ok(permit) = Arc::clone(&forks).acquire_owned().await else {
            break;
        };
        let (connector, events, halt, options, secrets) = (
            Arc::clone(&connector),
            events.clone(),
            Arc::clone(&halt),
            Arc::clone(&options),
            Arc::clone(&secrets),
        );
        tasks.spawn(async move {
            let out = deploy_host(
                &*connector,
                host,
                targets,
                &options,
                &halt,
                &secrets,
                &events,
            )
            .await;
            drop(permit);
            out
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(list) = joined {
            outcomes.extend(list);
        }
    }
    let _ = events.send(Event::RunFinished).await;
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, o)| o).collect()
}

pub(crate) fn empty_outcome(
    target: &TargetPlan,
    status: TargetStatus,
    error: Option<String>,
) -> TargetOutcome {
    TargetOutcome {
        tenant: target.tenant.clone(),
        host: target.host.clone(),
        status,
        steps: Vec::new(),
        failed_step: None,
        error,
        duration_ms: 0,
    }
}

async fn deploy_host<C: Connector>(
    connector: &C,
    host: Host,
    targets: Vec<(usize, TargetPlan)>,
    options: &Arc<DeployOptions>,
    halt: &Arc<AtomicBool>,
    secrets: &Arc<Vec<String>>,
    events: &EventSender,
) -> Vec<(usize, TargetOutcome)> {
    let connection = match connector.connect(&host).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            let error = e.to_string();
            let mut out = Vec::new();
            for (i, t) in targets {
                let outcome = empty_outcome(&t, TargetStatus::Unreachable, Some(error.clone()));
                let _ = events
                    .send(Event::TargetFinished(Arc::new(outcome.clone())))
                    .await;
                out.push((i, outcome));
            }
            return out;
        }
    };
    let host = Arc::new(host);
    let per_host = Arc::new(Semaphore::new(options.max_per_host.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, target) in targets {
        let (connection, host, per_host, options, halt, secrets, events) = (
            Arc::clone(&connection),
            Arc::clone(&host),
            Arc::clone(&per_host),
            Arc::clone(options),
            Arc::clone(halt),
            Arc::clone(secrets),
            events.clone(),
        );
        tasks.spawn(async move {
            let _slot = per_host.acquire().await;
            let outcome = if halt.load(Ordering::Relaxed) {
                empty_outcome(
                    &target,
                    TargetStatus::Skipped,
                    Some("not started: the run was halted".into()),
                )
            } else {
                let _ = events
                    .send(Event::HostStarted {
                        host: format!("{}@{}", target.tenant, target.host),
                    })
                    .await;
                super::target::run_target(&*connection, &host, &target, &options, &secrets).await
            };
            let _ = events
                .send(Event::TargetFinished(Arc::new(outcome.clone())))
                .await;
            (i, outcome)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(pair) = joined {
            out.push(pair);
        }
    }
    if let Ok(connection) = Arc::try_unwrap(connection) {
        connection.close().await;
    }
    out
}

/// A script run as root: through `sudo -n` unless the host says `become = "none"`.
pub(crate) fn as_root(script: String, host: &Host) -> String {
    if host.r#become == Become::Sudo {
        format!(
            "sudo -n -- sh -c {}",
            shell_escape::unix::escape(script.into())
        )
    } else {
        script
    }
}

/// What an operator reads when `sudo -n` says no.
pub(crate) fn become_refused(host: &Host, stderr: &str) -> String {
    format!(
        "become failed: `sudo -n` was refused for {} on {} (drover needs password-less sudo, or become = \"none\")\n{stderr}",
        host.user.as_deref().unwrap_or("the login user"),
        host.name
    )
}

/// True when stderr says sudo refused to run without a password or a right.
pub(crate) fn sudo_refused(stderr: &str) -> bool {
    [
        "a password is required",
        "a terminal is required",
        "is not in the sudoers",
        "not allowed to execute",
        "sudo: command not found",
        "sudo: not found",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

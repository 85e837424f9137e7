//! One target's steps on an open connection: in order, stopping at the first failure.
//! Runs of steps that can share an exec go as one [`Chain`]; a step with retries or a
//! large input (over [`MAX_CHAINED_STDIN`]) goes alone, and a change of `become` starts
//! a new exec. A [`Guard`] (the tenant's deploy lock) travels in the first and last
//! chains when they can carry it, so a guarded target usually costs one exec.

mod exec;
mod groups;
mod image;
mod result;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::time::{Duration, Instant};

use self::exec::{run_alone, run_chain};
use self::groups::{chainable, groups};
use self::result::skipped;
use super::root::as_root;
use crate::config::{Become, Host};
use crate::outcome::{StepOutcome, StepStatus, TargetOutcome, TargetStatus, millis};
use crate::plan::render::TargetPlan;
use crate::plan::steps::{self, StepScript};
use crate::transport::{Connection, ExecOutput, RemoteCommand, TransportError};

/// How a target's steps run.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// report what would change, change nothing
    pub dry_run: bool,
    /// show file diffs
    pub diff: bool,
    /// the run's images (image steps): found, saved and pushed once for every host
    pub images: crate::engine::image::Images,
}

/// Root scripts around a target's steps: the tenant's deploy lock.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Runs before any step; a non-zero exit refuses the target and nothing else runs.
    pub(crate) enter: String,
    /// Runs after the steps however they ended (when `enter` succeeded).
    pub(crate) leave: String,
    /// Time limit of each.
    pub(crate) timeout: Duration,
}

/// Why a guarded target did not start.
#[derive(Debug)]
pub(crate) enum Refused {
    /// `enter` ran and said no, or `sudo` refused to run it.
    Said {
        /// its exit status
        exit_status: Option<u32>,
        /// its standard output
        stdout: String,
        /// its standard error
        stderr: String,
    },
    /// The connection failed before `enter` could answer.
    Lost(TransportError),
}

/// Runs a target's steps and reports each.
pub(crate) async fn run_target<C: Connection>(
    connection: &C,
    host: &Host,
    target: &TargetPlan,
    options: &StepOptions,
    secrets: &[String],
) -> TargetOutcome {
    match run_guarded(connection, host, target, options, secrets, None).await {
        Ok(outcome) => outcome,
        // Without a guard nothing can refuse.
        Err(_) => TargetOutcome::new(&target.tenant, &target.host, TargetStatus::Failed, None),
    }
}

/// Runs a target's steps inside `guard`: `enter` first (refusal ends the target before
/// any step), `leave` last. Both go in the steps' own first and last execs when those
/// run as root and are chains, else in execs of their own.
pub(crate) async fn run_guarded<C: Connection>(
    connection: &C,
    host: &Host,
    target: &TargetPlan,
    options: &StepOptions,
    secrets: &[String],
    guard: Option<&Guard>,
) -> Result<TargetOutcome, Refused> {
    let started = Instant::now();
    let scripts: Vec<Option<StepScript>> = target
        .steps
        .iter()
        .map(|s| {
            s.spec
                .as_ref()
                .map(|spec| steps::script(spec, options.dry_run, options.diff))
        })
        .collect();
    let execs = Execs::of(target, &scripts, host);
    let mut run = Steps {
        connection,
        host,
        target,
        scripts: &scripts,
        secrets,
        options,
        outcome: TargetOutcome::new(&target.tenant, &target.host, TargetStatus::Ok, None),
        entered: false,
        left: false,
        stopped: false,
    };
    for (index, group) in execs.groups.iter().enumerate() {
        let ends = match guard {
            Some(guard) if !run.stopped => run.ends(&execs, index, guard).await?,
            _ => Ends::default(),
        };
        run.exec(group, &execs.members[index], &ends).await?;
    }
    if let Some(guard) = guard
        && run.entered
        && !run.left
    {
        // The last chain did not carry `leave` or did not get to it: release here.
        let command = RemoteCommand::new(as_root(guard.leave.clone(), host), guard.timeout);
        let _ = connection.exec(&command).await;
    }
    run.outcome.duration_ms = millis(started.elapsed());
    Ok(run.outcome)
}

/// A target's steps cut into execs: each exec's steps, and those of them that run.
struct Execs {
    /// consecutive steps sharing an exec (see [`chain_end`])
    groups: Vec<Range<usize>>,
    /// the steps of each exec that run (not skipped by `when`)
    members: Vec<Vec<usize>>,
    /// the first and last execs that run anything (where the guard's ends go)
    first: Option<usize>,
    last: Option<usize>,
    /// whether each exec can carry the guard: its first step is chainable and runs
    /// as root
    carries: Vec<bool>,
}

impl Execs {
    fn of(target: &TargetPlan, scripts: &[Option<StepScript>], host: &Host) -> Self {
        let groups = groups(&target.steps, scripts);
        let members: Vec<Vec<usize>> = groups
            .iter()
            .map(|g| g.clone().filter(|&i| scripts[i].is_some()).collect())
            .collect();
        let carries = members
            .iter()
            .map(|m| {
                m.first().is_some_and(|&i| {
                    chainable(&target.steps, scripts, i)
                        && (target.steps[i].r#become || host.r#become == Become::None)
                })
            })
            .collect();
        Self {
            first: members.iter().position(|m| !m.is_empty()),
            last: members.iter().rposition(|m| !m.is_empty()),
            groups,
            members,
            carries,
        }
    }
}

/// A target's steps being run, and what has become of them so far.
struct Steps<'a, C> {
    connection: &'a C,
    host: &'a Host,
    target: &'a TargetPlan,
    scripts: &'a [Option<StepScript>],
    secrets: &'a [String],
    options: &'a StepOptions,
    outcome: TargetOutcome,
    /// the guard's `enter` ran (alone or carried)
    entered: bool,
    /// the guard's `leave` ran, carried by a chain
    left: bool,
    /// a step failed or the connection went: the rest is skipped
    stopped: bool,
}

impl<C: Connection> Steps<'_, C> {
    /// The guard's ends exec `index` carries; `enter` runs alone first when the first
    /// exec cannot carry it.
    async fn ends<'g>(
        &mut self,
        execs: &Execs,
        index: usize,
        guard: &'g Guard,
    ) -> Result<Ends<'g>, Refused> {
        let mut ends = Ends::default();
        if Some(index) == execs.first {
            if execs.carries[index] {
                ends.enter = Some(guard);
            } else {
                enter_alone(self.connection, self.host, guard).await?;
            }
            self.entered = true;
        }
        if Some(index) == execs.last && execs.carries[index] {
            ends.leave = Some(guard);
        }
        Ok(ends)
    }

    /// Runs one exec's steps (alone or as a chain) and records them.
    async fn exec(
        &mut self,
        group: &Range<usize>,
        members: &[usize],
        ends: &Ends<'_>,
    ) -> Result<(), Refused> {
        let carried = ends.enter.is_some() || ends.leave.is_some();
        let (connection, host, target) = (self.connection, self.host, self.target);
        let ran = match members {
            _ if self.stopped => Ok(Vec::new()),
            [] => Ok(Vec::new()),
            [one] if matches!(target.steps[*one].spec, Some(steps::StepSpec::Image { .. })) => {
                let (step, options) = (&target.steps[*one], self.options);
                image::run_image(connection, host, step, &options.images, options.dry_run)
                    .await
                    .map(|o| o.into_iter().collect())
                    .map_err(|e| (*one, e))
            }
            [one] if !carried => {
                let (step, script) = (&target.steps[*one], &self.scripts[*one]);
                run_alone(connection, host, step, script, self.secrets)
                    .await
                    .map(|o| o.into_iter().collect())
                    .map_err(|e| (*one, e))
            }
            _ => {
                let chained = run_chain(
                    connection,
                    host,
                    target,
                    members,
                    self.scripts,
                    self.secrets,
                    ends,
                )
                .await;
                match chained {
                    Ok(chained) => {
                        self.left |= chained.finally_ran;
                        if let Some(refused) = chained.refused {
                            return Err(refused);
                        }
                        Ok(chained.steps)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match ran {
            Ok(results) => self.record(group, results),
            Err((lost, e)) => self.record_lost(group, lost, &e),
        }
        Ok(())
    }

    /// Records an exec's step results in step order (steps that did not run: skipped).
    fn record(&mut self, group: &Range<usize>, results: Vec<StepOutcome>) {
        let mut results = results.into_iter();
        for step in &self.target.steps[group.clone()] {
            let result = if step.spec.is_none() || self.stopped {
                None
            } else {
                results.next()
            };
            let step_outcome = result.unwrap_or_else(|| skipped(step));
            match step_outcome.status {
                StepStatus::Failed => {
                    self.outcome.status = TargetStatus::Failed;
                    self.outcome.failed_step = Some(step.name.clone());
                    self.stopped = true;
                }
                StepStatus::Changed if self.outcome.status == TargetStatus::Ok => {
                    self.outcome.status = TargetStatus::Changed;
                }
                _ => {}
            }
            self.outcome.steps.push(step_outcome);
        }
    }

    /// The connection went during step `lost`: the target is unreachable; that step is
    /// named, not listed, and the exec's other steps are skipped.
    fn record_lost(&mut self, group: &Range<usize>, lost: usize, e: &TransportError) {
        self.outcome.status = TargetStatus::Unreachable;
        self.outcome.error = Some(e.to_string());
        self.outcome.failed_step = Some(self.target.steps[lost].name.clone());
        self.stopped = true;
        for i in group.clone().filter(|&i| i != lost) {
            self.outcome.steps.push(skipped(&self.target.steps[i]));
        }
    }
}

/// `enter` in an exec of its own.
pub(crate) async fn enter_alone<C: Connection>(
    connection: &C,
    host: &Host,
    guard: &Guard,
) -> Result<ExecOutput, Refused> {
    let command = RemoteCommand::new(as_root(guard.enter.clone(), host), guard.timeout);
    match connection.exec(&command).await {
        Ok(out) if out.exit_status == Some(0) && !out.timed_out => Ok(out),
        Ok(out) => Err(Refused::Said {
            exit_status: out.exit_status,
            stdout: out.stdout.text(),
            stderr: out.stderr.text(),
        }),
        Err(e) => Err(Refused::Lost(e)),
    }
}

/// The guard scripts a chain carries at its ends.
#[derive(Default)]
pub(super) struct Ends<'g> {
    pub(super) enter: Option<&'g Guard>,
    pub(super) leave: Option<&'g Guard>,
}

//! Running a target's steps on the connection: one step alone (with its retries), or
//! several as one chain carrying the guard's ends.

use std::time::{Duration, Instant};

use super::result::{Ran, finish, with_become};
use super::{Ends, Guard, Refused};
use crate::config::Host;
use crate::engine::chain::{Chain, Link, LinkOutput};
use crate::outcome::StepOutcome;
use crate::plan::render::{PlannedStep, TargetPlan};
use crate::plan::steps::StepScript;
use crate::transport::{Connection, ExecOutput, RemoteCommand, TransportError};

/// One step in its own exec, with its retries. On a lost connection, says which step.
pub(super) async fn run_alone<C: Connection>(
    connection: &C,
    host: &Host,
    step: &PlannedStep,
    script: &Option<StepScript>,
    secrets: &[String],
) -> Result<Option<StepOutcome>, TransportError> {
    let (Some(spec), Some(script)) = (&step.spec, script) else {
        return Ok(None);
    };
    let started = Instant::now();
    let command = RemoteCommand {
        script: with_become(script.script.clone(), step.r#become, host),
        timeout: step.timeout.unwrap_or(host.command_timeout),
        stdin: script.stdin.clone(),
        stdin_file: None,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let out = connection.exec(&command).await?;
        let ok = out.exit_status == Some(0) && !out.timed_out;
        if !ok && attempts <= step.retries {
            tokio::time::sleep(step.delay).await;
            continue;
        }
        let ran = Ran {
            exit_status: out.exit_status,
            timed_out: out.timed_out,
            timeout: command.timeout,
            stdout: out.stdout.text(),
            stderr: out.stderr.text(),
            attempts,
            duration: started.elapsed(),
        };
        return Ok(Some(finish(step, spec, host, ran, secrets)));
    }
}

/// What a chain did: its steps' outcomes, and what became of the guard it carried.
pub(super) struct Chained {
    pub(super) steps: Vec<StepOutcome>,
    /// `enter` was carried and said no: no step ran
    pub(super) refused: Option<Refused>,
    /// `leave` was carried and ran
    pub(super) finally_ran: bool,
}

/// Several steps in one exec, with the guard's ends it carries. On a lost connection,
/// says which step was running.
pub(super) async fn run_chain<C: Connection>(
    connection: &C,
    host: &Host,
    target: &TargetPlan,
    members: &[usize],
    scripts: &[Option<StepScript>],
    secrets: &[String],
    ends: &Ends<'_>,
) -> Result<Chained, (usize, TransportError)> {
    let started = Instant::now();
    let links = chain_links(host, target, members, scripts, ends);
    let chain = match ends.leave {
        Some(g) => Chain::with_finally(&links, &guard_link(g, &g.leave)),
        None => Chain::new(&links),
    };
    let command = RemoteCommand {
        script: with_become(
            chain.script.clone(),
            target.steps[members[0]].r#become,
            host,
        ),
        timeout: chain.timeout,
        stdin: chain.stdin.clone(),
        stdin_file: None,
    };
    let out = connection
        .exec(&command)
        .await
        .map_err(|e| (members[0], e))?;
    let (stdout, stderr) = (out.stdout.text(), out.stderr.text());
    let finally_ran = ends.leave.is_some() && chain.finally_ran(&stdout);
    let mut parts = chain.split(&stdout, &stderr, links.len());
    if parts.is_empty() {
        // Nothing of the chain ran (`sudo` refused, no shell): the first link failed
        // with everything that was printed.
        parts.push(LinkOutput {
            exit_status: out.exit_status,
            stdout,
            stderr,
            duration: None,
        });
    }
    if ends.enter.is_some() {
        let enter = parts.remove(0);
        if enter.exit_status != Some(0) {
            let refused = Refused::Said {
                exit_status: enter.exit_status,
                stdout: enter.stdout,
                stderr: enter.stderr,
            };
            return Ok(Chained {
                steps: Vec::new(),
                refused: Some(refused),
                finally_ran,
            });
        }
    }
    let step_links = &links[links.len() - members.len()..];
    let count = parts.len();
    let steps = parts
        .into_iter()
        .enumerate()
        .filter_map(|(n, part)| {
            let step = &target.steps[members[n]];
            let spec = step.spec.as_ref()?;
            let ran = chained_part(part, &out, step_links[n].timeout, n + 1 == count, started);
            Some(finish(step, spec, host, ran, secrets))
        })
        .collect();
    Ok(Chained {
        steps,
        refused: None,
        finally_ran,
    })
}

/// The links of a chain: the guard's `enter` when carried, then the steps.
fn chain_links<'a>(
    host: &Host,
    target: &TargetPlan,
    members: &[usize],
    scripts: &'a [Option<StepScript>],
    ends: &Ends<'a>,
) -> Vec<Link<'a>> {
    let enter = ends.enter.map(|g| guard_link(g, &g.enter));
    let steps = members.iter().map(|&i| Link {
        script: scripts[i].as_ref().map_or("", |s| s.script.as_str()),
        timeout: target.steps[i].timeout.unwrap_or(host.command_timeout),
        stdin: scripts[i].as_ref().and_then(|s| s.stdin.as_deref()),
    });
    enter.into_iter().chain(steps).collect()
}

fn guard_link<'a>(guard: &Guard, script: &'a str) -> Link<'a> {
    Link {
        script,
        timeout: guard.timeout,
        stdin: None,
    }
}

/// What one step did inside a chain (`out` is the whole chain's exec).
fn chained_part(
    part: LinkOutput,
    out: &ExecOutput,
    limit: Duration,
    last: bool,
    started: Instant,
) -> Ran {
    let exit_status = match part.exit_status {
        // The chain exited 0 only if every step did: a step whose marker was lost
        // past the output cap still succeeded.
        None if out.exit_status == Some(0) => Some(0),
        other => other,
    };
    let duration = part.duration.unwrap_or_else(|| {
        if last {
            started.elapsed()
        } else {
            Duration::ZERO
        }
    });
    // `timeout` exits 124 (TERM) or 137 (KILL after the grace period).
    let timed_out = (last && out.timed_out)
        || (matches!(exit_status, Some(124 | 137))
            && duration + Duration::from_millis(200) >= limit);
    Ran {
        exit_status,
        timed_out,
        timeout: limit,
        stdout: part.stdout,
        stderr: part.stderr,
        attempts: 1,
        duration,
    }
}

//! One target's steps on an open connection: in order, stopping at the first failure.
//! Runs of steps that can share an exec go as one [`Chain`]; a step with retries or a
//! large input (over [`MAX_CHAINED_STDIN`]) goes alone, and a change of `become` starts
//! a new exec. A [`Guard`] (the tenant's deploy lock) travels in the first and last
//! chains when they can carry it, so a guarded target usually costs one exec.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::chain::{Chain, Link, LinkOutput};
use super::root::{as_root, become_refused, sudo_refused};
use crate::config::{Become, Host};
use crate::outcome::{StepOutcome, StepStatus, TargetOutcome, TargetStatus};
use crate::plan::render::{PlannedStep, TargetPlan};
use crate::plan::steps::{self, CHANGED_MARKER, CURRENT_MARKER, StepScript, StepSpec};
use crate::transport::{Connection, RemoteCommand, TransportError};

/// How a target's steps run.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOptions {
    /// report what would change, change nothing
    pub dry_run: bool,
    /// show file diffs
    pub diff: bool,
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
    let mut outcome = TargetOutcome::new(&target.tenant, &target.host, TargetStatus::Ok, None);
    let scripts: Vec<Option<StepScript>> = target
        .steps
        .iter()
        .map(|s| {
            s.spec
                .as_ref()
                .map(|spec| steps::script(spec, options.dry_run, options.diff))
        })
        .collect();
    let groups = groups(&target.steps, &scripts);
    // The steps of each exec that run (not skipped by `when`).
    let members: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| g.clone().filter(|&i| scripts[i].is_some()).collect())
        .collect();
    let first_exec = members.iter().position(|m| !m.is_empty());
    let last_exec = members.iter().rposition(|m| !m.is_empty());
    // A chain can carry the guard when its first step is chainable and runs as root.
    let carries = |members: &[usize]| {
        members.first().is_some_and(|&i| {
            chainable(&target.steps, &scripts, i)
                && (target.steps[i].r#become || host.r#become == Become::None)
        })
    };
    let (mut entered, mut left) = (false, false);
    let mut stopped = false;
    for (gi, (group, members)) in groups.iter().zip(&members).enumerate() {
        let mut ends = Ends::default();
        if let Some(guard) = guard
            && !stopped
        {
            if Some(gi) == first_exec {
                if carries(members) {
                    ends.enter = Some(guard);
                } else {
                    enter_alone(connection, host, guard).await?;
                }
                entered = true;
            }
            if Some(gi) == last_exec && carries(members) {
                ends.leave = Some(guard);
            }
        }
        let carried = ends.enter.is_some() || ends.leave.is_some();
        let ran = match members.as_slice() {
            _ if stopped => Ok(Vec::new()),
            [] => Ok(Vec::new()),
            [one] if !carried => run_alone(
                connection,
                host,
                &target.steps[*one],
                &scripts[*one],
                secrets,
            )
            .await
            .map(|o| o.into_iter().collect())
            .map_err(|e| (*one, e)),
            _ => match run_chain(connection, host, target, members, &scripts, secrets, &ends).await
            {
                Ok(chained) => {
                    left |= chained.finally_ran;
                    if let Some(refused) = chained.refused {
                        return Err(refused);
                    }
                    Ok(chained.steps)
                }
                Err(e) => Err(e),
            },
        };
        let mut ran = match ran {
            Ok(list) => list.into_iter(),
            Err((lost, e)) => {
                // The step that was running when the connection went is named, not listed.
                outcome.status = TargetStatus::Unreachable;
                outcome.error = Some(e.to_string());
                outcome.failed_step = Some(target.steps[lost].name.clone());
                stopped = true;
                for (i, step) in target
                    .steps
                    .iter()
                    .enumerate()
                    .take(group.end)
                    .skip(group.start)
                {
                    if i != lost {
                        outcome.steps.push(skipped(step));
                    }
                }
                continue;
            }
        };
        for step in &target.steps[group.clone()] {
            let result = if step.spec.is_none() || stopped {
                None
            } else {
                ran.next()
            };
            let step_outcome = result.unwrap_or_else(|| skipped(step));
            match step_outcome.status {
                StepStatus::Failed => {
                    outcome.status = TargetStatus::Failed;
                    outcome.failed_step = Some(step.name.clone());
                    stopped = true;
                }
                StepStatus::Changed if outcome.status == TargetStatus::Ok => {
                    outcome.status = TargetStatus::Changed;
                }
                _ => {}
            }
            outcome.steps.push(step_outcome);
        }
    }
    if let Some(guard) = guard
        && entered
        && !left
    {
        // The last chain did not carry `leave` or did not get to it: release here.
        let command = RemoteCommand::new(as_root(guard.leave.clone(), host), guard.timeout);
        let _ = connection.exec(&command).await;
    }
    outcome.duration_ms = millis(started.elapsed());
    Ok(outcome)
}

/// `enter` in an exec of its own.
pub(crate) async fn enter_alone<C: Connection>(
    connection: &C,
    host: &Host,
    guard: &Guard,
) -> Result<(), Refused> {
    let command = RemoteCommand::new(as_root(guard.enter.clone(), host), guard.timeout);
    match connection.exec(&command).await {
        Ok(out) if out.exit_status == Some(0) && !out.timed_out => Ok(()),
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
struct Ends<'g> {
    enter: Option<&'g Guard>,
    leave: Option<&'g Guard>,
}

/// The target's steps cut into execs, in order (see [`chain_end`]).
fn groups(steps: &[PlannedStep], scripts: &[Option<StepScript>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < steps.len() {
        let end = chain_end(steps, scripts, at);
        out.push(at..end);
        at = end;
    }
    out
}

/// Larger inputs (release uploads) go in their own exec: `dd` holds a step's input in
/// memory on the host while handing it over.
const MAX_CHAINED_STDIN: usize = 4 << 20;

/// Whether step `i` can run inside a chain: it runs (not skipped), has no retries and a
/// small input.
fn chainable(steps: &[PlannedStep], scripts: &[Option<StepScript>], i: usize) -> bool {
    scripts[i].as_ref().is_some_and(|s| {
        s.stdin
            .as_ref()
            .is_none_or(|b| b.len() <= MAX_CHAINED_STDIN)
            && steps[i].retries == 0
    })
}

/// End (exclusive) of the chain that starts at `at`: the following steps that can share
/// its exec. Steps skipped by `when` do not break a chain.
fn chain_end(steps: &[PlannedStep], scripts: &[Option<StepScript>], at: usize) -> usize {
    let chainable = |i: usize| chainable(steps, scripts, i);
    if !chainable(at) {
        return at + 1;
    }
    let mut end = at + 1;
    while end < steps.len()
        && (scripts[end].is_none() || (chainable(end) && steps[end].r#become == steps[at].r#become))
    {
        end += 1;
    }
    end
}

fn skipped(step: &PlannedStep) -> StepOutcome {
    StepOutcome {
        name: step.name.clone(),
        kind: step.kind,
        status: StepStatus::Skipped,
        attempts: 0,
        duration_ms: 0,
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        diff: None,
    }
}

/// One step in its own exec, with its retries. On a lost connection, says which step.
async fn run_alone<C: Connection>(
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
struct Chained {
    steps: Vec<StepOutcome>,
    /// `enter` was carried and said no: no step ran
    refused: Option<Refused>,
    /// `leave` was carried and ran
    finally_ran: bool,
}

/// Several steps in one exec, with the guard's ends it carries. On a lost connection,
/// says which step was running.
async fn run_chain<C: Connection>(
    connection: &C,
    host: &Host,
    target: &TargetPlan,
    members: &[usize],
    scripts: &[Option<StepScript>],
    secrets: &[String],
    ends: &Ends<'_>,
) -> Result<Chained, (usize, TransportError)> {
    let started = Instant::now();
    let enter = ends.enter.map(|g| Link {
        script: g.enter.as_str(),
        timeout: g.timeout,
        stdin: None,
    });
    let step_links = members.iter().map(|&i| Link {
        script: scripts[i].as_ref().map_or("", |s| s.script.as_str()),
        timeout: target.steps[i].timeout.unwrap_or(host.command_timeout),
        stdin: scripts[i].as_ref().and_then(|s| s.stdin.as_deref()),
    });
    let links: Vec<Link<'_>> = enter.into_iter().chain(step_links).collect();
    let chain = match ends.leave {
        Some(g) => Chain::with_finally(
            &links,
            &Link {
                script: g.leave.as_str(),
                timeout: g.timeout,
                stdin: None,
            },
        ),
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
            return Ok(Chained {
                steps: Vec::new(),
                refused: Some(Refused::Said {
                    exit_status: enter.exit_status,
                    stdout: enter.stdout,
                    stderr: enter.stderr,
                }),
                finally_ran,
            });
        }
    }
    let step_links = &links[links.len() - members.len()..];
    let mut outcomes = Vec::new();
    let count = parts.len();
    for (n, part) in parts.into_iter().enumerate() {
        let i = members[n];
        let step = &target.steps[i];
        let Some(spec) = &step.spec else { continue };
        let last = n + 1 == count;
        let exit_status = match part.exit_status {
            // The chain exited 0 only if every step did: a step whose marker was lost
            // past the output cap still succeeded.
            None if out.exit_status == Some(0) => Some(0),
            other => other,
        };
        let limit = step_links[n].timeout;
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
        let ran = Ran {
            exit_status,
            timed_out,
            timeout: limit,
            stdout: part.stdout,
            stderr: part.stderr,
            attempts: 1,
            duration,
        };
        outcomes.push(finish(step, spec, host, ran, secrets));
    }
    Ok(Chained {
        steps: outcomes,
        refused: None,
        finally_ran,
    })
}

/// What a step's exec (or its part of a chain) produced.
struct Ran {
    exit_status: Option<u32>,
    timed_out: bool,
    timeout: Duration,
    stdout: String,
    stderr: String,
    attempts: u32,
    duration: Duration,
}

/// Reads a step's output: drover's markers, the `--diff` of a file, secrets redacted.
fn finish(
    step: &PlannedStep,
    spec: &StepSpec,
    host: &Host,
    ran: Ran,
    secrets: &[String],
) -> StepOutcome {
    let ok = ran.exit_status == Some(0) && !ran.timed_out;
    let mut stderr = redact(&ran.stderr, secrets);
    if ran.timed_out {
        stderr.push_str(&format!(
            "\n[drover] step timed out after {}s",
            ran.timeout.as_secs_f64()
        ));
    }
    if !ok && step.r#become && host.r#become == Become::Sudo && sudo_refused(&stderr) {
        stderr = become_refused(host, &stderr);
    }
    let (body, current) = match ran.stdout.split_once(&format!("{CURRENT_MARKER}\n")) {
        Some((body, current)) => (body.to_string(), Some(current.to_string())),
        None => (ran.stdout.clone(), None),
    };
    let changed = body.lines().any(|l| l == CHANGED_MARKER);
    let cleaned: String = body
        .lines()
        .filter(|l| *l != CHANGED_MARKER)
        .map(|l| format!("{l}\n"))
        .collect();
    let diff = match (spec, current, changed) {
        (
            StepSpec::File {
                dest,
                content,
                secret: false,
                ..
            },
            Some(current),
            true,
        ) => {
            let new = String::from_utf8_lossy(content);
            Some(
                similar::TextDiff::from_lines(current.as_str(), new.as_ref())
                    .unified_diff()
                    .context_radius(3)
                    .header(dest, dest)
                    .to_string(),
            )
        }
        _ => None,
    };
    StepOutcome {
        name: step.name.clone(),
        kind: step.kind,
        status: match (ok, changed) {
            (false, _) => StepStatus::Failed,
            (true, true) => StepStatus::Changed,
            (true, false) => StepStatus::Ok,
        },
        attempts: ran.attempts,
        duration_ms: millis(ran.duration),
        exit_code: ran.exit_status,
        stdout: redact(&cleaned, secrets),
        stderr,
        diff: diff.map(|d| redact(&d, secrets)),
    }
}

/// Wraps a script for `become`: root through `sudo -n` (never prompts).
fn with_become(script: String, r#become: bool, host: &Host) -> String {
    if r#become {
        as_root(script, host)
    } else {
        script
    }
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::AsyncWriteExt as _;

    use super::*;
    use crate::config::{Inventory, SourceFile};
    use crate::plan::steps::Ownership;
    use crate::transport::{Captured, ExecOutput};

    /// Runs commands with the local `sh`, as a host's login shell would, and counts them.
    #[derive(Default)]
    struct LocalShell {
        execs: AtomicUsize,
    }

    impl Connection for LocalShell {
        async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
            self.execs.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            let mut child = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(command.wrapped())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            let mut stdin = child.stdin.take().expect("stdin");
            if let Some(bytes) = &command.stdin {
                let _ = stdin.write_all(bytes).await;
            }
            drop(stdin);
            let out = child.wait_with_output().await.expect("wait");
            Ok(ExecOutput {
                exit_status: out.status.code().and_then(|c| u32::try_from(c).ok()),
                signal: None,
                stdout: Captured {
                    bytes: out.stdout,
                    dropped: 0,
                },
                stderr: Captured {
                    bytes: out.stderr,
                    dropped: 0,
                },
                timed_out: false,
                duration: started.elapsed(),
            })
        }

        async fn close(self) {}
    }

    fn host() -> Host {
        let text = "[hosts.web-1]\naddress = \"127.0.0.1\"\nbecome = \"none\"\n";
        Inventory::from_sources(vec![SourceFile::new("t.toml", text.to_string())])
            .unwrap()
            .hosts
            .remove(0)
    }

    fn step(name: &str, spec: Option<StepSpec>) -> PlannedStep {
        PlannedStep {
            name: name.into(),
            kind: "run",
            spec,
            retries: 0,
            delay: Duration::ZERO,
            timeout: None,
            r#become: false,
        }
    }

    fn run(name: &str, script: &str) -> PlannedStep {
        step(
            name,
            Some(StepSpec::Run {
                script: script.into(),
                creates: None,
                unless: None,
            }),
        )
    }

    fn target(steps: Vec<PlannedStep>) -> TargetPlan {
        TargetPlan {
            tenant: "acme".into(),
            host: "web-1".into(),
            steps,
        }
    }

    fn options() -> StepOptions {
        StepOptions::default()
    }

    async fn deploy(plan: &TargetPlan) -> (TargetOutcome, usize) {
        let shell = LocalShell::default();
        let outcome = run_target(&shell, &host(), plan, &options(), &[]).await;
        (outcome, shell.execs.load(Ordering::SeqCst))
    }

    fn statuses(outcome: &TargetOutcome) -> Vec<StepStatus> {
        outcome.steps.iter().map(|s| s.status).collect()
    }

    #[tokio::test]
    async fn a_targets_steps_share_one_exec_and_a_second_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("app");
        let base = base.to_str().unwrap();
        let plan = target(vec![
            step(
                "dir",
                Some(StepSpec::Dir {
                    path: base.into(),
                    ownership: Ownership::default(),
                }),
            ),
            step(
                "file",
                Some(StepSpec::File {
                    dest: format!("{base}/motd"),
                    content: b"hello\n".to_vec(),
                    ownership: Ownership::default(),
                    secret: false,
                    on_change: None,
                }),
            ),
            step(
                "marker",
                Some(StepSpec::Run {
                    script: format!("echo ran; date > {base}/marker"),
                    creates: Some(format!("{base}/marker")),
                    unless: None,
                }),
            ),
        ]);
        let (first, execs) = deploy(&plan).await;
        assert_eq!(execs, 1, "three steps, one exec");
        assert_eq!(first.status, TargetStatus::Changed, "{first:#?}");
        assert_eq!(statuses(&first), vec![StepStatus::Changed; 3]);
        assert_eq!(first.steps[2].stdout, "ran\n");
        assert_eq!(
            std::fs::read_to_string(format!("{base}/motd")).unwrap(),
            "hello\n"
        );
        let (second, execs) = deploy(&plan).await;
        assert_eq!(execs, 1);
        assert_eq!(second.status, TargetStatus::Ok, "{second:#?}");
        assert_eq!(statuses(&second), vec![StepStatus::Ok; 3]);
    }

    #[tokio::test]
    async fn a_failing_step_stops_the_chain_and_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let never = dir.path().join("never");
        let plan = target(vec![
            run("first", "echo one"),
            run("breaks", "echo broken >&2; exit 3"),
            run("never", &format!("touch {}", never.display())),
        ]);
        let (outcome, execs) = deploy(&plan).await;
        assert_eq!(execs, 1);
        assert_eq!(outcome.status, TargetStatus::Failed);
        assert_eq!(outcome.failed_step.as_deref(), Some("breaks"));
        assert_eq!(
            statuses(&outcome),
            vec![StepStatus::Changed, StepStatus::Failed, StepStatus::Skipped]
        );
        assert_eq!(outcome.steps[1].exit_code, Some(1));
        let stderr = &outcome.steps[1].stderr;
        assert!(stderr.starts_with("broken\n"), "{stderr}");
        assert!(stderr.contains("status 3"), "{stderr}");
        assert!(!never.exists(), "a step after the failure ran");
    }

    #[tokio::test]
    async fn steps_with_retries_run_alone_between_chains() {
        let mut flaky = run("flaky", "echo try");
        flaky.retries = 2;
        let plan = target(vec![
            run("a", "true"),
            run("b", "true"),
            flaky,
            run("c", "true"),
            run("d", "true"),
        ]);
        let (outcome, execs) = deploy(&plan).await;
        assert_eq!(execs, 3, "chain, the retried step alone, chain");
        assert_eq!(statuses(&outcome), vec![StepStatus::Changed; 5]);
    }

    #[tokio::test]
    async fn a_step_skipped_by_when_does_not_break_the_chain() {
        let plan = target(vec![run("a", "true"), step("off", None), run("b", "true")]);
        let (outcome, execs) = deploy(&plan).await;
        assert_eq!(execs, 1);
        assert_eq!(
            statuses(&outcome),
            vec![
                StepStatus::Changed,
                StepStatus::Skipped,
                StepStatus::Changed
            ]
        );
    }

    /// A guard like the tenant lock: `enter` makes `lock` (refused when it exists),
    /// `leave` removes it only when this run made it, and counts itself in `left`.
    fn guard(dir: &std::path::Path) -> Guard {
        let d = dir.display();
        Guard {
            enter: format!(
                "mkdir {d}/lock && touch {d}/lock/mine || {{ echo held-by-someone; exit 75; }}"
            ),
            leave: format!(
                "if [ -e {d}/lock/mine ]; then rm -r {d}/lock; fi; echo left >> {d}/left"
            ),
            timeout: Duration::from_secs(10),
        }
    }

    async fn guarded(plan: &TargetPlan, guard: &Guard) -> (Result<TargetOutcome, Refused>, usize) {
        let shell = LocalShell::default();
        let outcome = run_guarded(&shell, &host(), plan, &options(), &[], Some(guard)).await;
        (outcome, shell.execs.load(Ordering::SeqCst))
    }

    fn times_left(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("left"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    #[tokio::test]
    async fn a_guard_travels_with_the_steps_in_their_one_exec() {
        let dir = tempfile::tempdir().unwrap();
        let inside = format!("test -d {}/lock", dir.path().display());
        let plan = target(vec![run("a", &inside), run("b", "true")]);
        let (outcome, execs) = guarded(&plan, &guard(dir.path())).await;
        let outcome = outcome.expect("entered");
        assert_eq!(execs, 1, "lock, two steps and unlock in one exec");
        assert_eq!(outcome.status, TargetStatus::Changed, "{outcome:#?}");
        assert_eq!(outcome.steps.len(), 2);
        assert!(!dir.path().join("lock").exists());
        assert_eq!(times_left(dir.path()), 1);
    }

    #[tokio::test]
    async fn a_refusing_guard_lets_no_step_run_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lock")).unwrap();
        let touched = dir.path().join("touched");
        let plan = target(vec![run("a", &format!("touch {}", touched.display()))]);
        let (outcome, execs) = guarded(&plan, &guard(dir.path())).await;
        let Err(Refused::Said {
            exit_status,
            stdout,
            ..
        }) = outcome
        else {
            panic!("expected a refusal, got {outcome:?}");
        };
        assert_eq!(execs, 1);
        assert_eq!(exit_status, Some(75));
        assert_eq!(stdout, "held-by-someone\n");
        assert!(!touched.exists(), "a step ran without the lock");
        // `leave` ran too, and left the other holder's lock alone.
        assert!(dir.path().join("lock").exists());
        assert_eq!(times_left(dir.path()), 1);
    }

    #[tokio::test]
    async fn a_failing_step_still_releases_the_guard_in_the_same_exec() {
        let dir = tempfile::tempdir().unwrap();
        let plan = target(vec![
            run("a", "true"),
            run("breaks", "exit 4"),
            run("c", "true"),
        ]);
        let (outcome, execs) = guarded(&plan, &guard(dir.path())).await;
        let outcome = outcome.expect("entered");
        assert_eq!(execs, 1);
        assert_eq!(outcome.failed_step.as_deref(), Some("breaks"));
        assert_eq!(times_left(dir.path()), 1);
        assert!(!dir.path().join("lock").exists());
    }

    #[tokio::test]
    async fn steps_that_cannot_carry_the_guard_get_it_in_execs_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = run("retried first", "true");
        first.retries = 1;
        let mut last = run("retried last", "true");
        last.retries = 1;
        let plan = target(vec![first, run("a", "true"), run("b", "true"), last]);
        let (outcome, execs) = guarded(&plan, &guard(dir.path())).await;
        assert_eq!(outcome.expect("entered").status, TargetStatus::Changed);
        assert_eq!(execs, 5, "lock, retried, chain, retried, unlock");
        assert_eq!(times_left(dir.path()), 1);
        assert!(!dir.path().join("lock").exists());
    }

    #[tokio::test]
    async fn a_target_stopped_before_its_last_chain_still_releases_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let mut flaky = run("flaky", "exit 1");
        flaky.retries = 1;
        let plan = target(vec![
            run("a", "true"),
            flaky,
            run("b", "true"),
            run("c", "true"),
        ]);
        let (outcome, execs) = guarded(&plan, &guard(dir.path())).await;
        let outcome = outcome.expect("entered");
        assert_eq!(outcome.failed_step.as_deref(), Some("flaky"));
        assert_eq!(execs, 4, "lock with a, two tries of flaky, unlock");
        assert_eq!(times_left(dir.path()), 1);
        assert!(!dir.path().join("lock").exists());
    }

    #[tokio::test]
    async fn a_change_of_become_starts_a_new_exec() {
        let mut root = run("as root", "true");
        root.r#become = true;
        let plan = target(vec![run("a", "true"), run("b", "true"), root]);
        let (outcome, execs) = deploy(&plan).await;
        assert_eq!(execs, 2);
        assert_eq!(outcome.status, TargetStatus::Changed);
    }
}

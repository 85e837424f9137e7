//! A target's steps run by the local `sh`, as a host's login shell would: chains,
//! retries, `when`, the guard's ends, exec counts.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt as _;

use super::*;
use crate::config::{Inventory, SourceFile};
use crate::plan::render::PlannedStep;
use crate::plan::steps::{Ownership, StepSpec};
use crate::transport::{Captured, ExecOutput};

mod image;

/// Runs commands with the local `sh`, as a host's login shell would, and counts them.
#[derive(Default)]
struct LocalShell {
    execs: AtomicUsize,
    /// `PATH` for the commands, when not this process's (fake tools first)
    path: Option<std::ffi::OsString>,
}

impl Connection for LocalShell {
    async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        self.execs.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let mut shell = tokio::process::Command::new("/bin/sh");
        if let Some(path) = &self.path {
            shell.env("PATH", path);
        }
        let mut child = shell
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
        if let Some(file) = &command.stdin_file {
            let bytes = std::fs::read(file).expect("the input file");
            let _ = stdin.write_all(&bytes).await;
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
        leave: format!("if [ -e {d}/lock/mine ]; then rm -r {d}/lock; fi; echo left >> {d}/left"),
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

//! The rollout driven against a scripted host: a fake that recognises drover's own
//! scripts (lock, state, timer, switch, verify, confirm) and answers as told, so each
//! blue-green phase and its failure is exercised without SSH.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::config::{FailureBudget, Inventory, SourceFile};
use crate::outcome::TargetStatus;
use crate::plan::batch::plan_batches;
use crate::plan::bluegreen::{REVERT_FIRED, TenantState};
use crate::transport::{Captured, Connection, ExecOutput, RemoteCommand, TransportError};

/// What a script of drover's is, by what it contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Lock,
    Unlock,
    ReadState,
    Arm,
    Revert,
    Switch,
    Disarm,
    Verify,
    Soak,
    Drain,
}

fn op_of(script: &str) -> Op {
    // Order matters: the timer's script embeds the revert script, which embeds a switch.
    if script.contains("systemd-run") {
        Op::Arm
    } else if script.contains("revert-after-failed-verify") {
        Op::Revert
    } else if script.contains(".confirmed") {
        // A confirmation also makes the switch final (rewrites nginx without the
        // old color): still one disarm.
        Op::Disarm
    } else if script.contains("nginx -t") {
        Op::Switch
    } else if script.contains("lock.d.new") {
        Op::Lock
    } else if script.contains("lock.d.old") {
        Op::Unlock
    } else if script.contains("through nginx: expected version") {
        Op::Verify
    } else if script.contains("during the soak") {
        Op::Soak
    } else if script.contains("systemctl stop") {
        Op::Drain
    } else if script.contains("state.json") {
        Op::ReadState
    } else {
        panic!("unexpected script:\n{script}")
    }
}

/// The host: its tenant state, what it was asked, and how it misbehaves.
#[derive(Default)]
struct Host {
    state: Option<TenantState>,
    log: Vec<Op>,
    /// ops that exit non-zero (the exit status given)
    fail: HashMap<Op, u32>,
    /// the op at which the connection is lost (every later exec fails too)
    lose_at: Option<Op>,
    lost: bool,
    /// fresh logins (the confirmation's) fail
    refuse_fresh_logins: bool,
    logins: usize,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Host>>);

struct FakeConnection(Arc<Mutex<Host>>);

impl Connector for Fake {
    type Connection = FakeConnection;

    async fn connect(&self, _host: &crate::config::Host) -> Result<FakeConnection, TransportError> {
        let mut host = self.0.lock().unwrap();
        host.logins += 1;
        if host.logins > 1 && host.refuse_fresh_logins {
            return Err(TransportError::ConnectionLost {
                reason: Some("scripted: login refused".into()),
            });
        }
        Ok(FakeConnection(Arc::clone(&self.0)))
    }
}

fn output(exit: u32, stdout: String) -> ExecOutput {
    let mut out = Captured::default();
    out.push(stdout.as_bytes(), usize::MAX);
    let mut err = Captured::default();
    if exit != 0 {
        err.push(b"scripted failure", usize::MAX);
    }
    ExecOutput {
        exit_status: Some(exit),
        signal: None,
        stdout: out,
        stderr: err,
        timed_out: false,
        duration: Duration::ZERO,
    }
}

impl Connection for FakeConnection {
    async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        let mut host = self.0.lock().unwrap();
        let op = op_of(&command.script);
        host.log.push(op);
        if host.lose_at == Some(op) || host.lost {
            host.lost = true;
            return Err(TransportError::ConnectionLost {
                reason: Some("scripted: host gone".into()),
            });
        }
        if let Some(&exit) = host.fail.get(&op) {
            return Ok(output(exit, String::new()));
        }
        let stdout = match op {
            Op::ReadState => host
                .state
                .as_ref()
                .map(|s| serde_json::to_string(s).unwrap())
                .unwrap_or_default(),
            Op::Switch => {
                // The switch script carries the new state; the fake records its color.
                let to_green = command.script.contains("live port 8101");
                let version = version_in(&command.script);
                host.state = Some(state(
                    if to_green { Color::Green } else { Color::Blue },
                    &version,
                ));
                String::new()
            }
            _ => String::new(),
        };
        Ok(output(0, stdout))
    }

    async fn close(self) {}
}

/// The version a switch script records (`"version": "2.0.0"` in its state JSON).
fn version_in(script: &str) -> String {
    let at = script
        .find("\"version\": \"")
        .expect("a version in the switch")
        + 12;
    script[at..].split('"').next().unwrap().to_string()
}

fn state(active: Color, version: &str) -> TenantState {
    TenantState {
        tenant: "acme".into(),
        active,
        version: version.into(),
        previous: None,
        previous_version: None,
        run: "r0".into(),
        updated: String::new(),
        image: None,
    }
}

fn plan() -> Plan {
    Plan {
        playbook: "p".into(),
        targets: vec![TargetPlan {
            tenant: "acme".into(),
            host: "web-1".into(),
            steps: Vec::new(),
        }],
        secret_values: Vec::new(),
        base_ports: HashMap::from([("acme".to_string(), 8100)]),
    }
}

fn hosts() -> HashMap<String, crate::config::Host> {
    let text = "[hosts.web-1]\naddress = \"127.0.0.1\"\nbecome = \"none\"\n";
    Inventory::from_sources(vec![SourceFile::new("t.toml", text.to_string())])
        .unwrap()
        .hosts
        .into_iter()
        .map(|h| (h.name.clone(), h))
        .collect()
}

fn options(version: &str) -> RolloutOptions {
    RolloutOptions {
        forks: 4,
        steps: StepOptions::default(),
        actor: Actor {
            run: "r1".into(),
            operator: "ops@test".into(),
            force_unlock: false,
            lock_wait: None,
        },
        max_failures: FailureBudget::Count(0),
        pause: Duration::ZERO,
        version: version.into(),
        revert_after: Some(Duration::from_secs(30)),
        rollback_on_halt: false,
        drain: None,
        script_timeout: Duration::from_secs(5),
        hooks: None,
        keep_releases: None,
        keep_images: None,
        progressive: crate::config::progressive::Progressive::default(),
    }
}

/// Rolls `version` out blue-green to the one target on `host`.
async fn deploy_on(host: Host, version: &str) -> (TargetOutcome, Host) {
    let fake = Fake(Arc::new(Mutex::new(host)));
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let plans = Plans::BlueGreen {
        blue: plan(),
        green: plan(),
    };
    let batches = plan_batches(&["web-1"], &[], 0, 0);
    let halt = Arc::new(AtomicBool::new(false));
    let connector = Arc::new(fake.clone());
    let out = rollout(
        connector,
        hosts(),
        plans,
        &batches,
        options(version),
        halt,
        tx,
        None,
    )
    .await;
    drain.await.unwrap();
    let host = std::mem::take(&mut *fake.0.lock().unwrap());
    (out.targets.into_iter().next().unwrap(), host)
}

fn live_on(color: Color, version: &str) -> Host {
    Host {
        state: Some(state(color, version)),
        ..Host::default()
    }
}

#[tokio::test]
async fn a_switch_runs_its_phases_in_order_and_unlocks() {
    let (outcome, host) = deploy_on(live_on(Color::Blue, "1.0.0"), "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Changed, "{outcome:#?}");
    use Op::*;
    assert_eq!(
        host.log,
        [Lock, ReadState, Arm, Switch, Verify, Disarm, Unlock],
        "the confirmation (Disarm) goes over a fresh login"
    );
    assert_eq!(host.logins, 2);
    let now = host.state.unwrap();
    assert_eq!((now.active, now.version.as_str()), (Color::Green, "2.0.0"));
}

#[tokio::test]
async fn a_first_deploy_goes_into_blue() {
    let (outcome, host) = deploy_on(Host::default(), "1.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Changed, "{outcome:#?}");
    assert_eq!(host.state.unwrap().active, Color::Blue);
}

#[tokio::test]
async fn a_refused_nginx_config_leaves_the_live_color_and_disarms_the_timer() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.fail.insert(Op::Switch, 1);
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Failed);
    assert_eq!(outcome.failed_step.as_deref(), Some("switch"));
    let error = outcome.error.unwrap();
    assert!(error.contains("the live color is unchanged"), "{error}");
    use Op::*;
    assert_eq!(host.log, [Lock, ReadState, Arm, Switch, Disarm, Unlock]);
    assert_eq!(host.state.unwrap().version, "1.0.0");
}

#[tokio::test]
async fn a_timer_that_cannot_be_armed_stops_before_the_switch() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.fail.insert(Op::Arm, 1);
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.failed_step.as_deref(), Some("arm revert timer"));
    assert!(!host.log.contains(&Op::Switch));
    assert_eq!(host.log.last(), Some(&Op::Unlock));
}

#[tokio::test]
async fn a_failed_verification_switches_back_and_says_so() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.fail.insert(Op::Verify, 1);
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Failed);
    assert_eq!(outcome.failed_step.as_deref(), Some("verify through proxy"));
    let error = outcome.error.unwrap();
    assert!(error.ends_with("; switched back"), "{error}");
    use Op::*;
    assert_eq!(
        host.log,
        [Lock, ReadState, Arm, Switch, Verify, Revert, Disarm, Unlock]
    );
}

#[tokio::test]
async fn a_host_lost_after_the_switch_is_unreachable_not_failed() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.lose_at = Some(Op::Verify);
    let (outcome, _) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Unreachable, "{outcome:#?}");
    assert_eq!(outcome.failed_step.as_deref(), Some("verify through proxy"));
    let error = outcome.error.unwrap();
    assert!(error.contains("host gone"), "{error}");
    assert!(error.contains("the host's revert timer will"), "{error}");
}

#[tokio::test]
async fn a_host_lost_before_the_switch_is_unreachable_and_unchanged() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.lose_at = Some(Op::ReadState);
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Unreachable);
    assert_eq!(outcome.failed_step.as_deref(), Some("read state"));
    assert_eq!(host.state.unwrap().version, "1.0.0");
}

#[tokio::test(start_paused = true)]
async fn a_switch_that_cannot_be_confirmed_in_time_is_left_to_the_hosts_timer() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.refuse_fresh_logins = true;
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Unreachable, "{outcome:#?}");
    assert_eq!(outcome.failed_step.as_deref(), Some("confirm switch"));
    assert!(
        outcome
            .error
            .unwrap()
            .contains("will switch back by itself")
    );
    assert!(!host.log.contains(&Op::Disarm), "no login got through");
}

#[tokio::test]
async fn a_target_already_live_on_the_release_is_left_alone_and_its_timer_disarmed() {
    let (outcome, host) = deploy_on(live_on(Color::Green, "2.0.0"), "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Ok, "{outcome:#?}");
    use Op::*;
    assert_eq!(host.log, [Lock, ReadState, Verify, Disarm, Unlock]);
}

#[tokio::test]
async fn a_resumed_target_whose_timer_fired_first_is_deployed_again() {
    let mut host = live_on(Color::Green, "2.0.0");
    host.fail.insert(Op::Disarm, REVERT_FIRED);
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    // The fake's disarm keeps failing, so the fresh confirmation fails too; what
    // matters is that the target went through a whole switch again.
    use Op::*;
    assert_eq!(
        &host.log[..6],
        [Lock, ReadState, Verify, Disarm, ReadState, Arm],
        "{outcome:#?}"
    );
    assert_eq!(outcome.failed_step.as_deref(), Some("confirm switch"));
}

#[tokio::test]
async fn a_tenant_locked_by_another_run_is_not_touched() {
    let mut host = live_on(Color::Blue, "1.0.0");
    host.fail
        .insert(Op::Lock, crate::plan::bluegreen::LOCK_HELD);
    let (outcome, host) = deploy_on(host, "2.0.0").await;
    assert_eq!(outcome.status, TargetStatus::Failed);
    assert_eq!(outcome.failed_step.as_deref(), Some("lock"));
    assert_eq!(host.log, [Op::Lock]);
}

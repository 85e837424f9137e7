//! Progressive delivery end to end on the Docker fleet (issue 13's "must be shown"),
//! with the load generator sending GET and POST to every target through nginx the
//! whole time: a crashing canary costs no GET request and is aborted at once; a flaky
//! release is aborted at its first 5 % step on its measured error rate; a slow one on
//! its latency against the old color; a good one goes through every weight to 100 %.
//!
//! One fleet for all of it (fleets are expensive on a small machine): each scenario
//! starts from every tenant on 1.0.0 and leaves it so.

use std::time::Duration;

use serde_json::Value;

use crate::rollout::{journal, newest_run, variant};
use crate::support::drover::{
    Drover, EXIT_HALTED, EXIT_OK, assert_exit, by_target, drover, spawn_drover, text,
};
use crate::support::fleet::{Finished, Fleet};
use crate::support::host::{active, audit, nginx_port, sh_out};
use crate::support::load::{Load, LoadPlan, LoadReport, Method, Requests};
use crate::support::tenants::{Tenant, fleet_tenants, targets};
use crate::support::wait::wait_for;

const LIMIT: Duration = Duration::from_secs(180);

/// `[analysis]` of the test playbook: judged every second, 1 % errors at most, p95 at
/// most twice the old color's.
// p95 ratio 4: the slow release (+300 ms a request) shows 18x, while a good release's
// first seconds on a fleet sharing 2 cores with the suite showed up to 2.2x (a CI run
// aborted a good canary at 2x).
const ANALYSIS: &str = "[analysis]\ninterval = \"1s\"\nmin_requests = 10\n\
                        max_error_rate = \"1%\"\nmax_p95_ratio = 4.0\ninconclusive = \"fail\"\n";

fn deploy(fleet: &Fleet, playbook: &str, version: &str, flags: &[&str]) -> Finished {
    drover(fleet, &deploy_args(playbook, version, flags), LIMIT)
}

fn deploy_args(playbook: &str, version: &str, flags: &[&str]) -> Vec<String> {
    let mut args = vec![
        "deploy",
        playbook,
        "--all",
        "--strategy",
        "blue-green",
        "--json",
    ];
    args.extend(flags);
    let set = format!("version={version}");
    args.extend(["--set", &set]);
    args.into_iter().map(str::to_owned).collect()
}

/// The canary's JSON line and `(tenant, host)`: the first target in plan order.
fn canary(run: &Finished, tenants: &[Tenant]) -> (Value, String, String) {
    let (tenant, host) = targets(tenants)[0].clone();
    let line = by_target(run)
        .remove(&format!("{tenant}@{host}"))
        .unwrap_or_else(|| panic!("no line for the canary:\n{}", run.describe()));
    (line, tenant, host)
}

/// The abort's audit line on the canary's host.
fn abort_line(fleet: &Fleet, tenant: &str, host: &str) -> String {
    audit(fleet, host)
        .into_iter()
        .rev()
        .find(|l| l["tenant"] == tenant && l.get("action").map(String::as_str) == Some("abort"))
        .map(|l| l["line"].clone())
        .unwrap_or_else(|| panic!("no abort audit line for {tenant}@{host}"))
}

/// Every target back on 1.0.0 (blue), nginx at blue's port.
#[track_caller]
fn assert_back_on_old(fleet: &Fleet, tenants: &[Tenant], what: &str) {
    for t in tenants {
        for h in &t.hosts {
            assert_eq!(
                active(fleet, h, &t.name),
                ("blue".into(), "1.0.0".into()),
                "{what}: {}@{h}",
                t.name
            );
            assert_eq!(
                nginx_port(fleet, h, &t.name),
                Some(t.port),
                "{what}: {}@{h}",
                t.name
            );
        }
    }
}

/// Seconds since the epoch (ms precision), by the host's clock: the first exit of the
/// canary's new unit, its first restart by systemd (none when drover aborted first),
/// and the last write of its nginx config (the abort).
fn crash_restart_abort(fleet: &Fleet, tenant: &str, host: &str) -> (f64, Option<f64>, f64) {
    let first = |pattern: &str| {
        let out = sh_out(
            fleet,
            host,
            &format!(
                "journalctl -u drover-{tenant}-green.service -o short-unix --no-pager | grep -m1 -E '{pattern}' | cut -d' ' -f1"
            ),
        );
        out.trim().parse::<f64>().ok()
    };
    let exited = first("Main process exited").expect("the crash release exited");
    let restarted = first("Scheduled restart job");
    let aborted = sh_out(
        fleet,
        host,
        &format!("stat -c %.3Y /etc/nginx/conf.d/drover-{tenant}.conf"),
    );
    let aborted = aborted.trim().parse().expect("nginx config mtime");
    (exited, restarted, aborted)
}

#[test]
fn canaries_are_judged_on_real_traffic_and_a_crashing_one_costs_no_get_request() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = fleet_tenants(&fleet);
    let playbook = variant(&fleet, "progressive", ANALYSIS);
    let first = deploy(&fleet, &playbook, "1.0.0", &[]);
    assert_exit(&first, EXIT_OK, "first deploy of 1.0.0");
    let plan = LoadPlan::steady(Duration::from_secs(170));
    let per_second = u64::from(plan.gets_per_second + plan.posts_per_second);
    let (canary_tenant, canary_host) = targets(&tenants)[0].clone();
    let at_canary = || Requests::to(&canary_tenant).at(&canary_host);

    // 1. A crashing canary at 100 %: the old color behind it answers every GET.
    let load = Load::start(&fleet, &tenants, &plan);
    let run = deploy(
        &fleet,
        &playbook,
        "4.0.0-crash",
        &["--canary", "1", "--pause", "10s"],
    );
    let seen = load.stop();
    assert_exit(&run, EXIT_HALTED, "4.0.0-crash canary");
    let (line, tenant, host) = canary(&run, &tenants);
    assert_eq!(line["status"], "failed", "{line}");
    assert_eq!(line["failed_step"], "canary analysis", "{line}");
    let (exited, restarted, aborted) = crash_restart_abort(&fleet, &tenant, &host);
    eprintln!(
        "CRASH {tenant}@{host}: first exit {exited:.3}, first restart {restarted:?}, abort {aborted:.3} ({:.2}s after the exit); {}; audit: {}",
        aborted - exited,
        text(&line["error"]),
        abort_line(&fleet, &tenant, &host)
    );
    // systemd restarts it 2 s after the exit (RestartSec=2): within 2 s of that.
    let restart = restarted.unwrap_or(exited + 2.0);
    assert!(
        aborted - restart < 2.0,
        "aborted {:.2}s after the first restart",
        aborted - restart
    );
    assert_back_on_old(&fleet, &tenants, "after the crashing canary");
    let phase = "crashing canary";
    seen.print(phase);
    seen.assert_none_failed(phase, at_canary().using(Method::Get));
    eprintln!(
        "CRASH load on the canary: {} requests, {} failed ({} POST)",
        seen.requests(at_canary()),
        seen.failed(at_canary()),
        seen.failed(at_canary().using(Method::Post))
    );
    assert_others_untouched(&seen, &tenants, phase);

    // 2. A flaky release (30 % of requests answer 500) at 5 %, then 25 %: aborted at
    // the first step, on its measured error rate.
    let load = Load::start(&fleet, &tenants, &plan);
    let run = deploy(
        &fleet,
        &playbook,
        "5.0.0-flaky",
        &[
            "--canary",
            "1",
            "--pause",
            "15s",
            "--canary-weights",
            "5%,25%",
        ],
    );
    let seen = load.stop();
    assert_exit(&run, EXIT_HALTED, "5.0.0-flaky canary");
    let (line, tenant, host) = canary(&run, &tenants);
    let report = &line["canary"];
    assert_eq!(report["verdict"], "fail", "{line}");
    assert_eq!(report["weight"], 5, "aborted at the first step: {line}");
    let rate = report["new"]["error_rate"].as_f64().expect("error rate");
    assert!(rate > 0.01, "{line}");
    let reason = text(&report["reason"]).to_owned();
    assert!(reason.starts_with("error rate "), "{reason}");
    let audit_line = abort_line(&fleet, &tenant, &host);
    assert!(audit_line.contains(&reason), "{audit_line}");
    assert_back_on_old(&fleet, &tenants, "after the flaky canary");
    // What a 5 % step can cost: 30 % of 5 % of the canary's requests for the whole
    // step (15 s) at most; after the abort the old version serves everything.
    let bound = per_second * 15 * 5 * 30 / (100 * 100) + 1;
    let phase = "flaky canary at 5%";
    seen.print(phase);
    seen.assert_failed_at_most(phase, at_canary(), bound);
    eprintln!(
        "FLAKY {tenant}@{host}: {reason}; {} of {} requests failed (bound {bound}); {report}; audit: {audit_line}",
        seen.failed(at_canary()),
        seen.requests(at_canary())
    );
    assert_others_untouched(&seen, &tenants, phase);

    // 3. A slow release (+300 ms) at 5 %: aborted on its p95 against the old color's.
    // (Without traffic it would be `inconclusive`, which this playbook counts as a
    // failure.)
    let load = Load::start(&fleet, &tenants, &plan);
    let run = deploy(
        &fleet,
        &playbook,
        "6.0.0-slow",
        &[
            "--canary",
            "1",
            "--pause",
            "15s",
            "--canary-weights",
            "5%,25%",
        ],
    );
    let seen = load.stop();
    assert_exit(&run, EXIT_HALTED, "6.0.0-slow canary");
    assert_others_untouched(&seen, &tenants, "slow canary");
    let (line, tenant, host) = canary(&run, &tenants);
    let reason = text(&line["canary"]["reason"]).to_owned();
    assert!(reason.contains("the old color's"), "{line}");
    eprintln!("SLOW {tenant}@{host}: {reason}; {}", line["canary"]);
    assert_back_on_old(&fleet, &tenants, "after the slow canary");

    // 4. A good release through 5 %, 25 %, 50 %, then 100 % and every other target,
    // with `drover status` looking at the canary mid-shift.
    let load = Load::start(&fleet, &tenants, &plan);
    let running = spawn_drover(
        &fleet,
        &deploy_args(
            &playbook,
            "2.0.0",
            &[
                "--canary",
                "1",
                "--pause",
                "8s",
                "--canary-weights",
                "5%,25%,50%",
            ],
        ),
    );
    let shifting = mid_shift_status(&fleet, &canary_tenant, &canary_host);
    let run = running.wait(LIMIT);
    std::thread::sleep(Duration::from_secs(1));
    let seen = load.stop();
    assert_exit(&run, EXIT_OK, "2.0.0 through every weight");
    eprintln!("STATUS mid-shift: {shifting}");
    let (line, tenant, host) = canary(&run, &tenants);
    assert_eq!(line["canary"]["verdict"], "pass", "{line}");
    assert_eq!(line["canary"]["weight"], 100, "{line}");
    let weights: Vec<String> = audit(&fleet, &host)
        .into_iter()
        .filter(|l| l["tenant"] == tenant && l.get("action").map(String::as_str) == Some("weight"))
        .map(|l| l["result"].clone())
        .collect();
    assert!(
        weights.ends_with(&["25%".into(), "50%".into(), "100%".into()]),
        "{weights:?}"
    );
    for (key, line) in by_target(&run) {
        assert_eq!(line["status"], "changed", "{key}: {line}");
    }
    let phase = "good canary through every weight";
    seen.print(phase);
    seen.assert_none_failed(phase, Requests::ALL);
    eprintln!(
        "GOOD {tenant}@{host}: weights {weights:?}; {} requests, 0 failed; {}",
        seen.requests(Requests::ALL),
        line["canary"]
    );
}

/// No request to a target other than the canary failed.
#[track_caller]
fn assert_others_untouched(seen: &LoadReport, tenants: &[Tenant], phase: &str) {
    for (t, h) in targets(tenants).into_iter().skip(1) {
        seen.assert_none_failed(phase, Requests::to(&t).at(&h));
    }
}

/// Polls `drover status` until the canary is between two weights; its JSON line, and
/// the Prometheus sample and table row saying so.
fn mid_shift_status(fleet: &Fleet, tenant: &str, host: &str) -> String {
    let key = format!("{tenant}@{host}");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        let run = drover(fleet, &["status", "--all", "--format", "json"], LIMIT);
        let doc: Value = serde_json::from_str(&run.stdout()).unwrap_or(Value::Null);
        let line = doc["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| format!("{}@{}", text(&t["tenant"]), text(&t["host"])) == key)
            .cloned();
        let share = line
            .as_ref()
            .and_then(|l| l["traffic_percent"].as_u64())
            .unwrap_or(100);
        if share < 100 {
            let line = line.unwrap_or_default();
            assert_eq!(line["routed_color"], "green", "{line}");
            let prom = drover(fleet, &["status", "--all", "--format", "prometheus"], LIMIT);
            let sample = prom
                .stdout()
                .lines()
                .find(|l| {
                    l.starts_with("drover_target_traffic_percent")
                        && l.contains(&format!("tenant=\"{tenant}\""))
                        && l.contains(&format!("host=\"{host}\""))
                })
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no traffic sample:\n{}", prom.stdout()));
            let html = drover(fleet, &["status", "--all", "--format", "html"], LIMIT).stdout();
            // The step may have moved on since the JSON was read.
            let cells = ["5", "25", "50"].map(|w| format!("<td>green {w}%</td>"));
            assert!(
                cells.iter().any(|c| html.contains(c)),
                "none of {cells:?} in the HTML report"
            );
            let table = drover(fleet, &["status", "--all"], LIMIT).stdout();
            let row = table
                .lines()
                .find(|l| l.contains(host) && l.contains("green") && l.contains('%'))
                .map(str::to_owned);
            assert!(row.is_some(), "no row with the share in:\n{table}");
            return format!(
                "json traffic_percent {share}; {sample}; table: {}",
                row.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the canary was never seen between two weights");
}

#[test]
fn a_control_node_killed_mid_step_then_resumed_ends_at_a_known_weight_with_nothing_lost() {
    let Some(fleet) = Fleet::up(2) else { return };
    let tenants = fleet_tenants(&fleet);
    let playbook = variant(&fleet, "progressive", ANALYSIS);
    let first = deploy(&fleet, &playbook, "1.0.0", &[]);
    assert_exit(&first, EXIT_OK, "first deploy of 1.0.0");
    let (tenant, host) = targets(&tenants)[0].clone();
    let conf = format!("/etc/nginx/conf.d/drover-{tenant}.conf");
    let state_dir = fleet.work_dir().join("control-state");
    let runs = state_dir.join("runs");
    let env = [("DROVER_STATE_DIR", state_dir.as_path())];
    let load = Load::start(
        &fleet,
        &tenants,
        &LoadPlan::steady(Duration::from_secs(170)),
    );

    // Killed while the canary holds 25 % of its tenant's traffic.
    let args = deploy_args(
        &playbook,
        "2.0.0",
        &[
            "--canary",
            "1",
            "--pause",
            "8s",
            "--canary-weights",
            "5%,25%",
        ],
    );
    let running = Drover::on(&fleet).envs(&env).spawn(&args);
    wait_for(Duration::from_secs(120), "the canary at 25%", || {
        sh_out(
            &fleet,
            &host,
            &format!("grep -c 'weight=25;' {conf} || true"),
        )
        .trim()
        .starts_with('1')
        .then_some(())
    });
    running.signal("KILL");
    let killed = running.wait(LIMIT);
    assert_eq!(killed.code(), None, "killed\n{}", killed.describe());
    let between = sh_out(&fleet, &host, &format!("grep -E 'server|%' {conf}"));
    assert!(between.contains("weight=25;"), "{between}");

    let id = newest_run(&runs).expect("the killed run's journal");
    let resumed = Drover::on(&fleet).envs(&env).run(&["resume", &id], LIMIT);
    std::thread::sleep(Duration::from_secs(1));
    let seen = load.stop();
    eprintln!("RESUME after a kill at 25%:\n{}", resumed.stderr());
    assert_exit(&resumed, EXIT_OK, "resume");
    // The resumed run first put the canary back on its old color (the armed revert
    // script, audited), then went through every weight again.
    let log = audit(&fleet, &host);
    let actions: Vec<String> = log
        .iter()
        .filter(|l| l["tenant"] == tenant)
        .map(|l| format!("{}={}", l["action"], l["result"]))
        .collect();
    eprintln!("RESUME audit of {tenant}@{host}: {actions:?}");
    let reverted = actions
        .iter()
        .rposition(|a| a == "auto-revert=reverted")
        .expect("the canary went back to its old color");
    let after = &actions[reverted..];
    assert!(after.contains(&"weight=25%".to_string()), "{actions:?}");
    assert_eq!(
        after.last().map(String::as_str),
        Some("confirm=confirmed"),
        "{actions:?}"
    );
    for t in &tenants {
        for h in &t.hosts {
            assert_eq!(active(&fleet, h, &t.name).1, "2.0.0", "{}@{h}", t.name);
            let final_conf = sh_out(
                &fleet,
                h,
                &format!("cat /etc/nginx/conf.d/drover-{}.conf", t.name),
            );
            assert!(
                !final_conf.contains("backup") && !final_conf.contains("weight="),
                "{}@{h}: {final_conf}",
                t.name
            );
        }
    }
    let journal = journal(&runs.join(format!("{id}.jsonl")));
    let weights: Vec<&Value> = journal
        .iter()
        .filter(|e| e["event"] == "canary")
        .map(|e| &e["weight"])
        .collect();
    eprintln!("RESUME journal weights: {weights:?}");
    let phase = "killed at 25% and resumed";
    seen.print(phase);
    seen.assert_none_failed(phase, Requests::to(&tenant).at(&host).using(Method::Get));
    assert_others_untouched(&seen, &tenants, phase);
}

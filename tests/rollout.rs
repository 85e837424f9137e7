//! Rollouts end to end on the Docker fleet (issue 5's "must be shown"): zero downtime
//! under load during a blue-green rollout and a rollback, the failure budget, the canary
//! soak, a host lost mid-rollout, a partition right after the switch, a control node
//! killed mid-rollout then resumed (also right between a switch and its confirmation),
//! and the per-tenant deploy lock. Benchmark numbers are printed (`BENCH`, `LOAD`):
//! run with `--no-capture` or `--success-output final` to see them.
//!
//! Each test brings up its own fleet (`Fleet::up`: 4 hosts, 6 tenants, each on 2 hosts;
//! one test needs only acme on 1 host) and skips with one line when no Docker engine
//! answers, unless `DROVER_E2E=1`. Every drover run, every wait and the load generator
//! are bounded in time.
//!
//! Playbooks: the reference `playbooks/agent.toml`, and variants of it written at test
//! time into the fleet's scratch dir (see [`variant`]): the same steps, releases read
//! from a folder that also holds `tests/fixtures/rollout/releases/` (the `2.0.0-gated`
//! release, whose /health through nginx answers 503 until a gate file exists: it holds
//! a rollout between its switch and its verification), optionally with extra steps.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::drover::{
    Drover, EXIT_FAILED, EXIT_HALTED, EXIT_OK, EXIT_UNREACHABLE, assert_exit, by_target, drover,
    spawn_drover, text,
};
use crate::support::fleet::{Finished, Fleet, Running};
use crate::support::host::{
    active, audit, audit_text, lock_owner, nginx_port, pending_revert_timers, proxied_inside, sh,
    sh_out, state,
};
use crate::support::http::proxied_version;
use crate::support::load::{Load, LoadPlan, Method, Requests};
use crate::support::repo::{self, agent_playbook, path_str};
use crate::support::tenants::{Tenant, fleet_tenants, targets, tenant};
use crate::support::wait::wait_for;

/// Limit for a deploy of a whole test fleet.
const DEPLOY_LIMIT: Duration = Duration::from_secs(150);
/// Limit for a small deploy or a rollback.
const SMALL_LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------
// Playbooks and arguments

/// A variant of the reference playbook in the fleet's scratch dir: the same steps (plus
/// `extra_steps`, TOML appended at the end), releases read from `<scratch>/releases/`,
/// which links the example releases and the fixture releases of these tests.
pub(crate) fn variant(fleet: &Fleet, name: &str, extra_steps: &str) -> String {
    let releases = fleet.work_dir().join("releases");
    if !releases.exists() {
        std::fs::create_dir_all(&releases).expect("releases dir");
        for dir in [
            repo::root().join("examples/agent/releases"),
            repo::fixtures("rollout").join("releases"),
        ] {
            for entry in std::fs::read_dir(&dir).expect("releases") {
                let entry = entry.expect("entry");
                std::os::unix::fs::symlink(entry.path(), releases.join(entry.file_name()))
                    .expect("symlink a release");
            }
        }
    }
    let text = repo::agent_playbook_reading(&releases) + "\n" + extra_steps;
    let path = fleet.work_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write playbook variant");
    path_str(&path)
}

/// `deploy PLAYBOOK --all --strategy blue-green FLAGS... --set version=V`.
pub(crate) fn blue_green_args(playbook: &str, version: &str, flags: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["deploy", playbook, "--all", "--strategy", "blue-green"]
        .map(str::to_owned)
        .into();
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    args.extend(["--set".to_owned(), format!("version={version}")]);
    args
}

/// `deploy <reference playbook> --all --strategy blue-green FLAGS... --set version=V`.
fn blue_green_to_all(version: &str, flags: &[&str]) -> Vec<String> {
    blue_green_args(&agent_playbook(), version, flags)
}

/// The 6 tenants of a 4-host fleet, in drover's order.
#[track_caller]
fn six_tenants(fleet: &Fleet) -> Vec<Tenant> {
    let tenants = fleet_tenants(fleet);
    assert_eq!(
        tenants.len(),
        6,
        "the 4-host fleet has 6 tenants: {tenants:?}"
    );
    tenants
}

// ---------------------------------------------------------------------------
// Running drover, and its run journals

/// Deploys `version` blue-green to every target (from bare hosts or not): all ok.
#[track_caller]
fn deploy_all(fleet: &Fleet, version: &str) -> Finished {
    let run = drover(
        fleet,
        &blue_green_to_all(version, &["--json"]),
        DEPLOY_LIMIT,
    );
    assert_exit(&run, EXIT_OK, &format!("blue-green deploy of {version}"));
    run
}

/// One line per target: status, failed step, error (for messages).
fn summary(run: &Finished) -> String {
    run.json_lines()
        .iter()
        .map(|l| {
            format!(
                "  {}@{}: {} {} {} ({} ms)",
                text(&l["tenant"]),
                text(&l["host"]),
                text(&l["status"]),
                text(&l["failed_step"]),
                text(&l["error"]),
                l["duration_ms"]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The run id drover announces on stderr (`run <id>: N target(s) in M batch(es)`).
fn run_id_of(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        l.strip_prefix("run ")
            .and_then(|r| r.split_once(':'))
            .map(|(id, _)| id.to_owned())
    })
}

/// The newest run journal in `runs` (file stem).
pub(crate) fn newest_run(runs: &Path) -> Option<String> {
    let mut ids: Vec<String> = std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .map(str::to_owned)
        })
        .collect();
    ids.sort();
    ids.pop()
}

/// The events of a run journal.
pub(crate) fn journal(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every target answers healthy through nginx with `version`, and its state file agrees.
#[track_caller]
pub(crate) fn assert_fleet_serves(fleet: &Fleet, tenants: &[Tenant], version: &str, when: &str) {
    let mut wrong = Vec::new();
    for (tenant, host) in targets(tenants) {
        match proxied_version(fleet, &tenant, &host) {
            Ok(v) if v == version => {}
            Ok(v) => wrong.push(format!("{tenant}@{host}: serves {v}")),
            Err(e) => wrong.push(format!("{tenant}@{host}: {e}")),
        }
        let (color, v) = active(fleet, &host, &tenant);
        if v != version {
            wrong.push(format!("{tenant}@{host}: state.json says {color}@{v}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{when}: every target should serve {version}:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------
// 1 + 8: zero downtime under load, and the benchmark

#[test]
fn a_blue_green_rollout_and_a_rollback_drop_no_request_under_load() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the first deploy");

    // The rollout to 2.0.0 under load: GET and POST to every target through nginx.
    let load = Load::start(
        &fleet,
        &tenants,
        &LoadPlan::steady(Duration::from_secs(200)),
    );
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let rollout = drover(
        &fleet,
        &blue_green_to_all("2.0.0", &["--batch", "25%", "--json"]),
        DEPLOY_LIMIT,
    );
    let wall = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let seen = load.stop();
    assert_exit(&rollout, EXIT_OK, "blue-green rollout of 2.0.0 under load");
    let report = by_target(&rollout);
    assert_eq!(report.len(), 12, "{}", rollout.describe());
    for (target, line) in &report {
        assert_eq!(line["status"], "changed", "{target}: {line}");
    }
    let phase = "blue-green 1.0.0 -> 2.0.0";
    seen.print(phase);
    seen.assert_every_target_answered(phase, &["1.0.0", "2.0.0"]);
    seen.assert_none_failed(phase, Requests::of(Method::Get));
    seen.assert_none_failed(phase, Requests::of(Method::Post));
    assert_fleet_serves(&fleet, &tenants, "2.0.0", "after the rollout");

    // 8: the benchmark. Batches of 25% = 3 targets, in plan order (the order of the
    // JSON lines); a batch lasts as long as its slowest target. The health step is the
    // wait for the new agent to answer.
    bench(&rollout, wall);

    // The rollback of every target under load.
    let load = Load::start(
        &fleet,
        &tenants,
        &LoadPlan::steady(Duration::from_secs(120)),
    );
    std::thread::sleep(Duration::from_secs(1));
    let rollback = drover(&fleet, &["rollback", "--all", "--json"], SMALL_LIMIT);
    std::thread::sleep(Duration::from_secs(1));
    let back = load.stop();
    assert_exit(&rollback, EXIT_OK, "rollback --all under load");
    let report = by_target(&rollback);
    assert_eq!(report.len(), 12, "{}", rollback.describe());
    for (target, line) in &report {
        assert_eq!(line["status"], "changed", "{target}: {line}");
    }
    eprintln!(
        "ROLLBACK --all of 12 targets: {:.2}s wall",
        rollback.elapsed.as_secs_f64()
    );
    let phase = "rollback 2.0.0 -> 1.0.0";
    back.print(phase);
    back.assert_every_target_answered(phase, &["1.0.0", "2.0.0"]);
    back.assert_none_failed(phase, Requests::of(Method::Get));
    back.assert_none_failed(phase, Requests::of(Method::Post));
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the rollback");
    eprintln!(
        "SUMMARY zero downtime: rollout {} requests, 0 failed, longest gap {} ms; \
         rollback {} requests, 0 failed, longest gap {} ms",
        seen.requests(Requests::ALL),
        seen.longest_gap(Requests::ALL).as_millis(),
        back.requests(Requests::ALL),
        back.longest_gap(Requests::ALL).as_millis()
    );
}

/// Prints where the time of a blue-green rollout with 4 batches of 3 went.
fn bench(rollout: &Finished, wall: Duration) {
    let ms = |v: &Value| v["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    let lines = rollout.json_lines();
    let mut per_step: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let (mut total, mut in_steps, mut health) = (0.0, 0.0, 0.0);
    let (mut critical, mut critical_health) = (0.0, 0.0);
    for batch in lines.chunks(3) {
        let (mut slowest, mut slowest_health) = (0.0f64, 0.0f64);
        for line in batch {
            let steps = line["steps"].as_array().cloned().unwrap_or_default();
            let t = ms(line);
            let s: f64 = steps.iter().map(ms).sum();
            let h: f64 = steps.iter().filter(|s| s["kind"] == "health").map(ms).sum();
            eprintln!(
                "BENCH   {}@{}: {t:.2}s, steps {s:.2}s, health {h:.2}s, outside steps {:.2}s",
                text(&line["tenant"]),
                text(&line["host"]),
                t - s
            );
            for step in &steps {
                let e = per_step.entry(text(&step["name"]).to_owned()).or_default();
                e.0 += ms(step);
                e.1 += 1;
            }
            total += t;
            in_steps += s;
            health += h;
            slowest = slowest.max(t);
            slowest_health = slowest_health.max(h);
        }
        critical += slowest;
        critical_health += slowest_health;
    }
    let n = lines.len() as f64;
    let wall = wall.as_secs_f64();
    eprintln!(
        "BENCH blue-green 6 tenants x 2 hosts, --batch 25% (4 batches of 3), under the load above: wall {wall:.2}s"
    );
    eprintln!(
        "BENCH   per target (mean): {:.2}s in all, {:.2}s in playbook steps, of which {:.2}s health-check wait; \
         {:.2}s outside the steps (lock, state, arm, switch, verify through nginx, confirm over a fresh connection, unlock)",
        total / n,
        in_steps / n,
        health / n,
        (total - in_steps) / n
    );
    eprintln!(
        "BENCH   per step (mean): {}",
        per_step
            .iter()
            .map(|(name, (sum, count))| format!("{name} {:.2}s", sum / *count as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "BENCH   sum over batches of the slowest target {critical:.2}s (the rest of the wall, {:.2}s, is process start, \
         connections and batch boundaries); of the slowest health wait {critical_health:.2}s: \
         drover's own overhead beyond health waits ~{:.2}s ({:.0}% of wall)",
        wall - critical,
        wall - critical_health,
        100.0 * (wall - critical_health) / wall
    );
}

// ---------------------------------------------------------------------------
// 2: a broken release and the failure budget

#[test]
fn a_broken_release_halts_after_the_failure_budget_and_leaves_every_tenant_live() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");

    let run = drover(
        &fleet,
        &blue_green_to_all(
            "3.0.0-broken",
            &["--batch", "2", "--max-failures", "1", "--json"],
        ),
        DEPLOY_LIMIT,
    );
    assert_exit(&run, EXIT_HALTED, "3.0.0-broken with --max-failures 1");
    let report = by_target(&run);
    assert_eq!(report.len(), 12, "{}", run.describe());
    // Batch 1 is acme on its two hosts: both fail their health check, 2 > 1 allowed.
    let order = targets(&tenants);
    let mut failed = Vec::new();
    for (i, (tenant, host)) in order.iter().enumerate() {
        let key = format!("{tenant}@{host}");
        let line = &report[&key];
        if i < 2 {
            assert_eq!(line["status"], "failed", "{key}: {line}");
            assert_eq!(line["failed_step"], "health", "{key}: {line}");
            failed.push(key);
        } else {
            assert_eq!(line["status"], "skipped", "{key} (a later batch): {line}");
            assert!(
                text(&line["error"]).contains("failure budget spent"),
                "{key}: the skip names the halt: {line}"
            );
        }
    }
    let runs = fleet.work_dir().join(".drover/runs");
    let id = newest_run(&runs).expect("a run journal");
    let events = journal(&runs.join(format!("{id}.jsonl")));
    let halted = events
        .iter()
        .find(|e| e["event"] == "halted")
        .unwrap_or_else(|| panic!("no halted event in the journal: {events:?}"));
    assert!(
        text(&halted["reason"]).contains("2 target(s) failed, 1 allowed"),
        "{halted}"
    );

    // Nothing switched: every tenant on every host answers 1.0.0 through nginx, the
    // broken release never became active, no lock is left.
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the halted rollout");
    for h in fleet.hosts() {
        let log = audit_text(&fleet, &h.name);
        assert!(
            !log.contains("3.0.0-broken"),
            "{}: the broken release was switched to:\n{log}",
            h.name
        );
        for t in &tenants {
            assert_eq!(
                lock_owner(&fleet, &h.name, &t.name),
                None,
                "{}@{}: lock left",
                t.name,
                h.name
            );
        }
    }
    eprintln!("BROKEN halted after {:?}; failed: {failed:?}", run.elapsed);
}

// ---------------------------------------------------------------------------
// 3: a release that dies after its first health check, and the canary soak

#[test]
fn a_crashing_release_is_caught_by_the_canary_soak() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");

    // Traffic to every tenant while the canary soaks (see the end of the test).
    let plan = LoadPlan::steady(DEPLOY_LIMIT);
    let load = Load::start(&fleet, &tenants, &plan);
    let run = drover(
        &fleet,
        &blue_green_to_all("4.0.0-crash", &["--canary", "1", "--pause", "8s", "--json"]),
        DEPLOY_LIMIT,
    );
    let seen = load.stop();
    let report = by_target(&run);
    // What the canary serves right after the run, for the failure message too.
    let (canary_tenant, canary_host) = targets(&tenants)[0].clone();
    let canary = format!("{canary_tenant}@{canary_host}");
    let after = format!(
        "state.json {:?}, nginx -> port {:?}, through nginx {:?}, green unit {}",
        active(&fleet, &canary_host, &canary_tenant),
        nginx_port(&fleet, &canary_host, &canary_tenant),
        proxied_inside(&fleet, &canary_host, &canary_tenant),
        sh_out(
            &fleet,
            &canary_host,
            &format!(
                "systemctl show -p ActiveState -p NRestarts -p ExecMainStatus drover-{canary_tenant}-green.service | tr '\\n' ' '"
            )
        )
    );
    eprintln!("CRASH canary {canary} right after the run: {after}");
    if run.code() == Some(EXIT_OK) {
        // Where a rollout that let the crash release through ends: wait past the unit's
        // start limit (5 starts in 60 s, RestartSec=2) and look at every tenant.
        std::thread::sleep(Duration::from_secs(20));
        for (tenant, host) in targets(&tenants) {
            eprintln!(
                "CRASH   20 s later {tenant}@{host}: through nginx {:?}; green unit {}",
                proxied_version(&fleet, &tenant, &host),
                sh_out(
                    &fleet,
                    &host,
                    &format!(
                        "systemctl show -p ActiveState -p NRestarts -p Result drover-{tenant}-green.service | tr '\\n' ' '"
                    )
                )
            );
        }
    }
    assert_exit(
        &run,
        EXIT_HALTED,
        &format!("4.0.0-crash with a canary soak of 8s (canary {canary} afterwards: {after})"),
    );
    assert_eq!(report.len(), 12, "{}", run.describe());
    let line = &report[&canary];
    assert_eq!(line["status"], "failed", "{canary}: {line}");
    assert_eq!(line["failed_step"], "canary analysis", "{canary}: {line}");
    for (key, line) in &report {
        if *key != canary {
            assert_eq!(
                line["status"], "skipped",
                "{key}: halted before its batch: {line}"
            );
        }
    }

    // The canary is not left on the dead color: for several seconds (longer than the
    // crash release lives) it answers healthy through nginx, with 1.0.0.
    let tenant = tenant(&tenants, &canary_tenant);
    let mut answers = Vec::new();
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        answers.push(proxied_version(&fleet, &canary_tenant, &canary_host));
        std::thread::sleep(Duration::from_millis(250));
    }
    let bad: Vec<_> = answers
        .iter()
        .filter(|a| a.as_deref() != Ok("1.0.0"))
        .collect();
    let (color, version) = active(&fleet, &canary_host, &canary_tenant);
    assert!(
        bad.is_empty(),
        "{canary} after the halt: {} of {} requests through nginx did not get a healthy 1.0.0 \
         (state.json: {color}@{version}, nginx -> port {:?}; blue = {}): {bad:?}\n{}",
        bad.len(),
        answers.len(),
        nginx_port(&fleet, &canary_host, &canary_tenant),
        tenant.port,
        run.describe()
    );
    assert_eq!(
        (color.as_str(), version.as_str()),
        ("blue", "1.0.0"),
        "{canary}: state.json"
    );
    assert_eq!(
        nginx_port(&fleet, &canary_host, &canary_tenant),
        Some(tenant.port)
    );
    // The other tenants were never touched.
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the canary halted");

    // Under the load: no request to another target failed, and the canary's own
    // failures fit in the soak (8 s), its check and the switch back (20 s in all) at
    // the load's rate.
    let phase = "canary of 4.0.0-crash";
    seen.print(phase);
    for (tenant, host) in targets(&tenants) {
        if (&tenant, &host) != (&canary_tenant, &canary_host) {
            seen.assert_none_failed(phase, Requests::to(&tenant).at(&host));
        }
    }
    let per_second = u64::from(plan.gets_per_second + plan.posts_per_second);
    seen.assert_failed_at_most(
        phase,
        Requests::to(&canary_tenant).at(&canary_host),
        20 * per_second,
    );
    eprintln!("CRASH canary {canary}: {}", text(&line["error"]));
}

// ---------------------------------------------------------------------------
// 4: a host lost mid-rollout

#[test]
fn a_host_killed_mid_rollout_counts_against_the_budget() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    let order = targets(&tenants);
    // Batches of 2: acme, globex, hooli, initech (host-3, host-4), stark (host-2,
    // host-4), umbrella. host-4 dies during initech@host-4: one failure, within the
    // budget; stark@host-4 in the next batch is the second: the rollout halts there.
    let dead = "host-4";
    let first_on_dead = order
        .iter()
        .position(|(_, h)| h == dead)
        .expect("a target on host-4");
    let (victim, _) = order[first_on_dead].clone();

    let run = spawn_drover(
        &fleet,
        &blue_green_to_all("2.0.0", &["--batch", "2", "--max-failures", "1", "--json"]),
    );
    // Kill host-4 while its first target is in flight (it holds the tenant's lock).
    wait_for(
        Duration::from_secs(120),
        "the first target on host-4 to start",
        || lock_owner(&fleet, dead, &victim).map(|_| ()),
    );
    std::thread::sleep(Duration::from_millis(300));
    fleet.kill(dead);
    let killed_at = run.elapsed();
    let run = run.wait(DEPLOY_LIMIT);
    eprintln!(
        "HOST KILLED at {:.1}s into the run; drover exited after {:.1}s",
        killed_at.as_secs_f64(),
        run.elapsed.as_secs_f64()
    );
    eprintln!("HOST KILLED: report\n{}", summary(&run));
    assert_exit(&run, EXIT_HALTED, "host-4 killed with --max-failures 1");
    let report = by_target(&run);
    assert_eq!(report.len(), 12, "{}", run.describe());
    let mut lost = Vec::new();
    for (i, (tenant, host)) in order.iter().enumerate() {
        let key = format!("{tenant}@{host}");
        let line = &report[&key];
        let status = text(&line["status"]);
        if host == dead && i >= first_on_dead && status != "skipped" {
            assert!(
                status == "failed" || status == "unreachable",
                "{key}: the lost host's target: {line}"
            );
            lost.push(key.clone());
        } else if lost.len() < 2 {
            assert_eq!(
                status, "changed",
                "{key}: before the budget was spent: {line}"
            );
        } else {
            assert_eq!(
                status, "skipped",
                "{key}: after the budget was spent: {line}"
            );
        }
    }
    assert_eq!(
        lost.len(),
        2,
        "two targets lost on host-4 spend a budget of 1: {lost:?}\n{}",
        run.describe()
    );
    eprintln!(
        "HOST KILLED: lost targets {lost:?}: {:?}",
        lost.iter()
            .map(|k| text(&report[k]["error"]).to_owned())
            .collect::<Vec<_>>()
    );
    let runs = fleet.work_dir().join(".drover/runs");
    let id = newest_run(&runs).expect("a run journal");
    let events = journal(&runs.join(format!("{id}.jsonl")));
    assert!(
        events.iter().any(|e| e["event"] == "halted"
            && text(&e["reason"]).contains("2 target(s) failed, 1 allowed")),
        "{events:?}"
    );

    // The live hosts: consistent, no lock left by the run.
    for h in fleet.hosts().iter().filter(|h| h.name != dead) {
        for t in tenants.iter().filter(|t| t.hosts.contains(&h.name)) {
            assert_eq!(
                lock_owner(&fleet, &h.name, &t.name),
                None,
                "{}@{}",
                t.name,
                h.name
            );
        }
    }
    // host-4 comes back: each tenant's active color is the one nginx points at, and
    // it serves the version the state file names.
    fleet.start(dead);
    for t in tenants.iter().filter(|t| t.hosts.iter().any(|h| h == dead)) {
        let (color, version) = active(&fleet, dead, &t.name);
        let want_port = if color == "green" { t.port + 1 } else { t.port };
        let served = wait_for(
            Duration::from_secs(30),
            "the tenant to answer after the restart",
            || proxied_version(&fleet, &t.name, dead).ok(),
        );
        eprintln!(
            "HOST KILLED: after restart {}@{dead}: state {color}@{version}, nginx -> {:?}, serves {served}, lock {:?}",
            t.name,
            nginx_port(&fleet, dead, &t.name),
            lock_owner(&fleet, dead, &t.name)
        );
        assert_eq!(
            served, version,
            "{}@{dead}: state.json vs what nginx serves",
            t.name
        );
        assert_eq!(
            nginx_port(&fleet, dead, &t.name),
            Some(want_port),
            "{}@{dead}",
            t.name
        );
    }
    // The killed run's lock on host-4 is still there: a new deploy names that run and
    // refuses; --force-unlock takes it (audited).
    let held = lock_owner(&fleet, dead, &victim);
    assert!(
        held.as_deref()
            .is_some_and(|o| o.contains(&format!("run={id}"))),
        "{victim}@{dead}: the killed run's lock: {held:?}"
    );
    let select = ["--tenant", victim.as_str(), "--host", dead];
    let playbook = agent_playbook();
    let mut args = vec![
        "deploy",
        &playbook,
        "--strategy",
        "blue-green",
        "--set",
        "version=2.0.0",
    ];
    args.extend(select);
    let refused = drover(&fleet, &args, SMALL_LIMIT);
    eprintln!(
        "HOST KILLED: a new deploy of {victim}@{dead} exited {:?}:\n{}",
        refused.code(),
        refused.stdout()
    );
    assert_ne!(refused.code(), Some(EXIT_OK), "{}", refused.describe());
    assert!(
        refused.stdout().contains(&format!("locked by run {id}")),
        "the refusal names the dead run {id}\n{}",
        refused.describe()
    );
    args.push("--force-unlock");
    let forced = drover(&fleet, &args, SMALL_LIMIT);
    assert_exit(&forced, EXIT_OK, "--force-unlock");
    let log = audit(&fleet, dead);
    assert!(
        log.iter().any(
            |l| l.get("action").map(String::as_str) == Some("force-unlock")
                && l["tenant"] == victim
                && l.get("previous").is_some_and(|p| p.contains(&id))
        ),
        "{dead}: force-unlock audited with the previous owner:\n{}",
        audit_text(&fleet, dead)
    );
    assert_eq!(lock_owner(&fleet, dead, &victim), None);

    // And the halted run resumes: every target ends on 2.0.0, none twice.
    let resumed = drover(&fleet, &["resume", &id], DEPLOY_LIMIT);
    assert_exit(&resumed, EXIT_OK, "resume after the host came back");
    assert_fleet_serves(&fleet, &tenants, "2.0.0", "after the resume");
}

// ---------------------------------------------------------------------------
// 5: a partition right after the switch

#[test]
fn a_partitioned_host_reverts_the_switch_by_itself() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    let (tenant, host) = ("acme", "host-1");
    let t = self::tenant(&tenants, tenant);
    let gated = variant(&fleet, "gated", "");

    // 2.0.0-gated passes its direct health check, so drover switches nginx to it; through
    // nginx it answers 503 until a gate file exists, which holds drover in "verify
    // through proxy" (up to ~10 s). That is when the host is cut off.
    let run = spawn_drover(
        &fleet,
        &[
            "deploy",
            &gated,
            "--tenant",
            tenant,
            "--host",
            host,
            "--strategy",
            "blue-green",
            "--revert-after",
            "5s",
            "--set",
            "version=2.0.0-gated",
            "--json",
        ],
    );
    wait_for(Duration::from_secs(60), "the switch to 2.0.0-gated", || {
        (active(&fleet, host, tenant).1 == "2.0.0-gated").then_some(())
    });
    fleet.partition(host);
    let switched = Instant::now();
    eprintln!(
        "PARTITION: {host} cut off {:.1}s into the run, right after the switch",
        run.elapsed().as_secs_f64()
    );
    assert_eq!(
        nginx_port(&fleet, host, tenant),
        Some(t.port + 1),
        "switched to green"
    );

    // The host switches back by itself within the deadline (5 s from arming, which
    // came just before the switch), while drover cannot reach it.
    let reverted = wait_for(
        Duration::from_secs(15),
        "the host to revert by itself",
        || {
            (active(&fleet, host, tenant) == ("blue".into(), "1.0.0".into()))
                .then(|| switched.elapsed())
        },
    );
    eprintln!(
        "PARTITION: reverted {:.2}s after the switch was seen (deadline 5 s from arming)",
        reverted.as_secs_f64()
    );
    assert!(
        reverted <= Duration::from_secs(8),
        "reverted after {reverted:?}"
    );
    assert_eq!(
        nginx_port(&fleet, host, tenant),
        Some(t.port),
        "nginx back on blue"
    );
    let (code, body) = proxied_inside(&fleet, host, tenant);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("\"version\":\"1.0.0\""), "{body}");
    let log = audit(&fleet, host);
    let id = log
        .iter()
        .rev()
        .find(|l| {
            l["tenant"] == tenant && l.get("to").map(String::as_str) == Some("green@2.0.0-gated")
        })
        .map(|l| l["run"].clone())
        .unwrap_or_else(|| panic!("no audit line of the switch:\n{}", audit_text(&fleet, host)));
    let reverts: Vec<_> = log
        .iter()
        .filter(|l| l.get("run") == Some(&id) && l["tenant"] == tenant)
        .map(|l| l["line"].clone())
        .collect();
    eprintln!(
        "PARTITION: audit of the run on {host}:\n  {}",
        reverts.join("\n  ")
    );
    assert!(
        log.iter().any(|l| l.get("run") == Some(&id)
            && l.get("action").map(String::as_str) == Some("auto-revert")
            && l.get("from").map(String::as_str) == Some("green@2.0.0-gated")
            && l.get("to").map(String::as_str) == Some("blue@1.0.0")
            && l.get("result").map(String::as_str) == Some("reverted")),
        "{host}: an auto-revert audit line:\n{}",
        audit_text(&fleet, host)
    );
    assert_eq!(
        pending_revert_timers(&fleet, host),
        "",
        "the timer ran and is gone"
    );

    // drover notices the lost host and reports the target as not switched.
    let run = run.wait(SMALL_LIMIT);
    eprintln!(
        "PARTITION: drover exited {:?} after {:.1}s:\n{}",
        run.code(),
        run.elapsed.as_secs_f64(),
        run.stdout()
    );
    assert!(
        matches!(run.code(), Some(1 | 3 | 4)),
        "the partitioned target fails\n{}",
        run.describe()
    );
    let line = by_target(&run)
        .remove(&format!("{tenant}@{host}"))
        .expect("the target");
    assert!(
        line["status"] == "failed" || line["status"] == "unreachable",
        "{line}"
    );
    // Healed, the host is consistent: blue live with 1.0.0, the other host untouched.
    fleet.heal(host);
    assert_eq!(
        proxied_version(&fleet, tenant, host).as_deref(),
        Ok("1.0.0")
    );
    assert_eq!(
        proxied_version(&fleet, tenant, "host-2").as_deref(),
        Ok("1.0.0")
    );
    eprintln!(
        "PARTITION: lock left on {host} after heal: {:?}",
        lock_owner(&fleet, host, tenant)
    );
}

/// The revert deadline [`hold_after_switch`] arms.
const HELD_REVERT_AFTER: Duration = Duration::from_secs(20);

/// Deploys 1.0.0 of `tenant` blue-green, then starts a deploy of 2.0.0-gated (plus
/// `extra` flags) with a [`HELD_REVERT_AFTER`] revert timer and waits for its switch:
/// the gated release passes its direct health check but answers 503 through nginx
/// until `/etc/drover/open-<tenant>` exists, which holds drover in "verify through
/// proxy" (see a_partitioned_host_reverts_the_switch_by_itself). Returns the running
/// drover and when the switch was seen.
fn hold_after_switch(
    fleet: &Fleet,
    tenant: &str,
    host: &str,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> (Running, Instant) {
    let first = drover(
        fleet,
        &[
            "deploy",
            &agent_playbook(),
            "--tenant",
            tenant,
            "--strategy",
            "blue-green",
            "--set",
            "version=1.0.0",
        ],
        SMALL_LIMIT,
    );
    assert_exit(&first, EXIT_OK, "deploy 1.0.0");
    let gated = variant(fleet, "gated", "");
    let revert_after = format!("{}s", HELD_REVERT_AFTER.as_secs());
    let mut args = vec![
        "deploy",
        &gated,
        "--tenant",
        tenant,
        "--strategy",
        "blue-green",
        "--revert-after",
        &revert_after,
        "--set",
        "version=2.0.0-gated",
    ];
    args.extend_from_slice(extra);
    let run = Drover::on(fleet).envs(env).spawn(&args);
    wait_for(Duration::from_secs(60), "the switch to 2.0.0-gated", || {
        (active(fleet, host, tenant).1 == "2.0.0-gated").then_some(())
    });
    (run, Instant::now())
}

#[test]
fn a_host_refusing_logins_for_a_moment_after_its_switch_is_still_confirmed() {
    let Some(fleet) = Fleet::up(1) else { return };
    let (tenant, host) = ("acme", "host-1");
    // Held in "verify through proxy" after the switch. Meanwhile sshd stops listening
    // (the session drover holds lives on), then the gate opens: drover verifies, and
    // its fresh login for the confirmation is refused until sshd comes back a few
    // seconds later, well before the revert deadline.
    let (run, switched) = hold_after_switch(&fleet, tenant, host, &["--json"], &[]);
    let stop = sh(&fleet, host, "systemctl stop ssh.service");
    assert!(stop.status.success(), "stop sshd: {stop:?}");
    let refused = fleet.drover().args(["run", "--all", "--", "true"]).output();
    let refused = refused.expect("drover run");
    assert!(!refused.status.success(), "sshd still accepts logins");
    let gate = sh(&fleet, host, &format!("touch /etc/drover/open-{tenant}"));
    assert!(gate.status.success());
    std::thread::sleep(Duration::from_secs(4));
    let start = sh(&fleet, host, "systemctl start ssh.service");
    assert!(start.status.success(), "start sshd: {start:?}");

    let run = run.wait(SMALL_LIMIT);
    eprintln!(
        "REFUSED LOGINS: drover exited {:?} {:.1}s after the switch:\n{}{}",
        run.code(),
        switched.elapsed().as_secs_f64(),
        run.stderr(),
        run.stdout()
    );
    assert_exit(&run, EXIT_OK, "the deploy whose confirmation was retried");
    let line = by_target(&run)
        .remove(&format!("{tenant}@{host}"))
        .expect("the target");
    assert_eq!(line["status"], "changed", "{line}");

    // Confirmed: past the deadline the host is still on the new release.
    let wait = (HELD_REVERT_AFTER + Duration::from_secs(4)).saturating_sub(switched.elapsed());
    std::thread::sleep(wait);
    assert_eq!(
        active(&fleet, host, tenant),
        ("green".into(), "2.0.0-gated".into()),
        "the revert timer switched back a confirmed target:\n{}",
        audit_text(&fleet, host)
    );
    assert!(
        !audit(&fleet, host)
            .iter()
            .any(|l| l.get("action").map(String::as_str) == Some("auto-revert")),
        "{}",
        audit_text(&fleet, host)
    );
    assert_eq!(
        pending_revert_timers(&fleet, host),
        "",
        "nothing left armed"
    );
}

#[test]
fn a_host_lost_mid_rollout_exits_4_and_status_calls_the_lock_it_left_over_at_once() {
    let Some(fleet) = Fleet::up(1) else { return };
    let (tenant, host) = ("acme", "host-1");
    // Held in "verify through proxy" right after its switch, the host is cut off: the
    // connection dies (keepalive), the host's own timer switches back, and the run can
    // no longer release the tenant's lock.
    let (run, _) = hold_after_switch(&fleet, tenant, host, &["--json"], &[]);
    fleet.partition(host);
    let run = run.wait(SMALL_LIMIT);
    eprintln!("LOST HOST: drover said\n{}{}", run.stderr(), run.stdout());
    assert_exit(
        &run,
        EXIT_UNREACHABLE,
        "a host lost in the middle of a rollout",
    );
    let line = by_target(&run)
        .remove(&format!("{tenant}@{host}"))
        .expect("the target");
    assert_eq!(line["status"], "unreachable", "{line}");
    fleet.heal(host);
    let owner = lock_owner(&fleet, host, tenant).expect("the lost run's lock is still there");

    // The run has ended (its journal says so): status flags its lock at once, not
    // after 30 minutes, and says how to clear it.
    let status = drover(
        &fleet,
        &["status", "--tenant", tenant, "--format", "json"],
        SMALL_LIMIT,
    );
    assert_exit(
        &status,
        EXIT_FAILED,
        "status of a tenant with a left-over lock",
    );
    let doc: Value = serde_json::from_str(&status.stdout()).expect("status JSON");
    let target = doc["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["host"] == host))
        .unwrap_or_else(|| panic!("{host} in {doc}"))
        .clone();
    assert_eq!(target["lock"]["stale"], true, "{target}");
    assert_eq!(target["lock"]["holder"], "ended", "{target}");
    assert!(
        target["lock"]["age_seconds"]
            .as_u64()
            .is_some_and(|a| a < 600),
        "flagged because its run ended, not for its age: {target}"
    );
    let problem = target["problems"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["kind"] == "stale_lock"))
        .unwrap_or_else(|| panic!("a stale_lock problem: {target}"));
    let message = text(&problem["message"]);
    assert!(message.contains("left over"), "{message}");
    assert!(message.contains("--force-unlock"), "{message}");
    assert!(
        owner.contains(text(&target["lock"]["run"])),
        "{owner} / {target}"
    );

    // The next deploy reaches the same verdict, and --force-unlock clears it.
    let refused = drover(
        &fleet,
        &blue_green_to_all("1.0.0", &["--json"]),
        SMALL_LIMIT,
    );
    let refusal = by_target(&refused)
        .remove(&format!("{tenant}@{host}"))
        .expect("the target");
    assert!(
        text(&refusal["error"]).contains("the lock is left over"),
        "{refusal}"
    );
    let forced = drover(
        &fleet,
        &blue_green_to_all("1.0.0", &["--json", "--force-unlock"]),
        SMALL_LIMIT,
    );
    assert_exit(&forced, EXIT_OK, "--force-unlock");
    let healthy = drover(&fleet, &["status", "--tenant", tenant], SMALL_LIMIT);
    assert_exit(&healthy, EXIT_OK, "status once the lock is gone");
}

#[test]
fn a_blue_green_targets_phase_breakdown_is_recorded_and_adds_up_to_its_time() {
    let Some(fleet) = Fleet::up(1) else { return };
    let tenant = "acme";
    let first = drover(
        &fleet,
        &[
            "deploy",
            &agent_playbook(),
            "--tenant",
            tenant,
            "--strategy",
            "blue-green",
            "--set",
            "version=1.0.0",
        ],
        SMALL_LIMIT,
    );
    assert_exit(&first, EXIT_OK, "deploy 1.0.0");
    let update = drover(
        &fleet,
        &[
            "-v",
            "deploy",
            &agent_playbook(),
            "--tenant",
            tenant,
            "--strategy",
            "blue-green",
            "--set",
            "version=2.0.0",
            "--json",
        ],
        SMALL_LIMIT,
    );
    assert_exit(&update, EXIT_OK, "update to 2.0.0");
    let mut expected = vec![
        "connect", "lock", "state", "steps", "upload", "healthy", "arm", "switch", "verify",
        "confirm", "record",
    ];
    for line in update.json_lines() {
        let phases = line["phases"]
            .as_object()
            .unwrap_or_else(|| panic!("phases: {line}"));
        let names: Vec<&str> = phases.keys().map(String::as_str).collect();
        expected.retain(|n| names.contains(n));
        assert_eq!(expected.len(), 11, "{line}");
        let sum: u64 = phases.values().filter_map(Value::as_u64).sum();
        let took = line["duration_ms"].as_u64().expect("duration");
        eprintln!(
            "PHASES {}@{}: {took} ms = {phases:?}",
            text(&line["tenant"]),
            text(&line["host"])
        );
        // Each phase is timed on the control node except the steps' host-side split,
        // whose remainder is counted too: only what lies between phases is left out.
        assert!(
            sum <= took && sum + 50 >= took,
            "phases {sum} ms, target {took} ms: {line}"
        );
        assert_eq!(line["batch"], 1, "{line}");
    }
    // -v prints the table and each batch's critical path on stderr.
    let verbose = update.stderr();
    assert!(verbose.contains("median / p95 ms"), "{verbose}");
    assert!(verbose.contains("critical path acme@host-1"), "{verbose}");
    // The journal keeps them.
    let runs = fleet.work_dir().join(".drover/runs");
    let id = newest_run(&runs).expect("a run journal");
    let events = journal(&runs.join(format!("{id}.jsonl")));
    let recorded = events
        .iter()
        .find(|e| e["event"] == "target")
        .expect("a target in the journal");
    assert!(
        recorded["phases"]["switch"].as_u64().is_some(),
        "{recorded}"
    );
}

// ---------------------------------------------------------------------------
// 6: the control node killed mid-rollout, then resumed

/// Starts a blue-green rollout of 2.0.0 to every target in batches of 2 (plus `extra`
/// flags) and waits until its journal records `done` finished targets; returns the
/// running drover and its run id.
fn rollout_in_background(
    fleet: &Fleet,
    extra: &[&str],
    env: &[(&str, &Path)],
    runs: &Path,
    done: usize,
) -> (Running, String) {
    let mut flags = vec!["--batch", "2"];
    flags.extend_from_slice(extra);
    let run = Drover::on(fleet)
        .envs(env)
        .spawn(&blue_green_to_all("2.0.0", &flags));
    let id = wait_for(Duration::from_secs(120), "targets finished", || {
        let id = newest_run(runs)?;
        let finished = journal(&runs.join(format!("{id}.jsonl")))
            .iter()
            .filter(|e| e["event"] == "target")
            .count();
        (finished >= done).then_some(id)
    });
    (run, id)
}

#[test]
fn killing_the_control_node_mid_rollout_then_resuming_deploys_every_target_once() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    let state_dir = fleet.work_dir().join("control-state");
    let runs = state_dir.join("runs");
    let env = [("DROVER_STATE_DIR", state_dir.as_path())];

    // Killed as soon as the first batch (two targets) is recorded done: the second
    // batch is in flight then, its two targets locked and part-way through.
    let (run, id) = rollout_in_background(&fleet, &[], &env, &runs, 2);
    run.signal("KILL");
    let killed = run.wait(DEPLOY_LIMIT);
    assert_eq!(
        killed.code(),
        None,
        "killed by a signal\n{}",
        killed.describe()
    );
    let events = journal(&runs.join(format!("{id}.jsonl")));
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "finished" || e["event"] == "halted"),
        "the killed run did not end: {events:?}"
    );
    let locks: Vec<String> = fleet
        .hosts()
        .iter()
        .flat_map(|h| {
            tenants
                .iter()
                .filter_map(|t| {
                    lock_owner(&fleet, &h.name, &t.name)
                        .map(|o| format!("{}@{}: {}", t.name, h.name, o.replace('\n', " ")))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    eprintln!(
        "KILLED control node after {} finished target(s); locks left: {locks:?}",
        events.iter().filter(|e| e["event"] == "target").count()
    );

    let resumed = Drover::on(&fleet)
        .envs(&env)
        .run(&["resume", &id], DEPLOY_LIMIT);
    eprintln!("RESUME:\n{}{}", resumed.stderr(), resumed.stdout());
    assert_exit(&resumed, EXIT_OK, "resume");
    assert_each_target_switched_once(&fleet, &tenants, &id);
}

/// The journal's finished-target events so far.
fn targets_recorded(runs: &Path, id: &str) -> usize {
    journal(&runs.join(format!("{id}.jsonl")))
        .iter()
        .filter(|e| e["event"] == "target")
        .count()
}

#[test]
fn a_resume_interrupted_and_resumed_again_ends_with_every_target_deployed_once() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    let state_dir = fleet.work_dir().join("control-state");
    let runs = state_dir.join("runs");
    let env = [("DROVER_STATE_DIR", state_dir.as_path())];

    // The rollout is killed after its first batch, then its resume is killed after one
    // more target: each leaves targets part-way and locks held by the run's id.
    let (run, id) = rollout_in_background(&fleet, &[], &env, &runs, 2);
    run.signal("KILL");
    assert_eq!(run.wait(DEPLOY_LIMIT).code(), None, "killed");
    let before = targets_recorded(&runs, &id);
    let resume = Drover::on(&fleet).envs(&env).spawn(&["resume", &id]);
    wait_for(
        Duration::from_secs(120),
        "the resume to finish a target",
        || (targets_recorded(&runs, &id) > before).then_some(()),
    );
    resume.signal("KILL");
    let killed = resume.wait(DEPLOY_LIMIT);
    assert_eq!(
        killed.code(),
        None,
        "the resume was killed\n{}",
        killed.describe()
    );
    eprintln!(
        "RESUMED TWICE: killed the rollout after {before} and its resume after {} finished target(s)",
        targets_recorded(&runs, &id)
    );

    let again = Drover::on(&fleet)
        .envs(&env)
        .run(&["resume", &id], DEPLOY_LIMIT);
    eprintln!("RESUME AGAIN:\n{}{}", again.stderr(), again.stdout());
    assert_exit(&again, EXIT_OK, "a resume of a killed resume");
    assert_each_target_switched_once(&fleet, &tenants, &id);
}

/// Every target serves 2.0.0, switched to it exactly once (audit log), by run `id`;
/// nothing left locked or armed.
#[track_caller]
fn assert_each_target_switched_once(fleet: &Fleet, tenants: &[Tenant], id: &str) {
    assert_fleet_serves(fleet, tenants, "2.0.0", "after the resume");
    // Exactly one switch to 2.0.0 per target, by this run; nothing left armed or locked.
    let mut problems = Vec::new();
    for h in fleet.hosts() {
        let log = audit(fleet, &h.name);
        for t in tenants.iter().filter(|t| t.hosts.contains(&h.name)) {
            let switches: Vec<_> = log
                .iter()
                .filter(|l| {
                    l["tenant"] == t.name
                        && l.get("to").is_some_and(|to| to.ends_with("@2.0.0"))
                        && l.get("result").map(String::as_str)
                            == Some("switched,awaiting-confirmation")
                })
                .collect();
            if switches.len() != 1 || switches[0].get("run").map(String::as_str) != Some(id) {
                problems.push(format!(
                    "{}@{}: {} switch(es) to 2.0.0: {:?}",
                    t.name,
                    h.name,
                    switches.len(),
                    switches.iter().map(|l| &l["line"]).collect::<Vec<_>>()
                ));
            }
            if let Some(owner) = lock_owner(fleet, &h.name, &t.name) {
                problems.push(format!("{}@{}: lock left: {owner}", t.name, h.name));
            }
        }
        let timers = pending_revert_timers(fleet, &h.name);
        if !timers.is_empty() {
            problems.push(format!("{}: revert timer still armed: {timers}", h.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// 7: two concurrent deploys of one tenant

#[test]
fn a_second_concurrent_deploy_of_a_tenant_is_refused_by_the_lock() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    let acme = tenant(&tenants, "acme").clone();
    let slow = variant(
        &fleet,
        "slow",
        "[[steps]]\nname = \"slow step\"\nrun = { script = \"sleep 8\" }\n",
    );
    let first = spawn_drover(
        &fleet,
        &[
            "deploy",
            &slow,
            "--tenant",
            "acme",
            "--strategy",
            "blue-green",
            "--set",
            "version=1.0.0",
        ],
    );
    let owners: Vec<String> = acme
        .hosts
        .iter()
        .map(|h| {
            wait_for(
                Duration::from_secs(60),
                "the first deploy to take acme's lock",
                || lock_owner(&fleet, h, "acme"),
            )
        })
        .collect();
    let owner = |key: &str| {
        owners[0]
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .expect("owner line")
            .to_owned()
    };
    let (first_id, operator) = (owner("run"), owner("operator"));

    let second = drover(
        &fleet,
        &[
            "deploy",
            &agent_playbook(),
            "--tenant",
            "acme",
            "--strategy",
            "blue-green",
            "--set",
            "version=2.0.0",
        ],
        SMALL_LIMIT,
    );
    let second_id = run_id_of(&second.stderr()).expect("the second run's id");
    let first = first.wait(SMALL_LIMIT);
    assert_exit(&first, EXIT_OK, "the first (slow) deploy");
    eprintln!(
        "LOCK: second deploy exited {:?}:\n{}",
        second.code(),
        second.stdout()
    );
    assert_ne!(second.code(), Some(EXIT_OK), "{}", second.describe());
    for h in &acme.hosts {
        let want = format!("tenant acme on {h} is locked by run {first_id} (operator {operator}");
        assert!(
            second.stdout().contains(&want),
            "want {want:?}\n{}",
            second.describe()
        );
    }
    // Only the first run changed acme: its state and audit lines, none of the second.
    for h in &acme.hosts {
        let s = state(&fleet, h, "acme").expect("state.json");
        assert_eq!(s["run"], first_id.as_str(), "{h}: {s}");
        assert_eq!(s["version"], "1.0.0", "{h}: {s}");
        let log = audit_text(&fleet, h);
        assert!(log.contains(&format!("run={first_id}")), "{h}:\n{log}");
        assert!(
            !log.contains(&second_id),
            "{h}: the refused run left an audit line:\n{log}"
        );
        assert_eq!(lock_owner(&fleet, h, "acme"), None, "{h}: lock released");
        assert_eq!(proxied_version(&fleet, "acme", h).as_deref(), Ok("1.0.0"));
    }
}

// ---------------------------------------------------------------------------
// 6b: the control node killed between the switch and its confirmation, then resumed
// before the revert deadline

#[test]
fn a_run_killed_between_switch_and_confirm_then_resumed_keeps_the_new_version_live() {
    let Some(fleet) = Fleet::up(1) else { return };
    let (tenant, host) = ("acme", "host-1");
    let state_dir = fleet.work_dir().join("control-state");
    let runs = state_dir.join("runs");
    let env = [("DROVER_STATE_DIR", state_dir.as_path())];
    // drover dies in "verify through proxy", with the revert timer armed and not
    // confirmed.
    let (run, switched) = hold_after_switch(&fleet, tenant, host, &[], &env);
    run.signal("KILL");
    let killed = run.wait(DEPLOY_LIMIT);
    assert_eq!(killed.code(), None, "{}", killed.describe());
    let armed = pending_revert_timers(&fleet, host);
    assert!(
        !armed.is_empty(),
        "the killed run left its revert timer armed"
    );
    // The release is fine after all (the gate opens); the operator resumes the run
    // well before the deadline.
    let gate = sh(&fleet, host, &format!("touch /etc/drover/open-{tenant}"));
    assert!(gate.status.success());
    let id = newest_run(&runs).expect("the killed run's journal");
    let resumed = Drover::on(&fleet)
        .envs(&env)
        .run(&["resume", &id], SMALL_LIMIT);
    eprintln!(
        "RESUME BEFORE DEADLINE ({:.1}s after the switch): exit {:?}\n{}{}",
        switched.elapsed().as_secs_f64(),
        resumed.code(),
        resumed.stderr(),
        resumed.stdout()
    );
    assert_exit(&resumed, EXIT_OK, "resume");
    assert!(
        switched.elapsed() < HELD_REVERT_AFTER,
        "the resume ended before the deadline"
    );
    eprintln!(
        "RESUME BEFORE DEADLINE: timers after the resume: {:?}",
        pending_revert_timers(&fleet, host)
    );

    // The resumed run reported success: the target must stay on 2.0.0-gated past the
    // deadline of the killed run's timer.
    let wait = (HELD_REVERT_AFTER + Duration::from_secs(4)).saturating_sub(switched.elapsed());
    std::thread::sleep(wait);
    let (color, version) = active(&fleet, host, tenant);
    let (code, body) = proxied_inside(&fleet, host, tenant);
    eprintln!(
        "RESUME BEFORE DEADLINE: {:.1}s after the switch: state.json {color}@{version}, through nginx {code} {body}\naudit:\n{}",
        switched.elapsed().as_secs_f64(),
        audit_text(&fleet, host)
    );
    assert_eq!(
        (color.as_str(), version.as_str()),
        ("green", "2.0.0-gated"),
        "drover resume reported the target done, then the killed run's revert timer switched it back:\n{}",
        audit_text(&fleet, host)
    );
    assert!(body.contains("2.0.0-gated"), "{code} {body}");
}

// ---------------------------------------------------------------------------
// drover halt from another terminal, with --rollback-on-halt

#[test]
fn drover_halt_stops_a_rollout_and_rollback_on_halt_switches_its_targets_back() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = six_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    let state_dir = fleet.work_dir().join("control-state");
    let runs = state_dir.join("runs");
    let env = [("DROVER_STATE_DIR", state_dir.as_path())];
    let (run, id) = rollout_in_background(&fleet, &["--rollback-on-halt"], &env, &runs, 1);
    let halt = Drover::on(&fleet)
        .envs(&env)
        .run(&["halt", &id], SMALL_LIMIT);
    assert_exit(&halt, EXIT_OK, "drover halt");
    let halted = run.wait(DEPLOY_LIMIT);
    assert_exit(&halted, EXIT_HALTED, "the halted rollout");
    let out = halted.stdout();
    assert!(
        out.contains("HALTED: halt requested"),
        "{}",
        halted.describe()
    );
    assert!(out.contains("rolled back: "), "{}", halted.describe());
    assert!(
        out.contains("skipped"),
        "later batches never started\n{}",
        halted.describe()
    );
    let events = journal(&runs.join(format!("{id}.jsonl")));
    assert!(events.iter().any(|e| e["event"] == "halted"), "{events:?}");
    // Every target this run switched went back: the whole fleet serves 1.0.0 again.
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the halt and rollback");
}

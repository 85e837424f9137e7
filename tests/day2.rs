//! Issue 15, part B, end to end on the Docker fleet: a command health check gating a
//! worker that serves no HTTP, release pruning, group-capped batches, and re-running
//! only what failed. Each test brings up its own small fleet and skips with one line
//! when no Docker engine answers, unless `DROVER_E2E=1`; every drover run is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::support::drover::{
    Drover, EXIT_OK, EXIT_UNREACHABLE, assert_exit, by_target, drover, text,
};
use crate::support::fleet::{Finished, Fleet};
use crate::support::host::{active, audit, sh, sh_out};
use crate::support::repo::{self, path_str};

/// Limit for a small deploy.
const LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// A worker gated by a command health check

/// A worker without HTTP: its unit writes its release into a heartbeat file every
/// second; it is healthy when the beat is fresh, from this release (not the process it
/// replaced), and the release is not a `broken` one.
const WORKER: &str = r#"name = "worker"
[vars]
version = "1.0.0"
user = "agent-{{ tenant }}"
service = "drover-{{ tenant }}-{{ color }}.service"
beat = "/var/lib/drover/{{ tenant }}/beat.{{ color }}"

[[steps]]
name = "tenant user"
user = { name = "{{ user }}", home = "/var/lib/drover/{{ tenant }}" }

[[steps]]
name = "state directory"
dir = { path = "/var/lib/drover/{{ tenant }}", owner = "{{ user }}", group = "{{ user }}", mode = "0750" }

[[steps]]
name = "log directory"
dir = { path = "/var/log/drover/{{ tenant }}", owner = "{{ user }}", group = "{{ user }}", mode = "0750" }

[[steps]]
name = "worker unit"
unit = { name = "{{ service }}", user = "{{ user }}", exec = "/bin/sh -c 'while :; do echo {{ version }} > {{ beat }}; sleep 1; done'" }

[[steps]]
name = "start"
service = { name = "{{ service }}", state = "restarted", enabled = true }

[[steps]]
name = "worker healthy"
health = { command = "grep -qx {{ version }} {{ beat }} && [ $(( $(date +%s) - $(stat -c %Y {{ beat }}) )) -lt 4 ] && ! grep -q broken {{ beat }}", user = "{{ user }}", retries = 10, interval = "500ms" }
"#;

fn worker_playbook(fleet: &Fleet) -> String {
    let path = fleet.work_dir().join("worker.toml");
    std::fs::write(&path, WORKER).expect("write the worker playbook");
    path_str(&path)
}

/// `deploy PLAYBOOK --tenant acme --strategy blue-green EXTRA… --set version=V --json`.
fn blue_green(fleet: &Fleet, playbook: &str, version: &str, extra: &[&str]) -> Finished {
    let set = format!("version={version}");
    let mut args = vec![
        "deploy",
        playbook,
        "--tenant",
        "acme",
        "--strategy",
        "blue-green",
    ];
    args.extend(extra);
    args.extend(["--set", &set, "--json"]);
    drover(fleet, &args, LIMIT)
}

#[test]
fn a_command_health_check_gates_a_worker_that_serves_no_http() {
    let Some(fleet) = Fleet::up(1) else { return };
    let playbook = worker_playbook(&fleet);
    let host = "host-1";
    for (version, color) in [("1.0.0", "blue"), ("2.0.0", "green")] {
        let run = blue_green(&fleet, &playbook, version, &[]);
        assert_exit(&run, EXIT_OK, &format!("worker {version}"));
        // Nothing listens behind nginx: the switch was verified by the command.
        assert_eq!(
            active(&fleet, host, "acme"),
            (color.to_owned(), version.to_owned())
        );
    }
    let recorded = sh_out(
        &fleet,
        host,
        "stat -c '%U %a' /var/lib/drover/.health/acme.green.sh",
    );
    assert_eq!(recorded.trim(), "root 644", "the recorded check is root's");

    let broken = blue_green(&fleet, &playbook, "3.0.0-broken", &[]);
    assert_ne!(broken.code(), Some(EXIT_OK), "{}", broken.describe());
    let line = &by_target(&broken)["acme@host-1"];
    assert_eq!(text(&line["status"]), "failed", "{line}");
    assert_eq!(text(&line["failed_step"]), "worker healthy", "{line}");
    let health = line["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "worker healthy"))
        .unwrap_or_else(|| panic!("no health step: {line}"));
    assert!(
        text(&health["stderr"]).contains("health check of command")
            && text(&health["stderr"])
                .contains("as agent-acme failed after 10 attempt(s): exited 1"),
        "{line}"
    );
    assert_eq!(
        active(&fleet, host, "acme"),
        ("green".to_owned(), "2.0.0".to_owned()),
        "never switched: the old color stays live"
    );
    let switched_to_broken = audit(&fleet, host)
        .iter()
        .any(|a| a.get("to").is_some_and(|t| t.contains("broken")));
    assert!(!switched_to_broken, "{:?}", audit(&fleet, host));

    // `drover status` runs the same recorded check: the live color is healthy, the
    // idle one (the broken release) is not, with the command's own words.
    let status = drover(
        &fleet,
        &["status", "--tenant", "acme", "--format", "json"],
        LIMIT,
    );
    assert_exit(&status, EXIT_OK, "status of the worker");
    let report: Value = serde_json::from_str(&status.stdout()).expect("status JSON");
    let target = &report["targets"][0];
    assert_eq!(target["healthy"], true, "{target}");
    let health = |i: usize| &target["colors"][i]["health"];
    assert_eq!(health(1)["healthy"], true, "{target}");
    assert_eq!(health(0)["healthy"], false, "{target}");
    assert!(
        text(&health(0)["error"]).starts_with("health command exited 1"),
        "{target}"
    );
}

// ---------------------------------------------------------------------------
// Release pruning

/// Releases `versions` of the example agent (1.0.0's code, each naming its own
/// version) in the fleet's scratch dir, and the reference playbook reading them, with
/// `keep_releases = keep`. Returns the playbook's path.
fn pruning_playbook(fleet: &Fleet, name: &str, keep: u32, versions: &[&str]) -> String {
    let releases = fleet.work_dir().join("releases");
    let example = repo::root().join("examples/agent/releases/1.0.0");
    for v in versions {
        let dir = releases.join(v);
        if dir.exists() {
            continue;
        }
        std::fs::create_dir_all(&dir).expect("release dir");
        std::fs::copy(example.join("agent.py"), dir.join("agent.py")).expect("agent.py");
        std::fs::write(
            dir.join("release.json"),
            format!("{{\"version\": \"{v}\"}}\n"),
        )
        .expect("release.json");
    }
    let text = repo::agent_playbook_reading(&releases).replacen(
        "\n[vars]",
        &format!("\nkeep_releases = {keep}\n\n[vars]"),
        1,
    );
    let path = fleet.work_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write the playbook");
    path_str(&path)
}

/// The releases on the host, sorted.
fn releases_on(fleet: &Fleet, host: &str) -> Vec<String> {
    let out = sh_out(fleet, host, "ls -1 /opt/drover/acme/releases");
    out.lines().map(str::to_owned).collect()
}

/// The `prune releases` step of the one target of a `--json` deploy.
fn prune_step(run: &Finished) -> Value {
    let line = &by_target(run)["acme@host-1"];
    line["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "prune releases"))
        .cloned()
        .unwrap_or_else(|| panic!("no prune step: {line}"))
}

#[test]
fn pruning_keeps_the_newest_n_releases_and_both_live_colors() {
    let Some(fleet) = Fleet::up(1) else { return };
    let versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"];
    let keep2 = pruning_playbook(&fleet, "keep2", 2, &versions);
    // N + 2 = 4 releases, deployed in turn: the newest 2 remain.
    for v in &versions[..4] {
        let run = blue_green(&fleet, &keep2, v, &[]);
        assert_exit(&run, EXIT_OK, &format!("deploy {v}"));
    }
    assert_eq!(releases_on(&fleet, "host-1"), ["1.2.0", "1.3.0"]);
    let step = prune_step(&blue_green(&fleet, &keep2, "1.3.0", &[]));
    assert_eq!(step["status"], "ok", "nothing left to prune: {step}");

    // Back to blue (1.2.0), then 1.4.0 into green: blue stays live-warm on 1.2.0,
    // now older than the newest 2 (1.4.0, 1.3.0), and is kept all the same.
    let back = drover(&fleet, &["rollback", "--tenant", "acme"], LIMIT);
    assert_exit(&back, EXIT_OK, "rollback to 1.2.0");
    let run = blue_green(&fleet, &keep2, "1.4.0", &[]);
    assert_exit(&run, EXIT_OK, "deploy 1.4.0");
    assert_eq!(
        active(&fleet, "host-1", "acme"),
        ("green".to_owned(), "1.4.0".to_owned())
    );
    assert_eq!(releases_on(&fleet, "host-1"), ["1.2.0", "1.3.0", "1.4.0"]);
    let step = prune_step(&run);
    assert!(
        text(&step["stdout"]).contains("kept 1.2.0 (live)"),
        "{step}"
    );

    // keep_releases = 1 in dry-run: lists 1.3.0 as going, removes nothing.
    let keep1 = pruning_playbook(&fleet, "keep1", 1, &versions);
    let dry = blue_green(&fleet, &keep1, "1.4.0", &["--dry-run"]);
    assert_exit(&dry, EXIT_OK, "dry-run with keep_releases = 1");
    let step = prune_step(&dry);
    assert_eq!(
        text(&step["stdout"])
            .lines()
            .filter(|l| l.starts_with("would remove"))
            .collect::<Vec<_>>(),
        ["would remove 1.3.0"],
        "{step}"
    );
    assert_eq!(releases_on(&fleet, "host-1"), ["1.2.0", "1.3.0", "1.4.0"]);
    // And for real: exactly the newest 1 plus both live colors remain.
    let run = blue_green(&fleet, &keep1, "1.4.0", &[]);
    assert_exit(&run, EXIT_OK, "deploy with keep_releases = 1");
    assert_eq!(releases_on(&fleet, "host-1"), ["1.2.0", "1.4.0"]);
}

// ---------------------------------------------------------------------------
// Group-capped batches

/// A one-step playbook, in place: fast, and it fails on a host holding
/// `/tmp/drover-fail-here`.
const QUICK: &str = r#"name = "quick"
[[steps]]
name = "check"
run = { script = "test ! -e /tmp/drover-fail-here" }
"#;

fn quick_playbook(fleet: &Fleet) -> String {
    let path = fleet.work_dir().join("quick.toml");
    std::fs::write(&path, QUICK).expect("write the quick playbook");
    path_str(&path)
}

/// The fleet's inventory with a zone per host: `eu` hosts in zone-a, `us` in zone-b.
fn zoned_inventory(fleet: &Fleet) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fleet.inventory()).expect("inventory");
    let text = text
        .replace(
            "groups = [\"eu\", \"canary\"]",
            "groups = [\"eu\", \"canary\", \"zone-a\"]",
        )
        .replace("groups = [\"eu\"]", "groups = [\"eu\", \"zone-a\"]")
        .replace("groups = [\"us\"]", "groups = [\"us\", \"zone-b\"]");
    let path = fleet.work_dir().join("zoned.toml");
    std::fs::write(&path, text).expect("zoned inventory");
    path
}

#[test]
fn a_group_cap_keeps_each_batch_to_one_host_per_zone() {
    let Some(fleet) = Fleet::up(4) else { return };
    let inventory = zoned_inventory(&fleet);
    let playbook = quick_playbook(&fleet);
    let args = [
        "deploy",
        &playbook,
        "--all",
        "--strategy",
        "rolling",
        "--batch",
        "100%",
        "--max-per-group",
        "zone-*=1",
        "--json",
    ];
    let run = Drover::with_inventory(&fleet, &inventory).run(&args, LIMIT);
    assert_exit(&run, EXIT_OK, "rolling deploy capped per zone");
    let zone = |host: &str| {
        if matches!(host, "host-1" | "host-3") {
            "zone-a"
        } else {
            "zone-b"
        }
    };
    let mut batches: BTreeMap<u64, BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
    let lines = run.json_lines();
    assert_eq!(lines.len(), 12, "every target once: {}", run.describe());
    for line in &lines {
        let host = text(&line["host"]).to_owned();
        let batch = line["batch"].as_u64().expect("batch");
        batches
            .entry(batch)
            .or_default()
            .entry(zone(&host))
            .or_default()
            .insert(host);
    }
    for (batch, zones) in &batches {
        for (zone, hosts) in zones {
            assert_eq!(hosts.len(), 1, "batch {batch}: {zone} has {hosts:?}");
        }
    }
    assert_eq!(
        batches.len(),
        2,
        "4 hosts in 2 zones, one per zone a batch: {batches:?}"
    );

    // --dry-run prints the batches with the capped groups.
    let dry: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "--json")
        .chain(["--dry-run"])
        .collect();
    let dry = Drover::with_inventory(&fleet, &inventory).run(&dry, LIMIT);
    assert_exit(&dry, EXIT_OK, "dry-run");
    let printed: Vec<String> = dry
        .stderr()
        .lines()
        .filter(|l| l.starts_with("batch ") && l.contains('@'))
        .map(str::to_owned)
        .collect();
    assert_eq!(printed.len(), 2, "{}", dry.describe());
    assert!(
        printed[0].contains("@host-1 [zone-a]") && printed[0].contains("@host-2 [zone-b]"),
        "{printed:?}"
    );
}

// ---------------------------------------------------------------------------
// Re-running what failed

/// Host names of a `drover run --json`, sorted.
fn run_hosts(run: &Finished) -> Vec<String> {
    let mut hosts: Vec<String> = run
        .json_lines()
        .iter()
        .map(|l| text(&l["host"]).to_owned())
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn rerun_failed_and_only_failed_take_exactly_the_hosts_and_targets_that_failed() {
    let Some(fleet) = Fleet::up(4) else { return };
    let marker = "touch /tmp/drover-fail-here";
    assert!(sh(&fleet, "host-2", marker).status.success());
    fleet.kill("host-3");

    let first = drover(
        &fleet,
        &[
            "run",
            "--all",
            "--json",
            "--",
            "test ! -e /tmp/drover-fail-here",
        ],
        LIMIT,
    );
    assert_exit(&first, EXIT_UNREACHABLE, "host-2 fails, host-3 is down");
    assert_eq!(run_hosts(&first), ["host-1", "host-2", "host-3", "host-4"]);

    // The failure is mended on host-2; host-3 is still down.
    assert!(
        sh(&fleet, "host-2", "rm /tmp/drover-fail-here")
            .status
            .success()
    );
    let again = drover(&fleet, &["run", "--rerun-failed", "--json"], LIMIT);
    assert_eq!(
        run_hosts(&again),
        ["host-2", "host-3"],
        "{}",
        again.describe()
    );
    let by_host: BTreeMap<String, String> = again
        .json_lines()
        .iter()
        .map(|l| (text(&l["host"]).to_owned(), text(&l["status"]).to_owned()))
        .collect();
    assert_eq!(
        by_host["host-2"], "ok",
        "the recorded command ran again: {by_host:?}"
    );
    assert_eq!(by_host["host-3"], "unreachable");
    // That re-run is a run of its own: re-running it takes only host-3.
    let third = drover(&fleet, &["run", "--rerun-failed", "--json"], LIMIT);
    assert_eq!(run_hosts(&third), ["host-3"], "{}", third.describe());

    // A deploy: host-2's targets fail, host-3's are unreachable.
    assert!(sh(&fleet, "host-2", marker).status.success());
    let playbook = quick_playbook(&fleet);
    let deploy = drover(&fleet, &["deploy", &playbook, "--all", "--json"], LIMIT);
    assert_ne!(deploy.code(), Some(EXIT_OK), "{}", deploy.describe());
    let failed: BTreeSet<String> = by_target(&deploy)
        .into_iter()
        .filter(|(_, l)| matches!(text(&l["status"]), "failed" | "unreachable"))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        failed.len(),
        6,
        "3 tenants on each of host-2 and host-3: {failed:?}"
    );
    assert!(
        sh(&fleet, "host-2", "rm /tmp/drover-fail-here")
            .status
            .success()
    );
    let only = drover(
        &fleet,
        &["deploy", &playbook, "--only-failed", "--json"],
        LIMIT,
    );
    let rerun: BTreeSet<String> = by_target(&only).into_keys().collect();
    assert_eq!(rerun, failed, "{}", only.describe());
    let statuses: BTreeSet<String> = by_target(&only)
        .into_iter()
        .map(|(k, l)| format!("{k} {}", text(&l["status"])))
        .collect();
    assert!(
        statuses.iter().all(|s| s.contains("host-3 unreachable")
            || (s.contains("@host-2 ") && s.ends_with("changed"))),
        "{statuses:?}"
    );
    assert_exit(&only, EXIT_UNREACHABLE, "host-3 still down");
}

//! `drover status`, `drover logs` and `drover diagnose` end to end (issue 6).
//!
//! - On the Docker fleet (skips with one line without Docker, unless `DROVER_E2E=1`):
//!   after a blue-green deploy of 1.0.0 every target is healthy with its version and
//!   color (exit 0); Prometheus output passes `promtool check metrics` (when Debian's
//!   `prometheus` package is installed); logs stream live and stop cleanly on Ctrl-C;
//!   a unit stopped by hand is flagged on exactly its target (exit 1), in JSON, in the
//!   HTML page (opened in headless Chromium when installed: screenshot kept at
//!   `target/artifacts/status/status.png`, DOM checked) and in `diagnose`; a killed
//!   host is unreachable and its targets unknown (exit 4). One fleet for all of it.
//! - On 200 loopback hosts of the real-sshd harness: one status round, timed.
//!
//! Every drover run is bounded in time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli;
use crate::support::drover::{Drover, assert_exit, drover, keyed_by_target, text};
use crate::support::fleet::{Finished, Fleet, run_bounded, send_signal};
use crate::support::host::sh_out;
use crate::support::repo::{self, agent_playbook};
use crate::support::sshd::SshdFleet;
use crate::support::tenants::{fleet_tenants, target_keys};
use crate::support::wait::poll;

/// Limit for the blue-green deploy of the whole test fleet.
const DEPLOY_LIMIT: Duration = Duration::from_secs(300);
/// Limit for one status / logs / diagnose run.
const LIMIT: Duration = Duration::from_secs(90);

/// Where the HTML report and its screenshot are kept for CI (DROVER_ARTIFACTS overrides).
fn artifacts() -> PathBuf {
    let dir = std::env::var_os("DROVER_ARTIFACTS")
        .map_or_else(|| repo::root().join("target/artifacts"), PathBuf::from)
        .join("status");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn json(run: &Finished) -> Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("status JSON does not parse: {e}\n{}", run.describe()))
}

/// The JSON targets by `tenant@host`.
#[track_caller]
fn targets(doc: &Value) -> BTreeMap<String, Value> {
    let targets = doc["targets"].as_array().expect("targets array");
    keyed_by_target(targets.iter().cloned(), &doc.to_string())
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} >/dev/null 2>&1"))
        .status()
        .is_ok_and(|s| s.success())
}

/// `promtool check metrics` on a file, when promtool is installed (Debian `prometheus`);
/// returns false (after one printed line) when it is not.
fn promtool_check(file: &Path) -> bool {
    if !have("promtool") {
        println!("skipping promtool check: promtool not installed (apt-get install prometheus)");
        return false;
    }
    let (out, timed_out) = run_bounded(
        Command::new("sh")
            .arg("-c")
            .arg(format!("promtool check metrics < '{}'", file.display())),
        Duration::from_secs(60),
    );
    assert!(
        !timed_out && out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics found problems in {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// Headless Chromium on a page: a screenshot and the DOM after scripts ran. None (after
/// one printed line) when Chromium is not installed.
fn chromium(page: &Path, screenshot: &Path) -> Option<String> {
    let Some(binary) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| have(b))
    else {
        println!(
            "skipping the Chromium check of the HTML report: chromium not installed (apt-get install chromium)"
        );
        return None;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("file://{}", page.display());
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .env("HOME", profile.path());
    };
    let mut shot = Command::new(binary);
    base(&mut shot);
    shot.arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1200,800")
        .arg(&url);
    let (out, timed_out) = run_bounded(&mut shot, Duration::from_secs(90));
    assert!(
        !timed_out && out.status.success() && screenshot.is_file(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut dump = Command::new(binary);
    base(&mut dump);
    dump.arg("--dump-dom").arg(&url);
    let (out, timed_out) = run_bounded(&mut dump, Duration::from_secs(90));
    assert!(
        !timed_out && out.status.success(),
        "chromium --dump-dom failed"
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `drover logs --follow` whose output is read line by line while it runs.
struct Follower {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn start(fleet: &Fleet, args: &[&str]) -> Self {
        let mut child = Drover::on(fleet)
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start drover logs");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Follower { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a line satisfies `want`.
    fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) {
        let seen = poll(Duration::from_secs(30), || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| want(l))
                .then_some(())
        });
        assert!(
            seen.is_some(),
            "drover logs --follow: no {what} within 30s:\n{}",
            self.text()
        );
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn status_logs_and_diagnose_report_a_blue_green_fleet_its_stopped_unit_and_its_lost_host() {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = fleet_tenants(&fleet);
    let all_targets = target_keys(&tenants);
    let playbook = agent_playbook();

    let deploy = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--strategy", "blue-green"],
        DEPLOY_LIMIT,
    );
    assert_exit(&deploy, 0, "blue-green deploy of 1.0.0");

    // --- Healthy: every target ok, 1.0.0, blue live (the first blue-green deploy).
    let healthy = drover(&fleet, &["status", "--all", "--format", "json"], LIMIT);
    println!(
        "timing: status of the 4-host fleet (12 targets) took {:?}",
        healthy.elapsed
    );
    assert_exit(&healthy, 0, "status of a healthy fleet");
    let doc = json(&healthy);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["summary"]["exit_code"], 0);
    assert_eq!(doc["summary"]["hosts_up"], 4);
    let by = targets(&doc);
    assert_eq!(
        by.keys().cloned().collect::<Vec<_>>(),
        {
            let mut t = all_targets.clone();
            t.sort();
            t
        },
        "one entry per target"
    );
    for (name, t) in &by {
        assert_eq!(t["state"], "ok", "{name}: {t}");
        assert_eq!(t["healthy"], true, "{name}: {t}");
        assert_eq!(t["version"], "1.0.0", "{name}: {t}");
        assert_eq!(t["running_version"], "1.0.0", "{name}: {t}");
        assert_eq!(t["active_color"], "blue", "{name}: {t}");
        assert_eq!(t["routed_color"], "blue", "{name}: {t}");
        assert_eq!(t["last_deploy"]["action"], "deploy", "{name}: {t}");
        assert_eq!(t["last_deploy"]["to"], "blue@1.0.0", "{name}: {t}");
        assert!(t["uptime_seconds"].as_u64().is_some(), "{name}: {t}");
        assert!(t["lock"].is_null(), "{name}: {t}");
        assert!(t["colors"][0]["health"]["latency_ms"].as_f64().is_some());
    }
    for h in doc["hosts"].as_array().unwrap() {
        assert_eq!(h["state"], "up", "{h}");
        assert!(h["disks"][0]["used_ratio"].as_f64().is_some(), "{h}");
        assert!(h["memory"]["total_bytes"].as_u64().unwrap_or(0) > 0, "{h}");
    }
    let table = drover(&fleet, &["status", "--all"], LIMIT);
    assert_exit(&table, 0, "table of a healthy fleet");
    assert!(
        table.stdout().contains("no problems"),
        "{}",
        table.describe()
    );
    assert!(!table.stdout().contains('\x1b'), "no colour into a pipe");

    // --- Prometheus: a file for the textfile collector, checked by promtool.
    let prom = fleet.work_dir().join("drover.prom");
    let run = drover(
        &fleet,
        &[
            "status",
            "--all",
            "--format",
            "prometheus",
            "--output",
            prom.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_exit(&run, 0, "prometheus output");
    let metrics = std::fs::read_to_string(&prom).expect("metrics file");
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("drover_target_healthy{") && l.ends_with(" 1"))
            .count(),
        all_targets.len(),
        "{metrics}"
    );
    assert!(
        metrics.contains("drover_target_info{tenant=\""),
        "{metrics}"
    );
    promtool_check(&prom);

    // --- Logs: history from both hosts of a tenant, prefixed host/tenant.
    let (tenant, hosts) = (&tenants[0].name, &tenants[0].hosts);
    let logs = drover(&fleet, &["logs", "--tenant", tenant, "--lines", "5"], LIMIT);
    assert_exit(&logs, 0, "logs");
    for h in hosts {
        let prefix = format!("{h}/{tenant} ");
        assert!(
            logs.stdout().lines().any(|l| l.starts_with(&prefix)
                && l.contains("journal")
                && l.contains("Started drover-")),
            "no journal line from {prefix}\n{}",
            logs.describe()
        );
        assert!(
            logs.stdout().lines().any(|l| l.starts_with(&prefix)
                && l.contains(" blue ")
                && l.contains("agent 1.0.0")),
            "no agent log line from {prefix}\n{}",
            logs.describe()
        );
    }

    // --- Logs --follow: a request made now shows up live; Ctrl-C ends it and the
    // followers on the hosts.
    let mut follower = Follower::start(
        &fleet,
        &["logs", "--tenant", tenant, "--lines", "1", "--follow"],
    );
    let first_host = &hosts[0];
    follower.wait_for("history line", |l| {
        l.starts_with(&format!("{first_host}/{tenant} "))
    });
    let marker = format!("/status-test-marker-{}", std::process::id());
    let port = tenants[0].port;
    let curl = fleet.exec(
        first_host,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            &format!("http://127.0.0.1:{port}{marker}"),
        ],
    );
    assert!(curl.status.success(), "curl on the host failed");
    follower.wait_for("live line", |l| {
        l.starts_with(&format!("{first_host}/{tenant} blue")) && l.contains(&marker)
    });
    send_signal(follower.child.id(), "INT");
    let status = poll(Duration::from_secs(20), || {
        follower.child.try_wait().unwrap()
    })
    .unwrap_or_else(|| {
        panic!(
            "logs --follow still running 20s after Ctrl-C:\n{}",
            follower.text()
        )
    });
    assert_eq!(
        status.code(),
        Some(0),
        "logs --follow after Ctrl-C:\n{}",
        follower.text()
    );
    let followers_on_host = || {
        sh_out(
            &fleet,
            first_host,
            "ps -eo args | grep -E '^(journalctl|tail -n 1 -F)' || true",
        )
    };
    let left = poll(Duration::from_secs(5), || {
        Some(followers_on_host()).filter(|left| left.trim().is_empty())
    })
    .unwrap_or_else(followers_on_host);
    assert_eq!(
        left.trim(),
        "",
        "followers left running on {first_host} after Ctrl-C"
    );

    // --- One unit stopped by hand: exactly that target is flagged, exit 1.
    let (down_tenant, down_hosts) = (&tenants[1].name, &tenants[1].hosts);
    let down_host = &down_hosts[0];
    let down = format!("{down_tenant}@{down_host}");
    let stop = fleet.exec(
        down_host,
        &[
            "systemctl",
            "stop",
            &format!("drover-{down_tenant}-blue.service"),
        ],
    );
    assert!(stop.status.success(), "systemctl stop failed");
    let flagged = drover(&fleet, &["status", "--all", "--format", "json"], LIMIT);
    assert_exit(&flagged, 1, "status with one unit stopped");
    let doc = json(&flagged);
    let by = targets(&doc);
    let problems: Vec<&String> = by
        .iter()
        .filter(|(_, t)| t["state"] != "ok")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        problems,
        [&down],
        "exactly the stopped target is flagged\n{}",
        flagged.describe()
    );
    let t = &by[&down];
    assert_eq!(t["healthy"], false);
    assert_eq!(t["problems"][0]["kind"], "service_down", "{t}");
    assert!(
        text(&t["problems"][0]["message"]).contains("inactive"),
        "{t}"
    );
    assert_eq!(t["colors"][0]["active_state"], "inactive", "{t}");
    assert_eq!(doc["summary"]["targets_problem"], 1);

    // --- The HTML page: the grid with the flagged cell, the problem listed first.
    let dir = artifacts();
    let page = dir.join("status.html");
    let run = drover(
        &fleet,
        &[
            "status",
            "--all",
            "--format",
            "html",
            "--output",
            page.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_exit(&run, 1, "html status with one unit stopped");
    let html = std::fs::read_to_string(&page).expect("html report");
    assert!(html.contains(&format!("data-target=\"{down}\" data-state=\"problem\"")));
    let screenshot = dir.join("status.png");
    let _ = std::fs::remove_file(&screenshot);
    if let Some(dom) = chromium(&page, &screenshot) {
        println!("screenshot of the HTML report: {}", screenshot.display());
        assert!(dom.contains("<table id=\"grid\">"), "no grid in the DOM");
        assert_eq!(
            dom.matches("class=\"cell ok\"").count(),
            all_targets.len() - 1,
            "every other grid cell is healthy"
        );
        assert!(dom.contains(&format!(
            "<td class=\"cell problem\" data-target=\"{down}\" data-state=\"problem\""
        )));
        let first_problem = dom.find("<li class=").expect("a problem listed");
        assert!(
            dom[first_problem..].starts_with(&format!(
                "<li class=\"problem\" data-subject=\"{down}\" data-kind=\"service down\">"
            )),
            "the flagged target is the first problem"
        );
        assert!(
            first_problem < dom.find("id=\"grid\"").unwrap(),
            "problems come before the grid"
        );
        let png = std::fs::read(&screenshot).expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a real screenshot"
        );
    }

    // --- Diagnose: a bundle per host and the verdicts.
    let bundle = fleet.work_dir().join("diagnosis");
    let diag = drover(
        &fleet,
        &["diagnose", "--all", "--output", bundle.to_str().unwrap()],
        LIMIT,
    );
    assert_exit(&diag, 1, "diagnose with one unit stopped");
    let verdicts = diag.stdout();
    assert!(
        verdicts
            .lines()
            .next()
            .unwrap_or("")
            .starts_with(&format!("{down_host}/{down_tenant}: service down — ")),
        "{}",
        diag.describe()
    );
    assert_eq!(
        verdicts
            .lines()
            .filter(|l| l.contains(": healthy — "))
            .count(),
        all_targets.len() - 1
    );
    for h in fleet.hosts() {
        for file in [
            "units.txt",
            "journal.txt",
            "df.txt",
            "free.txt",
            "top.txt",
            "oom.txt",
            "audit.txt",
        ] {
            let path = bundle.join(&h.name).join(file);
            assert!(path.is_file(), "missing {}", path.display());
        }
    }
    let units = std::fs::read_to_string(bundle.join(down_host).join("units.txt")).unwrap();
    assert!(
        units.contains(&format!("drover-{down_tenant}-blue.service")),
        "{units}"
    );
    let state = std::fs::read_to_string(
        bundle
            .join(down_host)
            .join(format!("state-{down_tenant}.json")),
    )
    .unwrap();
    assert!(state.contains("\"active\": \"blue\""), "{state}");
    assert!(bundle.join("status.json").is_file() && bundle.join("verdicts.txt").is_file());

    // --- A host killed: unreachable, its targets unknown, exit 4.
    let lost = &fleet.hosts()[3].name.clone();
    fleet.kill(lost);
    let unreachable = drover(&fleet, &["status", "--all", "--format", "json"], LIMIT);
    println!(
        "timing: status with {lost} killed took {:?}",
        unreachable.elapsed
    );
    assert_exit(&unreachable, 4, "status with a host killed");
    let doc = json(&unreachable);
    let host = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == lost.as_str())
        .unwrap();
    assert_eq!(host["state"], "unreachable", "{host}");
    assert_eq!(host["problems"][0]["kind"], "unreachable", "{host}");
    for (name, t) in targets(&doc) {
        if t["host"] == lost.as_str() {
            assert_eq!(t["state"], "unknown", "{name}: {t}");
            assert!(t["healthy"].is_null(), "{name}: {t}");
        } else if name == down {
            assert_eq!(t["state"], "problem", "{name}: {t}");
        } else {
            assert_eq!(t["state"], "ok", "{name}: {t}");
        }
    }
    let table = drover(&fleet, &["status", "--all"], LIMIT);
    assert_exit(&table, 4, "table with a host killed");
    assert!(
        table.stdout().contains(&format!("✗ {lost}: unreachable: ")),
        "{}",
        table.describe()
    );
    let diag = drover(
        &fleet,
        &[
            "diagnose",
            "--host",
            lost,
            "--output",
            bundle.to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_exit(&diag, 4, "diagnose of a killed host");
    assert!(
        diag.stdout()
            .lines()
            .all(|l| l.contains(": unreachable — ")),
        "{}",
        diag.describe()
    );
    assert!(bundle.join(lost).join("unreachable.txt").is_file());
}

#[test]
fn status_asks_200_loopback_hosts_in_one_round_and_exits_4_for_a_missing_one() {
    let fleet = SshdFleet::start(200);
    let hosts: Vec<String> = (1..=200).map(|i| format!("\"h{i}\"")).collect();
    let inventory = fleet.write_inventory(&format!(
        "[hosts.gone]\naddress = \"127.0.0.1\"\nconnect_timeout = \"3s\"\n\n\
         [tenants.agent]\nhosts = [{}]\nport = 9100\n",
        hosts.join(", ")
    ));
    let home = fleet.dir.path();
    let run = |args: &[&str]| cli::run_with_inventory(home, &inventory, args);

    let bad = run(&["status"]);
    assert_eq!(bad.code, 2, "no selector is bad input: {bad:?}");

    let started = Instant::now();
    let out = run(&["status", "--all", "--format", "json"]);
    let elapsed = started.elapsed();
    println!("timing: status of 200 loopback hosts (+1 unreachable) took {elapsed:?}");
    assert_eq!(out.code, 4, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(doc["summary"]["hosts"], 201);
    assert_eq!(doc["summary"]["hosts_up"], 200, "{}", out.stderr);
    assert_eq!(doc["summary"]["hosts_unreachable"], 1);
    let gone = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "gone")
        .unwrap();
    assert_eq!(gone["state"], "unreachable");
    // Nothing is deployed on these hosts: every target says so.
    let targets = doc["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 200);
    for t in targets {
        assert_eq!(t["state"], "problem", "{t}");
        assert_eq!(t["problems"][0]["kind"], "not_deployed", "{t}");
    }
    for h in doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["state"] == "up")
    {
        assert!(h["load"]["one"].as_f64().is_some(), "{h}");
        assert!(!h["disks"].as_array().unwrap().is_empty(), "{h}");
    }
    assert!(elapsed < Duration::from_secs(120), "took {elapsed:?}");

    // The same round as Prometheus metrics, checked by promtool when it is installed.
    let prom = home.join("drover.prom");
    let out = run(&[
        "status",
        "--all",
        "--format",
        "prometheus",
        "-o",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 4, "{out:?}");
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("drover_host_up{host=\"gone\"} 0"), "{text}");
    assert_eq!(text.matches("drover_target_healthy{").count(), 200);
    promtool_check(&prom);
}

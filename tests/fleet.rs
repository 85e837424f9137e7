//! Fleet end-to-end tests: drover against real hosts (containers from
//! `docker/`: systemd as PID 1, sshd, nginx, python3) on a private network,
//! with host loss (`docker kill`) and partitions (`docker network
//! disconnect`). Each test brings up its own fleet (nextest runs every test
//! in its own process) and removes it when done, also on failure.
//!
//! Without a Docker engine (or without the images from docker/build.sh) they
//! print one "skipping" line and pass, unless `DROVER_E2E=1` (CI), which
//! makes that a failure. Every wait is bounded.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::drover::{drover, spawn_drover, text};
use crate::support::fleet::{Finished, Fleet, Running, e2e_required};
use crate::support::http;
use crate::support::repo;
use crate::support::wait::poll;

/// Limit for one drover run against a healthy fleet.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Every host of the fleet has exactly one JSON line, with status "ok",
/// exit code 0 and its own address; the run exited 0.
fn assert_all_ok(fleet: &Fleet, run: &Finished) {
    assert_eq!(
        run.code(),
        Some(0),
        "want exit 0 (all ok)\n{}\n{}",
        run.describe(),
        fleet.ps()
    );
    assert_eq!(
        run.json_lines().len(),
        fleet.hosts().len(),
        "one JSON line per host\n{}",
        run.describe()
    );
    for h in fleet.hosts() {
        let line = run.host(&h.name);
        assert_eq!(line["status"], "ok", "{}: {line}", h.name);
        assert_eq!(line["exit_code"], 0, "{}: {line}", h.name);
        assert_eq!(line["address"], h.address.as_str(), "{}: {line}", h.name);
    }
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(limit, || cond().then_some(())).is_some()
}

#[test]
fn fleet_hosts_run_systemd_sshd_and_nginx_through_drover() {
    let Some(fleet) = Fleet::up(4) else { return };

    let run = drover(
        &fleet,
        &[
            "run",
            "--all",
            "--json",
            "--",
            "systemctl",
            "is-system-running",
        ],
        RUN_LIMIT,
    );
    assert_all_ok(&fleet, &run);
    for h in fleet.hosts() {
        assert_eq!(
            text(&run.host(&h.name)["stdout"]).trim(),
            "running",
            "{}",
            run.describe()
        );
    }

    let run = drover(
        &fleet,
        &["run", "--all", "--json", "--", "id", "deploy"],
        RUN_LIMIT,
    );
    assert_all_ok(&fleet, &run);
    for h in fleet.hosts() {
        let out = text(&run.host(&h.name)["stdout"]).to_owned();
        assert!(out.contains("uid=1000(deploy)"), "{}: {out:?}", h.name);
    }

    // nginx -v prints its version on stderr.
    let run = drover(
        &fleet,
        &["run", "--all", "--json", "--", "nginx", "-v"],
        RUN_LIMIT,
    );
    assert_all_ok(&fleet, &run);
    for h in fleet.hosts() {
        let line = run.host(&h.name);
        let both = format!("{}{}", text(&line["stdout"]), text(&line["stderr"]));
        assert!(both.contains("nginx version: nginx/"), "{}: {line}", h.name);
    }

    // Password-less sudo works, and PID 1 is systemd.
    let run = drover(
        &fleet,
        &["run", "--all", "--json", "--", "sudo -n ps -o comm= -p 1"],
        RUN_LIMIT,
    );
    assert_all_ok(&fleet, &run);
    for h in fleet.hosts() {
        assert_eq!(
            text(&run.host(&h.name)["stdout"]).trim(),
            "systemd",
            "{}",
            run.describe()
        );
    }
}

#[test]
fn fleet_hosts_let_only_the_fleet_key_in_over_plain_openssh() {
    if Command::new("ssh").arg("-V").output().is_err() {
        assert!(
            !e2e_required(),
            "DROVER_E2E is set but there is no ssh client"
        );
        println!("skipping: needs the OpenSSH client (ssh)");
        return;
    }
    let Some(fleet) = Fleet::up(2) else { return };
    for h in fleet.hosts() {
        // Strict host key checking against the generated known_hosts.
        let out = fleet.ssh(
            &h.name,
            "hostname; sudo -n true && echo sudo-ok; systemctl is-active ssh nginx",
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {out:?}", h.name);
        assert_eq!(
            stdout.split_whitespace().collect::<Vec<_>>(),
            [h.name.as_str(), "sudo-ok", "active", "active"]
        );
    }
    // sshd: keys only, no root; one ed25519 host key per container.
    let config = fleet.exec("host-1", &["sshd", "-T"]);
    let config = String::from_utf8_lossy(&config.stdout).to_lowercase();
    for want in [
        "passwordauthentication no",
        "permitrootlogin no",
        "kbdinteractiveauthentication no",
    ] {
        assert!(config.lines().any(|l| l == want), "sshd -T lacks {want:?}");
    }
    let key = |host: &str| {
        String::from_utf8_lossy(
            &fleet
                .exec(host, &["cat", "/etc/ssh/ssh_host_ed25519_key.pub"])
                .stdout,
        )
        .into_owned()
    };
    assert_ne!(
        key("host-1"),
        key("host-2"),
        "each container makes its own host key"
    );
    // A key that is not the fleet's is refused.
    let stranger = fleet.work_dir().join("stranger");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let out = fleet.ssh_with_key("host-1", &stranger, "true");
    assert!(!out.status.success(), "a stranger's key got in: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
}

#[test]
fn a_host_killed_mid_command_is_reported_lost_while_the_others_finish() {
    let Some(fleet) = Fleet::up(4) else { return };
    let running = spawn_drover(
        &fleet,
        &[
            "run",
            "--all",
            "--json",
            "--timeout",
            "30s",
            "--",
            "sleep 5; echo done",
        ],
    );

    // Kill host-2 once the command runs there (about a second in).
    let started = wait_until(Duration::from_secs(20), || {
        fleet
            .exec("host-2", &["pgrep", "-x", "sleep"])
            .status
            .success()
    });
    if !started {
        let run = running.wait(Duration::from_secs(60));
        panic!(
            "the command never started on host-2\n{}\n{}",
            run.describe(),
            fleet.ps()
        );
    }
    fleet.kill("host-2");
    let killed_at = running.elapsed();
    let run = running.wait(Duration::from_secs(50));

    let lost = run.host("host-2");
    let lost_status = text(&lost["status"]).to_owned();
    assert!(
        lost_status == "unreachable" || lost_status == "failed",
        "host-2 was killed mid-command, want unreachable or failed: {lost}\n{}",
        run.describe()
    );
    assert_ne!(lost["exit_code"], 0, "{lost}");
    assert!(!text(&lost["stdout"]).contains("done"), "{lost}");
    assert!(
        !lost["error"].is_null() || !lost["signal"].is_null(),
        "say what went wrong: {lost}"
    );
    for h in fleet.hosts().iter().filter(|h| h.name != "host-2") {
        let line = run.host(&h.name);
        assert_eq!(
            line["status"],
            "ok",
            "{}: {line}\n{}",
            h.name,
            run.describe()
        );
        assert_eq!(text(&line["stdout"]).trim(), "done", "{}: {line}", h.name);
    }
    // 4 (some unreachable) takes precedence over 1 (some failed).
    let want = if lost_status == "unreachable" { 4 } else { 1 };
    assert_eq!(run.code(), Some(want), "{}", run.describe());
    // drover noticed the loss: it did not sit out the 30 s command timeout.
    assert!(
        run.elapsed < killed_at + Duration::from_secs(15),
        "host killed at {killed_at:?}, drover ended at {:?}",
        run.elapsed
    );

    // The host comes back with its address and host key.
    fleet.start("host-2");
    let run = drover(
        &fleet,
        &["run", "--host", "host-2", "--json", "--", "hostname"],
        RUN_LIMIT,
    );
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    assert_eq!(text(&run.host("host-2")["stdout"]).trim(), "host-2");
}

#[test]
fn a_partitioned_host_is_reported_unreachable_within_the_connect_timeout() {
    let Some(fleet) = Fleet::up(3) else { return };
    fleet.partition("host-2");

    // The generated inventory sets connect_timeout = "3s".
    let run = drover(
        &fleet,
        &["run", "--all", "--json", "--", "hostname"],
        Duration::from_secs(30),
    );
    assert!(
        run.elapsed < Duration::from_secs(6),
        "a partitioned host must cost the connect timeout (3 s), not a hang\n{}",
        run.describe()
    );
    assert_eq!(
        run.code(),
        Some(4),
        "want 4 (some unreachable)\n{}",
        run.describe()
    );
    let cut = run.host("host-2");
    assert_eq!(cut["status"], "unreachable", "{cut}");
    let error = text(&cut["error"]).to_lowercase();
    assert!(
        error.contains("timed out") || error.contains("timeout"),
        "want a connect time-out: {cut}"
    );
    for h in fleet.hosts().iter().filter(|h| h.name != "host-2") {
        let line = run.host(&h.name);
        assert_eq!(line["status"], "ok", "{}: {line}", h.name);
        assert_eq!(text(&line["stdout"]).trim(), h.name, "{line}");
    }

    fleet.heal("host-2");
    let run = drover(
        &fleet,
        &["run", "--all", "--json", "--", "hostname"],
        RUN_LIMIT,
    );
    assert_all_ok(&fleet, &run);
}

#[test]
fn a_dropped_fleet_leaves_no_container_network_or_state_behind() {
    let Some(fleet) = Fleet::up(1) else { return };
    let name = fleet.name().to_owned();
    let state = fleet.state_dir().to_path_buf();
    assert!(state.join("known_hosts").is_file());
    drop(fleet);
    let label = format!("label=drover.fleet={name}");
    let containers = Command::new("docker")
        .args(["ps", "-aq", "--filter", &label])
        .output()
        .expect("docker ps");
    assert!(
        containers.stdout.is_empty(),
        "containers left: {containers:?}"
    );
    let networks = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", &label])
        .output()
        .expect("docker");
    assert!(networks.stdout.is_empty(), "network left: {networks:?}");
    assert!(!state.exists(), "state dir left: {}", state.display());
}

// ---------------------------------------------------------------------------
// The example agent (examples/agent/releases/*), run locally on loopback.

fn releases_dir() -> PathBuf {
    repo::root().join("examples/agent/releases")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `method path` (with `body`) to the agent on 127.0.0.1:`port`: (status code, body).
fn ask_agent(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let answer = http::request(addr, method, "agent", path, body, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (answer.status, answer.body)
}

fn start_agent(version: &str, port: u16) -> Running {
    Running::start(
        Command::new("python3")
            .arg(releases_dir().join(version).join("agent.py"))
            .args(["--port", &port.to_string()])
            .env("TENANT", "acme"),
    )
}

#[test]
fn example_agent_releases_answer_health_and_version_as_documented() {
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipping: the example agent needs python3");
        return;
    }
    for (version, health_code, health) in [
        ("1.0.0", 200, "healthy"),
        ("2.0.0", 200, "healthy"),
        ("3.0.0-broken", 500, "unhealthy"),
        ("4.0.0-crash", 200, "healthy"),
    ] {
        let port = free_port();
        let agent = start_agent(version, port);
        assert!(
            wait_until(Duration::from_secs(10), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "agent {version} did not listen on {port}"
        );
        let (code, body) = ask_agent(port, "GET", "/health", b"");
        assert_eq!(code, health_code, "{version}: {body}");
        let json: Value = serde_json::from_str(&body).expect("health answers JSON");
        assert_eq!(json["status"], health, "{version}: {body}");
        assert_eq!(json["version"], version, "{version}: {body}");
        let (code, body) = ask_agent(port, "GET", "/", b"");
        assert_eq!(code, 200);
        assert_eq!(body.trim(), format!("agent {version} tenant acme"));
        // POST / reads its whole body and says so, with the version.
        let (code, body) = ask_agent(port, "POST", "/", b"a small body");
        assert_eq!(code, 200, "{version}: {body}");
        assert_eq!(
            body.trim(),
            format!("agent {version} tenant acme received 12 bytes")
        );

        if version == "4.0.0-crash" {
            let done = agent.wait(Duration::from_secs(15));
            assert!(done.code().is_some_and(|c| c != 0), "{}", done.describe());
            assert!(
                done.elapsed >= Duration::from_secs(2),
                "crashed too soon: {}",
                done.describe()
            );
        } else {
            agent.signal("TERM");
            let done = agent.wait(Duration::from_secs(10));
            assert_eq!(
                done.code(),
                Some(0),
                "SIGTERM ends it cleanly\n{}",
                done.describe()
            );
        }
    }
}

#[test]
fn example_agent_releases_are_self_contained_copies_of_one_agent() {
    let mut agents = Vec::new();
    for entry in std::fs::read_dir(releases_dir()).expect("releases dir") {
        let dir = entry.expect("entry").path();
        let release: Value =
            serde_json::from_slice(&std::fs::read(dir.join("release.json")).expect("release.json"))
                .expect("JSON");
        assert_eq!(
            release["version"].as_str(),
            dir.file_name().and_then(|n| n.to_str()),
            "release.json names its directory"
        );
        agents.push((
            dir.clone(),
            std::fs::read(dir.join("agent.py")).expect("agent.py"),
        ));
    }
    assert!(
        agents.len() >= 4,
        "releases 1.0.0, 2.0.0, 3.0.0-broken, 4.0.0-crash"
    );
    for (dir, code) in &agents {
        assert!(
            code == &agents[0].1,
            "{} differs from {}: copy one agent.py to all",
            dir.display(),
            agents[0].0.display()
        );
    }
}

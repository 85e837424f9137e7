//! `drover run` against real OpenSSH sshds on loopback.

use std::process::Command;
use std::time::Duration;

use crate::support::cli::{Run, drover, run, run_with_inventory};
use crate::support::sshd::{SshdFleet, keygen};

/// `drover -i INVENTORY run ARGS...` with the fleet's dir as HOME.
fn drover_run(fleet: &SshdFleet, inventory: &std::path::Path, args: &[&str]) -> Run {
    run_with_inventory(fleet.dir.path(), inventory, &[&["run"], args].concat())
}

#[test]
fn fifty_loopback_hosts_all_run_the_command() {
    let fleet = SshdFleet::start(50);
    let inv = fleet.write_inventory("");
    let r = drover_run(&fleet, &inv, &["--all", "--", "echo", "hello"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("h[1-50] (50) ok\n"), "{r:?}");
    assert!(r.stdout.contains("hello\n"), "{r:?}");
    assert!(r.stdout.contains("ok 50 — 50 hosts"), "{r:?}");
}

#[test]
fn a_command_failing_on_some_hosts_is_reported_with_its_exit_code() {
    let fleet = SshdFleet::start(6);
    let inv = fleet.write_inventory("");
    // SSH_CONNECTION names the server address each host was reached on.
    let fail_on = format!("{} ", fleet.addresses[1]);
    let script = format!(
        "case \"$SSH_CONNECTION\" in *' {fail_on}'*) echo boom >&2; exit 3;; esac; echo fine"
    );
    let r = drover_run(&fleet, &inv, &["--all", "--", &script]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("h[1,3-6] (5) ok\n---------------\nfine\n"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("h2 (1) failed, exit 3\n---------------\nstderr:\nboom\n"),
        "{r:?}"
    );
    assert!(r.stdout.contains("ok 5, failed 1 — 6 hosts"), "{r:?}");
}

#[test]
fn a_host_with_a_closed_port_is_unreachable_and_the_others_are_unaffected() {
    let fleet = SshdFleet::start(4);
    // Nothing listens on port 1 of this address.
    let inv = fleet.write_inventory("[hosts.gone]\naddress = \"127.0.0.1\"\nport = 1\n");
    let r = drover_run(&fleet, &inv, &["--all", "--json", "--", "true"]);
    assert_eq!(r.code, 4, "{r:?}");
    let lines = r.json_lines();
    assert_eq!(lines.len(), 5);
    let gone = lines.iter().find(|l| l["host"] == "gone").unwrap();
    assert_eq!(gone["status"], "unreachable");
    assert!(
        gone["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "{gone}"
    );
    assert_eq!(lines.iter().filter(|l| l["status"] == "ok").count(), 4);
}

#[test]
fn json_output_has_one_parsable_object_per_host_with_matching_counts() {
    let fleet = SshdFleet::start(10);
    let inv = fleet.write_inventory("");
    let r = drover_run(
        &fleet,
        &inv,
        &[
            "--group",
            "odd",
            "--json",
            "--",
            "printf out; printf err >&2; exit 2",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let lines = r.json_lines();
    assert_eq!(lines.len(), 5, "{r:?}");
    for l in &lines {
        assert_eq!(l["status"], "failed");
        assert_eq!(l["exit_code"], 2);
        assert_eq!(l["stdout"], "out");
        assert_eq!(l["stderr"], "err");
        assert!(l["duration_ms"].is_u64());
        assert!(l["error"].is_null());
    }
    let names: Vec<&str> = lines.iter().map(|l| l["host"].as_str().unwrap()).collect();
    assert_eq!(names, ["h1", "h3", "h5", "h7", "h9"]);
}

#[test]
fn identical_outputs_are_grouped_with_folded_host_lists() {
    let fleet = SshdFleet::start(8);
    let inv = fleet.write_inventory("");
    let odd: Vec<String> = fleet
        .addresses
        .iter()
        .step_by(2)
        .map(|a| format!("*' {a} '*"))
        .collect();
    let script = format!(
        "case \"$SSH_CONNECTION\" in {}) echo A;; *) echo B;; esac",
        odd.join("|")
    );
    let r = drover_run(&fleet, &inv, &["--all", "--", &script]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("h[1,3,5,7] (4) ok\n---------------\nA\n"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("h[2,4,6,8] (4) ok\n---------------\nB\n"),
        "{r:?}"
    );
    assert_eq!(r.stdout.matches("---------------\n").count(), 4, "{r:?}");
}

#[test]
fn an_unknown_host_key_is_refused_with_its_fingerprint_then_accepted_with_accept_new() {
    let fleet = SshdFleet::start(2);
    let inv = fleet.write_inventory("");
    std::fs::write(fleet.known_hosts_path(), "").unwrap();
    let r = drover_run(&fleet, &inv, &["--all", "--", "true"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stdout.contains("host key for") && r.stdout.contains("is unknown: ssh-ed25519 SHA256:"),
        "{r:?}"
    );
    assert!(r.stdout.contains("--accept-new"), "{r:?}");

    let r = drover_run(&fleet, &inv, &["--all", "--accept-new", "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
    let recorded = std::fs::read_to_string(fleet.known_hosts_path()).unwrap();
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    assert!(recorded.contains(&format!(
        "[{}]:{} {}",
        fleet.addresses[0], fleet.port, fleet.host_key_pub
    )));

    // Strict again: the recorded keys are now known.
    let r = drover_run(&fleet, &inv, &["--all", "--", "true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let fleet = SshdFleet::start(2);
    let inv = fleet.write_inventory("");
    let other = keygen(fleet.dir.path(), "impostor", "ed25519", "");
    let other_pub = std::fs::read_to_string(format!("{}.pub", other.display())).unwrap();
    let other_pub: String = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let text = fleet
        .known_hosts_text()
        .replacen(&fleet.host_key_pub, &other_pub, 1);
    std::fs::write(fleet.known_hosts_path(), &text).unwrap();
    let r = drover_run(
        &fleet,
        &inv,
        &["--all", "--accept-new", "--json", "--", "true"],
    );
    assert_eq!(r.code, 4, "{r:?}");
    let lines = r.json_lines();
    let h1 = &lines[0];
    assert_eq!(h1["status"], "unreachable");
    let error = h1["error"].as_str().unwrap();
    assert!(
        error.contains("HAS CHANGED") && error.contains("known_hosts:1"),
        "{error}"
    );
    assert_eq!(lines[1]["status"], "ok");
    assert_eq!(
        std::fs::read_to_string(fleet.known_hosts_path()).unwrap(),
        text,
        "file left alone"
    );
}

#[test]
fn a_host_behind_a_jump_host_is_reached_through_it() {
    let fleet = SshdFleet::start(3);
    let inv = fleet.write_inventory(
        "[hosts.inner]\naddress = \"ADDR\"\njump = \"h1\"\n"
            .replace("ADDR", &fleet.addresses[2])
            .as_str(),
    );
    let r = drover_run(&fleet, &inv, &["--host", "inner", "--", "echo via-jump"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("inner (1) ok\n---------------\nvia-jump\n"),
        "{r:?}"
    );

    // The same target behind a dead jump host is unreachable although it answers
    // directly: the path really goes through the jump host.
    let inv = fleet.write_inventory(
        "[hosts.dead]\naddress = \"127.0.0.1\"\nport = 1\n[hosts.inner]\naddress = \"ADDR\"\njump = \"dead\"\n"
            .replace("ADDR", &fleet.addresses[2])
            .as_str(),
    );
    let r = drover_run(&fleet, &inv, &["--host", "inner", "--", "true"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("via jump host dead"), "{r:?}");
}

#[test]
fn a_command_past_its_timeout_is_ended_on_the_host_in_about_the_timeout() {
    let fleet = SshdFleet::start(2);
    let inv = fleet.write_inventory("");
    let marker = format!("sleep 3{}.5", fleet.port % 1000);
    let r = drover_run(
        &fleet,
        &inv,
        &["--all", "--timeout", "2s", "--json", "--", &marker],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.elapsed < Duration::from_secs(6), "took {:?}", r.elapsed);
    for l in r.json_lines() {
        assert_eq!(l["status"], "timed_out", "{l}");
        assert!(
            l["error"].as_str().unwrap().contains("timed out after 2s"),
            "{l}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "remote command still running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn ecdsa_rsa_and_passphrase_protected_keys_authenticate() {
    let fleet = SshdFleet::start(1);
    for (name, kind, passphrase) in [
        ("k-ecdsa", "ecdsa", ""),
        ("k-rsa", "rsa", ""),
        ("k-enc", "ed25519", "s3cret pass"),
    ] {
        let key = keygen(fleet.dir.path(), name, kind, passphrase);
        fleet.authorize(&key);
        let inv = fleet.write_inventory("");
        let text = std::fs::read_to_string(&inv).unwrap().replace(
            &fleet.client_key.display().to_string(),
            &key.display().to_string(),
        );
        std::fs::write(&inv, text).unwrap();
        let mut cmd = drover(fleet.dir.path());
        cmd.arg("-i")
            .arg(&inv)
            .args(["run", "--all", "--", "echo", name]);
        if !passphrase.is_empty() {
            // Without a terminal or the variable, an encrypted key is refused clearly.
            let r = drover_run(&fleet, &inv, &["--all", "--", "true"]);
            assert_eq!(r.code, 4, "{r:?}");
            assert!(
                r.stdout.contains("encrypted") && r.stdout.contains("DROVER_KEY_PASSPHRASE"),
                "{r:?}"
            );
            cmd.env("DROVER_KEY_PASSPHRASE", passphrase);
        }
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{name}: {r:?}");
        assert!(!r.stdout.contains(passphrase) || passphrase.is_empty());
        assert!(!r.stderr.contains("s3cret"));
    }
}

#[test]
fn keys_from_ssh_agent_authenticate_when_no_identity_is_configured() {
    let fleet = SshdFleet::start(1);
    let inv = fleet.write_inventory("");
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        &format!("identity = \"{}\"\n", fleet.client_key.display()),
        "",
    );
    std::fs::write(&inv, text).unwrap();
    let socket = fleet.dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .spawn()
        .expect("ssh-agent");
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(&fleet.client_key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let r = run(drover(fleet.dir.path())
        .env("SSH_AUTH_SOCK", &socket)
        .arg("-i")
        .arg(&inv)
        .args(["run", "--all", "--", "echo agent"]));
    let no_agent = drover_run(&fleet, &inv, &["--all", "--", "true"]);
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(no_agent.code, 4, "{no_agent:?}");
    assert!(
        no_agent.stdout.contains("authentication as"),
        "{no_agent:?}"
    );
}

#[test]
fn ssh_config_supplies_hostname_port_user_and_identity() {
    let fleet = SshdFleet::start(1);
    let ssh_dir = fleet.dir.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(
        ssh_dir.join("config"),
        format!(
            "Host alias-one\n  HostName {}\n  Port {}\n  User {}\n  IdentityFile {}\n",
            fleet.addresses[0],
            fleet.port,
            SshdFleet::user(),
            fleet.client_key.display()
        ),
    )
    .unwrap();
    std::fs::write(ssh_dir.join("known_hosts"), fleet.known_hosts_text()).unwrap();
    let inv = fleet.dir.path().join("plain.toml");
    std::fs::write(&inv, "[hosts.aliased]\naddress = \"alias-one\"\n").unwrap();
    let r = drover_run(&fleet, &inv, &["--all", "--", "echo configured"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("configured"), "{r:?}");
}

#[test]
fn running_without_a_selector_does_nothing_and_says_so() {
    let fleet = SshdFleet::start(1);
    let inv = fleet.write_inventory("");
    let r = drover_run(&fleet, &inv, &["--", "touch /tmp/should-not-exist"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no hosts selected"), "{r:?}");
    let r = drover_run(&fleet, &inv, &["--host", "h9", "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown host `h9`"), "{r:?}");
}

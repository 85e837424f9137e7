//! Issue 16, part 2, end to end on the Docker fleet: the `image` step ships the agent's
//! container images (examples/agent/container/build.sh) to the hosts' podman,
//! content-addressed, through the control node's registry and an SSH reverse tunnel,
//! or as a whole archive into `podman load`. Skips with one line when no Docker engine
//! answers, unless `DROVER_E2E=1`; every drover run is bounded.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::container::shipped;
use crate::support::drover::{Drover, EXIT_OK, assert_exit, by_target, text};
use crate::support::fleet::{Finished, Fleet};
use crate::support::host::sh_out;
use crate::support::repo::path_str;

/// Limit for one deploy (a first release moves ~116 MB to each host).
const LIMIT: Duration = Duration::from_secs(300);

/// A playbook of one image step; `SOURCE` and `VIA` are filled in per test.
const PLAYBOOK: &str = r#"name = "ship"
[vars]
version = "1.0.0"

[[steps]]
name = "agent image"
timeout = "280s"
image = { SOURCE, name = "NAME", via = "VIA" }
"#;

fn playbook(fleet: &Fleet, file: &str, source: &str, name: &str, via: &str) -> String {
    let path = fleet.work_dir().join(file);
    let text = PLAYBOOK
        .replace("SOURCE", source)
        .replace("NAME", name)
        .replace("VIA", via);
    std::fs::write(&path, text).expect("write the playbook");
    path_str(&path)
}

/// `deploy PLAYBOOK --tenant acme --set version=V --json`, with the run's registry
/// storing in the fleet's scratch dir.
fn deploy(fleet: &Fleet, playbook: &str, version: &str) -> Finished {
    let set = format!("version={version}");
    Drover::on(fleet)
        .env("DROVER_REGISTRY_DIR", fleet.work_dir().join("registry"))
        .run(
            &[
                "deploy", playbook, "--tenant", "acme", "--set", &set, "--json",
            ],
            LIMIT,
        )
}

/// The local Docker's ID of `reference` (64 hex digits).
fn local_id(reference: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .expect("docker");
    assert!(
        out.status.success(),
        "no local image {reference}: run examples/agent/container/build.sh"
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    id.trim_start_matches("sha256:").to_owned()
}

/// The ID of `name` in the host's podman ("" when it has no such image).
fn host_id(fleet: &Fleet, host: &str, name: &str) -> String {
    let script = format!("podman image inspect --format '{{{{.Id}}}}' {name} 2>/dev/null");
    sh_out(fleet, host, &script).trim().to_owned()
}

fn saved_archive(fleet: &Fleet, reference: &str) -> std::path::PathBuf {
    let path = fleet
        .work_dir()
        .join(format!("{}.tar", reference.replace([':', '/'], "-")));
    let out = Command::new("docker")
        .args(["save", "-o", &path_str(&path), reference])
        .output()
        .expect("docker save");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[test]
fn an_image_arrives_through_the_registry_once_and_the_next_release_sends_only_its_layer() {
    let Some(fleet) = Fleet::up(2) else { return };
    let from = "from = \"drover-agent:{{ version }}\"";
    let name = "localhost/drover-agent:{{ version }}";
    let book = playbook(&fleet, "ship.toml", from, name, "registry");

    let first = deploy(&fleet, &book, "1.0.0");
    assert_exit(&first, EXIT_OK, "first release");
    let id = local_id("drover-agent:1.0.0");
    for (target, status, bytes) in shipped(&first) {
        assert_eq!(status, "changed", "{target}: {}", first.describe());
        assert!(
            bytes > 10_000_000,
            "{target}: the whole image travels: {bytes} bytes"
        );
    }
    for host in ["host-1", "host-2"] {
        assert_eq!(
            host_id(&fleet, host, "localhost/drover-agent:1.0.0"),
            id,
            "{host}"
        );
        let leftovers = sh_out(
            &fleet,
            host,
            "podman images --format '{{.Repository}}' | grep -c 127.0.0.1 || true",
        );
        assert_eq!(
            leftovers.trim(),
            "0",
            "{host}: the registry's name was removed"
        );
    }

    let again = deploy(&fleet, &book, "1.0.0");
    assert_exit(&again, EXIT_OK, "the same release again");
    for (target, status, bytes) in shipped(&again) {
        assert_eq!(
            (status.as_str(), bytes),
            ("ok", 0),
            "{target}: nothing sent"
        );
    }

    let archive = std::fs::metadata(saved_archive(&fleet, "drover-agent:2.0.0"))
        .unwrap()
        .len();
    assert!(archive > 50_000_000, "the 2.0.0 archive is {archive} bytes");
    let second = deploy(&fleet, &book, "2.0.0");
    assert_exit(&second, EXIT_OK, "second release");
    for (target, status, bytes) in shipped(&second) {
        assert_eq!(status, "changed", "{target}");
        assert!(
            bytes > 0 && bytes < 1_000_000,
            "{target}: only the release's layer travels: {bytes} bytes of a {archive}-byte archive"
        );
    }
    let id2 = local_id("drover-agent:2.0.0");
    for host in ["host-1", "host-2"] {
        assert_eq!(
            host_id(&fleet, host, "localhost/drover-agent:2.0.0"),
            id2,
            "{host}"
        );
    }

    // The image under another name on the host: tagged, nothing sent.
    let other = playbook(
        &fleet,
        "other.toml",
        from,
        "localhost/agent-copy:{{ version }}",
        "registry",
    );
    let tagged = deploy(&fleet, &other, "2.0.0");
    assert_exit(&tagged, EXIT_OK, "another name");
    for (target, status, bytes) in shipped(&tagged) {
        assert_eq!(
            (status.as_str(), bytes),
            ("changed", 0),
            "{target}: tagged only"
        );
    }
    assert_eq!(host_id(&fleet, "host-2", "localhost/agent-copy:2.0.0"), id2);
}

#[test]
fn an_archive_is_loaded_whole_and_not_sent_twice() {
    let Some(fleet) = Fleet::up(2) else { return };
    let archive = saved_archive(&fleet, "drover-agent:1.0.0");
    let size = std::fs::metadata(&archive).unwrap().len();
    let source = format!("archive = \"{}\"", path_str(&archive));
    let book = playbook(
        &fleet,
        "load.toml",
        &source,
        "localhost/agent:loaded",
        "load",
    );

    let first = deploy(&fleet, &book, "1.0.0");
    assert_exit(&first, EXIT_OK, "load");
    for (target, status, bytes) in shipped(&first) {
        assert_eq!(
            (status.as_str(), bytes),
            ("changed", size),
            "{target}: the archive, whole"
        );
    }
    let id = local_id("drover-agent:1.0.0");
    assert_eq!(host_id(&fleet, "host-1", "localhost/agent:loaded"), id);

    let again = deploy(&fleet, &book, "1.0.0");
    assert_exit(&again, EXIT_OK, "load again");
    for (target, status, bytes) in shipped(&again) {
        assert_eq!(
            (status.as_str(), bytes),
            ("ok", 0),
            "{target}: nothing sent"
        );
    }
}

#[test]
fn a_reference_the_control_node_lacks_fails_clearly_and_changes_nothing() {
    let Some(fleet) = Fleet::up(2) else { return };
    let from = "from = \"drover-agent:{{ version }}\"";
    let book = playbook(
        &fleet,
        "bad.toml",
        from,
        "localhost/agent:{{ version }}",
        "registry",
    );
    let run = deploy(&fleet, &book, "9.9.9-missing");
    assert_ne!(run.code(), Some(EXIT_OK), "{}", run.describe());
    for (target, line) in by_target(&run) {
        assert_eq!(text(&line["status"]), "failed", "{target}: {line}");
        let step: &Value = &line["steps"][0];
        assert!(
            text(&step["stderr"])
                .contains("failed to find image drover-agent:9.9.9-missing on the control node"),
            "{target}: {step}"
        );
    }
    for host in ["host-1", "host-2"] {
        let images = sh_out(&fleet, host, "podman images -q | wc -l");
        assert_eq!(images.trim(), "0", "{host}: no image arrived");
    }
}

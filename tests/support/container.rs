//! Container releases on a fleet: the agent's images put into the hosts' podman
//! stores, and reads of a color's container behind drover's back.
//!
//! [`load_agent_images`] puts images into the hosts behind drover's back (`docker
//! save` on the control node, `podman load` in each host), for tests that want images
//! on a host that no deploy shipped (pruning).

use std::process::Command;
use std::time::Duration;

use super::drover::{by_target, text};
use super::fleet::{Finished, Fleet, run_bounded};
use super::host::sh;
use super::repo;

/// Time for one host to load the archive (a 116 MB base layer, under load).
const LOAD_LIMIT: Duration = Duration::from_secs(240);

/// Puts `drover-agent:<release>` for each release into every host's podman store
/// (as `localhost/drover-agent:<release>`): one `docker save` of them all (the shared
/// base layer once), loaded by the hosts in parallel.
#[track_caller]
pub(crate) fn load_agent_images(fleet: &Fleet, releases: &[&str]) {
    let archive = fleet.work_dir().join("agent-images.tar");
    let refs: Vec<String> = releases
        .iter()
        .map(|r| format!("drover-agent:{r}"))
        .collect();
    let (out, timed_out) = run_bounded(
        Command::new("docker")
            .arg("save")
            .arg("-o")
            .arg(&archive)
            .args(&refs),
        LOAD_LIMIT,
    );
    assert!(
        !timed_out && out.status.success(),
        "docker save {refs:?} (build them with examples/agent/container/build.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::scope(|scope| {
        let loads: Vec<_> = fleet
            .hosts()
            .iter()
            .map(|h| {
                let container = format!("{}-{}", fleet.name(), h.name);
                let archive = &archive;
                scope.spawn(move || {
                    // run_bounded gives the child no stdin: the shell opens the archive.
                    let (out, timed_out) = run_bounded(
                        Command::new("sh")
                            .args(["-c", "docker exec -i \"$1\" podman load -q < \"$2\"", "sh"])
                            .arg(&container)
                            .arg(archive),
                        LOAD_LIMIT,
                    );
                    (container, out, timed_out)
                })
            })
            .collect();
        for l in loads {
            let (container, out, timed_out) = l.join().expect("load thread");
            assert!(
                !timed_out && out.status.success(),
                "podman load in {container}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    let _ = std::fs::remove_file(&archive);
}

/// The reference container playbook.
pub(crate) fn container_playbook() -> String {
    repo::path_str(&repo::root().join("playbooks/agent-container.toml"))
}

/// A variant of the reference container playbook in the fleet's scratch dir: the text
/// up to the first step called `cut_at` (all of it when none), with `edits` applied
/// (`(from, to)` replacements, each of which must match).
#[track_caller]
pub(crate) fn container_variant(
    fleet: &Fleet,
    name: &str,
    cut_at: Option<&str>,
    edits: &[(&str, &str)],
) -> String {
    let mut text = std::fs::read_to_string(container_playbook()).expect("reference playbook");
    if let Some(step) = cut_at {
        let marker = format!("[[steps]]\nname = \"{step}\"\n");
        let at = text.find(&marker).expect("the step to cut at");
        text.truncate(at);
    }
    for (from, to) in edits {
        assert!(text.contains(from), "the playbook has no {from:?}");
        text = text.replace(from, to);
    }
    let path = fleet.work_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write playbook variant");
    repo::path_str(&path)
}

/// The main process (PID in the host) of the agent in `container`.
#[track_caller]
pub(crate) fn agent_pid(fleet: &Fleet, host: &str, container: &str) -> String {
    let out = sh(
        fleet,
        host,
        &format!("podman inspect --format '{{{{.State.Pid}}}}' {container}"),
    );
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && pid.parse::<u32>().is_ok_and(|p| p > 0),
        "no running container {container} on {host}: {pid} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pid
}

/// `Name ID` of every running container on `host`, sorted.
pub(crate) fn running_containers(fleet: &Fleet, host: &str) -> Vec<String> {
    let out = sh(
        fleet,
        host,
        "podman ps --no-trunc --format '{{.Names}} {{.ID}}'",
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// The image step of each target: (target, status, bytes sent).
pub(crate) fn shipped(run: &Finished) -> Vec<(String, String, u64)> {
    by_target(run)
        .into_iter()
        .map(|(target, line)| {
            let step = line["steps"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["kind"] == "image"))
                .cloned()
                .unwrap_or_else(|| panic!("no image step for {target}: {line}"));
            let bytes = step["bytes_sent"]
                .as_u64()
                .unwrap_or_else(|| panic!("{step}"));
            (target, text(&step["status"]).to_owned(), bytes)
        })
        .collect()
}

/// Bytes the image steps of a run sent, per host.
pub(crate) fn sent_per_host(run: &Finished) -> std::collections::BTreeMap<String, u64> {
    let mut per = std::collections::BTreeMap::new();
    for (target, _, bytes) in shipped(run) {
        let host = target
            .split_once('@')
            .map_or(target.as_str(), |(_, h)| h)
            .to_owned();
        *per.entry(host).or_insert(0) += bytes;
    }
    per
}

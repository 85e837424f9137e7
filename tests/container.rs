//! Container releases end to end on the Docker fleet (issue 16): every tenant from
//! bare hosts as a hardened podman container under systemd, blue-green; the unit's
//! memory limit; an update under load through nginx and a rollback that starts
//! nothing; a crashing image switched back; status and logs of container targets with
//! the secret never printed.
//!
//! Fleets are small (1-2 hosts, 1-2 tenants each on both hosts). The reference
//! playbook's image step ships each release's image from the control node's Docker
//! (built by examples/agent/container/build.sh) through drover's registry tunnel.

use std::time::{Duration, Instant};

use crate::rollout::{assert_fleet_serves, blue_green_args};
use crate::support::container::{
    agent_pid, container_playbook, container_variant, load_agent_images, running_containers,
    sent_per_host, shipped,
};
use crate::support::drover::{API_KEY, EXIT_HALTED, EXIT_OK, assert_exit, by_target, drover, text};
use crate::support::fleet::{Finished, Fleet};
use crate::support::host::{active, read_file, sh_ok, sh_out};
use crate::support::http::proxied_version;
use crate::support::load::{Load, LoadPlan, Method, Requests};
use crate::support::tenants::{fleet_tenants, targets};
use crate::support::wait::poll;

/// Limit for a deploy of a whole (small) test fleet.
const DEPLOY_LIMIT: Duration = Duration::from_secs(180);

/// `deploy PLAYBOOK --all --strategy blue-green --json FLAGS... --set version=V`.
fn blue_green(playbook: &str, version: &str, flags: &[&str]) -> Vec<String> {
    blue_green_args(playbook, version, &[&["--json"], flags].concat())
}

/// Deploys `version` of the reference container playbook blue-green: all ok.
#[track_caller]
fn deploy_all(fleet: &Fleet, version: &str) -> Finished {
    let run = drover(
        fleet,
        &blue_green(&container_playbook(), version, &[]),
        DEPLOY_LIMIT,
    );
    assert_exit(&run, EXIT_OK, &format!("container deploy of {version}"));
    run
}

/// The value of `key:` in a `/proc/PID/status` text (first field).
fn proc_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// `drover -i hostile-vars.toml check PLAYBOOK…` in tests/fixtures/deploy.
fn check_fixtures(playbooks: &[&str]) -> crate::support::cli::Run {
    let home = tempfile::tempdir().expect("temp HOME");
    let mut cmd = crate::support::cli::drover(home.path());
    cmd.current_dir(crate::support::repo::fixtures("deploy"))
        .args(["--color", "never", "-i", "hostile-vars.toml", "check"])
        .args(playbooks);
    crate::support::cli::run(&mut cmd)
}

#[test]
fn check_rejects_bad_container_fields_at_their_line_and_column() {
    let r = check_fixtures(&["bad-container.toml", "hostile-container.toml"]);
    assert_eq!(r.code, 2, "{r:?}");
    for (at, what) in [
        (
            "bad-container.toml:5:121",
            "a container may not get back CAP_SYS_ADMIN",
        ),
        (
            "bad-container.toml:5:149",
            "unknown container stop_signal `SIGSTOP`",
        ),
        (
            "bad-container.toml:5:171",
            "`env_file` is not written by an earlier `env` step",
        ),
        (
            "hostile-container.toml:5:121",
            "`/var/lib/../../etc/cron.d:/state` is not allowed here (for acme@web-1)",
        ),
    ] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with(&format!("error: {at}: ")) && l.contains(what)),
            "no `error: {at}: {what}`\n{}",
            r.stderr
        );
    }
}

#[test]
fn every_tenant_deploys_from_bare_hosts_as_a_read_only_capability_less_non_root_container() {
    let Some(fleet) = Fleet::up(2) else { return };
    let tenants = fleet_tenants(&fleet);
    let run = deploy_all(&fleet, "1.0.0");
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the first deploy");
    let mut printed = run.stdout() + &run.stderr();

    for (tenant, host) in targets(&tenants) {
        let (color, _) = active(&fleet, &host, &tenant);
        let name = format!("drover-{tenant}-{color}");
        let at = format!("{tenant}@{host} ({name})");
        // The agent: no capabilities, no new privileges, the tenant's non-root uid,
        // in the unit's memory cgroup.
        let pid = agent_pid(&fleet, &host, &name);
        // Read-only root: the kernel has the container's `/` mounted `ro` and `/tmp` a
        // tmpfs. (Writing through `podman exec` or /proc/PID/root needs CAP_SYS_PTRACE,
        // which the fleet hosts lack: crun's setns is refused.)
        let mounts = read_file(&fleet, &host, &format!("/proc/{pid}/mountinfo"));
        let options = |path: &str| {
            mounts
                .lines()
                .find(|l| l.split_whitespace().nth(4) == Some(path))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let root = options("/");
        let root_opts = root.split_whitespace().nth(5).unwrap_or("");
        assert!(root_opts.split(',').any(|o| o == "ro"), "{at}: / is {root}");
        assert!(
            options("/tmp").contains(" - tmpfs "),
            "{at}: /tmp is {}",
            options("/tmp")
        );
        let status = read_file(&fleet, &host, &format!("/proc/{pid}/status"));
        let uid = sh_ok(&fleet, &host, &format!("id -u agent-{tenant}"));
        assert_ne!(uid.trim(), "0", "{at}: the tenant user is root");
        assert_eq!(proc_field(&status, "Uid"), uid.trim(), "{at}: {status}");
        assert_eq!(proc_field(&status, "CapEff"), "0000000000000000", "{at}");
        assert_eq!(proc_field(&status, "CapBnd"), "0000000000000000", "{at}");
        assert_eq!(proc_field(&status, "NoNewPrivs"), "1", "{at}");
        let cgroup = read_file(&fleet, &host, &format!("/proc/{pid}/cgroup"));
        assert!(
            cgroup.contains(&format!("memory:/system.slice/{name}.service")),
            "{at}: the agent is not in its unit's memory cgroup: {cgroup}"
        );
        // The secret reaches the agent through the env file only: not in the unit,
        // not on any command line on the host.
        let unit = read_file(
            &fleet,
            &host,
            &format!("/etc/systemd/system/{name}.service"),
        );
        assert!(
            unit.contains("--env=API_KEY") && !unit.contains(API_KEY),
            "{at}: {unit}"
        );
        let cmdlines = sh_ok(&fleet, &host, "ps -eo args");
        assert!(
            !cmdlines.contains(API_KEY),
            "{at}: a command line holds the secret"
        );
        let env = sh_ok(
            &fleet,
            &host,
            &format!("tr '\\0' '\\n' < /proc/{pid}/environ"),
        );
        assert!(
            env.contains(&format!("API_KEY={API_KEY}")),
            "{at}: the agent lacks API_KEY"
        );
    }

    // Inside the container (podman exec): the root is read-only, /tmp a writable tmpfs.
    let (tenant, host) = targets(&tenants).remove(0);
    let (color, _) = active(&fleet, &host, &tenant);
    let touch = sh_out(
        &fleet,
        &host,
        &format!(
            "podman exec drover-{tenant}-{color} sh -c 'touch /opt/agent/x 2>&1; touch /tmp/x && echo tmp-ok'"
        ),
    );
    assert!(
        touch.contains("Read-only file system") && touch.contains("tmp-ok"),
        "{touch}"
    );

    // status: every container target healthy, with its image; no secret.
    for args in [
        vec!["status", "--all"],
        vec!["status", "--all", "--format", "json"],
    ] {
        let status = drover(&fleet, &args, Duration::from_secs(60));
        assert_exit(&status, EXIT_OK, &format!("{args:?}"));
        let out = status.stdout();
        assert!(
            out.contains("localhost/drover-agent:1.0.0"),
            "{args:?}:\n{out}"
        );
        printed += &out;
        printed += &status.stderr();
    }
    // logs: the agent's output is in its unit's journal, with TENANT and COLOR it got
    // by name from the unit.
    let (tenant, host) = targets(&tenants).remove(0);
    let (color, _) = active(&fleet, &host, &tenant);
    let logs = drover(
        &fleet,
        &[
            "logs", "--tenant", &tenant, "--host", &host, "--lines", "50",
        ],
        Duration::from_secs(60),
    );
    assert_exit(&logs, EXIT_OK, "logs");
    let wanted = "agent 1.0.0: listening on 127.0.0.1:";
    assert!(
        logs.stdout().contains(wanted)
            && logs
                .stdout()
                .contains(&format!("tenant={tenant} color={color}")),
        "logs lack the agent's start line:\n{}",
        logs.stdout()
    );
    printed += &logs.stdout();
    printed += &logs.stderr();
    assert!(
        !printed.contains(API_KEY),
        "drover printed the secret:\n{printed}"
    );
    in_container_health_gates_a_color(&fleet, &tenant, &host);
}

/// A health command run inside the container (`in_container = true`, podman exec)
/// lets a good color go live and stops a color whose check fails, the live one kept.
#[track_caller]
fn in_container_health_gates_a_color(fleet: &Fleet, tenant: &str, host: &str) {
    let http = "url = \"http://127.0.0.1:{{ port }}/health\", body = '\"healthy\"'";
    let passing = container_variant(
        fleet,
        "in-container",
        None,
        &[(
            http,
            r#"command = "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:{{ port }}/health', timeout=2)\"", in_container = true"#,
        )],
    );
    let one = ["--tenant", tenant, "--host", host];
    let run = drover(fleet, &blue_green(&passing, "2.0.0", &one), DEPLOY_LIMIT);
    assert_exit(
        &run,
        EXIT_OK,
        "2.0.0 gated by a health command in the container",
    );
    let (color, _) = active(fleet, host, tenant);
    let recorded = read_file(
        fleet,
        host,
        &format!("/var/lib/drover/.health/{tenant}.{color}.sh"),
    );
    assert!(
        recorded.contains("podman") && recorded.contains(&format!("drover-{tenant}-{color}")),
        "the color's recorded check does not enter its container: {recorded}"
    );
    assert_eq!(proxied_version(fleet, tenant, host).as_deref(), Ok("2.0.0"));
    let failing = container_variant(
        fleet,
        "in-container-failing",
        None,
        &[
            (http, r#"command = "exit 3", in_container = true"#),
            (
                "retries = 30, interval = \"500ms\"",
                "retries = 2, interval = \"200ms\"",
            ),
        ],
    );
    let run = drover(fleet, &blue_green(&failing, "1.0.0", &one), DEPLOY_LIMIT);
    let line = &by_target(&run)[&format!("{tenant}@{host}")];
    assert_eq!(
        line["status"], "failed",
        "a failing check inside the container: {line}"
    );
    assert_eq!(
        proxied_version(fleet, tenant, host).as_deref(),
        Ok("2.0.0"),
        "the live color stays after a failed check of the idle one"
    );
}

#[test]
fn a_container_over_its_memory_max_is_killed_by_its_units_limit() {
    let Some(fleet) = Fleet::up(1) else { return };
    let tenants = fleet_tenants(&fleet);
    // The image's python3 allocating 200 MiB in a unit limited to 64M.
    let hog = "\"-c\", \"import time; print('allocating', flush=True); b = bytearray(200 << 20); print('allocated', flush=True); time.sleep(600)\"";
    let playbook = container_variant(
        &fleet,
        "hog",
        Some("health"),
        &[
            (
                "args = [\"--port\", \"{{ port }}\"]",
                &format!("entrypoint = \"/usr/bin/python3\", args = [{hog}]"),
            ),
            ("memory_max = \"256M\"", "memory_max = \"64M\""),
        ],
    );
    let run = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--json"],
        DEPLOY_LIMIT,
    );
    assert_exit(&run, EXIT_OK, "deploy of the allocating container");
    let (tenant, host) = targets(&tenants).remove(0);
    let unit = format!("drover-{tenant}-blue.service");
    let cg = format!("/sys/fs/cgroup/memory/system.slice/{unit}");
    // Killed by the OOM killer of its unit's cgroup: SIGKILL (podman exits 137) right
    // after "allocating", counted in the cgroup's oom_control while that cgroup lives
    // (systemd makes a fresh one for each restart, so either sign is enough).
    let killed = poll(Duration::from_secs(60), || {
        let oom = sh_out(
            &fleet,
            &host,
            &format!("cat {cg}/memory.oom_control 2>/dev/null"),
        );
        let journal = sh_out(
            &fleet,
            &host,
            &format!("journalctl -u {unit} --no-pager -q"),
        );
        (oom.lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
            || journal.contains("status=137"))
        .then_some(oom)
    });
    let journal = sh_out(
        &fleet,
        &host,
        &format!("journalctl -u {unit} --no-pager -q"),
    );
    let show = sh_out(
        &fleet,
        &host,
        &format!(
            "systemctl show -p NRestarts -p ExecMainStatus -p MemoryMax -p CPUQuotaPerSecUSec {unit}"
        ),
    );
    assert!(killed.is_some(), "no OOM kill in {cg}:\n{show}\n{journal}");
    assert!(journal.contains("allocating"), "{journal}");
    assert!(
        !journal.contains("allocated"),
        "the allocation got through: {journal}"
    );
    assert!(show.contains("MemoryMax=67108864"), "{show}");
    // The unit's CPU limit holds too (50%: half a second of CPU per second).
    assert!(show.contains("CPUQuotaPerSecUSec=500ms"), "{show}");
    assert!(
        !journal.contains("Invalid"),
        "systemd refused a line of the unit: {journal}"
    );
    // After the kill the unit starts the container again (Restart=on-failure), each
    // time killed again: podman never refuses to start over a stale ID file.
    let restarted = poll(Duration::from_secs(60), || {
        let j = sh_out(
            &fleet,
            &host,
            &format!("journalctl -u {unit} --no-pager -q"),
        );
        (j.matches("allocating").count() >= 2).then_some(())
    });
    let journal = sh_out(
        &fleet,
        &host,
        &format!("journalctl -u {unit} --no-pager -q"),
    );
    assert!(
        restarted.is_some(),
        "not restarted after the kill: {journal}"
    );
    assert!(!journal.contains("container id file exists"), "{journal}");
    eprintln!("MEMORY {unit}: {}", show.replace('\n', " "));
}

#[test]
fn an_update_under_load_drops_no_request_and_a_rollback_starts_nothing_new() {
    let Some(fleet) = Fleet::up(2) else { return };
    let tenants = fleet_tenants(&fleet);
    let first = deploy_all(&fleet, "1.0.0");

    let load = Load::start(&fleet, &tenants, &LoadPlan::steady(DEPLOY_LIMIT));
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let update = drover(
        &fleet,
        &blue_green(&container_playbook(), "2.0.0", &[]),
        DEPLOY_LIMIT,
    );
    let wall = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let seen = load.stop();
    assert_exit(&update, EXIT_OK, "container update to 2.0.0 under load");
    for (target, line) in &by_target(&update) {
        assert_eq!(line["status"], "changed", "{target}: {line}");
    }
    let phase = "container 1.0.0 -> 2.0.0";
    seen.print(phase);
    seen.assert_every_target_answered(phase, &["1.0.0", "2.0.0"]);
    seen.assert_none_failed(phase, Requests::of(Method::Get));
    seen.assert_none_failed(phase, Requests::of(Method::Post));
    assert_fleet_serves(&fleet, &tenants, "2.0.0", "after the update");
    assert_state_names_image(&fleet, &tenants, "2.0.0");
    // The first release brought the whole image to each host (its layers, compressed);
    // the second only its own small layer.
    // A host's tenants deploy at once, but the image crosses once: one image step per
    // host sends it, the others find it there.
    let mut senders = std::collections::BTreeMap::<String, usize>::new();
    for (target, _, bytes) in shipped(&first) {
        let host = target
            .split_once('@')
            .map(|(_, h)| h.to_owned())
            .unwrap_or_default();
        *senders.entry(host).or_default() += usize::from(bytes > 0);
    }
    assert!(
        senders.values().all(|&n| n == 1),
        "image steps that sent, per host: {senders:?}"
    );
    let (first, second) = (sent_per_host(&first), sent_per_host(&update));
    eprintln!("BYTES container image sent per host: 1.0.0 {first:?}, then 2.0.0 {second:?}");
    for (host, bytes) in &second {
        assert!(
            first[host] > 20 << 20,
            "{host}: 1.0.0 sent {} B",
            first[host]
        );
        assert!(
            *bytes < 1 << 20,
            "{host}: 2.0.0 sent {bytes} B, more than its layer"
        );
    }

    // Both colors run; the rollback only moves nginx back to the warm one.
    let hosts: Vec<String> = fleet.hosts().iter().map(|h| h.name.clone()).collect();
    let before: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| running_containers(&fleet, h))
        .collect();
    for (h, running) in hosts.iter().zip(&before) {
        assert_eq!(
            running.len(),
            2 * tenants.len(),
            "{h}: two colors per tenant: {running:?}"
        );
    }
    let load = Load::start(&fleet, &tenants, &LoadPlan::steady(Duration::from_secs(60)));
    std::thread::sleep(Duration::from_secs(1));
    let rollback = drover(
        &fleet,
        &["rollback", "--all", "--json"],
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(1));
    let back = load.stop();
    assert_exit(&rollback, EXIT_OK, "rollback --all");
    let after: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| running_containers(&fleet, h))
        .collect();
    assert_eq!(before, after, "the rollback started or stopped a container");
    let phase = "container rollback 2.0.0 -> 1.0.0";
    back.print(phase);
    back.assert_none_failed(phase, Requests::of(Method::Get));
    back.assert_none_failed(phase, Requests::of(Method::Post));
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the rollback");
    assert_state_names_image(&fleet, &tenants, "1.0.0");
    eprintln!(
        "BENCH container update of {} targets under load: {:.1}s; rollback --all {:.1}s",
        targets(&tenants).len(),
        wall.as_secs_f64(),
        rollback.elapsed.as_secs_f64()
    );
    assert!(
        rollback.elapsed < Duration::from_secs(20),
        "rollback took {:.1}s",
        rollback.elapsed.as_secs_f64()
    );
}

/// Every target's state file and last audit line name the image its live color runs,
/// `localhost/drover-agent:VERSION@ID`, the ID being the one podman has for it.
#[track_caller]
fn assert_state_names_image(
    fleet: &Fleet,
    tenants: &[crate::support::tenants::Tenant],
    version: &str,
) {
    for (tenant, host) in targets(tenants) {
        let reference = format!("localhost/drover-agent:{version}");
        let id = sh_ok(
            fleet,
            &host,
            &format!("podman image inspect --format '{{{{.Id}}}}' {reference}"),
        );
        let image = format!("{reference}@{}", id.trim());
        let state = read_file(
            fleet,
            &host,
            &format!("/var/lib/drover/{tenant}/state.json"),
        );
        let state: serde_json::Value = serde_json::from_str(&state).expect("state.json");
        assert_eq!(state["image"], image.as_str(), "{tenant}@{host}: {state}");
        let audit = sh_ok(
            fleet,
            &host,
            &format!("grep -F ' tenant={tenant} ' /var/log/drover/audit.log | tail -n 1"),
        );
        assert!(
            audit.trim_end().ends_with(&format!(" image={image}")),
            "{tenant}@{host}: {audit}"
        );
    }
}

#[test]
fn a_crashing_image_is_switched_back_by_the_canary_soak() {
    let Some(fleet) = Fleet::up(2) else { return };
    let tenants = fleet_tenants(&fleet);
    deploy_all(&fleet, "1.0.0");
    let run = drover(
        &fleet,
        &blue_green(
            &container_playbook(),
            "4.0.0-crash",
            &["--canary", "1", "--pause", "8s"],
        ),
        DEPLOY_LIMIT,
    );
    assert_exit(&run, EXIT_HALTED, "4.0.0-crash with a canary soak of 8s");
    let report = by_target(&run);
    let (canary_tenant, canary_host) = targets(&tenants)[0].clone();
    let canary = format!("{canary_tenant}@{canary_host}");
    let line = &report[&canary];
    assert_eq!(line["status"], "failed", "{canary}: {line}");
    assert_eq!(line["failed_step"], "canary analysis", "{canary}: {line}");
    eprintln!("CRASH container canary {canary}: {}", text(&line["error"]));
    for (key, line) in &report {
        if *key != canary {
            assert_eq!(line["status"], "skipped", "{key}: {line}");
        }
    }
    // Longer than the crash image lives, the canary answers 1.0.0 through nginx.
    let until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < until {
        assert_eq!(
            proxied_version(&fleet, &canary_tenant, &canary_host).as_deref(),
            Ok("1.0.0"),
            "{canary} after the halt"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the canary halted");
}

#[test]
fn keep_images_removes_old_images_but_never_one_a_color_names() {
    let Some(fleet) = Fleet::up(1) else { return };
    let tenants = fleet_tenants(&fleet);
    // Images the deploys below do not ship, to be pruned or kept. Built in this order:
    // 5.0.0-flaky is the newest, 4.0.0-crash the next.
    load_agent_images(&fleet, &["4.0.0-crash", "5.0.0-flaky"]);
    deploy_all(&fleet, "1.0.0");
    let playbook = container_variant(
        &fleet,
        "keep",
        None,
        &[(
            "name = \"agent-container\"\n",
            "name = \"agent-container\"\nkeep_images = 1\n",
        )],
    );
    let run = drover(&fleet, &blue_green(&playbook, "2.0.0", &[]), DEPLOY_LIMIT);
    assert_exit(&run, EXIT_OK, "deploy of 2.0.0 with keep_images = 1");
    assert_fleet_serves(&fleet, &tenants, "2.0.0", "after the update");
    let (tenant, host) = targets(&tenants).remove(0);
    let line = &by_target(&run)[&format!("{tenant}@{host}")];
    let prune = line["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "prune images"))
        .unwrap_or_else(|| panic!("no prune images step: {line}"));
    assert_eq!(prune["status"], "changed", "{prune}");
    let images = sh_ok(
        &fleet,
        &host,
        "podman images --format '{{.Repository}}:{{.Tag}}' | sort",
    );
    assert_eq!(
        images.lines().collect::<Vec<_>>(),
        [
            "localhost/drover-agent:1.0.0",
            "localhost/drover-agent:2.0.0",
            "localhost/drover-agent:5.0.0-flaky"
        ],
        "the old color's 1.0.0, the live 2.0.0 and the newest stay: {prune}"
    );
    // The rollback finds its image: the old color is still running it.
    let rollback = drover(
        &fleet,
        &["rollback", "--all", "--json"],
        Duration::from_secs(60),
    );
    assert_exit(&rollback, EXIT_OK, "rollback after pruning");
    assert_fleet_serves(&fleet, &tenants, "1.0.0", "after the rollback");
}

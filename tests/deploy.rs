//! `drover deploy` end to end on the Docker fleet: the reference playbook from bare
//! hosts, idempotence, one tenant at a time, dry runs with diffs, tenant isolation,
//! injection, failing steps and missing sudo rights (issue 4's "must be shown").
//!
//! Each fleet test brings up its own small fleet (`Fleet::up`, see
//! tests/support/fleet.rs) and skips with one line when no Docker engine answers,
//! unless `DROVER_E2E=1`. Playbooks and inventories made for these tests live in
//! `tests/fixtures/deploy/`; extra inventories there name the fleet's hosts
//! (`host-1`...) and are merged with the fleet's own (`-i fleet -i extra`).
//! Every drover run and every `docker exec` is bounded in time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::support::cli;
use crate::support::drover::{API_KEY, Drover, assert_exit, by_target, drover, text};
use crate::support::fleet::{Finished, Fleet, run_bounded};
use crate::support::host::{agent_health, main_pid, read_file, sh, sh_ok};
use crate::support::repo::{self, agent_playbook, path_str};
use crate::support::tenants::{Tenant, fleet_tenants, target_keys, tenant};

/// Limit for a deploy of the reference playbook to a whole test fleet.
const DEPLOY_LIMIT: Duration = Duration::from_secs(150);
/// Limit for a deploy of a small fixture playbook.
const SMALL_LIMIT: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    repo::fixtures("deploy")
}

fn fixture(name: &str) -> String {
    path_str(&fixtures().join(name))
}

// ---------------------------------------------------------------------------
// What drover reports

/// The secret never shows in drover's output.
#[track_caller]
fn assert_no_secret(run: &Finished) {
    assert!(
        !run.stdout().contains(API_KEY) && !run.stderr().contains(API_KEY),
        "the secret value was printed\n{}",
        run.describe()
    );
}

/// The steps of a target's JSON object, as (name, status).
fn step_statuses(target: &Value) -> Vec<(String, String)> {
    target["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps array: {target}"))
        .iter()
        .map(|s| (text(&s["name"]).to_owned(), text(&s["status"]).to_owned()))
        .collect()
}

/// The JSON object of one step of a target.
fn step<'a>(target: &'a Value, name: &str) -> &'a Value {
    target["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step `{name}` in {target}"))
}

// ---------------------------------------------------------------------------
// Looking at the hosts

/// Everything drover puts on a host that belongs to one of `tenants` (plus the
/// shared disk-alert cron file), with inode, size, mtime (ns), mode, owner and
/// symlink target: a rewrite, a rename or a chmod shows as a difference.
fn tenant_state(fleet: &Fleet, host: &str, tenants: &[&str]) -> BTreeMap<String, String> {
    let listing = sh_ok(
        fleet,
        host,
        "find /opt/drover /etc/drover /etc/systemd/system /etc/cron.d /etc/logrotate.d /var/lib/drover \
         -printf '%p\\t%i %s %T@ %m %u:%g %l\\n' 2>/dev/null; true",
    );
    listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(path, _)| {
            *path == "/etc/cron.d/drover-disk-alert"
                || tenants
                    .iter()
                    .any(|t| path.contains(&format!("/{t}")) || path.contains(&format!("-{t}")))
        })
        .map(|(p, attrs)| (p.to_owned(), attrs.to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------
// The reference playbook

#[test]
fn deploying_the_agent_playbook_from_bare_hosts_brings_every_tenant_up_and_a_second_run_changes_nothing()
 {
    let Some(fleet) = Fleet::up(4) else { return };
    let tenants = fleet_tenants(&fleet);
    assert_eq!(
        tenants.len(),
        6,
        "the 4-host fleet has 6 tenants: {tenants:?}"
    );
    for t in &tenants {
        assert_eq!(t.hosts.len(), 2, "each tenant on 2 hosts: {t:?}");
    }
    let targets = target_keys(&tenants);
    let playbook = agent_playbook();

    // A dry run from bare hosts: every target would change, nothing does.
    let dry = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--dry-run", "--json"],
        DEPLOY_LIMIT,
    );
    assert_exit(&dry, 0, "dry run from bare hosts");
    assert_no_secret(&dry);
    let report = by_target(&dry);
    assert_eq!(
        report.keys().cloned().collect::<Vec<_>>(),
        sorted(&targets),
        "{}",
        dry.describe()
    );
    for (target, line) in &report {
        assert_eq!(line["status"], "changed", "{target} would change: {line}");
    }
    for h in fleet.hosts() {
        let left = sh_ok(
            &fleet,
            &h.name,
            "ls -d /opt/drover /var/lib/drover /var/log/drover /etc/drover/*.env \
             /etc/systemd/system/drover-*-blue.service /etc/cron.d/drover-* /etc/logrotate.d/drover-* 2>/dev/null; \
             getent passwd | grep '^agent-'; true",
        );
        assert_eq!(left.trim(), "", "{}: the dry run changed the host", h.name);
    }

    // The real deploy: every target changes, no step fails.
    let first = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--json"],
        DEPLOY_LIMIT,
    );
    assert_exit(&first, 0, "first deploy");
    assert_no_secret(&first);
    let report = by_target(&first);
    assert_eq!(
        report.keys().cloned().collect::<Vec<_>>(),
        sorted(&targets),
        "{}",
        first.describe()
    );
    for (target, line) in &report {
        assert_eq!(line["status"], "changed", "{target}: {line}");
        assert!(line["failed_step"].is_null(), "{target}: {line}");
        for (name, status) in step_statuses(line) {
            assert!(
                status == "changed" || status == "ok",
                "{target}: step `{name}` is {status}: {line}"
            );
        }
        assert_eq!(
            step(line, "tenant user")["status"],
            "changed",
            "{target}: {line}"
        );
        assert_eq!(
            step(line, "upload release")["status"],
            "changed",
            "{target}: {line}"
        );
    }

    // Every agent answers its health check on its port on each of its hosts,
    // runs as its own user, and exists only where the tenant is placed.
    for t in &tenants {
        for host in &t.hosts {
            let answer = agent_health(&fleet, host, t.port);
            assert_eq!(answer["status"], "healthy", "{}@{host}: {answer}", t.name);
            assert_eq!(
                answer["tenant"],
                t.name.as_str(),
                "{}@{host}: {answer}",
                t.name
            );
            assert_eq!(answer["version"], "1.0.0", "{}@{host}: {answer}", t.name);
            assert_eq!(answer["color"], "blue", "{}@{host}: {answer}", t.name);
            let unit = format!("drover-{}-blue.service", t.name);
            let state = sh_ok(
                &fleet,
                host,
                &format!("systemctl is-active {unit}; systemctl is-enabled {unit}"),
            );
            assert_eq!(
                state.split_whitespace().collect::<Vec<_>>(),
                ["active", "enabled"],
                "{}@{host}",
                t.name
            );
            let pid = main_pid(&fleet, host, &unit);
            let user = sh_ok(&fleet, host, &format!("stat -c %U /proc/{pid}"));
            assert_eq!(
                user.trim(),
                format!("agent-{}", t.name),
                "{}@{host}: the agent's user",
                t.name
            );
        }
    }
    for h in fleet.hosts() {
        let mut want: Vec<&str> = tenants
            .iter()
            .filter(|t| t.hosts.contains(&h.name))
            .map(|t| t.name.as_str())
            .collect();
        want.sort_unstable();
        let have = sh_ok(&fleet, &h.name, "ls /opt/drover");
        assert_eq!(
            have.split_whitespace().collect::<Vec<_>>(),
            want,
            "{}: tenants placed here",
            h.name
        );
    }

    // A second identical run: every target ok, not one step changed.
    let second = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--json"],
        DEPLOY_LIMIT,
    );
    assert_exit(&second, 0, "second deploy");
    assert_no_secret(&second);
    let report = by_target(&second);
    assert_eq!(report.len(), targets.len(), "{}", second.describe());
    let mut changed = Vec::new();
    for (target, line) in &report {
        for (name, status) in step_statuses(line) {
            if status != "ok" {
                changed.push(format!("{target}: `{name}` {status}"));
            }
        }
        assert_eq!(line["status"], "ok", "{target}: {line}");
    }
    assert!(
        changed.is_empty(),
        "a second run must change nothing: {changed:#?}"
    );

    // The text report of a third run says the same in its summary line.
    let third = drover(&fleet, &["deploy", &playbook, "--all"], DEPLOY_LIMIT);
    assert_exit(&third, 0, "third deploy (text)");
    assert_no_secret(&third);
    assert!(
        third.stdout().contains(&format!(
            "ok {}, changed 0 — 0 steps changed",
            targets.len()
        )),
        "{}",
        third.describe()
    );
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[test]
fn deploying_one_tenant_touches_only_its_targets() {
    // 3 hosts: acme on host-1 and host-2; host-3 holds none of acme.
    let Some(fleet) = Fleet::up(3) else { return };
    let tenants = fleet_tenants(&fleet);
    let acme = tenant(&tenants, "acme").clone();
    let others: Vec<&Tenant> = tenants.iter().filter(|t| t.name != "acme").collect();
    assert!(!others.is_empty(), "{tenants:?}");
    let other_names: Vec<&str> = others.iter().map(|t| t.name.as_str()).collect();
    let playbook = agent_playbook();

    let full = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--json"],
        DEPLOY_LIMIT,
    );
    assert_exit(&full, 0, "full deploy");

    // What the other tenants have on every host, and their agents' PIDs.
    let before: Vec<_> = fleet
        .hosts()
        .iter()
        .map(|h| tenant_state(&fleet, &h.name, &other_names))
        .collect();
    let pids_before: Vec<(String, String)> = others
        .iter()
        .flat_map(|t| t.hosts.iter().map(move |h| (t, h)))
        .map(|(t, h)| {
            (
                format!("{}@{h}", t.name),
                main_pid(&fleet, h, &format!("drover-{}-blue.service", t.name)),
            )
        })
        .collect();
    assert!(
        before.iter().any(|s| s.len() > 10),
        "the snapshot sees the other tenants: {before:#?}"
    );

    // A new version for acme only: a change that would touch every tenant.
    let one = drover(
        &fleet,
        &[
            "deploy",
            &playbook,
            "--tenant",
            "acme",
            "--set",
            "version=2.0.0",
            "--json",
        ],
        DEPLOY_LIMIT,
    );
    assert_exit(&one, 0, "--tenant acme");
    assert_no_secret(&one);
    let report = by_target(&one);
    let want: Vec<String> = acme.hosts.iter().map(|h| format!("acme@{h}")).collect();
    assert_eq!(
        report.keys().cloned().collect::<Vec<_>>(),
        want,
        "only acme's targets\n{}",
        one.describe()
    );
    for (target, line) in &report {
        assert_eq!(line["status"], "changed", "{target}: {line}");
        for name in ["upload release", "environment", "switch release"] {
            assert_eq!(
                step(line, name)["status"],
                "changed",
                "{target}: step `{name}`: {line}"
            );
        }
    }

    // The hosts agree: acme runs 2.0.0 ...
    for host in &acme.hosts {
        let answer = agent_health(&fleet, host, acme.port);
        assert_eq!(answer["version"], "2.0.0", "acme@{host}: {answer}");
        let env = sh_ok(&fleet, host, "cat /etc/drover/acme.env");
        assert!(env.contains("RELEASE=\"2.0.0\""), "acme@{host}: {env}");
    }
    // ... and nothing of the other tenants moved: files, links, units, processes.
    for (h, was) in fleet.hosts().iter().zip(&before) {
        let now = tenant_state(&fleet, &h.name, &other_names);
        let changed: Vec<_> = was
            .iter()
            .filter(|(p, a)| now.get(*p) != Some(a))
            .map(|(p, a)| format!("{p}: {a} -> {:?}", now.get(p)))
            .chain(
                now.keys()
                    .filter(|p| !was.contains_key(*p))
                    .map(|p| format!("{p}: new")),
            )
            .collect();
        assert!(
            changed.is_empty(),
            "{}: other tenants' files changed: {changed:#?}",
            h.name
        );
    }
    for (target, pid) in &pids_before {
        let (tenant, host) = target.split_once('@').expect("tenant@host");
        let port = self::tenant(&tenants, tenant).port;
        assert_eq!(
            &main_pid(&fleet, host, &format!("drover-{tenant}-blue.service")),
            pid,
            "{target} was restarted"
        );
        assert_eq!(
            agent_health(&fleet, host, port)["version"],
            "1.0.0",
            "{target}"
        );
    }
    // host-3 holds no acme target and saw no acme files.
    let stray = sh_ok(
        &fleet,
        "host-3",
        "ls -d /opt/drover/acme /etc/drover/acme.env 2>/dev/null; true",
    );
    assert_eq!(stray.trim(), "", "host-3 has no acme target");
}

// ---------------------------------------------------------------------------
// Dry run and diff

#[test]
fn a_dry_run_reports_a_changed_template_and_alters_nothing() {
    // One host, one tenant (acme).
    let Some(fleet) = Fleet::up(1) else { return };
    let playbook = fixture("greeting.toml");
    let dest = "/srv/drover-test/acme/greeting.conf";
    let deploy = |flags: &[&str]| {
        let args = [&["deploy", playbook.as_str(), "--all"], flags].concat();
        drover(&fleet, &args, SMALL_LIMIT)
    };

    let real = deploy(&["--json"]);
    assert_exit(&real, 0, "deploy the greeting");
    assert_eq!(
        by_target(&real)["acme@host-1"]["status"],
        "changed",
        "{}",
        real.describe()
    );
    let content = read_file(&fleet, "host-1", dest);
    assert!(content.contains("greeting = hello\n"), "{content:?}");
    let stat = || {
        sh_ok(
            &fleet,
            "host-1",
            &format!("stat -c '%i %s %y %a %U:%G' {dest}"),
        )
    };
    let stat_before = stat();

    // A dry run of a changed template: the step reports `changed`, the text
    // output holds a unified diff of the old and the new line.
    let dry = deploy(&["--dry-run", "--diff", "--set", "greeting=other"]);
    assert_exit(&dry, 0, "dry run with --diff");
    let out = dry.stdout();
    for want in [
        "--- diff acme@host-1 step `greeting file`",
        &format!("--- {dest}"),
        &format!("+++ {dest}"),
        "@@ ",
        "\n-greeting = hello\n",
        "\n+greeting = other\n",
        "\n tenant = acme\n",
        "dry run, nothing was changed",
    ] {
        assert!(out.contains(want), "`{want}` missing\n{}", dry.describe());
    }
    assert!(
        out.lines()
            .any(|l| l.contains("acme@host-1") && l.contains("changed")),
        "the table shows the target as changed\n{}",
        dry.describe()
    );
    // The same as JSON: the template step is `changed` with the diff, the
    // directory step is `ok`.
    let dry_json = deploy(&["--dry-run", "--diff", "--json", "--set", "greeting=other"]);
    assert_exit(&dry_json, 0, "dry run with --diff --json");
    let line = &by_target(&dry_json)["acme@host-1"];
    assert_eq!(line["status"], "changed", "{line}");
    assert_eq!(step(line, "greeting directory")["status"], "ok", "{line}");
    let file_step = step(line, "greeting file");
    assert_eq!(file_step["status"], "changed", "{line}");
    let diff = text(&file_step["diff"]);
    assert!(
        diff.contains("-greeting = hello\n") && diff.contains("+greeting = other\n"),
        "{line}"
    );

    // The file is byte for byte what it was, and was not rewritten.
    assert_eq!(
        read_file(&fleet, "host-1", dest),
        content,
        "a dry run changed {dest}"
    );
    assert_eq!(stat(), stat_before, "a dry run touched {dest}");
    let strays = sh_ok(&fleet, "host-1", "ls -A /srv/drover-test/acme");
    assert_eq!(
        strays.trim(),
        "greeting.conf",
        "a dry run left files behind"
    );

    // Unchanged input: the dry run reports ok and shows no diff.
    let same = deploy(&["--dry-run", "--diff", "--json"]);
    assert_exit(&same, 0, "dry run without a change");
    let line = &by_target(&same)["acme@host-1"];
    assert_eq!(line["status"], "ok", "{line}");
    assert!(step(line, "greeting file")["diff"].is_null(), "{line}");

    // And the change the dry run announced is the one a real run makes.
    let apply = deploy(&["--set", "greeting=other", "--json"]);
    assert_exit(&apply, 0, "apply the change");
    assert_eq!(
        step(&by_target(&apply)["acme@host-1"], "greeting file")["status"],
        "changed"
    );
    assert_eq!(
        read_file(&fleet, "host-1", dest),
        content.replace("greeting = hello", "greeting = other")
    );
}

// ---------------------------------------------------------------------------
// Tenant isolation

#[test]
fn one_tenants_user_cannot_read_another_tenants_files_or_env_file() {
    // 2 hosts: acme and globex on both.
    let Some(fleet) = Fleet::up(2) else { return };
    let tenants = fleet_tenants(&fleet);
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"acme") && names.contains(&"globex"),
        "{names:?}"
    );
    let playbook = agent_playbook();

    // Text output with --diff: the env step's content never shows.
    let run = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--diff"],
        DEPLOY_LIMIT,
    );
    assert_exit(&run, 0, "deploy");
    assert_no_secret(&run);
    let json = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--json", "--diff", "-vv"],
        DEPLOY_LIMIT,
    );
    assert_exit(&json, 0, "second deploy");
    assert_no_secret(&json);
    // A changed env file (a new secret) in a dry run with --diff: still no value.
    let rotated = Drover::on(&fleet)
        .env("DROVER_SECRET_API_KEY", format!("{API_KEY}-rotated"))
        .run(
            &["deploy", &playbook, "--all", "--dry-run", "--diff"],
            DEPLOY_LIMIT,
        );
    assert_exit(&rotated, 0, "dry run with a rotated secret");
    assert!(
        rotated
            .stdout()
            .lines()
            .any(|l| l.contains("acme@host-1") && l.contains("changed")),
        "{}",
        rotated.describe()
    );
    assert!(
        !rotated.stdout().contains(API_KEY) && !rotated.stderr().contains(API_KEY),
        "a secret was printed\n{}",
        rotated.describe()
    );

    let host = "host-1";
    // The env files are root's alone, and hold the secret.
    for t in ["acme", "globex"] {
        let attrs = sh_ok(
            &fleet,
            host,
            &format!("stat -c '%a %U %G' /etc/drover/{t}.env"),
        );
        assert_eq!(attrs.trim(), "600 root root", "/etc/drover/{t}.env");
        let env = read_file(&fleet, host, &format!("/etc/drover/{t}.env"));
        assert!(
            env.contains(&format!("API_KEY=\"{API_KEY}\"")),
            "{t}.env: the secret is there for the service"
        );
    }

    let as_user =
        |user: &str, argv: &str| sh(&fleet, host, &format!("runuser -u {user} -- {argv}"));
    let denied = |user: &str, argv: &str| {
        let out = as_user(user, argv);
        assert!(
            !out.status.success(),
            "{user} could run `{argv}`: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{user} `{argv}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for (me, other) in [("acme", "globex"), ("globex", "acme")] {
        let user = format!("agent-{me}");
        // Not the other tenant's env file, release, links, state or logs ...
        denied(&user, &format!("cat /etc/drover/{other}.env"));
        denied(&user, &format!("ls /opt/drover/{other}"));
        denied(
            &user,
            &format!("cat /opt/drover/{other}/releases/1.0.0/agent.py"),
        );
        denied(&user, &format!("cat /opt/drover/{other}/blue/release.json"));
        denied(&user, &format!("ls /var/lib/drover/{other}"));
        denied(&user, &format!("ls /var/log/drover/{other}"));
        // ... and not even its own env file (systemd reads it as root).
        denied(&user, &format!("cat /etc/drover/{me}.env"));
        // Its own release it can read.
        let out = as_user(&user, &format!("cat /opt/drover/{me}/blue/release.json"));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1.0.0"),
            "{user} cannot read its own release: {out:?}"
        );
        let out = as_user(
            &user,
            &format!("cat /opt/drover/{me}/releases/1.0.0/agent.py"),
        );
        assert!(
            out.status.success(),
            "{user} cannot read its own code: {out:?}"
        );
    }
    // The tenant users have no login shell.
    for t in ["acme", "globex"] {
        let shell = sh_ok(
            &fleet,
            host,
            &format!("getent passwd agent-{t} | cut -d: -f7"),
        );
        assert!(
            shell.trim().ends_with("nologin") || shell.trim() == "/bin/false",
            "agent-{t} has a login shell: {shell}"
        );
    }
}

// ---------------------------------------------------------------------------
// Injection

/// Exit 2 and an `error: LOCATION: ` line holding every part.
#[track_caller]
fn assert_error_at(out: &Output, location: &str, parts: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "want exit 2\n{stderr}");
    let prefix = format!("error: {location}: ");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line starting with `{prefix}`\n{stderr}"));
    for part in parts {
        assert!(line.contains(part), "`{part}` not in\n{line}\n\n{stderr}");
    }
}

/// `drover --color never ARGS...` run from tests/fixtures/deploy (short paths in
/// messages), with its own HOME; bounded.
fn drover_in_fixtures(args: &[&str]) -> Output {
    let home = tempfile::tempdir().expect("temp HOME");
    let mut cmd = cli::drover(home.path());
    cmd.current_dir(fixtures())
        .args(["--color", "never"])
        .args(args);
    let (out, timed_out) = run_bounded(&mut cmd, SMALL_LIMIT);
    assert!(!timed_out, "drover {args:?} timed out");
    out
}

#[test]
fn hostile_names_are_rejected_at_check() {
    // Tenant names that are shell or path syntax: each reported where it is.
    let out = drover_in_fixtures(&["-i", "hostile-tenant-names.toml", "check"]);
    let rule = "expected lowercase letters, digits and `-`, starting with a letter";
    for (location, name) in [
        ("hostile-tenant-names.toml:6:10", "acme;rm"),
        ("hostile-tenant-names.toml:9:10", "x$(id)"),
        ("hostile-tenant-names.toml:12:10", "a b"),
        ("hostile-tenant-names.toml:15:10", "A"),
    ] {
        assert_error_at(
            &out,
            location,
            &[
                &format!("tenant name `{name}`"),
                "not a safe identifier",
                rule,
            ],
        );
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4 problems found"),
        "{out:?}"
    );

    // A hostile tenant variable rendered where a user name, a clean path, a unit
    // name or a cron file name is required: each playbook's field is reported.
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "hostile-user.toml",
            "5:17",
            &[
                "`agent-x'; touch /tmp/pwned; '`",
                "not a valid user or group name",
            ],
        ),
        (
            "hostile-path.toml",
            "5:16",
            &["`/opt/drover/../../etc/cron.d`", "is not allowed"],
        ),
        (
            "hostile-unit.toml",
            "5:17",
            &[
                "`drover-x",
                "touch /tmp/pwned",
                ".service`",
                "not a valid file name",
            ],
        ),
        (
            "hostile-cron.toml",
            "5:17",
            &["`drover-x", "touch /tmp/pwned", "not a valid file name"],
        ),
    ];
    let mut args = vec!["-i", "hostile-vars.toml", "check"];
    args.extend(cases.iter().map(|(playbook, _, _)| *playbook));
    let out = drover_in_fixtures(&args);
    for (playbook, at, parts) in cases {
        let mut parts = parts.to_vec();
        parts.push("(for acme@web-1)");
        assert_error_at(&out, &format!("{playbook}:{at}"), &parts);
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4 problems found"),
        "{out:?}"
    );

    // `deploy` refuses the same before connecting anywhere (web-1 is a
    // TEST-NET address: a connection attempt would end in exit 4, not 2).
    for (playbook, at, parts) in cases {
        let out = drover_in_fixtures(&[
            "-i",
            "hostile-vars.toml",
            "deploy",
            playbook,
            "--all",
            "--json",
        ]);
        assert_error_at(&out, &format!("{playbook}:{at}"), parts);
        assert!(out.stdout.is_empty(), "{playbook}: {out:?}");
    }
}

/// Files named `pwned*` anywhere on host-1 (the marks hostile values would leave
/// if a shell ran them), on / and the tmpfs mounts.
fn pwned(fleet: &Fleet) -> String {
    sh_ok(
        fleet,
        "host-1",
        "find / /tmp /run /var/tmp /root /home -xdev -name 'pwned*' 2>/dev/null | sort -u; true",
    )
    .trim()
    .to_owned()
}

#[test]
fn hostile_values_reach_the_host_as_inert_data() {
    let Some(fleet) = Fleet::up(1) else { return };
    let extra = fixture("hostile-tenant.toml");
    let playbook = fixture("hostile-values.toml");
    // The hostile values, read from the fixture so they are written once.
    let table: toml::Table = toml::from_str(&std::fs::read_to_string(&extra).expect("fixture"))
        .expect("fixture is TOML");
    let vars = table["tenants"]["hostile"]["vars"]
        .as_table()
        .expect("vars")
        .clone();
    let var = |name: &str| vars[name].as_str().expect("a string").to_owned();
    let (evil, evil_lines, evil_dir) = (var("evil"), var("evil_lines"), var("evil_dir"));
    assert!(
        evil_lines.contains('\n')
            && evil_dir.contains(' ')
            && evil.contains("$(")
            && evil.contains('`')
    );
    let note =
        "note $(touch /tmp/pwned-set) `touch /tmp/pwned-set-tick` \"q\" 's'; {{ 7 * 7 }} \\ end"
            .to_owned();
    let set_note = format!("note={note}");

    let args = [
        "deploy",
        playbook.as_str(),
        "--tenant",
        "hostile",
        "--set",
        set_note.as_str(),
        "--json",
    ];
    let run = Drover::on(&fleet)
        .also_inventory(&extra)
        .run(&args, SMALL_LIMIT);
    assert_exit(&run, 0, "deploy hostile values");
    let line = &by_target(&run)["hostile@host-1"];
    assert_eq!(line["status"], "changed", "{line}");

    // Nothing ran: no mark anywhere on the host.
    assert_eq!(
        pwned(&fleet),
        "",
        "a hostile value was executed on the host"
    );

    // Every value landed as the literal text.
    let base = "/srv/drover-test/hostile";
    let dir = format!("{base}/{evil_dir}");
    assert!(
        fleet.exec("host-1", &["test", "-d", &dir]).status.success(),
        "no directory {dir:?}"
    );
    let listing = sh_ok(&fleet, "host-1", &format!("ls -A {base}"));
    assert_eq!(
        sorted(&listing.lines().map(str::to_owned).collect::<Vec<_>>()),
        sorted(&[evil_dir.clone(), "hostile.env".into(), "run.txt".into()]),
        "{base} holds exactly the three names"
    );
    let templated = read_file(&fleet, "host-1", &format!("{dir}/{evil_dir}.txt"));
    assert_eq!(
        templated,
        format!("evil={evil}\nlines={evil_lines}\nnote={note}\n")
    );
    assert_eq!(
        read_file(&fleet, "host-1", &format!("{base}/run.txt")),
        evil,
        "through `| shell_quote`"
    );

    // A second run with the same values changes nothing.
    let again = Drover::on(&fleet)
        .also_inventory(&extra)
        .run(&args, SMALL_LIMIT);
    assert_exit(&again, 0, "second deploy of hostile values");
    let line = &by_target(&again)["hostile@host-1"];
    assert_eq!(line["status"], "ok", "{line}");

    // The env file, as systemd reads it (EnvironmentFile=), gives back each value
    // exactly. Checked last, so the checks above run whatever happens here.
    let env_path = format!("{base}/hostile.env");
    let mut wrong = Vec::new();
    for (name, want) in [
        ("EVIL", &evil),
        ("NOTE", &note),
        ("EVIL_LINES", &evil_lines),
    ] {
        let out = fleet.exec(
            "host-1",
            &[
                "systemd-run",
                "--quiet",
                "--wait",
                "--pipe",
                "-p",
                &format!("EnvironmentFile={env_path}"),
                "/usr/bin/printenv",
                name,
            ],
        );
        let got = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || got != format!("{want}\n") {
            wrong.push(format!(
                "{name}: want {want:?}, systemd read {got:?} ({}; {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert_eq!(pwned(&fleet), "", "reading the env file executed a value");
    assert!(
        wrong.is_empty(),
        "env values do not reach the service intact:\n{}\n--- {env_path}:\n{}",
        wrong.join("\n"),
        read_file(&fleet, "host-1", &env_path)
    );
}

// ---------------------------------------------------------------------------
// Failures

#[test]
fn a_failing_step_stops_its_target_and_the_others_carry_on() {
    // 2 hosts: acme and globex on both; the step fails on host-2 only.
    let Some(fleet) = Fleet::up(2) else { return };
    let playbook = fixture("failing.toml");

    let run = drover(
        &fleet,
        &["deploy", &playbook, "--all", "--json"],
        SMALL_LIMIT,
    );
    let report = by_target(&run);
    assert_eq!(report.len(), 4, "{}", run.describe());
    for (target, line) in &report {
        if target.ends_with("@host-2") {
            assert_eq!(line["status"], "failed", "{target}: {line}");
            assert_eq!(line["failed_step"], "explode on host-2", "{target}: {line}");
            assert_eq!(
                step_statuses(line)
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect::<Vec<_>>(),
                ["changed", "failed", "skipped", "skipped"],
                "{target}: {line}"
            );
            let failed = step(line, "explode on host-2");
            assert!(text(&failed["stderr"]).contains("boom"), "{target}: {line}");
            assert!(
                text(&failed["stderr"]).contains('7'),
                "the script's exit status: {line}"
            );
            assert_ne!(failed["exit_code"], 0, "{line}");
        } else {
            assert_eq!(line["status"], "changed", "{target}: {line}");
            assert!(line["failed_step"].is_null(), "{target}: {line}");
            assert_eq!(
                step_statuses(line)
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect::<Vec<_>>(),
                ["changed", "skipped", "changed", "changed"],
                "{target}: {line}"
            );
        }
    }
    // The hosts agree: host-2 stopped before `after`, host-1 went to the end.
    for t in ["acme", "globex"] {
        let probe = format!("ls /srv/drover-test/{t}");
        assert_eq!(
            sh_ok(&fleet, "host-1", &probe)
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["after", "last"]
        );
        assert_eq!(
            sh_ok(&fleet, "host-2", &probe).trim(),
            "",
            "{t}@host-2 ran past the failed step"
        );
    }
    // Every target ran to its end or its failure: the run is not "halted" (3)
    // but "some targets failed" (1).
    assert_exit(&run, 1, "some targets failed");

    // The text summary names the failed step and shows its stderr; the others
    // are ok now (second run).
    let again = drover(&fleet, &["deploy", &playbook, "--all"], SMALL_LIMIT);
    let out = again.stdout();
    for t in ["acme", "globex"] {
        let head = format!("✗ {t}@host-2: step `explode on host-2` (run) failed");
        let at = out
            .find(&head)
            .unwrap_or_else(|| panic!("no `{head}`\n{}", again.describe()));
        let after: Vec<&str> = out[at..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .collect();
        assert!(
            after.iter().any(|l| l.trim() == "boom"),
            "{t}: stderr under the failure\n{}",
            again.describe()
        );
        assert!(
            out.lines().any(|l| l.contains(&format!("{t}@host-2"))
                && l.contains("failed")
                && l.contains("explode on host-2")),
            "table row of {t}@host-2\n{}",
            again.describe()
        );
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("{t}@host-1")) && l.contains(" ok ")),
            "table row of {t}@host-1\n{}",
            again.describe()
        );
    }
    assert!(
        out.contains("ok 2, changed 0, failed 2"),
        "{}",
        again.describe()
    );
    assert!(
        !out.contains("@host-1: step"),
        "no failure reported on host-1\n{}",
        again.describe()
    );
    assert_exit(&again, 1, "some targets failed (text)");
}

#[test]
fn a_step_needing_sudo_without_rights_fails_clearly() {
    let Some(fleet) = Fleet::up(1) else { return };
    // A login user with the fleet's key but no sudo rights.
    sh_ok(
        &fleet,
        "host-1",
        "useradd --create-home --shell /bin/sh nosudo && \
         install -m 0644 /etc/ssh/authorized_keys/deploy /etc/ssh/authorized_keys/nosudo",
    );
    let generated = std::fs::read_to_string(fleet.inventory()).expect("fleet inventory");
    assert!(generated.contains("\nuser = \"deploy\"\n"), "{generated}");
    let inventory = fleet.work_dir().join("nosudo.toml");
    std::fs::write(
        &inventory,
        generated.replace("\nuser = \"deploy\"\n", "\nuser = \"nosudo\"\n"),
    )
    .expect("write");

    let playbook = fixture("become.toml");
    let run = Drover::with_inventory(&fleet, &inventory)
        .run(&["deploy", &playbook, "--all", "--json"], SMALL_LIMIT);
    // The exit code of a run with a failed target is pinned by
    // a_failing_step_stops_its_target_and_the_others_carry_on; here: not success,
    // not bad input, not unreachable.
    assert!(
        !matches!(run.code(), Some(0 | 2 | 4) | None),
        "want the exit code of a failed target\n{}",
        run.describe()
    );
    let line = &by_target(&run)["acme@host-1"];
    assert_eq!(line["status"], "failed", "{line}");
    // Where it fails depends on whether drover needs root before the first step
    // (e.g. for a deploy lock) or only at the first step that needs it. Either
    // way the operator reads what is wrong and how to fix it.
    let mut said = text(&line["error"]).to_owned();
    if line["failed_step"] == "needs root" {
        // `become = false` ran as the login user, without sudo.
        let first = step(line, "as the login user");
        assert_eq!(first["status"], "changed", "{line}");
        assert_eq!(text(&first["stdout"]).trim(), "nosudo", "{line}");
        let failed = step(line, "needs root");
        assert_eq!(failed["status"], "failed", "{line}");
        said.push_str(text(&failed["stderr"]));
        assert_eq!(step(line, "never reached")["status"], "skipped", "{line}");
    } else {
        for s in line["steps"].as_array().into_iter().flatten() {
            assert_ne!(s["name"], "never reached", "{line}");
            assert_ne!(
                s["status"], "changed",
                "nothing ran past the failure: {line}"
            );
        }
    }
    for want in ["sudo -n", "nosudo", "host-1", "password-less sudo"] {
        assert!(
            said.contains(want),
            "a missing sudo right must be a clear error: `{want}` missing in {said:?}\n{line}"
        );
    }
    let left = sh_ok(
        &fleet,
        "host-1",
        "ls -d /srv/drover-test/acme 2>/dev/null; true",
    );
    assert_eq!(left.trim(), "", "nothing was made as root");
}

//! What operators ask their deploy tools for (issue 15, part A), end to end on the
//! Docker fleet: secrets from a command landing only in the env file, two deploys of
//! one tenant queueing on its lock with `--lock-wait`, and the playbook's hooks firing
//! once each with the run's environment (a failing `pre-deploy` changing nothing).
//!
//! Each test brings up its own small fleet and skips with one line when no Docker
//! engine answers, unless `DROVER_E2E=1`. Every drover run and wait is bounded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::drover::{Drover, EXIT_BAD_INPUT, EXIT_OK, assert_exit};
use crate::support::fleet::{Finished, Fleet, Running};
use crate::support::host::{audit, audit_text, sh_out, state};
use crate::support::repo::{self, path_str};
use crate::support::tenants::{Tenant, fleet_tenants, tenant};

/// Limit for one small deploy.
const LIMIT: Duration = Duration::from_secs(150);

/// The reference playbook in the fleet's scratch dir as `NAME.toml`, its release
/// upload pointing at the example releases, with `top` put before its first table
/// (top-level keys) and `tail` appended (more steps, `[hooks]`).
fn playbook(fleet: &Fleet, name: &str, top: &str, tail: &str) -> String {
    let text = std::fs::read_to_string(repo::agent_playbook()).expect("agent.toml");
    let from = "\"../examples/agent/releases/{{ version }}\"";
    assert!(text.contains(from), "agent.toml no longer uploads {from}");
    let releases = repo::root().join("examples/agent/releases");
    let text = text.replace(
        from,
        &format!("\"{}/{{{{ version }}}}\"", path_str(&releases)),
    );
    let text = format!("{top}\n{text}\n{tail}");
    let path = fleet.work_dir().join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write playbook");
    path_str(&path)
}

/// An executable script in the fleet's scratch dir.
fn script(fleet: &Fleet, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = fleet.work_dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// `deploy PLAYBOOK --tenant T --strategy blue-green --set version=V ARGS…`.
fn deploy_args(playbook: &str, tenant: &str, version: &str, more: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "deploy",
        playbook,
        "--tenant",
        tenant,
        "--strategy",
        "blue-green",
        "--set",
    ]
    .map(str::to_owned)
    .into();
    args.push(format!("version={version}"));
    args.extend(more.iter().map(|s| (*s).to_owned()));
    args
}

/// The run id drover announces on stderr (`run ID: …`).
fn run_id_of(run: &Finished) -> String {
    run.stderr()
        .lines()
        .find_map(|l| {
            l.strip_prefix("run ")?
                .split_once(':')
                .map(|(id, _)| id.to_owned())
        })
        .unwrap_or_else(|| panic!("no run id\n{}", run.describe()))
}

/// Every file of the run journals in the scratch dir, concatenated.
fn journals(fleet: &Fleet) -> String {
    let dir = fleet.work_dir().join(".drover/runs");
    let mut text = String::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    text
}

/// Host files holding `needle` under the places drover writes to.
fn host_files_with(fleet: &Fleet, host: &str, needle: &str) -> Vec<String> {
    sh_out(
        fleet,
        host,
        &format!(
            "grep -rlF -- '{needle}' /etc /var/lib/drover /var/log /opt/drover /tmp /root /home 2>/dev/null || true"
        ),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// acme, with its hosts, from the fleet's inventory.
fn acme(fleet: &Fleet) -> Tenant {
    tenant(&fleet_tenants(fleet), "acme").clone()
}

// ---------------------------------------------------------------------------
// Secrets from a command

#[test]
fn secrets_from_a_command_land_in_the_env_file_0600_and_nowhere_else() {
    let Some(fleet) = Fleet::up(2) else { return };
    let acme = acme(&fleet);
    let secret = "cmd-secret-7d1e9b52a0";
    let store = script(
        &fleet,
        "store.sh",
        &format!("echo '# from the store'\necho API_KEY={secret}\n"),
    );
    let args = deploy_args(
        &repo::agent_playbook(),
        "acme",
        "1.0.0",
        &["--secrets-cmd", &path_str(&store), "--diff", "-v"],
    );
    // No DROVER_SECRET_API_KEY: the value can only come from the command.
    let mut cmd = Drover::on(&fleet).command(&args);
    cmd.env_remove("DROVER_SECRET_API_KEY");
    let run = Running::start(&mut cmd).wait(LIMIT);
    assert_exit(&run, EXIT_OK, "deploy with --secrets-cmd");
    let json_args = [&args[..], &["--json".to_owned()]].concat();
    let mut cmd = Drover::on(&fleet).command(&json_args);
    cmd.env_remove("DROVER_SECRET_API_KEY");
    let again = Running::start(&mut cmd).wait(LIMIT);
    assert_exit(&again, EXIT_OK, "the same deploy again, --json");

    for h in &acme.hosts {
        let env = sh_out(
            &fleet,
            h,
            "stat -c '%a %U' /etc/drover/acme.env; cat /etc/drover/acme.env",
        );
        assert!(env.starts_with("600 root\n"), "{h}: {env}");
        assert!(env.contains(&format!("API_KEY=\"{secret}\"")), "{h}: {env}");
        let files = host_files_with(&fleet, h, secret);
        assert_eq!(
            files,
            ["/etc/drover/acme.env"],
            "{h}: the secret is elsewhere too"
        );
        assert!(!audit_text(&fleet, h).is_empty(), "{h}: audited");
    }
    for (what, text) in [
        ("stdout", run.stdout() + &again.stdout()),
        ("stderr", run.stderr() + &again.stderr()),
        ("journal", journals(&fleet)),
    ] {
        assert!(
            !text.contains(secret),
            "the secret is in drover's {what}:\n{text}"
        );
    }

    // The store rotates the key: a dry run with --diff shows neither value.
    let rotated = "cmd-secret-rotated-55e0c1";
    let rotating = script(&fleet, "rotated.sh", &format!("echo API_KEY={rotated}\n"));
    let args = deploy_args(
        &repo::agent_playbook(),
        "acme",
        "1.0.0",
        &[
            "--secrets-cmd",
            &path_str(&rotating),
            "--dry-run",
            "--diff",
            "--json",
        ],
    );
    let mut cmd = Drover::on(&fleet).command(&args);
    cmd.env_remove("DROVER_SECRET_API_KEY");
    let dry = Running::start(&mut cmd).wait(LIMIT);
    let env_steps: Vec<serde_json::Value> = dry
        .json_lines()
        .iter()
        .flat_map(|t| t["steps"].as_array().cloned().unwrap_or_default())
        .filter(|step| step["name"] == "environment")
        .collect();
    assert_eq!(env_steps.len(), 2, "{}", dry.describe());
    assert!(
        env_steps.iter().all(|s| s["status"] == "changed"),
        "{env_steps:?}"
    );
    let shown = dry.stdout() + &dry.stderr();
    assert!(
        !shown.contains(rotated) && !shown.contains(secret),
        "{}",
        dry.describe()
    );

    // A failing store: named, its output unseen, nothing changed on any host.
    let leaked = "must-not-show-41c0";
    let failing = script(
        &fleet,
        "failing.sh",
        &format!("echo API_KEY={leaked}\nexit 3\n"),
    );
    let before: Vec<String> = acme.hosts.iter().map(|h| audit_text(&fleet, h)).collect();
    let args = deploy_args(
        &repo::agent_playbook(),
        "acme",
        "2.0.0",
        &["--secrets-cmd", &path_str(&failing)],
    );
    let mut cmd = Drover::on(&fleet).command(&args);
    cmd.env_remove("DROVER_SECRET_API_KEY");
    let refused = Running::start(&mut cmd).wait(LIMIT);
    eprintln!("SECRETS: a failing command:\n{}", refused.stderr());
    assert_exit(&refused, EXIT_BAD_INPUT, "a failing secrets command");
    assert!(
        refused.stderr().contains("failing.sh` exited 3"),
        "{}",
        refused.describe()
    );
    assert!(!(refused.stdout() + &refused.stderr()).contains(leaked));
    for (h, was) in acme.hosts.iter().zip(before) {
        assert_eq!(audit_text(&fleet, h), was, "{h}: nothing changed");
        assert_eq!(state(&fleet, h, "acme").expect("state")["version"], "1.0.0");
    }
}

// ---------------------------------------------------------------------------
// Lock waits

#[test]
fn two_deploys_of_one_tenant_started_together_both_finish_one_after_the_other() {
    let Some(fleet) = Fleet::up(2) else { return };
    let acme = acme(&fleet);
    let slow = playbook(
        &fleet,
        "slow",
        "",
        "[[steps]]\nname = \"slow step\"\nrun = { script = \"sleep 6\" }\n",
    );
    let first = Drover::on(&fleet).spawn(&deploy_args(
        &slow,
        "acme",
        "1.0.0",
        &["--lock-wait", "120s"],
    ));
    let second = Drover::on(&fleet).spawn(&deploy_args(
        &slow,
        "acme",
        "2.0.0",
        &["--lock-wait", "120s"],
    ));
    let (first, second) = (first.wait(LIMIT), second.wait(LIMIT));
    assert_exit(&first, EXIT_OK, "the first deploy");
    assert_exit(&second, EXIT_OK, "the second deploy");
    let ids = [run_id_of(&first), run_id_of(&second)];
    let waited: Vec<&Finished> = [&first, &second]
        .into_iter()
        .filter(|r| r.stderr().contains("waiting, next look in"))
        .collect();
    assert!(
        !waited.is_empty(),
        "one run waited for the other:\n{}\n{}",
        first.describe(),
        second.describe()
    );
    eprintln!(
        "LOCK WAIT: first run {:?}, second {:?}\n{}",
        first.elapsed,
        second.elapsed,
        waited[0].stderr()
    );
    for h in &acme.hosts {
        let log = audit(&fleet, h);
        let switches: Vec<&BTreeMap<String, String>> = log
            .iter()
            .filter(|l| l.get("tenant").map(String::as_str) == Some("acme"))
            // a first deploy says `ok`; a switch is final when it is `confirmed`
            .filter(|l| {
                matches!(
                    l.get("result").map(String::as_str),
                    Some("ok" | "confirmed")
                )
            })
            .collect();
        for id in &ids {
            let mine = switches.iter().filter(|l| l.get("run") == Some(id)).count();
            assert_eq!(
                mine,
                1,
                "{h}: run {id} deployed acme {mine} time(s):\n{}",
                audit_text(&fleet, h)
            );
        }
        // The later switch is what is live, recorded by its run.
        let last = switches.last().expect("a switch");
        let s = state(&fleet, h, "acme").expect("state");
        assert_eq!(
            Some(&s["run"].as_str().unwrap_or("").to_owned()),
            last.get("run"),
            "{h}: {s}"
        );
    }

    // A lock left over by a run that has ended is not waited for: refused at once,
    // naming it; --force-unlock takes it.
    let ghost = "20261202t000000z-99999";
    let runs = fleet.work_dir().join(".drover/runs");
    let journal = format!(
        "{{\"event\":\"start\",\"run\":\"{ghost}\",\"args\":[],\"targets\":1,\"pid\":99999}}\n{{\"event\":\"finished\"}}\n"
    );
    std::fs::write(runs.join(format!("{ghost}.jsonl")), journal).expect("ghost journal");
    let host = &acme.hosts[0];
    let lock = format!(
        "mkdir /var/lib/drover/acme/lock.d && printf 'run={ghost}\\noperator=ghost@old\\nsince=2026-12-02T00:00:00Z\\n' > /var/lib/drover/acme/lock.d/owner"
    );
    let made = fleet.exec(host, &["sh", "-c", &lock]);
    assert!(made.status.success(), "{made:?}");
    let args = deploy_args(&slow, "acme", "2.0.0", &["--lock-wait", "60s"]);
    let refused = Drover::on(&fleet).run(&args, LIMIT);
    eprintln!("LOCK WAIT: a left-over lock:\n{}", refused.stdout());
    assert_ne!(refused.code(), Some(EXIT_OK), "{}", refused.describe());
    assert!(
        refused.elapsed < Duration::from_secs(40),
        "it waited: {:?}",
        refused.elapsed
    );
    let said = refused.stdout();
    assert!(
        said.contains(&format!("locked by run {ghost}")) && said.contains("left over"),
        "{said}"
    );
    assert!(
        !refused.stderr().contains("waiting, next look"),
        "{}",
        refused.describe()
    );
    assert!(!said.contains("(waited"), "it did not wait: {said}");
    let forced = [&args[..], &["--force-unlock".to_owned()]].concat();
    assert_exit(
        &Drover::on(&fleet).run(&forced, LIMIT),
        EXIT_OK,
        "--force-unlock",
    );
}

// ---------------------------------------------------------------------------
// Hooks

/// `[hooks]` writing each hook's DROVER_* environment to a file of its own in `dir`.
fn recording_hooks(dir: &Path, pre_deploy: &str) -> String {
    let record = format!(
        "env | grep '^DROVER_' | sort > \\\"{}/$DROVER_HOOK.${{DROVER_TENANT:-run}}.${{DROVER_HOST:-all}}.$$\\\"; echo hook $DROVER_HOOK said hello",
        dir.display()
    );
    format!(
        "[hooks]\npre-deploy = \"{pre_deploy}; {record}\"\npost-switch = \"{record}\"\non-halt = \"{record}\"\non-rollback = \"{record}\"\npost-deploy = \"{record}\"\ntimeout = \"20s\"\n"
    )
}

/// The files the hooks wrote: file name without its pid → the env lines.
fn fired(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("hook dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = name
            .rsplit_once('.')
            .map_or(name.clone(), |(k, _)| k.to_owned());
        let text = std::fs::read_to_string(entry.path()).expect("hook file");
        assert!(
            out.insert(key.clone(), text.lines().map(str::to_owned).collect())
                .is_none(),
            "{key} fired twice"
        );
    }
    out
}

fn var<'a>(env: &'a [String], name: &str) -> &'a str {
    env.iter()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {env:?}"))
}

#[test]
fn each_hook_fires_once_with_the_run_environment_and_a_failing_pre_deploy_changes_nothing() {
    let Some(fleet) = Fleet::up(2) else { return };
    let acme = acme(&fleet);
    let dir = fleet.work_dir().join("hooks");
    std::fs::create_dir_all(&dir).expect("hook dir");

    // A gate that says no: exit 2 before anything connects, no host touched.
    let gated = playbook(
        &fleet,
        "gated",
        "",
        &recording_hooks(&dir, "echo not today >&2; exit 1"),
    );
    let refused = Drover::on(&fleet).run(&deploy_args(&gated, "acme", "1.0.0", &[]), LIMIT);
    eprintln!("HOOKS: refused by pre-deploy:\n{}", refused.stderr());
    assert_exit(&refused, EXIT_BAD_INPUT, "a failing pre-deploy hook");
    assert!(
        refused.stderr().contains("not today"),
        "{}",
        refused.describe()
    );
    assert!(
        refused.stderr().contains("pre-deploy hook"),
        "{}",
        refused.describe()
    );
    assert!(
        fired(&dir).is_empty(),
        "no other hook ran: {:?}",
        fired(&dir)
    );
    for h in &acme.hosts {
        assert_eq!(audit_text(&fleet, h), "", "{h}: nothing deployed");
        let probe = "for p in /etc/drover/acme.env /opt/drover/acme /var/lib/drover/acme; do test -e $p && echo $p; done; true";
        assert_eq!(
            sh_out(&fleet, h, probe).trim(),
            "",
            "{h}: acme's files exist"
        );
    }

    // A deploy: pre-deploy, post-switch per target, post-deploy; once each.
    let open = playbook(&fleet, "open", "", &recording_hooks(&dir, "true"));
    let run = Drover::on(&fleet)
        .env("DROVER_OPERATOR", "release-bot@ci")
        .run(&deploy_args(&open, "acme", "1.0.0", &[]), LIMIT);
    assert_exit(&run, EXIT_OK, "a deploy with hooks");
    eprintln!("HOOKS: a deploy:\n{}", run.stderr());
    let id = run_id_of(&run);
    let got = fired(&dir);
    let mut want: Vec<String> = vec!["pre-deploy.run.all".into(), "post-deploy.run.all".into()];
    want.extend(acme.hosts.iter().map(|h| format!("post-switch.acme.{h}")));
    want.sort();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), want, "{got:?}");
    let targets: Vec<String> = acme.hosts.iter().map(|h| format!("acme@{h}")).collect();
    for (key, env) in &got {
        assert_eq!(var(env, "DROVER_RUN_ID"), id, "{key}");
        assert_eq!(var(env, "DROVER_PLAYBOOK"), open, "{key}");
        assert_eq!(var(env, "DROVER_OPERATOR"), "release-bot@ci", "{key}");
        assert_eq!(var(env, "DROVER_VERSION"), "1.0.0", "{key}");
        // The test secret drover was given (DROVER_SECRET_API_KEY) is not passed on.
        assert!(
            !env.iter().any(|l| l.starts_with("DROVER_SECRET_")),
            "{key}: {env:?}"
        );
    }
    assert_eq!(
        var(&got["pre-deploy.run.all"], "DROVER_TARGETS"),
        targets.join(" ")
    );
    assert_eq!(var(&got["post-deploy.run.all"], "DROVER_RESULT"), "ok");
    for h in &acme.hosts {
        let env = &got[&format!("post-switch.acme.{h}")];
        assert_eq!(var(env, "DROVER_TENANT"), "acme");
        assert_eq!(var(env, "DROVER_HOST"), h.as_str());
        assert_eq!(var(env, "DROVER_TARGETS"), format!("acme@{h}"));
        assert!(
            run.stderr()
                .contains(&format!("hook post-switch (acme@{h}): exit 0")),
            "{}",
            run.stderr()
        );
    }
    assert!(
        run.stderr().contains("  | hook post-deploy said hello"),
        "{}",
        run.stderr()
    );
    let journal = journals(&fleet);
    assert_eq!(
        journal.matches("\"event\":\"hook\"").count(),
        5,
        "{journal}"
    );
    for audit_line in acme.hosts.iter().flat_map(|h| audit(&fleet, h)) {
        assert_eq!(
            audit_line.get("operator").map(String::as_str),
            Some("release-bot@ci"),
            "{audit_line:?}"
        );
    }

    // A halted rollout that switches back: post-switch (which asks for the halt, as
    // `drover halt` from another terminal would), on-rollback, on-halt, post-deploy.
    std::fs::remove_dir_all(&dir).expect("clear hook dir");
    std::fs::create_dir_all(&dir).expect("hook dir");
    let halting = recording_hooks(&dir, "true").replace(
        "\npost-switch = \"",
        &format!(
            "\npost-switch = \"{} halt $DROVER_RUN_ID >/dev/null; sleep 1; ",
            env!("CARGO_BIN_EXE_drover")
        ),
    );
    let halting = playbook(&fleet, "halting", "", &halting);
    let run = Drover::on(&fleet).run(
        &deploy_args(
            &halting,
            "acme",
            "2.0.0",
            &["--batch", "1", "--rollback-on-halt"],
        ),
        LIMIT,
    );
    eprintln!("HOOKS: a halted deploy:\n{}", run.stderr());
    assert_exit(&run, 3, "a halted deploy");
    let got = fired(&dir);
    let switched: Vec<&String> = got
        .keys()
        .filter(|k| k.starts_with("post-switch."))
        .collect();
    assert_eq!(switched.len(), 1, "{got:?}");
    let first = var(&got[switched[0]], "DROVER_TARGETS").to_owned();
    for point in ["pre-deploy", "on-rollback", "on-halt", "post-deploy"] {
        assert!(
            got.contains_key(&format!("{point}.run.all")),
            "{point}: {got:?}"
        );
    }
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(
        var(&got["on-rollback.run.all"], "DROVER_ROLLED_BACK"),
        first
    );
    assert_eq!(var(&got["on-halt.run.all"], "DROVER_RESULT"), "halted");
    assert_eq!(
        var(&got["on-halt.run.all"], "DROVER_HALT_REASON"),
        "halt requested"
    );
    assert_eq!(var(&got["post-deploy.run.all"], "DROVER_RESULT"), "halted");
}

// ---------------------------------------------------------------------------
// sudo with a password

#[test]
fn a_deploy_user_that_needs_a_sudo_password_deploys_with_it_and_a_wrong_one_fails_per_host() {
    let Some(fleet) = Fleet::up(2) else { return };
    let acme = acme(&fleet);
    let password = "Become-pw 9f3!";
    for h in &acme.hosts {
        let out = fleet.exec(
            h,
            &[
                "sh",
                "-c",
                &format!(
                    "printf 'deploy ALL=(ALL) ALL\\n' > /etc/sudoers.d/deploy && printf 'deploy:%s\\n' '{password}' | chpasswd"
                ),
            ],
        );
        assert!(out.status.success(), "{h}: {out:?}");
        let nopass = fleet.ssh(h, "sudo -n true");
        assert!(
            !nopass.status.success(),
            "{h}: sudo still needs no password"
        );
    }
    let args = deploy_args(&repo::agent_playbook(), "acme", "1.0.0", &["--json"]);

    // Without a password: the old clear refusal, per host.
    let without = Drover::on(&fleet).run(&args, LIMIT);
    assert_ne!(without.code(), Some(EXIT_OK), "{}", without.describe());

    // A wrong one: a clear error for each host, quickly, nothing deployed.
    let wrong = Drover::on(&fleet)
        .env("DROVER_BECOME_PASS", "not-it")
        .run(&args, LIMIT);
    eprintln!("BECOME: wrong password:\n{}", wrong.stdout());
    assert_ne!(wrong.code(), Some(EXIT_OK), "{}", wrong.describe());
    assert!(
        wrong.elapsed < Duration::from_secs(60),
        "{:?}",
        wrong.elapsed
    );
    for line in wrong.json_lines() {
        let error = line["error"].as_str().unwrap_or("");
        assert!(
            error.contains("sudo rejected the become password"),
            "{line}"
        );
    }
    assert_eq!(wrong.json_lines().len(), acme.hosts.len());

    // The right one: deployed.
    let right = Drover::on(&fleet)
        .env("DROVER_BECOME_PASS", password)
        .run(&args, LIMIT);
    assert_exit(&right, EXIT_OK, "deploy with DROVER_BECOME_PASS");
    eprintln!(
        "BECOME: wrong password refused in {:?}; deploy with the password {:?}",
        wrong.elapsed, right.elapsed
    );
    for h in &acme.hosts {
        assert_eq!(state(&fleet, h, "acme").expect("state")["version"], "1.0.0");
    }
    let everything = [&without, &wrong, &right]
        .iter()
        .map(|r| r.stdout() + &r.stderr())
        .collect::<String>()
        + &journals(&fleet);
    assert!(!everything.contains(password), "the password was printed");
    for h in &acme.hosts {
        assert_eq!(
            host_files_with(&fleet, h, password),
            Vec::<String>::new(),
            "{h}"
        );
    }

    // What the password costs: the same no-op deploy with it, then (sudo back to
    // NOPASSWD) with it given but not needed, and without it.
    let again = Drover::on(&fleet)
        .env("DROVER_BECOME_PASS", password)
        .run(&args, LIMIT);
    assert_exit(&again, EXIT_OK, "a no-op deploy with the password");
    for h in &acme.hosts {
        let out = fleet.exec(
            h,
            &[
                "sh",
                "-c",
                "printf 'deploy ALL=(ALL) NOPASSWD:ALL\\n' > /etc/sudoers.d/deploy",
            ],
        );
        assert!(out.status.success(), "{h}: {out:?}");
    }
    let unneeded = Drover::on(&fleet)
        .env("DROVER_BECOME_PASS", password)
        .run(&args, LIMIT);
    assert_exit(&unneeded, EXIT_OK, "a password given but not needed");
    let plain = Drover::on(&fleet).run(&args, LIMIT);
    assert_exit(&plain, EXIT_OK, "no password, NOPASSWD");
    eprintln!(
        "BENCH become: no-op deploy of 2 targets: sudo -S {:?}, password given to NOPASSWD sudo {:?}, sudo -n {:?}",
        again.elapsed, unneeded.elapsed, plain.elapsed
    );
}

//! `health = { command, user }`: a health check for workers that serve no HTTP. The
//! command runs as the tenant's user; exit 0 = healthy.
//!
//! The runner (the script that switches to the user and runs the command) is also
//! recorded on the host, root-owned, so that `drover status` and the blue-green
//! verification after a switch run the very same check without the playbook.

use std::fmt::Write as _;

use super::shell::q;

/// The script that runs `command` as `user` from `/` with stdin closed: directly when
/// already that user, through `runuser` (util-linux), else `su`, when root. Every value
/// is quoted; the command reaches `sh -c` as one argument.
#[must_use]
pub(super) fn runner(user: &str, command: &str) -> String {
    format!(
        "cd / || exit 1\n\
         u={u}; c={c}\n\
         if [ \"$(id -un)\" = \"$u\" ]; then exec sh -c \"$c\" </dev/null\n\
         elif [ \"$(id -u)\" != 0 ]; then echo \"the health command runs as $u: root is needed to switch to it\" >&2; exit 126\n\
         elif command -v runuser >/dev/null 2>&1; then exec runuser -u \"$u\" -- sh -c \"$c\" </dev/null\n\
         else exec su -s /bin/sh -c \"$c\" \"$u\" </dev/null; fi\n",
        u = q(user),
        c = q(command),
    )
}

/// The script that runs `command` inside `container` (`podman exec`, as the
/// container's own user, from its working directory) with stdin closed.
#[must_use]
pub(super) fn container_runner(container: &str, command: &str) -> String {
    format!(
        "cd / || exit 1\n\
         exec podman exec {n} sh -c {c} </dev/null\n",
        n = q(container),
        c = q(command),
    )
}

/// The shown name of the check (`url` in the retry loop) and, on a real run, the
/// recording of the runner at `record`. A failed recording is noted, not fatal: the
/// check itself still gates the deploy.
pub(super) fn setup(
    user: &str,
    command: &str,
    record: Option<&str>,
    container: Option<&str>,
) -> String {
    let shown: String = command.chars().take(80).collect();
    let (who, runner) = match container {
        Some(c) => (format!("in container {c}"), container_runner(c, command)),
        None => (format!("as {user}"), runner(user, command)),
    };
    let mut s = format!(
        "url={}\nrunner={}\n",
        q(&format!("command `{shown}` {who}")),
        q(&runner),
    );
    if let Some(path) = record {
        let dir = path.rsplit_once('/').map_or("/", |(d, _)| d);
        let _ = write!(
            s,
            "if [ \"$DRY\" != 1 ]; then\n  \
               rec={rec}; tmp=\"$rec.tmp.$$\"\n  \
               if mkdir -p {dir} 2>/dev/null && chmod 0755 {dir} && printf '%s' \"$runner\" > \"$tmp\" && chmod 0644 \"$tmp\" && mv -f \"$tmp\" \"$rec\"; then :\n  \
               else rm -f \"$tmp\"; echo 'drover: could not record the health command for drover status' >&2; fi\n\
             fi\n",
            rec = q(path),
            dir = q(dir),
        );
    }
    s
}

/// One attempt, for the retry loop: sets `ok`, `body` and `why`. `t` bounds it.
pub(super) fn attempt(t: &str) -> String {
    format!(
        "body=$(timeout -k 1 {t} sh -c \"$runner\" 2>&1); rc=$?\n\
         if [ \"$rc\" = 0 ]; then ok=1\n\
         elif [ \"$rc\" = 124 ]; then ok=0; why=\"timed out after {t}s: $(snippet)\"\n\
         else ok=0; why=\"exited $rc${{body:+: $(snippet)}}\"; fi\n"
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{HealthProbe, StepSpec, script};
    use super::*;
    use crate::plan::steps::testkit::{hostile, pwned_path, run};

    fn me() -> String {
        let out = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn probe(command: &str, record: Option<String>, retries: u32) -> StepSpec {
        StepSpec::Health {
            probe: HealthProbe::Command {
                command: command.into(),
                user: me(),
                record,
                container: None,
            },
            retries,
            interval: Duration::from_millis(50),
        }
    }

    #[test]
    fn a_command_health_check_passes_on_exit_zero_and_records_its_runner() {
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("ready");
        std::fs::write(&marker, "").unwrap();
        let rec = t.path().join("health/acme.blue.sh");
        let cmd = format!("test -e '{}'", marker.display());
        let out = run(&script(
            &probe(&cmd, Some(rec.display().to_string()), 2),
            false,
            false,
        ))
        .ok();
        assert!(!out.changed(), "a health check never changes anything");
        let recorded = std::fs::read_to_string(&rec).unwrap();
        assert_eq!(recorded, runner(&me(), &cmd));
        let status = std::process::Command::new("sh").arg(&rec).status().unwrap();
        assert!(status.success(), "the recorded runner runs the same check");
    }

    #[test]
    fn a_failing_command_fails_after_its_retries_with_its_output() {
        let out = run(&script(
            &probe("echo queue lag too high; exit 3", None, 3),
            false,
            false,
        ));
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr
                .contains("failed after 3 attempt(s): exited 3: queue lag too high"),
            "{out:?}"
        );
    }

    #[test]
    fn a_command_passing_on_a_later_attempt_is_healthy() {
        let t = tempfile::tempdir().unwrap();
        let count = t.path().join("n");
        let cmd = format!(
            "echo x >> '{c}'; [ \"$(wc -l < '{c}')\" -ge 3 ]",
            c = count.display()
        );
        run(&script(&probe(&cmd, None, 5), false, false)).ok();
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
    }

    #[test]
    fn a_dry_run_neither_runs_nor_records_the_command() {
        let t = tempfile::tempdir().unwrap();
        let rec = t.path().join("rec.sh");
        let ran = t.path().join("ran");
        let cmd = format!("touch '{}'", ran.display());
        let spec = probe(&cmd, Some(rec.display().to_string()), 1);
        let out = run(&script(&spec, true, false)).ok();
        assert!(out.stdout.contains("skipped in dry-run"), "{out:?}");
        assert!(!rec.exists() && !ran.exists());
    }

    #[test]
    fn the_command_and_user_are_quoted() {
        let pwned = pwned_path("command-probe");
        // The command itself is meant to run; the user name and the shown name are not.
        let spec = StepSpec::Health {
            probe: HealthProbe::Command {
                command: format!("exit 1 # {}", hostile(&pwned)),
                user: me(),
                record: None,
                container: None,
            },
            retries: 1,
            interval: Duration::from_millis(10),
        };
        assert_eq!(run(&script(&spec, false, false)).code, 1);
        assert!(!pwned.exists(), "injection executed");
        let bad_user = StepSpec::Health {
            probe: HealthProbe::Command {
                command: "true".into(),
                user: "x; touch /tmp/y".into(),
                record: None,
                container: None,
            },
            retries: 1,
            interval: Duration::from_millis(10),
        };
        assert!(crate::plan::steps::validate(&bad_user).is_err());
    }

    #[test]
    fn an_in_container_check_hands_the_command_to_podman_exec_as_one_word() {
        let t = tempfile::tempdir().unwrap();
        // A stub podman: `exec NAME sh -c CMD` runs `sh -c CMD` here, logging NAME.
        let stub = t.path().join("podman");
        let log = t.path().join("names");
        std::fs::write(
            &stub,
            format!(
                "#!/bin/sh\n[ \"$1\" = exec ] || exit 9\nprintf '%s\\n' \"$2\" >> '{}'\nshift 2\nexec \"$@\"\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let pwned = pwned_path("in-container");
        let spec = |command: String| StepSpec::Health {
            probe: HealthProbe::Command {
                command,
                user: String::new(),
                record: None,
                container: Some("drover-acme-blue".into()),
            },
            retries: 1,
            interval: Duration::from_millis(50),
        };
        let path = format!("{}:/usr/bin:/bin", t.path().display());
        let ok = crate::plan::steps::testkit::run_with_path(
            &script(&spec("test 1 = 1".into()), false, false),
            Some(&path),
        );
        assert_eq!(ok.code, 0, "{ok:?}");
        let bad = crate::plan::steps::testkit::run_with_path(
            &script(&spec(format!("exit 3 # {}", hostile(&pwned))), false, false),
            Some(&path),
        );
        assert_ne!(bad.code, 0, "{bad:?}");
        assert!(
            bad.stderr.contains("in container drover-acme-blue"),
            "{bad:?}"
        );
        assert!(
            !pwned.exists(),
            "the command ran as shell text outside sh -c"
        );
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "drover-acme-blue\ndrover-acme-blue\n"
        );
    }
}

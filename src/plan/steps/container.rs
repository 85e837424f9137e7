//! `container`: the unit of a container installed like a file, after the tenant's
//! uid:gid (as this host numbers it) is put where the container's `--user` goes.

use std::fmt::Write as _;

use super::files::{FileArgs, file};
use super::shell::{prelude, q};
use super::{CONTAINER_USER_MARK, Ownership, StepScript};

/// Resolves `user` with `id` (the container must run as a non-root uid), fills it
/// into the unit read from stdin, then runs the `file` protocol on the result: written
/// only when it changed, then `daemon-reload` and `try-restart` (a running color picks
/// up its new image; a stopped one is left to the `service` step). In dry-run a user
/// that does not exist yet (a `user` step would create it) is not an error.
pub(super) fn install(name: &str, unit: &str, user: &str, dry_run: bool, diff: bool) -> StepScript {
    let ownership = Ownership {
        owner: Some("root".into()),
        group: Some("root".into()),
        mode: Some("0644".into()),
    };
    let on_change = format!(
        "systemctl daemon-reload && systemctl try-restart {}",
        q(name)
    );
    let inner = file(
        &FileArgs {
            dest: &format!("/etc/systemd/system/{name}"),
            content: unit.as_bytes(),
            ownership: &ownership,
            secret: false,
            on_change: Some(&on_change),
        },
        dry_run,
        diff,
    );
    let mut s = prelude(dry_run);
    let _ = write!(
        s,
        "u={u}\n\
         if uid=$(id -u -- \"$u\" 2>/dev/null) && gid=$(id -g -- \"$u\" 2>/dev/null); then\n\
         case \"$uid:$gid\" in *[!0-9:]*|:*|*:) cat >/dev/null; fail \"cannot read the uid:gid of $u\" ;; esac\n\
         if [ \"$uid\" = 0 ] || [ \"$gid\" = 0 ]; then cat >/dev/null; fail \"$u is root: a container runs as a non-root user\"; fi\n\
         elif [ \"$DRY\" = 1 ]; then uid=unknown; gid=unknown\n\
         else cat >/dev/null; fail \"no user $u on this host: the container runs as its uid (a user step must come first)\"; fi\n\
         sed \"s/{mark}/$uid:$gid/g\" | (\n{inner}) || exit 1\n",
        u = q(user),
        mark = CONTAINER_USER_MARK,
        inner = inner.script,
    );
    StepScript {
        script: s,
        stdin: inner.stdin,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{StepSpec, script};
    use crate::plan::steps::testkit::run;

    fn spec(user: &str) -> StepSpec {
        StepSpec::Container {
            name: "drover-acme-blue.service".into(),
            unit: "ExecStart=/usr/bin/podman run --user=@DROVER_UID_GID@ x\n".into(),
            user: user.into(),
        }
    }

    #[test]
    fn the_container_step_fails_for_a_missing_user_and_for_root() {
        let out = run(&script(&spec("drover-no-such-user-x"), false, false));
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            out.stderr.contains("no user drover-no-such-user-x"),
            "{out:?}"
        );
        let out = run(&script(&spec("root"), false, false));
        assert_ne!(out.code, 0, "{out:?}");
        assert!(out.stderr.contains("root is root"), "{out:?}");
    }

    #[test]
    fn a_dry_run_for_a_user_not_created_yet_reports_a_change_and_writes_nothing() {
        let out = run(&script(&spec("drover-no-such-user-x"), true, false));
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.changed(), "{out:?}");
    }

    #[test]
    fn the_unit_name_and_user_reach_the_script_quoted() {
        let s = script(
            &StepSpec::Container {
                name: "drover-acme-blue.service".into(),
                unit: String::new(),
                user: "x; reboot".into(),
            },
            false,
            false,
        );
        assert!(s.script.contains("invalid step"), "{}", s.script);
        let s = script(&spec("agent-acme"), false, false).script;
        assert!(s.contains("u=agent-acme\n"), "{s}");
        assert!(s.contains("try-restart drover-acme-blue.service"), "{s}");
    }
}

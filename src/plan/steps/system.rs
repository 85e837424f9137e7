//! `user` (system user and group, no login shell) and `service` (systemd state).

use std::fmt::Write as _;

use super::shell::{prelude, q};
use super::{ServiceState, StepScript};

/// System group, then system user of the same name (that group as its primary group),
/// home `home`, a nologin shell; an existing user's home, shell and primary group are
/// corrected with `usermod`. A missing home is created `0750`, owned by the user; an
/// existing one is left as it is (a `dir` step may manage it).
pub(super) fn user(name: &str, home: &str, dry_run: bool) -> StepScript {
    let mut s = prelude(dry_run);
    let _ = write!(
        s,
        "n={n}\n\
         h={h}\n\
         nologin=/usr/sbin/nologin\n\
         [ -x \"$nologin\" ] || nologin=/sbin/nologin\n\
         [ -x \"$nologin\" ] || nologin=/bin/false\n\
         act() {{ if [ \"$DRY\" = 0 ]; then \"$@\" || fail \"$1 failed for $n\"; fi; }}\n\
         if ! getent group \"$n\" >/dev/null; then changed; act groupadd --system -- \"$n\"; fi\n\
         if ent=$(getent passwd \"$n\"); then\n\
         cur_home=$(printf '%s\\n' \"$ent\" | cut -d: -f6)\n\
         cur_shell=$(printf '%s\\n' \"$ent\" | cut -d: -f7)\n\
         if [ \"$cur_home\" != \"$h\" ]; then changed; act usermod --home \"$h\" -- \"$n\"; fi\n\
         case \"$cur_shell\" in\n\
         /usr/sbin/nologin|/sbin/nologin|/bin/false|/usr/bin/false) ;;\n\
         *) changed; act usermod --shell \"$nologin\" -- \"$n\" ;;\n\
         esac\n\
         if [ \"$(id -gn -- \"$n\" 2>/dev/null)\" != \"$n\" ]; then changed; act usermod --gid \"$n\" -- \"$n\"; fi\n\
         else\n\
         changed\n\
         act useradd --system --gid \"$n\" --home-dir \"$h\" --no-create-home --shell \"$nologin\" -- \"$n\"\n\
         fi\n\
         if [ ! -e \"$h\" ] && [ ! -L \"$h\" ]; then\n\
         changed\n\
         act mkdir -p -- \"$h\"\n\
         act chown -- \"$n\" \"$h\"\n\
         act chgrp -- \"$n\" \"$h\"\n\
         act chmod 00750 \"$h\"\n\
         fi\n",
        n = q(name),
        h = q(home),
    );
    StepScript {
        script: s,
        stdin: None,
    }
}

/// Enablement first, then the run state; each only when it differs. `Restarted` and
/// `Reloaded` always act and report a change. A failed start or restart adds
/// `systemctl status` to stderr.
pub(super) fn service(
    name: &str,
    state: ServiceState,
    enabled: Option<bool>,
    dry_run: bool,
) -> StepScript {
    let mut s = prelude(dry_run);
    let _ = write!(
        s,
        "u={u}\n\
         act() {{ if [ \"$DRY\" = 0 ]; then systemctl \"$1\" \"$u\" || {{ \
         if [ \"$1\" = start ] || [ \"$1\" = restart ]; then systemctl status --no-pager \"$u\" >&2; fi; \
         fail \"systemctl $1 $u failed\"; }}; fi; }}\n",
        u = q(name),
    );
    match enabled {
        Some(true) => s.push_str("if ! systemctl is-enabled --quiet \"$u\" 2>/dev/null; then changed; act enable; fi\n"),
        Some(false) => s.push_str(
            "if [ \"$(systemctl is-enabled \"$u\" 2>/dev/null)\" = enabled ]; then changed; act disable; fi\n",
        ),
        None => {}
    }
    s.push_str(match state {
        ServiceState::Started => {
            "if ! systemctl is-active --quiet \"$u\"; then changed; act start; fi\n"
        }
        ServiceState::Stopped => {
            "if systemctl is-active --quiet \"$u\"; then changed; act stop; fi\n"
        }
        ServiceState::Restarted => "changed; act restart\n",
        ServiceState::Reloaded => "changed; act reload\n",
    });
    StepScript {
        script: s,
        stdin: None,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::Path;

    use super::*;
    use crate::plan::steps::testkit::{Out, run_with_path};
    use crate::plan::steps::{StepSpec, script};

    /// Stub commands in `dir` that log their calls to `dir/calls`; `systemctl` keeps
    /// its state in `dir/active` and `dir/enabled`; `getent` reads `dir/passwd` and
    /// `dir/group`; `id -gn` prints `dir/primary`.
    fn stubs(dir: &Path) -> String {
        let d = dir.display();
        let log = format!(
            "#!/bin/sh\nprintf '%s|' \"${{0##*/}}\" \"$@\" >> '{d}/calls'; echo >> '{d}/calls'\n"
        );
        let stub = |name: &str, body: &str| {
            let p = dir.join(name);
            fs::write(&p, format!("{log}{body}")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        };
        stub(
            "systemctl",
            &format!(
                "case $1 in\n\
                 is-active) [ -f '{d}/active' ] ;;\n\
                 is-enabled) if [ -f '{d}/enabled' ]; then [ \"$2\" = --quiet ] || echo enabled; else [ \"$2\" = --quiet ] || echo disabled; exit 1; fi ;;\n\
                 start|restart) touch '{d}/active' ;;\n\
                 stop) rm -f '{d}/active' ;;\n\
                 enable) touch '{d}/enabled' ;;\n\
                 disable) rm -f '{d}/enabled' ;;\n\
                 esac\n"
            ),
        );
        stub(
            "getent",
            &format!("grep -e \"^$2:\" \"{d}/$1\" 2>/dev/null\n"),
        );
        stub("id", &format!("cat '{d}/primary'\n"));
        for name in ["groupadd", "useradd", "usermod", "chown", "chgrp"] {
            stub(name, "");
        }
        format!("{d}:/usr/bin:/bin")
    }

    fn calls(dir: &Path) -> String {
        let c = fs::read_to_string(dir.join("calls")).unwrap_or_default();
        let _ = fs::remove_file(dir.join("calls"));
        // Keep only the calls that act.
        c.lines()
            .filter(|l| !l.starts_with("getent|") && !l.starts_with("id|") && !l.contains("|is-"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn service_run(path: &str, state: ServiceState, enabled: Option<bool>, dry: bool) -> Out {
        let spec = StepSpec::Service {
            name: "drover-acme-blue.service".into(),
            state,
            enabled,
        };
        let out = run_with_path(&script(&spec, dry, false), Some(path)).ok();
        assert!(
            out.stdout
                .lines()
                .all(|l| l == crate::plan::steps::CHANGED_MARKER),
            "{out:?}"
        );
        out
    }

    #[test]
    fn service_starts_and_enables_only_when_needed() {
        let t = tempfile::tempdir().unwrap();
        let path = stubs(t.path());
        let u = "drover-acme-blue.service";
        assert!(service_run(&path, ServiceState::Started, Some(true), true).changed());
        assert_eq!(calls(t.path()), "", "dry-run acts on nothing");
        assert!(service_run(&path, ServiceState::Started, Some(true), false).changed());
        assert_eq!(
            calls(t.path()),
            format!("systemctl|enable|{u}|\nsystemctl|start|{u}|\n")
        );
        assert!(!service_run(&path, ServiceState::Started, Some(true), false).changed());
        assert_eq!(calls(t.path()), "");
        assert!(service_run(&path, ServiceState::Stopped, Some(false), false).changed());
        assert_eq!(
            calls(t.path()),
            format!("systemctl|disable|{u}|\nsystemctl|stop|{u}|\n")
        );
        assert!(!service_run(&path, ServiceState::Stopped, Some(false), false).changed());
        assert!(!service_run(&path, ServiceState::Stopped, None, false).changed());
        assert_eq!(calls(t.path()), "");
    }

    #[test]
    fn restart_and_reload_always_act_and_report_a_change() {
        let t = tempfile::tempdir().unwrap();
        let path = stubs(t.path());
        for (state, verb) in [
            (ServiceState::Restarted, "restart"),
            (ServiceState::Reloaded, "reload"),
        ] {
            assert!(service_run(&path, state, None, false).changed());
            assert!(service_run(&path, state, None, false).changed());
            let one = format!("systemctl|{verb}|drover-acme-blue.service|\n");
            assert_eq!(calls(t.path()), one.repeat(2));
            assert!(service_run(&path, state, None, true).changed());
            assert_eq!(calls(t.path()), "");
        }
    }

    #[test]
    fn service_script_quotes_the_unit_and_checks_before_acting() {
        let text = service(
            "a\\x2db@1.service",
            ServiceState::Started,
            Some(true),
            false,
        )
        .script;
        assert!(text.contains("u='a\\x2db@1.service'"), "{text}");
        assert!(
            text.contains("if ! systemctl is-active --quiet \"$u\"; then changed; act start; fi")
        );
        assert!(text.contains("if ! systemctl is-enabled --quiet \"$u\""));
        assert!(text.starts_with("DRY=0\n"));
    }

    fn user_run(path: &str, home: &Path, dry: bool) -> Out {
        let spec = StepSpec::User {
            name: "drover-acme".into(),
            home: home.to_str().unwrap().into(),
        };
        run_with_path(&script(&spec, dry, false), Some(path)).ok()
    }

    #[test]
    fn user_is_created_with_its_group_home_and_no_shell() {
        let t = tempfile::tempdir().unwrap();
        let path = stubs(t.path());
        let home = t.path().join("home dir");
        let h = home.display();
        assert!(user_run(&path, &home, true).changed());
        assert_eq!(calls(t.path()), "");
        assert!(!home.exists(), "dry-run creates nothing");
        assert!(user_run(&path, &home, false).changed());
        assert_eq!(
            calls(t.path()),
            format!(
                "groupadd|--system|--|drover-acme|\n\
                 useradd|--system|--gid|drover-acme|--home-dir|{h}|--no-create-home|--shell|/usr/sbin/nologin|--|drover-acme|\n\
                 chown|--|drover-acme|{h}|\n\
                 chgrp|--|drover-acme|{h}|\n"
            )
        );
        assert_eq!(
            fs::metadata(&home).unwrap().permissions().mode() & 0o7777,
            0o750
        );
    }

    #[test]
    fn existing_user_is_left_alone_or_corrected() {
        let t = tempfile::tempdir().unwrap();
        let path = stubs(t.path());
        let home = t.path().join("h");
        fs::create_dir(&home).unwrap();
        let h = home.display();
        fs::write(t.path().join("group"), "drover-acme:x:999:\n").unwrap();
        fs::write(t.path().join("primary"), "drover-acme\n").unwrap();
        fs::write(
            t.path().join("passwd"),
            format!("drover-acme:x:999:999::{h}:/usr/sbin/nologin\n"),
        )
        .unwrap();
        assert!(!user_run(&path, &home, false).changed());
        assert_eq!(calls(t.path()), "");
        fs::write(
            t.path().join("passwd"),
            "drover-acme:x:999:999::/elsewhere:/bin/bash\n",
        )
        .unwrap();
        fs::write(t.path().join("primary"), "users\n").unwrap();
        assert!(user_run(&path, &home, true).changed());
        assert_eq!(calls(t.path()), "");
        assert!(user_run(&path, &home, false).changed());
        assert_eq!(
            calls(t.path()),
            format!(
                "usermod|--home|{h}|--|drover-acme|\n\
                 usermod|--shell|/usr/sbin/nologin|--|drover-acme|\n\
                 usermod|--gid|drover-acme|--|drover-acme|\n"
            )
        );
    }

    #[test]
    fn user_script_quotes_the_home() {
        let text = user("drover-acme", "/home/a b;$(reboot)", false).script;
        assert!(text.contains("h='/home/a b;$(reboot)'"), "{text}");
        assert!(text.contains("n=drover-acme\n"));
    }
}

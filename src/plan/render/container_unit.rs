//! The systemd unit of a `container` step: rootful podman started detached with
//! `--sdnotify=conmon` (conmon is the unit's main process, the agent stays in the
//! unit's cgroup since podman's cgroups are disabled on the hosts), so `MemoryMax` and
//! `CPUQuota` of the unit bound the container. Verified command lines: docker/NOTES.md,
//! "Podman in the hosts".
//!
//! Every value is written as a systemd word ([`sd_word`]): systemd splits `ExecStart=`
//! itself (no shell), expanding `%` specifiers and `$NAME`, so both are escaped.

use std::fmt::Write as _;

use crate::plan::steps::CONTAINER_USER_MARK;

/// The rendered values of one color's container.
#[derive(Debug, Clone)]
pub(crate) struct UnitValues<'a> {
    /// tenant name
    pub tenant: &'a str,
    /// color
    pub color: &'a str,
    /// `drover-<tenant>-<color>`
    pub container: &'a str,
    /// image reference
    pub image: &'a str,
    /// the agent's port (`PORT`)
    pub port: u16,
    /// the EnvironmentFile, if any
    pub env_file: Option<&'a str>,
    /// names passed to the container by name
    pub env_names: &'a [String],
    /// `host:container[:ro]`
    pub volumes: &'a [String],
    /// arguments after the image
    pub args: &'a [String],
    /// `--entrypoint`, if any
    pub entrypoint: Option<&'a str>,
    /// `--read-only`
    pub read_only: bool,
    /// `--tmpfs` mounts
    pub tmpfs: &'a [String],
    /// `--cap-add` after `--cap-drop ALL`
    pub cap_add: &'a [String],
    /// `--security-opt no-new-privileges`
    pub no_new_privileges: bool,
    /// `--stop-signal`
    pub stop_signal: &'a str,
    /// `--stop-timeout`, seconds
    pub stop_timeout: u64,
    /// MemoryMax=
    pub memory_max: &'a str,
    /// CPUQuota=
    pub cpu_quota: &'a str,
    /// Restart=
    pub restart: &'a str,
    /// `--log-driver`
    pub log_driver: &'a str,
}

/// `value` as one systemd word: bare when it is plain, else double-quoted with `\`
/// and `"` escaped; `%` and `$` doubled everywhere (specifiers, variables), and a lone
/// `;` (a command separator in `ExecStart=`) escaped. Values never span lines
/// (checked before).
pub(crate) fn sd_word(value: &str) -> String {
    if value == ";" {
        return "\\;".into();
    }
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@+,-".contains(c));
    let mut out = String::with_capacity(value.len() + 2);
    if !plain {
        out.push('"');
    }
    for c in value.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    if !plain {
        out.push('"');
    }
    out
}

/// The unit text; `CONTAINER_USER_MARK` stands where the step puts the uid:gid.
pub(crate) fn unit_text(v: &UnitValues<'_>) -> String {
    let mut run: Vec<String> = [
        "/usr/bin/podman",
        "run",
        "-d",
        "--sdnotify=conmon",
        "--cidfile=%t/%n.ctr-id",
        "--rm",
        "--replace",
        "--pull=never",
        "--network=host",
        "--cap-drop=ALL",
    ]
    .map(String::from)
    .to_vec();
    let mut opt = |flag: &str, value: &str| run.push(format!("{flag}={}", sd_word(value)));
    opt("--name", v.container);
    opt("--log-driver", v.log_driver);
    opt("--user", CONTAINER_USER_MARK);
    for cap in v.cap_add {
        opt("--cap-add", cap);
    }
    for t in v.tmpfs {
        opt("--tmpfs", t);
    }
    if let Some(e) = v.entrypoint {
        opt("--entrypoint", e);
    }
    opt("--stop-signal", v.stop_signal);
    opt("--stop-timeout", &v.stop_timeout.to_string());
    let mut names: Vec<&str> = vec!["TENANT", "COLOR", "PORT"];
    for n in v.env_names {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for n in names {
        opt("--env", n);
    }
    for vol in v.volumes {
        opt("--volume", vol);
    }
    if v.read_only {
        run.push("--read-only".into());
    }
    if v.no_new_privileges {
        run.push("--security-opt=no-new-privileges".into());
    }
    run.push(sd_word(v.image));
    run.extend(v.args.iter().map(|a| sd_word(a)));
    let mut s = format!(
        "# Managed by drover: tenant {tenant}, color {color}, image {image}.\n\
         [Unit]\n\
         Description=drover container {tenant} ({color})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         # Stop retrying after 5 failed starts in 60 s instead of flapping forever.\n\
         StartLimitIntervalSec=60\n\
         StartLimitBurst=5\n\
         \n\
         [Service]\n\
         # conmon tells systemd when the container runs, and stays as the main process.\n\
         Type=notify\n\
         NotifyAccess=all\n",
        tenant = v.tenant,
        color = v.color,
        image = v.image.replace(['%', '\n'], "_"),
    );
    if let Some(file) = v.env_file {
        // Values reach the container by name only, from here: no secret on a command line.
        let _ = writeln!(s, "EnvironmentFile=-{}", sd_word(file));
    }
    let _ = write!(
        s,
        "Environment={tenant} {color} {port}\n\
         # A container killed with its conmon (the OOM killer, a crash) leaves its ID\n\
         # file behind, and `podman run --cidfile` refuses to start over it.\n\
         ExecStartPre=/bin/rm -f %t/%n.ctr-id\n\
         ExecStart={run}\n\
         ExecStop=/usr/bin/podman stop --ignore -t {stop} --cidfile=%t/%n.ctr-id\n\
         ExecStopPost=/usr/bin/podman rm -f --ignore --cidfile=%t/%n.ctr-id\n\
         Restart={restart}\n\
         RestartSec=2\n\
         TimeoutStartSec=120\n\
         TimeoutStopSec={stop_unit}\n\
         # podman's cgroups are disabled: the container stays in this unit's cgroup.\n\
         MemoryMax={memory}\n\
         CPUQuota={cpu}\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        tenant = sd_word(&format!("TENANT={}", v.tenant)),
        color = sd_word(&format!("COLOR={}", v.color)),
        port = sd_word(&format!("PORT={}", v.port)),
        run = run.join(" "),
        stop = v.stop_timeout,
        stop_unit = v.stop_timeout + 10,
        restart = v.restart,
        memory = v.memory_max,
        // CPUQuota= takes no specifiers: `50%` as it is (validated as a percentage).
        cpu = v.cpu_quota,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(env: &'a [String], args: &'a [String], vols: &'a [String]) -> UnitValues<'a> {
        UnitValues {
            tenant: "acme",
            color: "blue",
            container: "drover-acme-blue",
            image: "localhost/drover-agent:1.0.0",
            port: 8100,
            env_file: Some("/etc/drover/acme.env"),
            env_names: env,
            volumes: vols,
            args,
            entrypoint: None,
            read_only: true,
            tmpfs: &[],
            cap_add: &[],
            no_new_privileges: true,
            stop_signal: "SIGTERM",
            stop_timeout: 10,
            memory_max: "256M",
            cpu_quota: "50%",
            restart: "on-failure",
            log_driver: "passthrough",
        }
    }

    #[test]
    fn systemd_words_escape_specifiers_variables_quotes_and_a_lone_semicolon() {
        assert_eq!(sd_word("localhost/a:1"), "localhost/a:1");
        assert_eq!(sd_word("a b"), "\"a b\"");
        assert_eq!(sd_word("100%"), "\"100%%\"");
        assert_eq!(sd_word("$HOME"), "\"$$HOME\"");
        assert_eq!(sd_word("say \"hi\" \\"), "\"say \\\"hi\\\" \\\\\"");
        assert_eq!(sd_word(";"), "\\;");
        assert_eq!(sd_word(""), "\"\"");
        assert_eq!(sd_word("'$(reboot)'"), "\"'$$(reboot)'\"");
    }

    #[test]
    fn the_unit_runs_a_hardened_detached_container_that_gets_env_values_by_name_only() {
        let env = ["API_KEY".to_string(), "PORT".to_string()];
        let vols = ["/var/lib/drover/acme:/state".to_string()];
        let args = ["--port".to_string(), "8100".to_string()];
        let text = unit_text(&values(&env, &args, &vols));
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        assert_eq!(
            exec,
            "/usr/bin/podman run -d --sdnotify=conmon --cidfile=%t/%n.ctr-id --rm --replace \
             --pull=never --network=host --cap-drop=ALL --name=drover-acme-blue \
             --log-driver=passthrough --user=@DROVER_UID_GID@ --stop-signal=SIGTERM \
             --stop-timeout=10 --env=TENANT --env=COLOR --env=PORT --env=API_KEY \
             --volume=/var/lib/drover/acme:/state --read-only \
             --security-opt=no-new-privileges localhost/drover-agent:1.0.0 --port 8100"
        );
        for line in [
            "Type=notify",
            "NotifyAccess=all",
            "EnvironmentFile=-/etc/drover/acme.env",
            "Environment=TENANT=acme COLOR=blue PORT=8100",
            "ExecStartPre=/bin/rm -f %t/%n.ctr-id",
            "ExecStop=/usr/bin/podman stop --ignore -t 10 --cidfile=%t/%n.ctr-id",
            "ExecStopPost=/usr/bin/podman rm -f --ignore --cidfile=%t/%n.ctr-id",
            "Restart=on-failure",
            "TimeoutStopSec=20",
            "MemoryMax=256M",
            "CPUQuota=50%",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn overrides_loosen_the_defaults_only_where_asked() {
        let caps = ["CAP_NET_BIND_SERVICE".to_string()];
        let tmpfs = ["/run".to_string(), "/tmp".to_string()];
        let args = ["--greeting".to_string(), "100% $USER; \"ok\"".to_string()];
        let mut v = values(&[], &args, &[]);
        v.read_only = false;
        v.no_new_privileges = false;
        v.cap_add = &caps;
        v.tmpfs = &tmpfs;
        v.stop_signal = "SIGINT";
        v.stop_timeout = 30;
        v.env_file = None;
        v.entrypoint = Some("/usr/bin/python3");
        let text = unit_text(&v);
        assert!(!text.contains("--read-only"), "{text}");
        assert!(!text.contains("no-new-privileges"), "{text}");
        assert!(!text.contains("EnvironmentFile"), "{text}");
        for part in [
            "--cap-drop=ALL",
            "--cap-add=CAP_NET_BIND_SERVICE",
            "--tmpfs=/run --tmpfs=/tmp",
            "--entrypoint=/usr/bin/python3",
            "--stop-signal=SIGINT --stop-timeout=30",
            "--greeting \"100%% $$USER; \\\"ok\\\"\"",
            "podman stop --ignore -t 30",
            "TimeoutStopSec=40",
        ] {
            assert!(text.contains(part), "{part} in:\n{text}");
        }
    }
}

//! `container = { name, image, … }`: a release as an OCI image, run by rootful podman
//! under a systemd unit, hardened by default (read-only root, a tmpfs `/tmp`, every
//! capability dropped, no new privileges, the tenant's non-root uid).
//!
//! What can be checked without a target is checked here, each value at its place
//! (capability names, signal, durations, restart policy, log driver, the env file
//! naming an earlier `env` step); templated values (volumes, limits, the image) are
//! checked once rendered, in `plan::render::container`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Action, Step, Text, parse_duration_field};
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::source::SourceFile;

/// `container = { … }` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// unit name, e.g. "drover-{{ tenant }}-{{ color }}.service"
    pub name: Text,
    /// image reference, e.g. "localhost/drover-agent:{{ version }}"
    pub image: Text,
    /// the port the agent listens on (`PORT` in its environment; default the color's)
    pub port: Option<Text>,
    /// the `dest` of an earlier `env` step: its names are passed to the container
    pub env_file: Option<Text>,
    /// `host:container[:ro|:rw]`, absolute clean paths
    #[serde(default)]
    pub volumes: Vec<Text>,
    /// the tenant's user name: the container runs as its uid:gid (resolved on the host)
    pub user: Text,
    /// arguments after the image
    #[serde(default)]
    pub args: Vec<Text>,
    /// an absolute path run instead of the image's entrypoint (`--entrypoint`)
    pub entrypoint: Option<Text>,
    /// read-only root filesystem (default true)
    pub read_only: Option<bool>,
    /// tmpfs mounts (default ["/tmp"])
    pub tmpfs: Option<Vec<Text>>,
    /// capabilities added back after dropping all (default none)
    #[serde(default)]
    pub cap_add: Vec<Spanned<String>>,
    /// `--security-opt no-new-privileges` (default true)
    pub no_new_privileges: Option<bool>,
    /// the signal that asks the agent to stop (default SIGTERM)
    pub stop_signal: Option<Spanned<String>>,
    /// time between that signal and SIGKILL (default 10s, whole seconds)
    pub stop_timeout: Option<Spanned<String>>,
    /// the unit's MemoryMax (default 512M)
    pub memory_max: Option<Text>,
    /// the unit's CPUQuota (default 100%)
    pub cpu_quota: Option<Text>,
    /// the unit's Restart= (default on-failure)
    pub restart: Option<Spanned<String>>,
    /// passthrough (default: output in the unit's journal) or journald
    pub log_driver: Option<Spanned<String>>,
}

/// A validated `container` step: the spec with its fixed values parsed.
#[derive(Debug, Clone)]
pub struct Container {
    /// as written
    pub spec: ContainerSpec,
    /// the names of the env step's variables and secrets, in order (passed by name)
    pub env_names: Vec<String>,
    /// capabilities added back, upper case with the `CAP_` prefix
    pub cap_add: Vec<String>,
    /// e.g. `SIGTERM`
    pub stop_signal: String,
    /// whole seconds
    pub stop_timeout: Duration,
    /// systemd's Restart= value
    pub restart: String,
    /// podman's --log-driver value
    pub log_driver: String,
}

/// Signals an agent may be asked to stop with.
const SIGNALS: &[&str] = &[
    "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGKILL",
];

/// systemd's `Restart=` values.
const RESTARTS: &[&str] = &[
    "no",
    "on-failure",
    "on-abnormal",
    "on-abort",
    "on-watchdog",
    "on-success",
    "always",
];

/// podman log drivers that keep the output where `drover logs` reads it.
const LOG_DRIVERS: &[&str] = &["passthrough", "journald"];

/// Linux capabilities (capabilities(7)), without the `CAP_` prefix.
const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

fn one_of(
    source: &SourceFile,
    field: Option<&Spanned<String>>,
    key: &str,
    allowed: &[&str],
    default: &str,
    problems: &mut Diagnostics,
) -> String {
    let Some(f) = field else {
        return default.to_string();
    };
    if allowed.contains(&f.get_ref().as_str()) {
        return f.get_ref().clone();
    }
    problems.push(Diagnostic::at(
        "playbook::container-value",
        source,
        f.span(),
        format!("unknown container {key} `{}`", f.get_ref()),
        format!("expected one of {}", allowed.join(", ")),
    ));
    default.to_string()
}

/// `NET_BIND_SERVICE` or `CAP_NET_BIND_SERVICE` (any case) as `CAP_NET_BIND_SERVICE`.
fn capability(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES.contains(&bare).then(|| format!("CAP_{bare}"))
}

/// Checks a `container` step's fixed values; the env names are filled in later by
/// [`resolve_env_files`], once every step is known.
pub(super) fn validate_container(
    source: &SourceFile,
    spec: ContainerSpec,
    problems: &mut Diagnostics,
) -> Container {
    let mut cap_add = Vec::new();
    for c in &spec.cap_add {
        match capability(c.get_ref()) {
            Some(cap) if cap == "CAP_SYS_ADMIN" => problems.push(Diagnostic::at(
                "playbook::container-cap",
                source,
                c.span(),
                "a container may not get back CAP_SYS_ADMIN",
                "it is as good as root on the host; drop it",
            )),
            Some(cap) => cap_add.push(cap),
            None => problems.push(Diagnostic::at(
                "playbook::container-cap",
                source,
                c.span(),
                format!("unknown capability `{}`", c.get_ref()),
                "expected a name from capabilities(7), e.g. \"NET_BIND_SERVICE\"",
            )),
        }
    }
    let stop_signal = one_of(
        source,
        spec.stop_signal.as_ref(),
        "stop_signal",
        SIGNALS,
        "SIGTERM",
        problems,
    );
    let restart = one_of(
        source,
        spec.restart.as_ref(),
        "restart",
        RESTARTS,
        "on-failure",
        problems,
    );
    let log_driver = one_of(
        source,
        spec.log_driver.as_ref(),
        "log_driver",
        LOG_DRIVERS,
        "passthrough",
        problems,
    );
    let default_stop = Duration::from_secs(10);
    let mut stop_timeout = parse_duration_field(
        source,
        spec.stop_timeout.as_ref(),
        "stop_timeout",
        default_stop,
        problems,
    );
    if let Some(t) = &spec.stop_timeout
        && (stop_timeout.subsec_nanos() != 0 || stop_timeout > Duration::from_secs(3600))
    {
        problems.push(Diagnostic::at(
            "playbook::container-value",
            source,
            t.span(),
            "`stop_timeout` must be whole seconds, at most 1h",
            "expected e.g. \"10s\" (podman stop counts whole seconds)",
        ));
        stop_timeout = default_stop;
    }
    Container {
        spec,
        env_names: Vec::new(),
        cap_add,
        stop_signal,
        stop_timeout,
        restart,
        log_driver,
    }
}

/// Every container's `env_file` must be the `dest` of an earlier `env` step (the same
/// text): the container gets that step's variable and secret names, and their values
/// only through the unit's EnvironmentFile, never on a command line.
pub(super) fn resolve_env_files(
    source: &SourceFile,
    steps: &mut [Step],
    problems: &mut Diagnostics,
) {
    let mut envs: Vec<(String, Vec<String>)> = Vec::new();
    for step in steps.iter_mut() {
        match &mut step.action {
            Action::Env(e) => {
                let mut names: Vec<String> = e.vars.keys().cloned().collect();
                names.extend(e.secrets.iter().map(|s| s.get_ref().clone()));
                envs.push((e.dest.get_ref().clone(), names));
            }
            Action::Container(c) => {
                let Some(file) = &c.spec.env_file else {
                    continue;
                };
                match envs.iter().rev().find(|(dest, _)| dest == file.get_ref()) {
                    Some((_, names)) => c.env_names.clone_from(names),
                    None => problems.push(Diagnostic::at(
                        "playbook::container-env-file",
                        source,
                        file.span(),
                        "`env_file` is not written by an earlier `env` step",
                        "expected the `dest` of an `env` step above this one, written the same way",
                    )),
                }
            }
            _ => {}
        }
    }
}

/// `keep_images = N`: how many images of which repository a host keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepImages {
    /// the container step's image without its tag, e.g. `localhost/drover-agent`
    pub repository: String,
    /// images kept besides the ones a color names (at least 1)
    pub keep: u32,
}

/// `keep_images = N`: at least 1, in a playbook with a container step whose image
/// repository is fixed text (only the tag may be templated): that repository is
/// pruned, nothing else.
pub(super) fn keep_images(
    source: &SourceFile,
    raw: Option<&Spanned<i64>>,
    steps: &[Step],
    problems: &mut Diagnostics,
) -> Option<KeepImages> {
    let n = raw?;
    let Some(keep) = u32::try_from(*n.get_ref()).ok().filter(|k| *k >= 1) else {
        problems.push(Diagnostic::at(
            "playbook::keep-images",
            source,
            n.span(),
            format!("keep_images = {} keeps nothing", n.get_ref()),
            "expected a whole number of images, at least 1",
        ));
        return None;
    };
    let image = steps.iter().find_map(|s| match &s.action {
        Action::Container(c) => Some(c.spec.image.get_ref().as_str()),
        _ => None,
    });
    // `registry:port/path:tag`: the tag is after the last `:` that follows the last `/`.
    let repository = image.map(|i| {
        let slash = i.rfind('/').map_or(0, |p| p + 1);
        i[slash..].find(':').map_or(i, |colon| &i[..slash + colon])
    });
    match repository {
        Some(r) if !r.is_empty() && !r.contains("{{") && !r.contains("{%") && !r.contains('@') => {
            Some(KeepImages {
                repository: r.to_string(),
                keep,
            })
        }
        _ => {
            problems.push(Diagnostic::at(
                "playbook::keep-images",
                source,
                n.span(),
                "keep_images needs a container step whose image repository is fixed",
                "expected e.g. image = \"localhost/drover-agent:{{ version }}\" (only the tag templated)",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Playbook;
    use super::*;

    fn load(steps: &str) -> Result<Playbook, String> {
        Playbook::from_source(SourceFile::new(
            "playbooks/c.toml",
            format!("name = \"c\"\n{steps}"),
        ))
        .map_err(|e| e.render(false))
    }

    const ENV: &str = "[[steps]]\nname = \"env\"\nenv = { dest = \"/etc/drover/{{ tenant }}.env\", vars = { TIER = \"x\" }, secrets = [\"API_KEY\"] }\n";

    #[test]
    fn a_container_step_gets_hardened_defaults_and_the_env_steps_names() {
        let p = load(&format!(
            "{ENV}[[steps]]\nname = \"c\"\ncontainer = {{ name = \"drover-{{{{ tenant }}}}-{{{{ color }}}}.service\", image = \"localhost/a:1\", user = \"u\", env_file = \"/etc/drover/{{{{ tenant }}}}.env\" }}\n"
        ))
        .unwrap();
        let Action::Container(c) = &p.steps[1].action else {
            panic!("not a container step")
        };
        assert_eq!(c.env_names, ["TIER", "API_KEY"]);
        assert_eq!(c.stop_signal, "SIGTERM");
        assert_eq!(c.stop_timeout, Duration::from_secs(10));
        assert_eq!(c.restart, "on-failure");
        assert_eq!(c.log_driver, "passthrough");
        assert!(c.cap_add.is_empty());
        assert_eq!(p.steps[1].action.kind(), "container");
    }

    #[test]
    fn bad_container_fields_are_reported_at_their_line_and_column() {
        let err = load(
            "[[steps]]\nname = \"c\"\ncontainer = { name = \"u.service\", image = \"i\", user = \"u\", cap_add = [\"net_bind_service\", \"FLY\", \"SYS_ADMIN\"], stop_signal = \"SIGSTOP\", stop_timeout = \"1500ms\", restart = \"sometimes\", log_driver = \"k8s-file\", env_file = \"/etc/x.env\" }\n",
        )
        .unwrap_err();
        for (at, what) in [
            ("playbooks/c.toml:4:91", "unknown capability `FLY`"),
            ("playbooks/c.toml:4:98", "CAP_SYS_ADMIN"),
            (
                "playbooks/c.toml:4:126",
                "unknown container stop_signal `SIGSTOP`",
            ),
            ("playbooks/c.toml:4:152", "whole seconds"),
            (
                "playbooks/c.toml:4:172",
                "unknown container restart `sometimes`",
            ),
            (
                "playbooks/c.toml:4:198",
                "unknown container log_driver `k8s-file`",
            ),
            (
                "playbooks/c.toml:4:221",
                "not written by an earlier `env` step",
            ),
        ] {
            assert!(
                err.contains(at) && err.contains(what),
                "{at} {what}:\n{err}"
            );
        }
        assert!(
            !err.contains("unknown capability `net_bind_service`"),
            "a known capability in any case: {err}"
        );
    }

    #[test]
    fn keep_images_prunes_the_container_steps_repository_and_needs_one() {
        let step = "[[steps]]\nname = \"c\"\ncontainer = { name = \"u.service\", image = \"localhost:5000/a/agent:{{ version }}\", user = \"u\" }\n";
        let p = load(&format!("keep_images = 2\n{step}")).unwrap();
        assert_eq!(
            p.keep_images,
            Some(KeepImages {
                repository: "localhost:5000/a/agent".into(),
                keep: 2
            })
        );
        assert_eq!(load(step).unwrap().keep_images, None);
        let err = load(&format!("keep_images = 0\n{step}")).unwrap_err();
        assert!(
            err.contains("playbooks/c.toml:2:15") && err.contains("at least 1"),
            "{err}"
        );
        let err = load("keep_images = 3\n[[steps]]\nname = \"r\"\nrun = { script = \"true\" }\n")
            .unwrap_err();
        assert!(
            err.contains("playbooks/c.toml:2:15") && err.contains("container step"),
            "{err}"
        );
    }

    #[test]
    fn an_env_file_written_after_the_container_step_does_not_count() {
        let err = load(&format!(
            "[[steps]]\nname = \"c\"\ncontainer = {{ name = \"u.service\", image = \"i\", user = \"u\", env_file = \"/etc/drover/{{{{ tenant }}}}.env\" }}\n{ENV}"
        ))
        .unwrap_err();
        assert!(err.contains("playbooks/c.toml:4:"), "{err}");
        assert!(err.contains("earlier `env` step"), "{err}");
    }
}

//! Validation of step specs, so that every script sent to a host is well formed.

use std::collections::BTreeSet;

use super::upload::MANIFEST;
use super::{HealthProbe, Ownership, StepError, StepSpec, UploadFile, shell};

type Checked = Result<(), StepError>;

fn err(field: &'static str, problem: String) -> Checked {
    Err(StepError { field, problem })
}

pub(super) fn spec(spec: &StepSpec) -> Checked {
    match spec {
        StepSpec::User { name, home } => {
            user_name("name", name)?;
            abs_path("home", home)
        }
        StepSpec::Dir { path, ownership } => {
            abs_path("path", path)?;
            ownership_ok(ownership)
        }
        StepSpec::Upload {
            dest,
            files,
            ownership,
        } => {
            abs_path("dest", dest)?;
            upload_files(files)?;
            ownership_ok(ownership)
        }
        StepSpec::File {
            dest,
            ownership,
            on_change,
            ..
        } => {
            abs_path("dest", dest)?;
            ownership_ok(ownership)?;
            on_change
                .as_deref()
                .map_or(Ok(()), |c| no_nul("on_change", c))
        }
        StepSpec::Service { name, .. } => unit_name("name", name),
        StepSpec::Health { probe, retries, .. } => {
            if *retries == 0 {
                return err("retries", "must be at least 1".into());
            }
            match probe {
                HealthProbe::Http { url, .. } => http_url("url", url),
                HealthProbe::Tcp { host, port } => {
                    if *port == 0 {
                        return err("port", "must not be 0".into());
                    }
                    host_name("host", host)
                }
                HealthProbe::Command {
                    command,
                    user,
                    record,
                    container,
                } => {
                    if command.trim().is_empty() {
                        return err("command", "is empty".into());
                    }
                    no_nul("command", command)?;
                    match container {
                        Some(c) => container_name("container", c)?,
                        None => user_name("user", user)?,
                    }
                    record.as_deref().map_or(Ok(()), |r| abs_path("record", r))
                }
            }
        }
        StepSpec::Image { source, name, .. } => super::image::check_spec(source, name),
        StepSpec::Container { name, unit, user } => {
            unit_name("name", name)?;
            no_nul("unit", unit)?;
            user_name("user", user)
        }
        StepSpec::Run {
            script,
            creates,
            unless,
        } => {
            if script.trim().is_empty() {
                return err("script", "is empty".into());
            }
            no_nul("script", script)?;
            if let Some(c) = creates {
                abs_path("creates", c)?;
            }
            unless.as_deref().map_or(Ok(()), |u| no_nul("unless", u))
        }
    }
}

fn no_nul(field: &'static str, v: &str) -> Checked {
    if v.contains('\0') {
        return err(field, "contains a NUL byte".into());
    }
    Ok(())
}

/// `/a/b`: absolute, not `/` itself, no empty / `.` / `..` components, no trailing `/`.
fn abs_path(field: &'static str, p: &str) -> Checked {
    no_nul(field, p)?;
    let Some(rest) = p.strip_prefix('/') else {
        return err(field, format!("{p:?} is not an absolute path"));
    };
    if rest.is_empty() {
        return err(field, "must not be `/` itself".into());
    }
    clean_components(field, p, rest)
}

fn clean_components(field: &'static str, whole: &str, rel: &str) -> Checked {
    for c in rel.split('/') {
        match c {
            "" => {
                return err(
                    field,
                    format!("{whole:?} has an empty component (`//` or a trailing `/`)"),
                );
            }
            "." | ".." => return err(field, format!("{whole:?} has a `{c}` component")),
            _ => {}
        }
    }
    Ok(())
}

fn upload_files(files: &[UploadFile]) -> Checked {
    let mut seen = BTreeSet::new();
    for f in files {
        let p = &f.path;
        no_nul("files", p)?;
        if p.is_empty() {
            return err("files", "a file has an empty path".into());
        }
        if p.starts_with('/') {
            return err(
                "files",
                format!("{p:?} is absolute; upload paths are relative to dest"),
            );
        }
        clean_components("files", p, p)?;
        if p == MANIFEST {
            return err(
                "files",
                format!("{p:?} is reserved for drover's checksum manifest"),
            );
        }
        if !seen.insert(p.as_str()) {
            return err("files", format!("{p:?} appears twice"));
        }
    }
    // A path that is a file cannot also be a directory of another file.
    for f in files {
        let mut dir = f.path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if seen.contains(parent) {
                return err(
                    "files",
                    format!(
                        "{parent:?} is a file and also the directory of {:?}",
                        f.path
                    ),
                );
            }
            dir = parent;
        }
    }
    Ok(())
}

fn ownership_ok(own: &Ownership) -> Checked {
    for (field, v) in [
        ("ownership.owner", &own.owner),
        ("ownership.group", &own.group),
    ] {
        if let Some(v) = v {
            no_nul(field, v)?;
            if v.is_empty() || v.contains(':') {
                return err(field, format!("{v:?} is not a user or group name"));
            }
        }
    }
    if let Some(m) = &own.mode
        && shell::parse_mode(m).is_none()
    {
        return err(
            "ownership.mode",
            format!("{m:?} is not an octal mode such as 0755"),
        );
    }
    Ok(())
}

/// What shadow's `useradd` accepts on Debian: `[A-Za-z_][A-Za-z0-9_.-]*` with an
/// optional trailing `$`, at most 32 bytes.
fn user_name(field: &'static str, n: &str) -> Checked {
    let body = n.strip_suffix('$').unwrap_or(n);
    let ok = !body.is_empty()
        && n.len() <= 32
        && body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        err(field, format!("{n:?} is not a valid user name"))
    }
}

/// systemd unit names: `[A-Za-z0-9:_.\\@-]`, not starting with `-`.
fn unit_name(field: &'static str, n: &str) -> Checked {
    let ok = !n.is_empty()
        && n.len() <= 255
        && !n.starts_with('-')
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '\\' | '@' | '-'));
    if ok {
        Ok(())
    } else {
        err(field, format!("{n:?} is not a valid systemd unit name"))
    }
}

/// podman container names: `[A-Za-z0-9][A-Za-z0-9_.-]*`.
fn container_name(field: &'static str, n: &str) -> Checked {
    let ok = n.len() <= 253
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        err(field, format!("{n:?} is not a valid container name"))
    }
}

fn http_url(field: &'static str, u: &str) -> Checked {
    if !(u.starts_with("http://") || u.starts_with("https://")) {
        return err(field, format!("{u:?} is not an http:// or https:// URL"));
    }
    if u.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return err(
            field,
            format!("{u:?} contains whitespace or control characters"),
        );
    }
    Ok(())
}

fn host_name(field: &'static str, h: &str) -> Checked {
    let ok = !h.is_empty()
        && !h.starts_with('-')
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        err(field, format!("{h:?} is not a host name or address"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::steps::{ServiceState, script};

    fn dir(path: &str) -> StepSpec {
        StepSpec::Dir {
            path: path.into(),
            ownership: Ownership::default(),
        }
    }

    fn upload(paths: &[&str]) -> StepSpec {
        StepSpec::Upload {
            dest: "/opt/x".into(),
            files: paths
                .iter()
                .map(|p| UploadFile {
                    path: (*p).into(),
                    bytes: vec![],
                    executable: false,
                })
                .collect::<Vec<_>>()
                .into(),
            ownership: Ownership::default(),
        }
    }

    #[test]
    fn paths_must_be_absolute_and_clean() {
        for bad in [
            "", "rel/x", "/", "/a//b", "/a/", "/a/../b", "/a/./b", "/a\0b",
        ] {
            assert!(
                validate_err(&dir(bad)).field == "path",
                "{bad:?} should be rejected"
            );
        }
        for good in [
            "/a",
            "/opt/drover/acme",
            "/a b/c;d/$(x)/'q'/\"/`b`/-x/new\nline",
        ] {
            assert_eq!(spec(&dir(good)), Ok(()), "{good:?} should pass");
        }
    }

    #[test]
    fn upload_paths_must_stay_inside_the_tree() {
        for bad in [
            vec!["../x"],
            vec!["/etc/passwd"],
            vec!["a//b"],
            vec!["a/"],
            vec![""],
            vec!["a/./b"],
            vec!["a/../../b"],
            vec![".drover-manifest"],
            vec!["a", "a"],
            vec!["a", "a/b"],
        ] {
            assert_eq!(
                validate_err(&upload(&bad)).field,
                "files",
                "{bad:?} should be rejected"
            );
        }
        assert_eq!(
            spec(&upload(&["a/b", "a/c", "bin/run", "sub/.drover-manifest"])),
            Ok(())
        );
    }

    #[test]
    fn modes_owners_and_names_are_checked() {
        let own = |mode: &str| StepSpec::Dir {
            path: "/a".into(),
            ownership: Ownership {
                mode: Some(mode.into()),
                ..Ownership::default()
            },
        };
        for bad in ["75", "0x755", "rwx", "08", "12345", "-755"] {
            assert_eq!(validate_err(&own(bad)).field, "ownership.mode", "{bad:?}");
        }
        for good in ["755", "0640", "2775", "000"] {
            assert_eq!(spec(&own(good)), Ok(()));
        }
        let owner = StepSpec::Dir {
            path: "/a".into(),
            ownership: Ownership {
                owner: Some("a:b".into()),
                ..Ownership::default()
            },
        };
        assert_eq!(validate_err(&owner).field, "ownership.owner");
        let user = |n: &str| StepSpec::User {
            name: n.into(),
            home: "/var/lib/x".into(),
        };
        for bad in ["", "-x", "a b", "a;b", "9abc", "a$(x)", "a\nb"] {
            assert_eq!(validate_err(&user(bad)).field, "name", "{bad:?}");
        }
        assert_eq!(spec(&user("drover-acme")), Ok(()));
        let svc = |n: &str| StepSpec::Service {
            name: n.into(),
            state: ServiceState::Started,
            enabled: None,
        };
        for bad in ["", "--now", "a b", "a;reboot", "a/b"] {
            assert_eq!(validate_err(&svc(bad)).field, "name", "{bad:?}");
        }
        assert_eq!(spec(&svc("drover-acme-blue.service")), Ok(()));
    }

    #[test]
    fn an_invalid_step_yields_a_script_that_fails_with_the_reason() {
        let out =
            crate::plan::steps::testkit::run(&script(&dir("relative/$(touch x)"), false, false));
        assert_eq!(out.code, 1);
        assert!(
            out.stderr
                .contains("invalid step: path: \"relative/$(touch x)\" is not an absolute path"),
            "{out:?}"
        );
        assert!(!out.changed());
    }

    fn validate_err(s: &StepSpec) -> StepError {
        spec(s).expect_err("should be rejected")
    }
}

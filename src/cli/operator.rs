//! Who is deploying: the `user@machine` name written into deploy locks and the host
//! audit log. `DROVER_OPERATOR` names it outright (a CI job, a bot); otherwise the user
//! comes from `USER`/`LOGNAME`, else from the OS user database by uid — so a cron job or
//! a container without `USER` is still someone, not `unknown`.

use std::ffi::CStr;

/// The operator for locks and audit lines.
pub(crate) fn operator() -> String {
    let named = std::env::var("DROVER_OPERATOR").ok();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    resolve(named.as_deref(), user.as_deref(), user_by_uid, machine)
}

/// The name from its sources, first that is non-empty after cleaning: the override
/// whole, else `user@machine` with the user from the environment or the database.
fn resolve(
    named: Option<&str>,
    env_user: Option<&str>,
    by_uid: impl FnOnce() -> Option<String>,
    machine: impl FnOnce() -> String,
) -> String {
    if let Some(name) = named.map(|n| clean(n, true)).filter(|n| !n.is_empty()) {
        return name;
    }
    let user = env_user
        .map(|u| clean(u, false))
        .filter(|u| !u.is_empty())
        .or_else(|| by_uid().map(|u| clean(&u, false)).filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", clean(&machine(), false))
}

/// Only characters safe in a lock file and an audit line (the override may carry `@`).
fn clean(text: &str, at: bool) -> String {
    text.trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || (at && *c == '@'))
        .collect()
}

fn machine() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The login name of this process's real uid from the user database (NSS: files, LDAP…).
#[allow(unsafe_code)]
fn user_by_uid() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getuid has no preconditions. getpwuid_r writes only into `pwd` and `buf`
    // (whose length it is given) and sets `found` to `&pwd` or null; `pw_name` points
    // into `buf`, which outlives the CStr read below.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(pwd.pw_name).to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> String {
        "vm".into()
    }

    #[test]
    fn the_user_from_the_environment_is_used_when_set() {
        assert_eq!(
            resolve(None, Some("ana"), || Some("db".into()), vm),
            "ana@vm"
        );
    }

    #[test]
    fn without_user_the_os_user_database_names_the_operator() {
        assert_eq!(
            resolve(None, None, || Some("deployer".into()), vm),
            "deployer@vm"
        );
        assert_eq!(
            resolve(None, Some(""), || Some("deployer".into()), vm),
            "deployer@vm"
        );
    }

    #[test]
    fn drover_operator_overrides_everything() {
        let name = resolve(Some("ci-bot@pipeline 42"), Some("ana"), || None, vm);
        assert_eq!(name, "ci-bot@pipeline42");
    }

    #[test]
    fn unknown_is_left_only_when_no_source_names_anyone() {
        assert_eq!(resolve(Some(" "), None, || None, vm), "unknown@vm");
    }

    #[test]
    fn the_database_knows_the_user_this_test_runs_as() {
        // The real lookup: whoever runs the tests has a uid with a passwd entry.
        let name = user_by_uid().expect("the test user is in the user database");
        assert!(!name.is_empty());
        let by_id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        assert_eq!(name, String::from_utf8_lossy(&by_id.stdout).trim());
    }
}

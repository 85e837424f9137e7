//! Becoming root on a host: drover's own scripts (locks, switches, state) and steps
//! with `become` run through `sudo -n` unless the host logs in as root
//! (`become = "none"`). A refused `sudo` is recognised and explained once, here.

use std::time::Duration;

use crate::config::{Become, Host};
use crate::shell::quote;
use crate::transport::{Connection, ExecOutput, RemoteCommand, TransportError};

/// How every command [`as_root`] makes starts (the become password's connector finds
/// them by it).
pub(crate) const SUDO_PREFIX: &str = "sudo -n -- sh -c ";

/// The line a host prints when sudo turned down the become password.
pub(crate) const BECOME_PASS_REJECTED: &str = "drover: sudo rejected the become password";

/// A script run as root: through `sudo -n` unless the host says `become = "none"`.
pub(crate) fn as_root(script: String, host: &Host) -> String {
    if host.r#become == Become::Sudo {
        format!("{SUDO_PREFIX}{}", quote(&script))
    } else {
        script
    }
}

/// Runs `script` as root on `connection`.
pub(crate) async fn exec_root<C: Connection>(
    connection: &C,
    host: &Host,
    script: String,
    timeout: Duration,
) -> Result<ExecOutput, TransportError> {
    connection
        .exec(&RemoteCommand::new(as_root(script, host), timeout))
        .await
}

/// What an operator reads when `sudo -n` says no.
pub(crate) fn become_refused(host: &Host, stderr: &str) -> String {
    if stderr.contains(BECOME_PASS_REJECTED) {
        return format!(
            "become failed: sudo rejected the become password (--ask-become-pass / DROVER_BECOME_PASS) for {} on {}",
            host.user.as_deref().unwrap_or("the login user"),
            host.name
        );
    }
    format!(
        "become failed: `sudo -n` was refused for {} on {} (drover needs password-less sudo, or become = \"none\")\n{stderr}",
        host.user.as_deref().unwrap_or("the login user"),
        host.name
    )
}

/// True when stderr says sudo refused to run without a password or a right.
pub(crate) fn sudo_refused(stderr: &str) -> bool {
    [
        "a password is required",
        "a terminal is required",
        "is not in the sudoers",
        "not allowed to execute",
        "sudo: command not found",
        "sudo: not found",
        BECOME_PASS_REJECTED,
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

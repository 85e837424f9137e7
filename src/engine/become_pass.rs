//! sudo with a password (`--ask-become-pass`, `DROVER_BECOME_PASS`): a connector that
//! wraps another and, on every command `as_root` made (`sudo -n -- sh -c …`), hands the
//! password to `sudo -S` over the channel's standard input. The password is never in
//! an argument list (the host's `printf` is the shell's builtin), never in the script
//! text, never printed.
//!
//! On the host, per command: the first stdin line is the password. When `sudo -n`
//! already works (NOPASSWD) it is dropped and the command runs as before. Otherwise the
//! password is checked alone first (`sudo -S -k true` with nothing else on its stdin),
//! so a wrong one fails at once with a clear line instead of sudo asking again and
//! eating the command's input; then the command runs under `sudo -S -k` with the
//! password as the first line of its stdin and the command's own input after it.

use std::sync::Arc;

use super::root::{BECOME_PASS_REJECTED, SUDO_PREFIX};
use crate::config::{Become, Host};
use crate::transport::{Connection, Connector, ExecOutput, RemoteCommand, TransportError};

/// A connector whose sudo commands get the become password (or, without one, the
/// inner connector unchanged).
pub struct BecomePassword<C> {
    inner: Arc<C>,
    password: Option<Arc<str>>,
}

impl<C> BecomePassword<C> {
    /// Wraps `inner`; `None` passes every command through untouched.
    #[must_use]
    pub fn new(inner: Arc<C>, password: Option<Arc<str>>) -> Self {
        Self { inner, password }
    }
}

/// A connection of a [`BecomePassword`] connector.
pub struct WithPassword<K> {
    inner: K,
    password: Option<Arc<str>>,
}

impl<C: Connector> Connector for BecomePassword<C> {
    type Connection = WithPassword<C::Connection>;

    async fn connect(&self, host: &Host) -> Result<Self::Connection, TransportError> {
        let inner = self.inner.connect(host).await?;
        // A host that logs in as root (`become = "none"`) never runs sudo.
        let password = self
            .password
            .clone()
            .filter(|_| host.r#become == Become::Sudo);
        Ok(WithPassword { inner, password })
    }
}

impl<K: Connection> Connection for WithPassword<K> {
    async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        let Some(password) = &self.password else {
            return self.inner.exec(command).await;
        };
        let Some(rewritten) = with_password(command, password) else {
            return self.inner.exec(command).await;
        };
        self.inner.exec(&rewritten).await
    }

    async fn forward_remote(
        &self,
        to: std::net::SocketAddr,
    ) -> Result<crate::transport::RemoteForward, TransportError> {
        self.inner.forward_remote(to).await
    }

    async fn cancel_forward(&self, forward: &crate::transport::RemoteForward) {
        self.inner.cancel_forward(forward).await;
    }

    async fn close(self) {
        self.inner.close().await;
    }
}

/// `command` made to take the password from its first stdin line, or `None` when it is
/// not a `sudo -n` command of drover's.
fn with_password(command: &RemoteCommand, password: &str) -> Option<RemoteCommand> {
    let quoted = command.script.strip_prefix(SUDO_PREFIX)?;
    let script = format!(
        "IFS= read -r drover_pw\n\
         if sudo -n true 2>/dev/null; then\n  drover_pw=\n  exec sudo -n -- sh -c {quoted}\n\
         fi\n\
         if ! printf '%s\\n' \"$drover_pw\" | sudo -S -k -p '' true >/dev/null 2>&1; then\n  \
           echo '{BECOME_PASS_REJECTED}' >&2\n  exit 1\n\
         fi\n\
         {{ printf '%s\\n' \"$drover_pw\"; exec cat; }} | sudo -S -k -p '' -- sh -c {quoted}\n"
    );
    let mut stdin = Vec::with_capacity(password.len() + 1);
    stdin.extend_from_slice(password.as_bytes());
    stdin.push(b'\n');
    if let Some(rest) = &command.stdin {
        stdin.extend_from_slice(rest);
    }
    Some(RemoteCommand {
        script,
        timeout: command.timeout,
        stdin: Some(stdin),
        stdin_file: command.stdin_file.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::*;
    use crate::engine::root::as_root;

    fn host() -> Host {
        let text = "[hosts.web-1]\naddress = \"127.0.0.1\"\n";
        let source = crate::config::SourceFile::new("t.toml", text.to_string());
        let mut hosts = crate::config::Inventory::from_sources(vec![source])
            .unwrap()
            .hosts;
        assert_eq!(hosts[0].r#become, Become::Sudo);
        hosts.remove(0)
    }

    #[test]
    fn only_drovers_sudo_commands_are_rewritten_and_the_password_is_not_in_the_script() {
        let root = RemoteCommand::new(as_root("id -u".into(), &host()), Duration::from_secs(5));
        let rewritten = with_password(&root, "s3cr3t pw").expect("a sudo command");
        assert!(!rewritten.script.contains("s3cr3t"));
        assert_eq!(rewritten.stdin.as_deref(), Some(&b"s3cr3t pw\n"[..]));
        let plain = RemoteCommand::new("uptime", Duration::from_secs(5));
        assert!(with_password(&plain, "pw").is_none());
    }

    #[test]
    fn the_script_hands_sudo_the_password_then_the_commands_own_input() {
        // A stand-in `sudo` on PATH that accepts only "right" and then runs the command:
        // the real thing is exercised on the fleet (tests/ops.rs).
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("sudo");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncase \"$1\" in -n) exit 1;; esac\nIFS= read -r pw\n[ \"$pw\" = right ] || { echo 'Sorry, try again.' >&2; exit 1; }\nwhile [ \"$1\" != -- ] && [ \"$1\" != true ]; do shift; done\n[ \"$1\" = true ] && exit 0\nshift; exec \"$@\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = |pw: &str| {
            let mut cmd =
                RemoteCommand::new(as_root("cat".into(), &host()), Duration::from_secs(5));
            cmd.stdin = Some(b"step input\n".to_vec());
            let cmd = with_password(&cmd, pw).unwrap();
            let path = format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap()
            );
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(&cmd.script)
                .env("PATH", path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(cmd.stdin.as_deref().unwrap())
                .unwrap();
            child.wait_with_output().unwrap()
        };
        let ok = run("right");
        assert!(ok.status.success(), "{ok:?}");
        assert_eq!(String::from_utf8_lossy(&ok.stdout), "step input\n");
        let wrong = run("wrong");
        assert!(!wrong.status.success());
        assert!(String::from_utf8_lossy(&wrong.stderr).contains(BECOME_PASS_REJECTED));
        assert!(wrong.stdout.is_empty());
    }
}

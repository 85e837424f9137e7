//! The only module that speaks SSH (russh): one connection per host, a channel per
//! command, strict host-key checking, key and agent authentication, jump hosts, and
//! timeouts on every phase.

pub mod auth;
pub mod endpoint;
pub mod error;
pub mod forward;
pub mod known_hosts;
pub mod session;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

pub use endpoint::{Endpoint, SshConfig};
pub use error::TransportError;
pub use forward::{RemoteForward, Traffic};
pub use known_hosts::{HostKeyPolicy, KnownHosts};
pub use session::{Session, TransportContext};
pub use stream::{CommandStream, LineSplitter, StreamEvent};

use crate::config::{Host, Inventory};

/// A command for a host's login shell.
#[derive(Debug, Clone)]
pub struct RemoteCommand {
    /// Shell text, run by `sh -c` on the host.
    pub script: String,
    /// How long it may run before it is ended.
    pub timeout: Duration,
    /// Bytes sent on its standard input, if any.
    pub stdin: Option<Vec<u8>>,
    /// A local file streamed on its standard input after `stdin` (image archives:
    /// hundreds of MB, never held in memory).
    pub stdin_file: Option<std::path::PathBuf>,
}

impl RemoteCommand {
    /// A command with a timeout and no input.
    #[must_use]
    pub fn new(script: impl Into<String>, timeout: Duration) -> Self {
        Self {
            script: script.into(),
            timeout,
            stdin: None,
            stdin_file: None,
        }
    }

    /// What is sent over the wire: the script quoted as one `sh -c` argument, under
    /// `timeout(1)` when the host has it, so an overrunning command really ends there
    /// (closing an SSH channel does not kill a process that has no terminal).
    #[must_use]
    pub fn wrapped(&self) -> String {
        let quoted = crate::shell::quote(&self.script);
        let secs = self.timeout.as_secs().max(1);
        format!(
            "if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 {secs} sh -c {quoted}; else exec sh -c {quoted}; fi"
        )
    }
}

/// Output captured from one stream, up to a cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    /// The first bytes, up to the cap.
    pub bytes: Vec<u8>,
    /// How many bytes past the cap were dropped.
    pub dropped: u64,
}

impl Captured {
    /// Appends, keeping at most `cap` bytes in total.
    pub fn push(&mut self, data: &[u8], cap: usize) {
        let room = cap.saturating_sub(self.bytes.len());
        let take = room.min(data.len());
        self.bytes.extend_from_slice(&data[..take]);
        self.dropped += (data.len() - take) as u64;
    }

    /// The text, lossily decoded.
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// What one command did.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit status, when the command exited.
    pub exit_status: Option<u32>,
    /// Signal name, when it was killed by one.
    pub signal: Option<String>,
    /// Standard output.
    pub stdout: Captured,
    /// Standard error.
    pub stderr: Captured,
    /// True when it ran past its timeout and was ended.
    pub timed_out: bool,
    /// Wall time from channel open to close.
    pub duration: Duration,
}

/// Opens connections to inventory hosts: the engine's seam to the outside world.
pub trait Connector: Send + Sync + 'static {
    /// The connection type.
    type Connection: Connection;
    /// Connects and authenticates.
    fn connect(
        &self,
        host: &Host,
    ) -> impl Future<Output = Result<Self::Connection, TransportError>> + Send;
}

/// An open connection to one host.
pub trait Connection: Send + Sync + 'static {
    /// Runs one command.
    fn exec(
        &self,
        command: &RemoteCommand,
    ) -> impl Future<Output = Result<ExecOutput, TransportError>> + Send;
    /// Runs `command` (sent as is: wrap it yourself, e.g. with `sudo`) and streams its
    /// output line by line as it arrives; see [`Session::stream`]. A connection that
    /// cannot stream runs it to its end and then delivers every line.
    fn stream(
        &self,
        command: &str,
        keep_stdin_open: bool,
    ) -> impl Future<Output = Result<CommandStream, TransportError>> + Send {
        let _ = keep_stdin_open;
        let command = RemoteCommand::new(command, Duration::from_secs(24 * 3600));
        async move {
            let out = self.exec(&command).await?;
            let mut events: Vec<StreamEvent> = Vec::new();
            let (mut stdout, mut stderr) = (LineSplitter::default(), LineSplitter::default());
            let mut lines = stdout.push(&out.stdout.bytes);
            lines.extend(stdout.finish());
            events.extend(lines.into_iter().map(StreamEvent::Stdout));
            let mut lines = stderr.push(&out.stderr.bytes);
            lines.extend(stderr.finish());
            events.extend(lines.into_iter().map(StreamEvent::Stderr));
            events.push(StreamEvent::Exited {
                status: out.exit_status,
                signal: out.signal,
            });
            Ok(CommandStream::of(events))
        }
    }
    /// Opens a reverse port forward: connections to `127.0.0.1:PORT` on the host
    /// (the port picked by the host's sshd) reach `to` on the control node, over this
    /// connection. A connection without forwarding says so.
    fn forward_remote(
        &self,
        to: std::net::SocketAddr,
    ) -> impl Future<Output = Result<RemoteForward, TransportError>> + Send {
        let _ = to;
        async {
            Err(TransportError::Forward {
                reason: "this connection cannot forward ports".into(),
            })
        }
    }
    /// Closes a forward opened by [`Connection::forward_remote`]; connections already
    /// carried finish on their own.
    fn cancel_forward(&self, forward: &RemoteForward) -> impl Future<Output = ()> + Send {
        let _ = forward;
        async {}
    }
    /// Closes the connection.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// The real connector: russh, with the inventory and `~/.ssh/config`.
#[derive(Debug)]
pub struct SshConnector {
    ctx: Arc<TransportContext>,
    inventory: Arc<Inventory>,
    ssh_config: SshConfig,
}

impl SshConnector {
    /// A connector over the given context.
    #[must_use]
    pub fn new(
        ctx: Arc<TransportContext>,
        inventory: Arc<Inventory>,
        ssh_config: SshConfig,
    ) -> Self {
        Self {
            ctx,
            inventory,
            ssh_config,
        }
    }
}

impl Connector for SshConnector {
    type Connection = Session;

    async fn connect(&self, host: &Host) -> Result<Session, TransportError> {
        let endpoint = endpoint::resolve(host, &self.inventory, &self.ssh_config);
        Session::connect(&endpoint, &self.ctx).await
    }
}

impl Connection for Session {
    async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        Session::exec(self, command).await
    }

    async fn stream(
        &self,
        command: &str,
        keep_stdin_open: bool,
    ) -> Result<CommandStream, TransportError> {
        Session::stream(self, command, keep_stdin_open).await
    }

    async fn forward_remote(
        &self,
        to: std::net::SocketAddr,
    ) -> Result<RemoteForward, TransportError> {
        Session::forward_remote(self, to).await
    }

    async fn cancel_forward(&self, forward: &RemoteForward) {
        Session::cancel_forward(self, forward).await;
    }

    async fn close(self) {
        Session::close(&self).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_as_one_word_under_a_remote_timeout() {
        let cmd = RemoteCommand::new("echo 'a b'; exit 3", Duration::from_secs(30));
        assert_eq!(
            cmd.wrapped(),
            "if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 30 sh -c 'echo '\\''a b'\\''; exit 3'; else exec sh -c 'echo '\\''a b'\\''; exit 3'; fi"
        );
    }

    #[test]
    fn captured_output_stops_at_the_cap_and_counts_the_rest() {
        let mut c = Captured::default();
        c.push(b"hello", 8);
        c.push(b"world", 8);
        assert_eq!(c.bytes, b"hellowor");
        assert_eq!(c.dropped, 2);
    }
}

//! One SSH connection to one host: connect (direct or through a jump host), verify the
//! host key, authenticate, and run commands as channels on it.

mod connect;
mod forward;
mod handler;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::{ChannelMsg, Disconnect};
use tokio::sync::{OnceCell, Semaphore};

use super::auth::KeyStore;
use super::error::TransportError;
use super::known_hosts::{HostKeyPolicy, KnownHosts};
use super::{Captured, ExecOutput, RemoteCommand};
pub(crate) use handler::ClientHandler;

/// Settings and shared state for every connection of a run.
#[derive(Debug)]
pub struct TransportContext {
    /// Recorded host keys.
    pub known_hosts: KnownHosts,
    /// Unknown-key policy.
    pub policy: HostKeyPolicy,
    /// Loaded private keys.
    pub keys: KeyStore,
    /// Bytes of stdout and of stderr kept per command; the rest is counted.
    pub output_cap: usize,
    /// Channels open at once on one connection: sshd's `MaxSessions` defaults to 10.
    pub max_sessions: usize,
    /// Handshakes in flight at once: a shared sshd or bastion resets connections past
    /// its `MaxStartups` (10:30:100 by default), so starts are paced.
    handshakes: Semaphore,
    /// Jump-host connections, shared by every target behind the same bastion.
    jumps: Mutex<HashMap<String, JumpCell>>,
}

/// A jump-host connection made once and shared (or the reason it failed).
type JumpCell = Arc<OnceCell<Result<Arc<Session>, String>>>;

impl TransportContext {
    /// A context with the given known_hosts, policy and handshake limit.
    #[must_use]
    pub fn new(known_hosts: KnownHosts, policy: HostKeyPolicy, max_handshakes: usize) -> Self {
        Self {
            known_hosts,
            policy,
            keys: KeyStore::default(),
            output_cap: 1 << 20,
            max_sessions: 8,
            handshakes: Semaphore::new(max_handshakes.max(1)),
            jumps: Mutex::new(HashMap::new()),
        }
    }
}

/// An authenticated connection to one host.
pub struct Session {
    pub(crate) handle: Handle<ClientHandler>,
    name: String,
    pub(crate) channels: Semaphore,
    output_cap: usize,
    lost: Arc<Mutex<Option<String>>>,
    /// Reverse forwards open on the host (shared with the handler, which carries them).
    pub(crate) routes: Arc<super::forward::Routes>,
    /// Keeps the jump host's connection alive as long as this one.
    _via: Option<Arc<Session>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The host's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one command on its own channel, capturing output up to the cap. The command
    /// is ended on the host when it exceeds its timeout (`timeout(1)` there, and the
    /// channel is closed here as a backstop).
    ///
    /// # Errors
    /// [`TransportError::ConnectionLost`] when the connection died before an exit status.
    pub async fn exec(&self, command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
        let _slot = self
            .channels
            .acquire()
            .await
            .map_err(|_| TransportError::ConnectionLost { reason: None })?;
        let started = Instant::now();
        // The remote `timeout` fires first; this local deadline only matters when the host
        // itself stops answering.
        let deadline = tokio::time::Instant::now() + command.timeout + Duration::from_secs(5);
        let input = match &command.stdin_file {
            Some(path) => Some(tokio::fs::File::open(path).await.map_err(|source| {
                TransportError::LocalInput {
                    path: path.clone(),
                    source,
                }
            })?),
            None => None,
        };
        let mut channel = self.open_channel().await?;
        channel.exec(true, command.wrapped()).await?;
        if let Some(stdin) = &command.stdin {
            channel.data(stdin.as_slice()).await?;
        }
        if let Some(file) = input {
            // A command that stops reading (it failed) ends and closes the channel: the
            // rest is not sent, and its exit status and stderr say why.
            let _ = tokio::time::timeout_at(deadline, channel.data(file)).await;
        }
        let _ = channel.eof().await;
        let mut out = ExecOutput {
            exit_status: None,
            signal: None,
            stdout: Captured::default(),
            stderr: Captured::default(),
            timed_out: false,
            duration: Duration::ZERO,
        };
        loop {
            match tokio::time::timeout_at(deadline, channel.wait()).await {
                Ok(Some(ChannelMsg::Data { data })) => out.stdout.push(&data, self.output_cap),
                Ok(Some(ChannelMsg::ExtendedData { data, ext: 1 })) => {
                    out.stderr.push(&data, self.output_cap)
                }
                Ok(Some(ChannelMsg::ExitStatus { exit_status })) => {
                    out.exit_status = Some(exit_status)
                }
                Ok(Some(ChannelMsg::ExitSignal { signal_name, .. })) => {
                    out.signal = Some(format!("{signal_name:?}"));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    out.timed_out = true;
                    let _ = channel.signal(russh::Sig::KILL).await;
                    let _ = channel.close().await;
                    break;
                }
            }
        }
        out.duration = started.elapsed();
        // `timeout` exits 124 (TERM) or 137 (KILL after the grace period).
        if matches!(out.exit_status, Some(124 | 137))
            && out.duration + Duration::from_millis(200) >= command.timeout
        {
            out.timed_out = true;
        }
        if out.exit_status.is_none() && out.signal.is_none() && !out.timed_out {
            return Err(TransportError::ConnectionLost {
                reason: self.lost_reason(),
            });
        }
        Ok(out)
    }

    /// Opens a session channel, waiting (bounded) while the server's `MaxSessions` is
    /// reached; a dead connection is reported with the reason it died.
    pub(crate) async fn open_channel(&self) -> Result<russh::Channel<client::Msg>, TransportError> {
        let mut attempt = 0u32;
        loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => return Ok(channel),
                // The server's MaxSessions is lower than ours: wait for a slot to free up.
                Err(russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ConnectFailed))
                    if attempt < 20 =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) if self.handle.is_closed() => {
                    return Err(TransportError::ConnectionLost {
                        reason: self.lost_reason().or(Some(e.to_string())),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Why the connection ended, as the handler heard it.
    fn lost_reason(&self) -> Option<String> {
        self.lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Says goodbye to the server; errors are irrelevant at this point.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

//! One SSH connection to one host: connect (direct or through a jump host), verify the
//! host key, authenticate, and run commands as channels on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, DisconnectReason, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, Disconnect, Preferred};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OnceCell, Semaphore};

use super::auth::{self, KeyStore};
use super::endpoint::Endpoint;
use super::error::{Phase, TransportError};
use super::known_hosts::{self, HostKeyPolicy, KnownHosts, Verdict};
use super::{Captured, ExecOutput, RemoteCommand};

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

#[derive(Debug)]
pub(crate) enum HandlerError {
    Ssh(russh::Error),
    Refused(TransportError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        Self::Ssh(e)
    }
}

impl From<HandlerError> for TransportError {
    fn from(e: HandlerError) -> Self {
        match e {
            HandlerError::Ssh(e) => TransportError::Ssh(e),
            HandlerError::Refused(e) => e,
        }
    }
}

/// The russh handler of drover's connections (host-key checks, disconnect reasons).
pub(crate) struct ClientHandler {
    ctx: Arc<TransportContext>,
    address: String,
    port: u16,
    lost: Arc<Mutex<Option<String>>>,
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, HandlerError> {
        let key = offered.public_key();
        let host = known_hosts::lookup_name(&self.address, self.port);
        let fingerprint = known_hosts::fingerprint(&key);
        let algorithm = key.algorithm().to_string();
        match self.ctx.known_hosts.verify(&self.address, self.port, &key) {
            Verdict::Known => Ok(true),
            Verdict::Changed { file, line } => {
                Err(HandlerError::Refused(TransportError::HostKeyChanged {
                    host,
                    algorithm,
                    fingerprint,
                    file,
                    line,
                }))
            }
            Verdict::Revoked { file } => {
                Err(HandlerError::Refused(TransportError::HostKeyRevoked {
                    host,
                    fingerprint,
                    file,
                }))
            }
            Verdict::Unknown => match self.ctx.policy {
                HostKeyPolicy::Strict => {
                    Err(HandlerError::Refused(TransportError::HostKeyUnknown {
                        host,
                        algorithm,
                        fingerprint,
                        files: self.ctx.known_hosts.files().to_vec(),
                    }))
                }
                HostKeyPolicy::AcceptNew => {
                    let ctx = Arc::clone(&self.ctx);
                    let (address, port) = (self.address.clone(), self.port);
                    let learned = tokio::task::spawn_blocking(move || {
                        ctx.known_hosts.learn(&address, port, &key)
                    })
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()));
                    match learned.and_then(|r| r) {
                        Ok(file) => {
                            tracing::warn!(%host, %fingerprint, file = %file.display(), "recorded new host key");
                            Ok(true)
                        }
                        Err(source) => Err(HandlerError::Refused(TransportError::LearnHostKey {
                            host,
                            file: self.ctx.known_hosts.learn_file().to_path_buf(),
                            source,
                        })),
                    }
                }
            },
        }
    }

    async fn disconnected(
        &mut self,
        reason: DisconnectReason<HandlerError>,
    ) -> Result<(), HandlerError> {
        let text = match &reason {
            DisconnectReason::ReceivedDisconnect(info) => format!("server disconnected: {info:?}"),
            DisconnectReason::Error(HandlerError::Ssh(e)) => e.to_string(),
            DisconnectReason::Error(HandlerError::Refused(e)) => e.to_string(),
        };
        *self
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text);
        match reason {
            DisconnectReason::ReceivedDisconnect(_) => Ok(()),
            DisconnectReason::Error(e) => Err(e),
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

fn client_config(ctx: &TransportContext, endpoint: &Endpoint) -> Arc<client::Config> {
    let mut preferred = Preferred {
        // AES-GCM first: hardware-accelerated almost everywhere, the cheapest for both ends.
        cipher: std::borrow::Cow::Borrowed(&[
            russh::cipher::AES_128_GCM,
            russh::cipher::AES_256_GCM,
            russh::cipher::CHACHA20_POLY1305,
            russh::cipher::AES_256_CTR,
            russh::cipher::AES_128_CTR,
        ]),
        compression: std::borrow::Cow::Borrowed(&[russh::compression::NONE]),
        ..Preferred::default()
    };
    // Ask for a key type we can verify, as OpenSSH orders HostKeyAlgorithms: otherwise a
    // host recorded with only its RSA key would look unknown when it offers ed25519.
    let known = ctx
        .known_hosts
        .known_algorithms(&endpoint.address, endpoint.port);
    if !known.is_empty() {
        let mut order: Vec<_> = preferred
            .key
            .iter()
            .filter(|a| known.contains(a))
            .cloned()
            .collect();
        order.extend(preferred.key.iter().filter(|a| !known.contains(a)).cloned());
        preferred.key = std::borrow::Cow::Owned(order);
    }
    Arc::new(client::Config {
        preferred,
        // Keepalives detect a dead peer (host killed, cable cut) within 3 × 5 s; we do not
        // set an inactivity timeout, which would kill long silent commands.
        keepalive_interval: Some(Duration::from_secs(5)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..client::Config::default()
    })
}

impl Session {
    /// Connects, verifies the host key and authenticates, within the endpoint's
    /// connect timeout. Resets from an overloaded sshd are retried with backoff.
    ///
    /// # Errors
    /// A [`TransportError`] naming the phase that failed.
    pub async fn connect(
        endpoint: &Endpoint,
        ctx: &Arc<TransportContext>,
    ) -> Result<Session, TransportError> {
        let deadline = Instant::now() + endpoint.connect_timeout;
        let mut attempt = 0u32;
        loop {
            let phase = AtomicU8::new(0);
            let permit =
                ctx.handshakes
                    .acquire()
                    .await
                    .map_err(|_| TransportError::ConnectionLost {
                        reason: Some("shutting down".into()),
                    })?;
            let result =
                tokio::time::timeout_at(deadline.into(), connect_once(endpoint, ctx, &phase)).await;
            drop(permit);
            let error = match result {
                Ok(Ok(session)) => return Ok(session),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(TransportError::ConnectTimeout {
                        address: endpoint.address.clone(),
                        port: endpoint.port,
                        phase: match phase.load(Ordering::Relaxed) {
                            0 => Phase::Tcp,
                            1 => Phase::Handshake,
                            _ => Phase::Auth,
                        },
                        after: endpoint.connect_timeout,
                    });
                }
            };
            attempt += 1;
            let backoff =
                Duration::from_millis(100 * (1 << attempt.min(5)) + u64::from(jitter_ms()));
            if !error.is_transient() || attempt >= 4 || Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tracing::debug!(host = %endpoint.name, %error, attempt, "retrying connect");
            tokio::time::sleep(backoff).await;
        }
    }

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
        let mut channel = self.open_channel().await?;
        channel.exec(true, command.wrapped()).await?;
        if let Some(stdin) = &command.stdin {
            channel.data(stdin.as_slice()).await?;
        }
        channel.eof().await?;
        let mut out = ExecOutput {
            exit_status: None,
            signal: None,
            stdout: Captured::default(),
            stderr: Captured::default(),
            timed_out: false,
            duration: Duration::ZERO,
        };
        // The remote `timeout` fires first; this local deadline only matters when the host
        // itself stops answering.
        let deadline = tokio::time::Instant::now() + command.timeout + Duration::from_secs(5);
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
            let reason = self
                .lost
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            return Err(TransportError::ConnectionLost { reason });
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
                    let reason = self
                        .lost
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    return Err(TransportError::ConnectionLost {
                        reason: reason.or(Some(e.to_string())),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Says goodbye to the server; errors are irrelevant at this point.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}

fn jitter_ms() -> u32 {
    // Spread retries of many hosts that failed together; no need for a real RNG here.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 200)
}

async fn connect_once(
    endpoint: &Endpoint,
    ctx: &Arc<TransportContext>,
    phase: &AtomicU8,
) -> Result<Session, TransportError> {
    if let Some(jump) = &endpoint.jump {
        let via = jump_session(jump, ctx)
            .await
            .map_err(|source| TransportError::Jump {
                via: jump.name.clone(),
                source: Box::new(source),
            })?;
        let channel = via
            .handle
            .channel_open_direct_tcpip(
                endpoint.address.clone(),
                u32::from(endpoint.port),
                "127.0.0.1",
                0,
            )
            .await
            .map_err(|e| TransportError::Jump {
                via: jump.name.clone(),
                source: Box::new(TransportError::Connect {
                    address: endpoint.address.clone(),
                    port: endpoint.port,
                    source: std::io::Error::other(format!(
                        "the jump host could not open a tunnel: {e}"
                    )),
                }),
            })?;
        phase.store(1, Ordering::Relaxed);
        handshake(endpoint, ctx, channel.into_stream(), phase, Some(via)).await
    } else {
        let stream = tokio::net::TcpStream::connect((endpoint.address.as_str(), endpoint.port))
            .await
            .map_err(|source| TransportError::Connect {
                address: endpoint.address.clone(),
                port: endpoint.port,
                source,
            })?;
        phase.store(1, Ordering::Relaxed);
        handshake(endpoint, ctx, stream, phase, None).await
    }
}

async fn handshake<S>(
    endpoint: &Endpoint,
    ctx: &Arc<TransportContext>,
    stream: S,
    phase: &AtomicU8,
    via: Option<Arc<Session>>,
) -> Result<Session, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let lost = Arc::new(Mutex::new(None));
    let handler = ClientHandler {
        ctx: Arc::clone(ctx),
        address: endpoint.address.clone(),
        port: endpoint.port,
        lost: Arc::clone(&lost),
    };
    let mut handle = client::connect_stream(client_config(ctx, endpoint), stream, handler).await?;
    phase.store(2, Ordering::Relaxed);
    auth::authenticate(&mut handle, endpoint, &ctx.keys).await?;
    Ok(Session {
        handle,
        name: endpoint.name.clone(),
        channels: Semaphore::new(ctx.max_sessions.max(1)),
        output_cap: ctx.output_cap,
        lost,
        _via: via,
    })
}

/// The shared connection to a jump host, made once per run whatever the number of
/// targets behind it.
async fn jump_session(
    jump: &Endpoint,
    ctx: &Arc<TransportContext>,
) -> Result<Arc<Session>, TransportError> {
    let key = format!("{}@{}:{}", jump.user, jump.address, jump.port);
    let cell = {
        let mut jumps = ctx
            .jumps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(jumps.entry(key).or_default())
    };
    let result = cell
        .get_or_init(|| async {
            Box::pin(Session::connect(jump, ctx))
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await;
    result
        .clone()
        .map_err(|reason| TransportError::ConnectionLost {
            reason: Some(reason),
        })
}

//! Making a connection: TCP (or a tunnel through the shared jump-host connection),
//! the SSH handshake and authentication, retried with backoff while an overloaded
//! sshd resets it, within the endpoint's connect timeout.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::Preferred;
use russh::client;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use super::{ClientHandler, Session, TransportContext};
use crate::transport::auth;
use crate::transport::endpoint::Endpoint;
use crate::transport::error::{Phase, TransportError};

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
}

/// The algorithms asked for (AES-GCM first; a host-key type known_hosts has for the
/// host first) and the keepalives.
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

fn jitter_ms() -> u32 {
    // Spread retries of many hosts that failed together; no need for a real RNG here.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() % 200)
}

/// One attempt: the TCP connection or the jump host's tunnel, then the handshake;
/// `phase` says how far it got, for a timeout's message.
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

/// The SSH handshake (host key checked by [`ClientHandler`]) and authentication over
/// `stream`.
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
    let routes = Arc::new(crate::transport::forward::Routes::default());
    let handler = ClientHandler::new(ctx, endpoint, &lost, &routes);
    let mut handle = client::connect_stream(client_config(ctx, endpoint), stream, handler).await?;
    phase.store(2, Ordering::Relaxed);
    auth::authenticate(&mut handle, endpoint, &ctx.keys).await?;
    Ok(Session {
        handle,
        name: endpoint.name.clone(),
        channels: Semaphore::new(ctx.max_sessions.max(1)),
        output_cap: ctx.output_cap,
        lost,
        routes,
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

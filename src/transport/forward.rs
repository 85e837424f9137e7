//! Reverse port forwards over drover's own SSH connection (`ssh -R 0:…` without
//! OpenSSH): the host's sshd listens on `127.0.0.1:PORT` and opens a `forwarded-tcpip`
//! channel back to us for each connection; we connect it to a local address and copy
//! both ways, counting the bytes. The image step uses it so a host's `podman pull`
//! reaches the registry on the control node without the host reaching anything else.
//!
//! | side | what |
//! |---|---|
//! | [`crate::transport::Session::forward_remote`] | `tcpip-forward` global request for `127.0.0.1:0`; the server answers the port it bound; a route port → local address is recorded |
//! | the client handler | `forwarded-tcpip` channel for a port with a route: accepted, joined to a new TCP connection to the local address ([`carry`]); other ports: refused |
//! | [`crate::transport::Session::cancel_forward`] | `cancel-tcpip-forward`; the route goes |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes carried by one forward, both ways, counted as they pass.
#[derive(Debug, Default)]
pub struct Traffic {
    to_host: AtomicU64,
    from_host: AtomicU64,
}

impl Traffic {
    /// Bytes sent to the host (read from the local side).
    #[must_use]
    pub fn to_host(&self) -> u64 {
        self.to_host.load(Ordering::Relaxed)
    }

    /// Bytes received from the host (written to the local side).
    #[must_use]
    pub fn from_host(&self) -> u64 {
        self.from_host.load(Ordering::Relaxed)
    }
}

/// A reverse forward open on a host: `127.0.0.1:port` there reaches a local address.
#[derive(Debug, Clone)]
pub struct RemoteForward {
    port: u16,
    traffic: Arc<Traffic>,
}

impl RemoteForward {
    /// A forward on `port` counting into `traffic` (for connections of every kind).
    #[must_use]
    pub fn new(port: u16, traffic: Arc<Traffic>) -> Self {
        Self { port, traffic }
    }

    /// The port the host listens on (loopback only).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it carried so far.
    #[must_use]
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }
}

/// Where a connection's forwarded channels go, by the port the host listens on. Shared
/// by the session (which opens and cancels) and its handler (which carries).
#[derive(Debug, Default)]
pub(crate) struct Routes {
    by_port: Mutex<HashMap<u32, (SocketAddr, Arc<Traffic>)>>,
}

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (SocketAddr, Arc<Traffic>)>> {
        self.by_port
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn add(&self, port: u32, to: SocketAddr, traffic: Arc<Traffic>) {
        self.lock().insert(port, (to, traffic));
    }

    pub(crate) fn remove(&self, port: u32) {
        self.lock().remove(&port);
    }

    /// The route of a channel for `port`.
    pub(crate) fn find(&self, port: u32) -> Option<(SocketAddr, Arc<Traffic>)> {
        self.lock().get(&port).cloned()
    }
}

/// Joins a forwarded channel's stream to a new TCP connection to `to` and copies both
/// ways until either side ends; bytes are counted as they are read.
pub(crate) async fn carry<S>(channel: S, to: SocketAddr, traffic: Arc<Traffic>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Ok(tcp) = TcpStream::connect(to).await else {
        tracing::warn!(%to, "forwarded connection: local side refused");
        return;
    };
    let _ = tcp.set_nodelay(true);
    let mut tcp = Counted {
        inner: tcp,
        traffic,
    };
    let mut channel = channel;
    let _ = tokio::io::copy_bidirectional(&mut channel, &mut tcp).await;
}

/// The local side of a forwarded connection, counting: what is read from it goes to
/// the host, what is written to it came from the host.
struct Counted {
    inner: TcpStream,
    traffic: Arc<Traffic>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.traffic.to_host.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.traffic
                .from_host
                .fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

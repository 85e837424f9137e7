//! The session side of reverse forwards (see [`crate::transport::forward`]): ask the
//! host's sshd to listen, record the route, cancel.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Session;
use crate::transport::error::TransportError;
use crate::transport::forward::{RemoteForward, Traffic};

/// The address the host listens on: loopback only, whatever sshd's `GatewayPorts`.
const LISTEN: &str = "127.0.0.1";

impl Session {
    /// Asks the host to listen on `127.0.0.1` at a port of its choice and to send each
    /// connection there back over this connection, to `to` on this machine.
    ///
    /// # Errors
    /// [`TransportError::Forward`] when the server refuses (`AllowTcpForwarding no`).
    pub async fn forward_remote(&self, to: SocketAddr) -> Result<RemoteForward, TransportError> {
        let port =
            self.handle
                .tcpip_forward(LISTEN, 0)
                .await
                .map_err(|e| TransportError::Forward {
                    reason: e.to_string(),
                })?;
        let port16 = u16::try_from(port).map_err(|_| TransportError::Forward {
            reason: format!("the server answered port {port}"),
        })?;
        let traffic = Arc::new(Traffic::default());
        self.routes.add(port, to, Arc::clone(&traffic));
        Ok(RemoteForward::new(port16, traffic))
    }

    /// Stops the host listening for `forward`; connections it carries end on their own.
    pub async fn cancel_forward(&self, forward: &RemoteForward) {
        let port = u32::from(forward.port());
        if let Err(e) = self.handle.cancel_tcpip_forward(LISTEN, port).await {
            tracing::debug!(port, error = %e, "cancel-tcpip-forward failed");
        }
        self.routes.remove(port);
    }
}

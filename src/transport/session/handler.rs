//! The russh handler of drover's connections: checks the host key against
//! known_hosts (learning it under `accept-new`), and keeps the reason a connection
//! ended.

use std::sync::{Arc, Mutex};

use russh::client::{self, ChannelOpenHandle, DisconnectReason};
use russh::keys::PublicKeyOrCertificate;

use super::TransportContext;
use crate::transport::endpoint::Endpoint;
use crate::transport::error::TransportError;
use crate::transport::forward::{Routes, carry};
use crate::transport::known_hosts::{self, HostKeyPolicy, Verdict};

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
    routes: Arc<Routes>,
}

impl ClientHandler {
    /// A handler for a connection to `endpoint`, recording in `lost` why it ended.
    pub(super) fn new(
        ctx: &Arc<TransportContext>,
        endpoint: &Endpoint,
        lost: &Arc<Mutex<Option<String>>>,
        routes: &Arc<Routes>,
    ) -> Self {
        Self {
            ctx: Arc::clone(ctx),
            address: endpoint.address.clone(),
            port: endpoint.port,
            lost: Arc::clone(lost),
            routes: Arc::clone(routes),
        }
    }
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

    /// A connection to one of our reverse forwards: carried to its local address in a
    /// task of its own (the handler must not block the session loop). A port we did not
    /// ask for is refused: the server cannot open channels into drover at will.
    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<client::Msg>,
        connected_address: &str,
        connected_port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut client::Session,
    ) -> Result<(), HandlerError> {
        let Some((to, traffic)) = self.routes.find(connected_port) else {
            tracing::warn!(
                connected_address,
                connected_port,
                "refused a forwarded channel for a port drover did not open"
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        reply.accept().await;
        tokio::spawn(carry(channel.into_stream(), to, traffic));
        Ok(())
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

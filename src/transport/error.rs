//! Why talking to a host failed, with the data an operator needs to fix it.

use std::path::PathBuf;
use std::time::Duration;

/// The phase of connecting that a timeout or failure happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect (or the jump host's direct-tcpip channel).
    Tcp,
    /// SSH version exchange and key exchange.
    Handshake,
    /// User authentication.
    Auth,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Tcp => "tcp connect",
            Phase::Handshake => "ssh handshake",
            Phase::Auth => "authentication",
        })
    }
}

/// A transport failure. Every variant names the host it concerns.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The connect deadline passed.
    #[error("connect to {address}:{port} timed out after {}s ({phase})", after.as_secs_f64())]
    ConnectTimeout {
        /// host address
        address: String,
        /// port
        port: u16,
        /// the phase that did not finish
        phase: Phase,
        /// the configured deadline
        after: Duration,
    },
    /// TCP connect failed (refused, no route, DNS).
    #[error("failed to connect to {address}:{port}: {source}")]
    Connect {
        /// host address
        address: String,
        /// port
        port: u16,
        /// the OS error
        source: std::io::Error,
    },
    /// The server's key is not in any known_hosts file.
    #[error(
        "host key for {host} is unknown: {algorithm} {fingerprint} is not in {}; \
         verify it, then run again with --accept-new to record it (or add it with ssh-keyscan after checking)",
        files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    HostKeyUnknown {
        /// `address` or `[address]:port`
        host: String,
        /// key algorithm
        algorithm: String,
        /// SHA256 fingerprint of the offered key
        fingerprint: String,
        /// the files consulted
        files: Vec<PathBuf>,
    },
    /// The server's key differs from the recorded one: possible man-in-the-middle.
    #[error(
        "HOST KEY FOR {host} HAS CHANGED: the server offered {algorithm} {fingerprint}, \
         which does not match {}:{line}; refusing to connect (if the change is expected, \
         remove that line and verify the new key)",
        file.display()
    )]
    HostKeyChanged {
        /// `address` or `[address]:port`
        host: String,
        /// key algorithm offered
        algorithm: String,
        /// SHA256 fingerprint offered
        fingerprint: String,
        /// the known_hosts file holding the recorded key
        file: PathBuf,
        /// its 1-based line
        line: usize,
    },
    /// The server's key is listed as revoked.
    #[error("host key for {host} ({fingerprint}) is marked @revoked in {}", file.display())]
    HostKeyRevoked {
        /// `address` or `[address]:port`
        host: String,
        /// SHA256 fingerprint offered
        fingerprint: String,
        /// file with the @revoked line
        file: PathBuf,
    },
    /// Recording an accepted key failed.
    #[error("failed to record the host key of {host} in {}: {source}", file.display())]
    LearnHostKey {
        /// `address` or `[address]:port`
        host: String,
        /// the file written to
        file: PathBuf,
        /// the I/O error
        source: std::io::Error,
    },
    /// No offered identity was accepted.
    #[error("authentication as {user} failed; tried: {}", if tried.is_empty() { "no keys (none configured, no agent, no default key files)".to_string() } else { tried.join(", ") })]
    AuthFailed {
        /// login user
        user: String,
        /// what was offered, e.g. `key ~/.ssh/id_ed25519`, `agent key ED25519 SHA256:..`
        tried: Vec<String>,
    },
    /// A key file could not be used.
    #[error("failed to load key {}: {reason}", path.display())]
    KeyLoad {
        /// the key file
        path: PathBuf,
        /// what went wrong
        reason: String,
    },
    /// Reaching the host through its jump host failed.
    #[error("via jump host {via}: {source}")]
    Jump {
        /// the jump host's name
        via: String,
        /// what failed
        source: Box<TransportError>,
    },
    /// The connection dropped while a command ran.
    #[error("connection lost during the command{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    ConnectionLost {
        /// what russh reported, when known
        reason: Option<String>,
    },
    /// A local file meant for a command's standard input cannot be read.
    #[error("failed to read {} for the command's input: {source}", path.display())]
    LocalInput {
        /// the file
        path: std::path::PathBuf,
        /// why
        source: std::io::Error,
    },
    /// The host refused a reverse port forward (sshd's `AllowTcpForwarding no`), or
    /// this kind of connection has none.
    #[error("failed to open a reverse port forward on the host: {reason}")]
    Forward {
        /// what the server or russh said
        reason: String,
    },
    /// Any other SSH protocol failure.
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
}

impl TransportError {
    /// True when retrying the connection may help (the server reset us while many
    /// handshakes were in flight: sshd's `MaxStartups`).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            TransportError::Ssh(russh::Error::IO(e))
            | TransportError::Connect { source: e, .. } => {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionAborted
                )
            }
            TransportError::Ssh(russh::Error::Disconnect | russh::Error::HUP) => true,
            _ => false,
        }
    }
}

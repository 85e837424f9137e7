//! A minimal HTTP/1.1 client (one request per connection, `Connection: close`),
//! enough to talk to the example agent directly or through a fleet host's nginx,
//! and to tell a timeout from a refused connection.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use super::drover::text;
use super::fleet::Fleet;

/// An answer: status code and body.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// The connection was refused, reset or not made.
    Connect(String),
    /// Connecting, sending or reading took longer than the timeout.
    Timeout(String),
    /// Sending or reading failed otherwise.
    Io(String),
    /// The answer was not HTTP.
    Malformed(String),
}

impl HttpError {
    /// A short word for counting failures by kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            HttpError::Connect(_) => "connect",
            HttpError::Timeout(_) => "timeout",
            HttpError::Io(_) => "io",
            HttpError::Malformed(_) => "malformed",
        }
    }

    fn from_io(during: &str, e: &std::io::Error) -> HttpError {
        let what = format!("{during}: {e}");
        match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => HttpError::Timeout(what),
            ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected => HttpError::Connect(what),
            _ => HttpError::Io(what),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(m) | HttpError::Timeout(m) | HttpError::Io(m) => f.write_str(m),
            HttpError::Malformed(m) => write!(f, "not HTTP: {m}"),
        }
    }
}

/// One request to `addr` with `Host: <host>`; `body` is sent with its length
/// (POST). Every step is bounded by `timeout`.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| HttpError::from_io("connect", &e))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| HttpError::Io(e.to_string()))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: drover-tests\r\nConnection: close\r\n"
    );
    if method != "GET" && method != "HEAD" {
        head.push_str(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| HttpError::from_io("write", &e))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| HttpError::from_io("read", &e))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| HttpError::Malformed(format!("no header end in {text:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HttpError::Malformed(format!("bad status line in {head:?}")))?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

/// `GET path` from `addr` with `Host: <host>`.
pub(crate) fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    timeout: Duration,
) -> Result<Response, HttpError> {
    request(addr, "GET", host, path, b"", timeout)
}

/// Port 80 of a fleet host: its nginx, which routes by `Host: <tenant>`.
pub(crate) fn nginx_of(fleet: &Fleet, host: &str) -> SocketAddr {
    format!("{}:80", fleet.address(host))
        .parse()
        .expect("a fleet host's address")
}

/// The version a tenant answers through nginx on a host (health 200 required).
pub(crate) fn proxied_version(fleet: &Fleet, tenant: &str, host: &str) -> Result<String, String> {
    let Response { status, body } = get(
        nginx_of(fleet, host),
        tenant,
        "/health",
        Duration::from_secs(5),
    )
    .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}: {}", body.trim()));
    }
    let v: Value = serde_json::from_str(body.trim()).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "healthy" {
        return Err(format!("not healthy: {body}"));
    }
    Ok(text(&v["version"]).to_owned())
}

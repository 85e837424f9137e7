//! Reverse port forwards over drover's own connection, against a real OpenSSH sshd on
//! loopback: what the image step's tunnel to the control node's registry rides on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drover::config::Inventory;
use drover::transport::{
    Connector as _, HostKeyPolicy, KnownHosts, RemoteCommand, RemoteForward, Session, SshConfig,
    SshConnector, TransportContext,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::support::sshd::SshdFleet;

/// What the local server answers to each line: the line back, then this many bytes.
const PAYLOAD: usize = 300_000;

/// A local server: reads one line, answers `got <line>` and a payload, closes.
async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                if stream.read_line(&mut line).await.is_ok() {
                    let mut answer = format!("got {line}").into_bytes();
                    answer.extend(std::iter::repeat_n(b'x', PAYLOAD));
                    let _ = stream.get_mut().write_all(&answer).await;
                    let _ = stream.get_mut().shutdown().await;
                }
            });
        }
    });
    addr
}

/// A shell line for the host: connect to 127.0.0.1:PORT, send `hello`, print the first
/// line of the answer and the answer's length.
fn client(port: u16) -> String {
    format!(
        "python3 -c 'import socket\ns=socket.create_connection((\"127.0.0.1\",{port}),5)\n\
         s.sendall(b\"hello\\n\")\nd=b\"\"\nwhile True:\n    c=s.recv(65536)\n    if not c: break\n    d+=c\n\
         print(d.split(b\"\\n\")[0].decode(), len(d))'"
    )
}

/// Runs [`client`] on the host.
async fn dial(session: &Session, port: u16) -> drover::transport::ExecOutput {
    let command = RemoteCommand::new(client(port), Duration::from_secs(30));
    session.exec(&command).await.unwrap()
}

/// A connection to the fleet's first host with a reverse forward to a fresh [`serve`].
async fn forwarded(fleet: &SshdFleet) -> (Session, RemoteForward) {
    let inventory = Arc::new(Inventory::load(&[fleet.write_inventory("")]).unwrap());
    let known_hosts = KnownHosts::load(&[fleet.known_hosts_path()]).unwrap();
    let ctx = Arc::new(TransportContext::new(known_hosts, HostKeyPolicy::Strict, 4));
    let connector = SshConnector::new(ctx, Arc::clone(&inventory), SshConfig::default());
    let session = connector.connect(&inventory.hosts[0]).await.unwrap();
    let forward = session.forward_remote(serve().await).await.unwrap();
    (session, forward)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverse_forward_carries_data_both_ways_and_counts_it() {
    let fleet = SshdFleet::start(1);
    tokio::time::timeout(Duration::from_secs(60), async {
        let (session, forward) = forwarded(&fleet).await;
        assert_ne!(forward.port(), 0);
        let out = dial(&session, forward.port()).await;
        let answer = format!("got hello {}\n", "got hello\n".len() + PAYLOAD);
        assert_eq!(out.stdout.text(), answer, "stderr: {}", out.stderr.text());
        // counted as it passed: everything the local server sent reached the host
        assert_eq!(forward.traffic().to_host(), (10 + PAYLOAD) as u64);
        assert_eq!(forward.traffic().from_host(), 6);
        session.close().await;
    })
    .await
    .expect("the forward test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_reverse_forward_no_longer_listens_on_the_host() {
    let fleet = SshdFleet::start(1);
    tokio::time::timeout(Duration::from_secs(60), async {
        let (session, forward) = forwarded(&fleet).await;
        session.cancel_forward(&forward).await;
        let out = dial(&session, forward.port()).await;
        assert_ne!(out.exit_status, Some(0), "{}", out.stdout.text());
        assert!(
            out.stderr.text().contains("Connection refused"),
            "{}",
            out.stderr.text()
        );
        assert_eq!(forward.traffic().to_host(), 0);
        session.close().await;
    })
    .await
    .expect("the forward test finished in time");
}

//! Confirming a self-reverting switch over a fresh connection.
//!
//! A fresh login proves that the control node can still reach the host after the
//! switch (a firewall or sshd change would stop it). One slow login is not that proof
//! failing: a loaded host may take longer than the connect timeout to authenticate. So
//! the confirmation is tried again, with a growing pause, until the revert timer's
//! deadline; the host side decides between the timer and the confirmation atomically
//! (`bluegreen::disarm`), so a late confirmation is refused rather than wrong.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Host;
use crate::plan::bluegreen::REVERT_FIRED;
use crate::transport::{Connection, Connector, RemoteCommand};

use crate::engine::root::as_root;

/// Pause after the first failed attempt; doubled after each, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Why a switch was not confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Unconfirmed {
    /// The revert timer claimed the switch first: the host switched back by itself.
    Fired,
    /// No attempt got through before the deadline; the last one's error.
    Unreachable {
        /// attempts made
        attempts: u32,
        /// what the last attempt ran into
        last: String,
    },
}

impl std::fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unconfirmed::Fired => f.write_str(
                "the revert timer fired before drover could confirm: the host switched back by itself",
            ),
            Unconfirmed::Unreachable { attempts, last } => write!(
                f,
                "no confirmation over a fresh connection before the revert deadline \
                 ({attempts} attempt(s), last: {last}); the host will switch back by itself"
            ),
        }
    }
}

impl std::error::Error for Unconfirmed {}

/// Runs `script` (the disarm) as root over a fresh connection to `host`, again and
/// again until it succeeds, the host says the timer fired, or `within` has passed.
pub(super) async fn confirm_fresh<C: Connector>(
    connector: &C,
    host: &Host,
    script: &str,
    timeout: Duration,
    within: Duration,
) -> Result<(), Unconfirmed> {
    let deadline = Instant::now() + within;
    let command = RemoteCommand::new(as_root(script.to_owned(), host), timeout);
    let mut pause = FIRST_PAUSE;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = async {
            let fresh = connector.connect(host).await.map_err(|e| e.to_string())?;
            let out = fresh.exec(&command).await;
            fresh.close().await;
            out.map_err(|e| e.to_string())
        };
        let last = match tokio::time::timeout(left, attempt).await {
            Ok(Ok(out)) if out.exit_status == Some(0) && !out.timed_out => return Ok(()),
            Ok(Ok(out)) if out.exit_status == Some(REVERT_FIRED) => {
                return Err(Unconfirmed::Fired);
            }
            Ok(Ok(out)) => {
                let stderr = out.stderr.text();
                match out.exit_status {
                    Some(code) => format!("exit {code}: {}", stderr.trim()),
                    None => format!("did not finish: {}", stderr.trim()),
                }
            }
            Ok(Err(e)) => e,
            Err(_) => "the deadline passed during the attempt".to_owned(),
        };
        let now = Instant::now();
        if now + pause >= deadline {
            return Err(Unconfirmed::Unreachable { attempts, last });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::config::{Inventory, SourceFile};
    use crate::transport::error::Phase;
    use crate::transport::{Captured, ExecOutput, TransportError};

    /// A connector whose first `failing` logins time out, then answer `exit` to every
    /// command.
    struct Flaky {
        failing: u32,
        exit: u32,
        logins: Arc<AtomicU32>,
    }

    struct Answer(u32);

    impl Connector for Flaky {
        type Connection = Answer;
        async fn connect(&self, _host: &Host) -> Result<Answer, TransportError> {
            let n = self.logins.fetch_add(1, Ordering::SeqCst);
            if n < self.failing {
                Err(TransportError::ConnectTimeout {
                    address: "127.0.0.1".into(),
                    port: 22,
                    phase: Phase::Auth,
                    after: Duration::from_secs(3),
                })
            } else {
                Ok(Answer(self.exit))
            }
        }
    }

    impl Connection for Answer {
        async fn exec(&self, _command: &RemoteCommand) -> Result<ExecOutput, TransportError> {
            Ok(ExecOutput {
                exit_status: Some(self.0),
                signal: None,
                stdout: Captured::default(),
                stderr: Captured::default(),
                timed_out: false,
                duration: Duration::ZERO,
            })
        }
        async fn close(self) {}
    }

    fn host() -> Host {
        let text = "[hosts.web-1]\naddress = \"127.0.0.1\"\nbecome = \"none\"\n";
        Inventory::from_sources(vec![SourceFile::new("t.toml", text.to_string())])
            .expect("inventory")
            .hosts
            .remove(0)
    }

    async fn confirm(failing: u32, exit: u32, within: Duration) -> (Result<(), Unconfirmed>, u32) {
        let logins = Arc::new(AtomicU32::new(0));
        let connector = Flaky {
            failing,
            exit,
            logins: Arc::clone(&logins),
        };
        let limit = Duration::from_secs(5);
        let result = confirm_fresh(&connector, &host(), "true", limit, within).await;
        (result, logins.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn slow_logins_are_tried_again_until_one_confirms() {
        let (result, logins) = confirm(3, 0, Duration::from_secs(60)).await;
        assert_eq!(result, Ok(()));
        assert_eq!(logins, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_that_fired_first_is_final_and_not_retried() {
        let (result, logins) = confirm(0, REVERT_FIRED, Duration::from_secs(60)).await;
        assert_eq!(result, Err(Unconfirmed::Fired));
        assert_eq!(logins, 1);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("switched back by itself")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_that_never_answers_is_given_up_at_the_deadline() {
        let started = Instant::now();
        let (result, logins) = confirm(u32::MAX, 0, Duration::from_secs(10)).await;
        let Err(Unconfirmed::Unreachable { attempts, last }) = result else {
            panic!("expected unreachable, got {result:?}");
        };
        assert!(started.elapsed() <= Duration::from_secs(10));
        assert!(attempts >= 3, "{attempts}");
        assert_eq!(attempts, logins);
        assert!(last.contains("timed out"), "{last}");
    }
}

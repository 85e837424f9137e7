//! Waiting for a tenant's lock (`--lock-wait`): when another run that is still alive
//! holds it, the target re-checks with a growing pause until the lock is free or the
//! wait is spent, saying who holds it. A lock whose run is gone (ended, died, or older
//! than the stale age) is not waited for: it is refused as before, for
//! `--force-unlock` or `drover resume` to settle.

use std::time::{Duration, Instant};

use super::super::journal::{self, Liveness};
use super::super::status::STALE_LOCK;
use super::super::target::Refused;
use super::context::TargetTask;
use crate::events::Event;
use crate::plan::bluegreen::{self, LOCK_HELD, LockOwner};
use crate::transport::Connector;

/// The first pause between two looks at a held lock; each next one doubles.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between two looks.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// A target's wait for its lock: until when, and the next pause.
pub(super) struct Waiting {
    started: Instant,
    limit: Duration,
    pause: Duration,
}

impl Waiting {
    /// A wait of at most `limit`; `None` when the run does not wait.
    pub(super) fn of(limit: Option<Duration>) -> Option<Self> {
        limit.filter(|l| !l.is_zero()).map(|limit| Self {
            started: Instant::now(),
            limit,
            pause: FIRST_PAUSE,
        })
    }

    /// The pause before the next look (doubling, at most [`MAX_PAUSE`], never past the
    /// limit), or `None` when the wait is spent.
    fn next_pause(&mut self) -> Option<Duration> {
        let left = self.limit.checked_sub(self.started.elapsed())?;
        if left.is_zero() {
            return None;
        }
        let pause = self.pause.min(left);
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        Some(pause)
    }

    /// How long this target has waited so far.
    pub(super) fn waited(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Whether the run holding a lock is alive as far as this control node can tell: its
/// journal here says it runs, or (another control node's run) the lock is younger than
/// the stale age.
fn holder_is_alive(liveness: Liveness, age: Option<u64>) -> bool {
    match liveness {
        Liveness::Running => true,
        Liveness::Unknown => age.is_none_or(|a| a <= STALE_LOCK.as_secs()),
        Liveness::Ended | Liveness::Died => false,
    }
}

/// After a refused lock: waits a pause and returns true when the lock is held by a live
/// run and the wait is not spent (the caller tries again); false when the refusal
/// stands.
pub(super) async fn wait_again<C: Connector>(
    task: &TargetTask<'_, C>,
    refused: &Refused,
    waiting: Option<&mut Waiting>,
) -> bool {
    let Some(waiting) = waiting else {
        return false;
    };
    let Refused::Said {
        exit_status: Some(LOCK_HELD),
        stdout,
        ..
    } = refused
    else {
        return false;
    };
    let (holder, age) = bluegreen::parse_lock_owner(stdout);
    if !holder_is_alive(journal::liveness(&holder.run), age) {
        return false;
    }
    let Some(pause) = waiting.next_pause() else {
        return false;
    };
    let note = Event::LockWait {
        target: format!("{}@{}", task.tenant, task.host.name),
        text: waiting_note(&holder, pause),
    };
    let _ = task.cx.events.send(note).await;
    tokio::time::sleep(pause).await;
    true
}

fn waiting_note(holder: &LockOwner, pause: Duration) -> String {
    format!(
        "locked by run {} (operator {}, since {}); waiting, next look in {}s",
        holder.run,
        holder.operator,
        holder.since,
        pause.as_secs().max(1)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_never_pass_the_limit() {
        let mut w = Waiting::of(Some(Duration::from_secs(3600))).unwrap();
        let pauses: Vec<u64> = (0..6).map(|_| w.next_pause().unwrap().as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 10, 10]);
        let mut short = Waiting::of(Some(Duration::from_millis(300))).unwrap();
        assert!(short.next_pause().unwrap() <= Duration::from_millis(300));
    }

    #[test]
    fn a_spent_or_zero_wait_does_not_wait() {
        assert!(Waiting::of(Some(Duration::ZERO)).is_none());
        assert!(Waiting::of(None).is_none());
        let mut spent = Waiting::of(Some(Duration::from_nanos(1))).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(spent.next_pause(), None);
    }

    #[test]
    fn only_a_live_holder_is_waited_for() {
        assert!(holder_is_alive(Liveness::Running, Some(5)));
        assert!(holder_is_alive(Liveness::Unknown, Some(60)));
        assert!(!holder_is_alive(
            Liveness::Unknown,
            Some(STALE_LOCK.as_secs() + 1)
        ));
        assert!(!holder_is_alive(Liveness::Ended, Some(1)));
        assert!(!holder_is_alive(Liveness::Died, Some(1)));
    }
}

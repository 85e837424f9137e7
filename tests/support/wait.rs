//! Bounded waiting: a condition polled until it holds or its time is up.

use std::time::{Duration, Instant};

/// How often a condition is asked again.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Polls `probe` every 100 ms until it gives a value; after `limit`, asks once more
/// and gives up (None).
pub(crate) fn poll<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = probe() {
            return Some(v);
        }
        std::thread::sleep(POLL_EVERY);
    }
    probe()
}

/// Like [`poll`], failing the test ("waited LIMIT for WHAT") when no value came.
#[track_caller]
pub(crate) fn wait_for<T>(limit: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    match poll(limit, probe) {
        Some(v) => v,
        None => panic!("waited {limit:?} for {what}"),
    }
}

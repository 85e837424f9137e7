//! The one fan-out: work on many items (hosts, targets), at most `limit` at once, results
//! in item order. `drover run`, `status`, `diagnose`, `logs`, deploy batches and
//! `rollback` all go through it, so a fork limit means the same everywhere.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An item's place in the limit. It is held until the item's work ends; work that
/// only needs the limit for a while (a log stream that keeps running after it has
/// connected) gives it back early with [`Slot::release`].
#[derive(Debug, Clone)]
pub struct Slot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Slot {
    /// Gives the place back now: the next item may start.
    pub fn release(&self) {
        if let Ok(mut permit) = self.0.lock() {
            permit.take();
        }
    }
}

/// Runs `work` for every item, at most `limit` at a time, and returns the results in
/// item order. An item starts only when a place is free, so at most `limit` tasks (and
/// connections) exist at once, even for thousands of items. A task that panics is left
/// out of the results.
pub async fn fan_out<I, T, F, Fut>(
    items: impl IntoIterator<Item = I>,
    limit: usize,
    mut work: F,
) -> Vec<T>
where
    T: Send + 'static,
    F: FnMut(I, Slot) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let places = Arc::new(Semaphore::new(limit.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let Ok(permit) = Arc::clone(&places).acquire_owned().await else {
            break;
        };
        let slot = Slot(Arc::new(Mutex::new(Some(permit))));
        let fut = work(item, slot.clone());
        tasks.spawn(async move {
            let out = fut.await;
            slot.release();
            (index, out)
        });
    }
    let mut out = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        if let Ok(pair) = joined {
            out.push(pair);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn results_come_back_in_item_order_and_no_more_than_the_limit_run_at_once() {
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let out = fan_out(0..40u64, 4, |i, _slot| {
            let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later items finish first: the order must come from the items.
                tokio::time::sleep(Duration::from_millis(40 - i)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(out, (0..40u64).map(|i| i * 2).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=4).contains(&peak), "peak {peak}");
    }

    #[tokio::test]
    async fn a_released_slot_lets_the_next_item_start_while_the_first_still_runs() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        // Every item keeps running until the gate opens: only released slots let the
        // others start.
        let gate = Arc::new(Semaphore::new(0));
        let finished = {
            let gate = Arc::clone(&gate);
            tokio::spawn(fan_out(0..3, 1, move |i, slot| {
                let (tx, gate) = (tx.clone(), Arc::clone(&gate));
                async move {
                    let _ = tx.send(i).await;
                    slot.release();
                    let _pass = gate.acquire().await;
                    i
                }
            }))
        };
        let mut started = Vec::new();
        for _ in 0..3 {
            let i = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("each item starts although none has finished");
            started.push(i.expect("started"));
        }
        assert_eq!(started, [0, 1, 2]);
        gate.add_permits(3);
        assert_eq!(finished.await.expect("joined"), [0, 1, 2]);
    }
}

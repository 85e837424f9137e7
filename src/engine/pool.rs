//! One connection per host for a whole rollout: opened on first use, shared by every
//! target of the host (and by the soak re-checks and switch-backs), closed when the
//! host's last target is done.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OnceCell};

use crate::config::Host;
use crate::transport::{Connection as _, Connector};

/// A connection, or why there is none (the same answer for every target of the host).
type Cell<C> = Arc<OnceCell<Result<Arc<<C as Connector>::Connection>, String>>>;

/// The connections of a run, by host name.
pub(crate) struct Pool<C: Connector> {
    connector: Arc<C>,
    /// each host's connection and the targets still to use it
    cells: Mutex<HashMap<String, (Cell<C>, usize)>>,
}

impl<C: Connector> Pool<C> {
    pub(crate) fn new(connector: Arc<C>) -> Self {
        Self {
            connector,
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// The connector, for fresh connections (the confirmation of a switch).
    pub(crate) fn connector(&self) -> &C {
        &self.connector
    }

    /// The host's connection, opened by the first caller; a failed connect is the
    /// answer for every later caller too (the host is unreachable for this run).
    pub(crate) async fn get(&self, host: &Host) -> Result<Arc<C::Connection>, String> {
        let cell = {
            let mut cells = self.cells.lock().await;
            Arc::clone(&cells.entry(host.name.clone()).or_default().0)
        };
        cell.get_or_init(|| async {
            self.connector
                .connect(host)
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    /// Announces `targets` more users of the host's connection.
    pub(crate) async fn expect(&self, host: &str, targets: usize) {
        let mut cells = self.cells.lock().await;
        cells.entry(host.to_string()).or_default().1 += targets;
    }

    /// One user of the host's connection is done; the last one closes it.
    pub(crate) async fn done(&self, host: &str) {
        let finished = {
            let mut cells = self.cells.lock().await;
            match cells.get_mut(host) {
                Some((_, left)) => {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        cells.remove(host).map(|(c, _)| c)
                    } else {
                        None
                    }
                }
                None => None,
            }
        };
        if let Some(cell) = finished
            && let Some(Ok(conn)) = Arc::try_unwrap(cell).ok().and_then(OnceCell::into_inner)
            && let Ok(conn) = Arc::try_unwrap(conn)
        {
            conn.close().await;
        }
    }
}

//! Events the engine emits while it works; reporters consume them. The engine never prints.

use std::sync::Arc;

use crate::outcome::{HookRun, HostOutcome, TargetOutcome};

/// Something that happened during a run.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run starts on this many hosts (or deploy targets).
    RunStarted {
        /// hosts (or targets) selected
        hosts: usize,
    },
    /// Work on a host (or a `tenant@host` target) starts.
    HostStarted {
        /// host name, or `tenant@host`
        host: String,
    },
    /// A host is done, one way or another.
    HostFinished(Arc<HostOutcome>),
    /// A deploy target is done.
    TargetFinished(Arc<TargetOutcome>),
    /// A rollout batch starts.
    BatchStarted {
        /// 1-based batch number
        number: usize,
        /// batches in all
        of: usize,
        /// targets in this batch
        targets: usize,
    },
    /// The canary batch soaks before its health is checked again.
    Soaking {
        /// soak time
        seconds: u64,
    },
    /// A target waits for its tenant's lock, held by another live run.
    LockWait {
        /// `tenant@host`
        target: String,
        /// who holds it and when the next look is
        text: String,
    },
    /// A per-target hook ran (`post-switch`).
    HookRan(Arc<HookRun>),
    /// A halt was requested; no new host will start.
    Halting,
    /// Every host is done.
    RunFinished,
}

/// The sending side the engine writes to. Bounded, so a slow terminal slows the run
/// instead of growing memory without limit at thousands of hosts.
pub type EventSender = tokio::sync::mpsc::Sender<Event>;

//! The engine: runs work over many hosts with bounded concurrency and emits events.
//! It reaches hosts only through [`crate::transport::Connector`].

mod run;

pub use run::{HostOutcome, HostStatus, RunOptions, run_command};

//! The engine: runs work over many hosts with bounded concurrency and emits events.
//! It reaches hosts only through [`crate::transport::Connector`].

mod deploy;
mod run;

pub use deploy::{DeployOptions, StepOutcome, StepStatus, TargetOutcome, TargetStatus, deploy};
pub use run::{HostOutcome, HostStatus, RunOptions, run_command};

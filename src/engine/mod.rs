//! The engine: runs work over many hosts with bounded concurrency and emits events.
//! It reaches hosts only through [`crate::transport::Connector`].

mod chain;
mod confirm;
mod deploy;
pub mod journal;
mod rollout;
mod run;
pub mod status;
mod target;

pub use deploy::{DeployOptions, StepOutcome, StepStatus, TargetOutcome, TargetStatus, deploy};
pub use rollout::{
    HaltReason, RolloutOptions, RolloutOutcome, Strategy, now_rfc3339, rollback, rollout,
};
pub use run::{HostOutcome, HostStatus, RunOptions, run_command};

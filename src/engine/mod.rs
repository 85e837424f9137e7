//! The engine: works over many hosts with bounded concurrency and emits events; it
//! never prints. It reaches hosts only through [`crate::transport::Connector`].
//!
//! | concept | module |
//! |---|---|
//! | the one bounded fan-out | [`fan_out`] |
//! | ad-hoc commands (`drover run`) | [`run`] |
//! | a target's steps, in as few execs as possible | `target`, `chain` |
//! | becoming root (`sudo -n`) | `root` |
//! | one connection per host for a rollout | `pool` |
//! | rollouts, blue-green phases, locks, rollback | [`rollout`] |
//! | the run journal (resume, halt) | [`journal`] |
//! | images shipped to hosts: the control node's side | [`image`] |
//! | fleet status, diagnosis, log scripts | [`status`] |
//! | streaming logs from many hosts | [`logs`] |

mod become_pass;
pub(crate) mod chain;
pub mod fan_out;
pub mod hooks;
pub mod image;
pub mod journal;
pub mod logs;
mod pool;
pub mod rollout;
mod root;
pub mod run;
pub mod status;
mod target;

pub use become_pass::BecomePassword;
pub use fan_out::fan_out;
pub use rollout::{
    Actor, HaltReason, Plans, RollbackOptions, RolloutOptions, RolloutOutcome, now_rfc3339,
    rollback, rollout,
};
pub use run::{RunOptions, run_command};
pub use target::StepOptions;

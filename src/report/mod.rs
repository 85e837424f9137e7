//! Reporters: everything drover prints about a run. Only this module knows terminals.

pub mod batches;
pub mod deploy;
pub mod group;
pub mod hooks;
pub mod live;
pub mod phases;
pub mod run;
pub mod status;

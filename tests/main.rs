//! drover's integration tests: one binary, modules per behaviour.

mod support;

mod check;
mod check_limits;
mod deploy;
mod fleet;
mod rollout;
mod run;
mod status;

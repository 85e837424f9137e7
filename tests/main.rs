//! drover's integration tests: one binary, modules per behaviour.

mod support;

mod check;
mod deploy;
mod fleet;
mod progressive;
mod rollout;
mod run;
mod status;

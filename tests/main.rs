//! drover's integration tests: one binary, modules per behaviour.

mod support;

mod check;
mod check_limits;
mod container;
mod day2;
mod deploy;
mod fleet;
mod forward;
mod image;
mod ops;
mod progressive;
mod rollout;
mod run;
mod status;

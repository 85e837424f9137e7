//! drover's integration tests: one binary, modules per behaviour.

mod support;

mod check;
mod day2;
mod deploy;
mod fleet;
mod ops;

mod rollout;
mod run;
mod status;

//! Test support shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod cli;
pub mod fleet;
pub mod sshd;

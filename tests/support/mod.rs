//! Test support shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod cli;
pub mod drover;
pub mod fleet;
pub mod host;
pub mod http;
pub mod load;
pub mod repo;
pub mod sshd;
pub mod tenants;
pub mod wait;

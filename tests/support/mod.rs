//! Test support shared by the integration tests: each helper lives here once.
#![allow(dead_code, unreachable_pub)]

/// drover in an isolated HOME, for the loopback-sshd tests.
pub mod cli;
/// Container releases: agent images into the hosts, reads of containers.
pub mod container;
/// drover against a Docker test fleet: the builder, exit codes, reports by target.
pub mod drover;
/// Docker test fleets, and bounded child processes.
pub mod fleet;
/// Reads of a fleet host behind drover's back: shell, files, state, lock, audit, nginx.
pub mod host;
/// A minimal HTTP/1.1 client.
pub mod http;
/// The load generator for progressive-delivery tests.
pub mod load;
/// Paths in the repository.
pub mod repo;
/// A real OpenSSH sshd on loopback.
pub mod sshd;
/// The tenants and targets of a fleet's inventory.
pub mod tenants;
/// Bounded polling.
pub mod wait;

/// Fails the calling test with `line` alone: no panic location, no backtrace. For a
/// missing prerequisite (sshd, a Docker engine), where the fix is an install, not a
/// debugging session; `line` names what is missing and how to get it.
pub fn missing_prerequisite(line: &str) -> ! {
    eprintln!("{line}");
    // resume_unwind skips the panic hook (its "panicked at" line and backtrace) and
    // still fails the test like a panic does.
    std::panic::resume_unwind(Box::new(line.to_owned()))
}

//! drover: deploy and operate fleets of agent services on plain Linux servers over SSH.
//!
//! Data flows one way: [`config`] (inventory, playbooks, selection) → [`plan`] (targets,
//! batches, rendered steps) → [`engine`] (fan-out over hosts, rollouts) → [`transport`]
//! (russh). The engine emits [`events`] carrying [`outcome`]s; [`report`] prints them.
//! docs/architecture.md maps every concept to its module.

pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod outcome;
pub mod plan;
pub mod report;
pub mod shell;
pub mod transport;

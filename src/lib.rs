//! drover: deploy and operate fleets of agent services on plain Linux servers over SSH.
//!
//! Data flows one way: [`config`] (inventory, selection) → [`engine`] (fan-out over hosts)
//! → [`transport`] (russh). The engine emits [`events`]; [`report`] prints them.

pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod plan;
pub mod report;
pub mod transport;

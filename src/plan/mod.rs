//! Planning: pure and deterministic. Given the inventory, a playbook and a selection
//! it yields the targets and, per target, the exact rendered steps and scripts.

pub mod batch;
pub mod bluegreen;
pub mod render;
pub mod steps;
pub mod targets;

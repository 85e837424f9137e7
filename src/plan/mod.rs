//! Planning: pure and deterministic. Given the inventory, a playbook and a selection
//! it yields the targets and, per target, the exact rendered steps and scripts; and
//! it names the host vocabulary once: [`Color`], the host-side [`layout`].

pub mod batch;
pub mod bluegreen;
pub mod color;
pub mod group_limits;
pub mod layout;
pub mod live;
pub mod prune;
pub mod prune_images;
pub mod render;
pub mod steps;
pub mod targets;
pub mod upstream;

pub use color::Color;
pub use layout::TenantLayout;

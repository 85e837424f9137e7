//! Reading and validating what the user writes: inventories, playbooks, rollout
//! settings and selections.
//!
//! Nothing here connects anywhere; every error points at a file, line and column.

pub mod diagnostic;
pub mod duration;
pub mod group_cap;
pub mod hooks;
pub mod inventory;
mod parse;
pub mod playbook;
pub mod progressive;
pub mod rollout;
pub mod secrets;
pub mod select;
mod snippet;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use inventory::{Become, Host, Inventory, Tenant};
pub use playbook::Playbook;
pub use rollout::{BatchSize, FailureBudget, Strategy};
pub use select::Selection;
pub use source::SourceFile;

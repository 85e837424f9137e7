//! Reading and validating what the user writes: inventories and selections.
//!
//! Nothing here connects anywhere; every error points at a file, line and column.

pub mod diagnostic;
pub mod duration;
pub mod inventory;
mod parse;
pub mod select;
pub mod source;
pub mod validate;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use inventory::{Become, Host, Inventory, Tenant};
pub use select::Selection;
pub use source::SourceFile;

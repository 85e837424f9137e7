//! Errors at the edge: everything that stops a command before or outside its targets'
//! own outcomes, each mapped to its documented exit code here and printed once, by
//! [`super::main`].

use std::path::PathBuf;

use crate::config::Diagnostics;
use crate::config::select::SelectError;
use crate::error::ExitCode;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The inventory or a playbook has problems; they are printed as diagnostics.
    #[error("{} problem{} found; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Diagnostics(Diagnostics),
    /// No inventory file given or found.
    #[error("no inventory: pass -i FILE or create inventory/*.toml")]
    NoInventory,
    /// The selection is empty, names something unknown, or has a bad glob.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// known_hosts could not be read.
    #[error("cannot read known_hosts: {0}")]
    KnownHosts(String),
    /// The async runtime did not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// the file
        path: PathBuf,
        /// why
        source: std::io::Error,
    },
    /// Any other bad input (flags, a secrets file, a run id), with what was expected.
    #[error("{0}")]
    Input(String),
}

impl CliError {
    /// The documented exit code of this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Diagnostics(_)
            | CliError::NoInventory
            | CliError::Select(_)
            | CliError::KnownHosts(_)
            | CliError::Runtime(_)
            | CliError::Write { .. }
            | CliError::Input(_) => ExitCode::BadInput,
        }
    }

    /// Prints the error on stderr (diagnostics first, rendered like a compiler's).
    pub(crate) fn print(&self, color: bool) {
        if let CliError::Diagnostics(diagnostics) = self {
            eprint!("{}", diagnostics.render(color));
        }
        eprintln!("error: {self}");
    }
}

//! `secrets_command`: a local command whose output holds secret values (`sops -d`,
//! `pass`, `op read`, `vault … | jq`), named in the inventory's `[defaults]` or a
//! playbook. Here it is only read and checked; `cli/secrets` runs it.

use std::path::PathBuf;

use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::source::SourceFile;

/// A secrets command as written, with the directory it runs in (that of the file
/// naming it, so `sops -d secrets.enc.env` finds the file kept beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsCommand {
    /// the `sh -c` command line
    pub command: String,
    /// its working directory
    pub dir: PathBuf,
}

/// The command of a `secrets_command` key, or a diagnostic when it is blank.
pub(crate) fn validate_secrets_command(
    source: &SourceFile,
    field: Option<&Spanned<String>>,
    code: &'static str,
    problems: &mut Diagnostics,
) -> Option<SecretsCommand> {
    let field = field?;
    if field.get_ref().trim().is_empty() {
        problems.push(Diagnostic::at(
            code,
            source,
            field.span(),
            "`secrets_command` is empty",
            "expected a shell command printing KEY=VALUE lines or TOML, e.g. \"sops -d secrets.env\"",
        ));
        return None;
    }
    Some(SecretsCommand {
        command: field.get_ref().clone(),
        dir: source.dir().to_path_buf(),
    })
}

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

#[cfg(test)]
mod tests {
    use crate::config::{Inventory, Playbook, SourceFile};

    const STEPS: &str = "[[steps]]\nname = \"s\"\nrun = { script = \"true\" }\n";

    #[test]
    fn a_playbooks_secrets_command_runs_beside_it() {
        let text = format!("name = \"p\"\nsecrets_command = \"sops -d s.env\"\n{STEPS}");
        let p = Playbook::from_source(SourceFile::new("conf/p.toml", text)).unwrap();
        let cmd = p.secrets_command.expect("a command");
        assert_eq!(cmd.command, "sops -d s.env");
        assert_eq!(cmd.dir, std::path::Path::new("conf"));
    }

    #[test]
    fn a_blank_secrets_command_is_pointed_at_in_playbook_and_inventory() {
        let text = format!("name = \"p\"\nsecrets_command = \" \"\n{STEPS}");
        let err = Playbook::from_source(SourceFile::new("p.toml", text))
            .unwrap_err()
            .render(false);
        assert!(err.contains("`secrets_command` is empty"), "{err}");
        assert!(err.contains("p.toml:2:19"), "{err}");
        let inv = "[defaults]\nsecrets_command = \"\"\n[hosts.a]\naddress = \"x\"\n";
        let err = Inventory::from_sources(vec![SourceFile::new("i.toml", inv)])
            .unwrap_err()
            .render(false);
        assert!(err.contains("i.toml:2:19"), "{err}");
    }
}

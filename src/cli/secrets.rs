//! Secret values for a deploy: from a `secrets_command`, a `--secrets` TOML file and
//! `DROVER_SECRET_<NAME>` variables (each over the one before). They reach hosts only
//! inside env files, and are redacted (`***`) from everything drover prints.

mod command;

use std::collections::HashMap;
use std::path::Path;

use super::CliError;
use crate::config::secrets::SecretsCommand;
use crate::config::{Inventory, Playbook};

/// Secret values by name: the command's (run once, here), then the file's, then the
/// environment's over them.
pub(crate) fn load(
    command: Option<&SecretsCommand>,
    file: Option<&Path>,
) -> Result<HashMap<String, String>, CliError> {
    let mut values = HashMap::new();
    if let Some(command) = command {
        values.extend(command::run(command)?);
    }
    if let Some(path) = file {
        values.extend(from_file(path)?);
    }
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("DROVER_SECRET_") {
            values.insert(name.to_string(), v);
        }
    }
    Ok(values)
}

/// The secrets command of this run: `--secrets-cmd` (run in the current directory),
/// else the playbook's, else the inventory's `[defaults]` one.
pub(crate) fn command_for(
    flag: Option<&str>,
    playbook: &Playbook,
    inventory: &Inventory,
) -> Option<SecretsCommand> {
    match flag {
        Some(command) => Some(SecretsCommand {
            command: command.to_string(),
            dir: ".".into(),
        }),
        None => playbook
            .secrets_command
            .clone()
            .or_else(|| inventory.secrets_command.clone()),
    }
}

/// `NAME = "value"` lines of a TOML file. Errors name the file and the key, never a
/// value.
fn from_file(path: &Path) -> Result<HashMap<String, String>, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Input(format!("cannot read {shown}: {e}")))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| CliError::Input(format!("{shown}: invalid TOML: {}", e.message())))?;
    table
        .into_iter()
        .map(|(k, v)| match v.as_str() {
            Some(value) => Ok((k, value.to_string())),
            None => Err(CliError::Input(format!(
                "{shown}: secret `{k}` must be a string"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    #[test]
    fn the_flag_wins_over_the_playbook_which_wins_over_the_inventory() {
        let steps = "[[steps]]\nname = \"s\"\nrun = { script = \"true\" }\n";
        let with = |cmd: &str| {
            let text = format!("name = \"p\"\n{cmd}\n{steps}");
            Playbook::from_source(SourceFile::new("p.toml", text)).unwrap()
        };
        let inv = "[defaults]\nsecrets_command = \"inv\"\n[hosts.a]\naddress = \"x\"\n";
        let inventory = Inventory::from_sources(vec![SourceFile::new("i.toml", inv)]).unwrap();
        let (named, bare) = (with("secrets_command = \"book\""), with(""));
        let pick = |flag, p: &Playbook| command_for(flag, p, &inventory).map(|c| c.command);
        assert_eq!(pick(Some("flag"), &named).as_deref(), Some("flag"));
        assert_eq!(pick(None, &named).as_deref(), Some("book"));
        assert_eq!(pick(None, &bare).as_deref(), Some("inv"));
    }
}

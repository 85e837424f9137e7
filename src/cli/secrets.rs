//! Secret values for a deploy: from a `--secrets` TOML file and `DROVER_SECRET_<NAME>`
//! variables (the environment wins). They reach hosts only inside env files, and are
//! redacted (`***`) from everything drover prints.

use std::collections::HashMap;
use std::path::Path;

use super::CliError;

/// Secret values by name: the file's, then the environment's over them.
pub(crate) fn load(file: Option<&Path>) -> Result<HashMap<String, String>, CliError> {
    let mut values = HashMap::new();
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

//! Running a `secrets_command` once per run and reading what it prints: `KEY=VALUE`
//! lines (dotenv style) or a TOML table of strings. Its standard output is only ever
//! parsed, never shown: errors name the command and a line number, not a value. Its
//! standard input and error are the terminal's, so a store can ask for a passphrase
//! and explain its own failures.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::CliError;
use crate::config::secrets::SecretsCommand;

/// The secret values the command prints.
pub(super) fn run(cmd: &SecretsCommand) -> Result<HashMap<String, String>, CliError> {
    let dir = if cmd.dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        cmd.dir.as_path()
    };
    let shown = &cmd.command;
    let output = Command::new("sh")
        .arg("-c")
        .arg(shown)
        .current_dir(dir)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| CliError::Input(format!("cannot run secrets command `{shown}`: {e}")))?;
    if !output.status.success() {
        let how = output
            .status
            .code()
            .map_or_else(|| "was killed".to_string(), |c| format!("exited {c}"));
        return Err(CliError::Input(format!(
            "secrets command `{shown}` {how}; nothing was deployed (its output is not shown: run it yourself to see it)"
        )));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| {
        CliError::Input(format!(
            "secrets command `{shown}` printed something that is not UTF-8 text"
        ))
    })?;
    parse(&text).map_err(|e| CliError::Input(format!("secrets command `{shown}`: {e}")))
}

/// `KEY=VALUE` lines when the text is only those (so `PORT=0x10` stays `0x10`), else
/// a TOML table of strings (multi-line strings; `[tables]` are refused).
fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let lines = parse_lines(text);
    if lines.is_ok() {
        return lines;
    }
    match text.parse::<toml::Table>() {
        Ok(table) => table
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) if is_key(&k) => Ok((k, s)),
                toml::Value::String(_) => Err(bad_key(&k)),
                _ => Err(format!("secret `{k}` must be a string")),
            })
            .collect(),
        Err(_) => lines,
    }
}

fn parse_lines(text: &str) -> Result<HashMap<String, String>, String> {
    let mut values = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {} is neither KEY=VALUE nor TOML (its text is not shown)",
                number + 1
            ));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err(bad_key(key));
        }
        values.insert(key.to_string(), unquote(value.trim()));
    }
    Ok(values)
}

fn bad_key(key: &str) -> String {
    let key: String = key.chars().take(40).collect();
    format!(
        "`{key}` is not a secret name; expected letters, digits and _ (not starting with a digit)"
    )
}

/// The name a playbook's `env` step can ask for.
fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value in matching quotes loses them (as in a dotenv file); a double-quoted one
/// has its escapes (`\"`, `\n`) read as TOML reads them.
fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('"')
        && let Ok(toml::Value::String(s)) = value.parse::<toml::Value>()
    {
        return s;
    }
    if quoted('"') || quoted('\'') {
        return value[1..value.len() - 1].to_string();
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> SecretsCommand {
        SecretsCommand {
            command: text.into(),
            dir: "".into(),
        }
    }

    #[test]
    fn key_value_lines_parse_like_a_dotenv_file() {
        let text = "# from pass\nAPI_KEY=s3cr=et\nexport DB_PASS = \"two words\"\n\nTOKEN='x'\n";
        let values = parse(text).unwrap();
        assert_eq!(values["API_KEY"], "s3cr=et");
        assert_eq!(values["DB_PASS"], "two words");
        assert_eq!(values["TOKEN"], "x");
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn a_toml_table_of_strings_is_read_as_toml() {
        let values = parse("API_KEY = \"a#b\\\"c\"\nDB = '''\nc\n'''\n").unwrap();
        assert_eq!(values["API_KEY"], "a#b\"c");
        assert_eq!(values["DB"], "c\n");
        assert!(
            parse("[db]\nN = 3\n")
                .unwrap_err()
                .contains("must be a string")
        );
        assert_eq!(parse("PORT=0x10\n").unwrap()["PORT"], "0x10");
    }

    #[test]
    fn a_bad_line_is_named_by_number_without_its_text() {
        let err = parse("A=1\nhunter2\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_command_runs_once_through_sh_and_its_output_is_parsed() {
        let values = run(&command("printf 'A=1\\n'; echo B=2")).unwrap();
        assert_eq!(values["A"], "1");
        assert_eq!(values["B"], "2");
    }

    #[test]
    fn a_failing_command_is_named_and_its_output_is_not_shown() {
        let err = run(&command("echo LEAK=hunter2; exit 3"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("echo LEAK") && err.contains("exited 3"),
            "{err}"
        );
        assert_eq!(
            err.matches("hunter2").count(),
            1,
            "only the command itself: {err}"
        );
    }

    #[test]
    fn the_command_runs_in_the_directory_of_the_file_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.env"), "K=v\n").unwrap();
        let cmd = SecretsCommand {
            command: "cat s.env".into(),
            dir: dir.path().to_path_buf(),
        };
        assert_eq!(run(&cmd).unwrap()["K"], "v");
    }
}

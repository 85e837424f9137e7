//! TOML text → the raw inventory tables, read one table at a time so that one bad host
//! does not hide the problems of the others. Every message says what was found and what was
//! expected; serde's own wording (`expected u16`, `struct RawHost`) never reaches the user.

use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostic::{Diagnostic, Diagnostics, shown};
use super::inventory::{
    DEFAULTS_KEYS, FILE_KEYS, HOST_KEYS, ParsedFile, RawFile, RawHost, RawTenant, TENANT_KEYS,
};
use super::source::SourceFile;
use super::validate::did_you_mean;

/// Parses one file. `None` when its TOML syntax is broken (every syntax error is reported);
/// otherwise the tables that could be read, with the problems of the others reported.
pub(crate) fn parse_file(source: SourceFile, problems: &mut Diagnostics) -> Option<ParsedFile> {
    let text = Arc::clone(&source.text);
    let (root, errors) = DeTable::parse_recoverable(&text);
    if !errors.is_empty() {
        for error in &errors {
            problems.push(syntax_error(&source, error));
        }
        return None;
    }
    let mut raw = RawFile::default();
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "defaults" => {
                let table = read_table(
                    &source,
                    "`[defaults]`",
                    "[defaults]",
                    DEFAULTS_KEYS,
                    value,
                    problems,
                );
                raw.defaults = table.map(|(defaults, _)| defaults);
            }
            "hosts" => {
                for (name, host) in
                    read_entries::<RawHost>(&source, "host", "web-1", HOST_KEYS, value, problems)
                {
                    match host {
                        Some((mut host, misspelled)) => {
                            host.misspelled = misspelled;
                            raw.hosts.insert(name, host);
                        }
                        None => raw.broken_hosts.push(name),
                    }
                }
            }
            "tenants" => {
                for (name, tenant) in read_entries::<RawTenant>(
                    &source,
                    "tenant",
                    "acme",
                    TENANT_KEYS,
                    value,
                    problems,
                ) {
                    match tenant {
                        Some((mut tenant, misspelled)) => {
                            tenant.misspelled = misspelled;
                            raw.tenants.insert(name, tenant);
                        }
                        None => raw.broken_tenants.push(name),
                    }
                }
            }
            other => {
                let (d, _) = unknown_key(&source, key.span(), other, "at the top level", FILE_KEYS);
                problems.push(d);
            }
        }
    }
    Some(ParsedFile { source, raw })
}

/// A table read into `T`, with the known keys that its unknown keys probably meant; `None`
/// when a value had the wrong type (already reported).
type Read<T> = Option<(T, Vec<&'static str>)>;

/// Reads `[hosts]` or `[tenants]` (`what` is "host" or "tenant"): every entry's name, with its
/// table when that could be read (see [`read_table`]).
fn read_entries<T: DeserializeOwned>(
    source: &SourceFile,
    what: &str,
    example: &str,
    known: &'static [&'static str],
    value: Spanned<DeValue<'_>>,
    problems: &mut Diagnostics,
) -> Vec<(Spanned<String>, Read<T>)> {
    let span = value.span();
    let table = match value.into_inner() {
        DeValue::Table(table) => table,
        other => {
            let found = describe(&other, source.text.get(span.clone()));
            let expected = format!("a table of {what}s such as `[{what}s.{example}]`");
            problems.push(Diagnostic::at(
                "inventory::wrong-type",
                source,
                span,
                format!("wrong type for `{what}s`: found {found}, expected {expected}"),
                format!("expected {expected}"),
            ));
            return Vec::new();
        }
    };
    table
        .into_iter()
        .map(|(name, value)| {
            let name = Spanned::new(name.span(), name.into_inner().into_owned());
            let owner = format!("{what} `{}`", shown(name.get_ref()));
            let header = format!("[{what}s.{}]", shown(name.get_ref()));
            let read = read_table(source, &owner, &header, known, value, problems);
            (name, read)
        })
        .collect()
}

/// Reads one table into `T`: every unknown key is reported (and dropped, so the rest is still
/// checked), then the first wrong-typed value, if any, makes the table unusable (`None`).
/// Also returns the known keys that unknown ones probably meant.
fn read_table<T: DeserializeOwned>(
    source: &SourceFile,
    owner: &str,
    header: &str,
    known: &'static [&'static str],
    value: Spanned<DeValue<'_>>,
    problems: &mut Diagnostics,
) -> Read<T> {
    let span = value.span();
    let table = match value.into_inner() {
        DeValue::Table(table) => table,
        other => {
            let found = describe(&other, source.text.get(span.clone()));
            problems.push(Diagnostic::at(
                "inventory::wrong-type",
                source,
                span,
                format!(
                    "wrong type for {owner}: found {found}, expected a table such as `{header}`"
                ),
                "expected a table",
            ));
            return None;
        }
    };
    let mut misspelled = Vec::new();
    let mut kept = DeTable::new();
    for (key, value) in table {
        if known.contains(&key.get_ref().as_ref()) {
            kept.insert(key, value);
            continue;
        }
        let place = format!("in {owner}");
        let (d, best) = unknown_key(source, key.span(), key.get_ref(), &place, known);
        problems.push(d);
        misspelled.extend(best);
    }
    let whole = Spanned::new(span.clone(), DeValue::Table(kept.clone()));
    match T::deserialize(ValueDeserializer::from(whole)) {
        Ok(value) => Some((value, misspelled)),
        Err(error) => {
            problems.push(type_error(source, owner, &kept, span, &error));
            None
        }
    }
}

/// An unknown key, with the known key it probably meant (if any) as a did-you-mean.
fn unknown_key(
    source: &SourceFile,
    span: Range<usize>,
    key: &str,
    place: &str,
    known: &'static [&'static str],
) -> (Diagnostic, Option<&'static str>) {
    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    let mut d = Diagnostic::at(
        "inventory::unknown-key",
        source,
        span,
        format!(
            "unknown key `{}` {place}: expected one of {}",
            shown(key),
            list.join(", ")
        ),
        "unknown key",
    );
    let best = did_you_mean(key, known.iter().copied());
    if let Some(best) = best {
        d.labels[0].1 = format!("did you mean `{best}`?");
        d = d.with_help(format!("did you mean `{best}`?"));
    }
    (d, best)
}

/// Turns a TOML syntax error into a diagnostic. toml's messages already name what was
/// expected (`unclosed table, expected `]``); the few that do not get it added.
pub(crate) fn syntax_error(source: &SourceFile, error: &toml::de::Error) -> Diagnostic {
    let span = error.span().unwrap_or(0..0);
    let message = one_line(error.message());
    if let Some((span, message)) = too_many_key_parts(source, error) {
        return Diagnostic::at("inventory::syntax", source, span, message, "this key");
    }
    if message == "duplicate key" {
        let key = source.text.get(span.clone()).unwrap_or("");
        return Diagnostic::at(
            "inventory::syntax",
            source,
            span,
            format!(
                "invalid TOML: duplicate key `{}`: expected each key once in a table",
                shown(key)
            ),
            "defined again here",
        );
    }
    Diagnostic::at(
        "inventory::syntax",
        source,
        span,
        format!("invalid TOML: {message}"),
        message,
    )
}

/// toml's parser gives up on a dotted key of [`MAX_KEY_PARTS`] parts or more with a bare
/// "recursion limit" and no place: the key (the first line with that many dots before its
/// `=`, or in its header) and a message saying what is expected.
pub(crate) fn too_many_key_parts(
    source: &SourceFile,
    error: &toml::de::Error,
) -> Option<(Range<usize>, String)> {
    if error.message().trim() != "recursion limit" || error.span().is_some_and(|s| !s.is_empty()) {
        return None;
    }
    let text = &*source.text;
    let mut start = 0;
    let span = text.split_inclusive('\n').find_map(|line| {
        let here = start;
        start += line.len();
        let key = line.split('=').next().unwrap_or("");
        (key.matches('.').count() + 1 >= MAX_KEY_PARTS).then(|| here..here + key.trim_end().len())
    })?;
    Some((
        span,
        format!(
            "invalid TOML: a dotted key of {MAX_KEY_PARTS} parts or more: expected fewer parts (toml's nesting limit)"
        ),
    ))
}

/// The nesting toml's parser allows, a dotted key's parts included.
const MAX_KEY_PARTS: usize = 80;

/// Where a deserialization error points inside a table.
struct Located<'t, 'i> {
    /// The key of the table that holds the bad value.
    key: &'t str,
    /// The bad value itself.
    value: &'t DeValue<'i>,
    /// True when the value is an element of the key's array.
    element: bool,
}

/// Finds the key whose value (or array element) has exactly this span.
fn locate<'t, 'i>(table: &'t DeTable<'i>, span: &Range<usize>) -> Option<Located<'t, 'i>> {
    for (key, value) in table {
        if value.span() == *span {
            return Some(Located {
                key: key.get_ref(),
                value: value.get_ref(),
                element: false,
            });
        }
        if let DeValue::Array(items) = value.get_ref()
            && let Some(item) = items.iter().find(|item| item.span() == *span)
        {
            return Some(Located {
                key: key.get_ref(),
                value: item.get_ref(),
                element: true,
            });
        }
    }
    None
}

/// What a key accepts, in words, for "expected …".
fn expected_for(key: &str, element: bool) -> Option<&'static str> {
    Some(match (key, element) {
        ("port", _) => "a port number, an integer from 1 to 65535",
        ("groups", false) => "an array of group names such as [\"eu\"]",
        ("groups", true) => "a group name (a string)",
        ("hosts", false) => "an array of host names such as [\"web-1\"]",
        ("hosts", true) => "a host name (a string)",
        ("vars", false) => "a table such as { model = \"gpt-4o\" }",
        ("become", _) => "the string \"sudo\" or \"none\"",
        ("connect_timeout" | "command_timeout", _) => "a duration string such as \"10s\"",
        ("address", _) => "a string: an IP address or DNS name",
        ("user", _) => "a string: the SSH login user",
        ("identity" | "known_hosts", _) => "a string: a file path",
        ("jump", _) => "a string: the name of another host",
        _ => return None,
    })
}

/// Turns a deserialization error inside one table (a wrong type, a number out of range) into
/// a diagnostic naming the key, the value found and what the key accepts.
fn type_error(
    source: &SourceFile,
    owner: &str,
    table: &DeTable<'_>,
    table_span: Range<usize>,
    error: &toml::de::Error,
) -> Diagnostic {
    let span = error.span().unwrap_or(table_span);
    let message = one_line(error.message());
    let Some(at) = locate(table, &span) else {
        // Not a value of this table (should not happen): keep serde's words, reworded.
        let (found, expected) = split_serde_message(&message);
        return Diagnostic::at(
            "inventory::wrong-type",
            source,
            span,
            format!("wrong type in {owner}: found {found}, expected {expected}"),
            format!("expected {expected}"),
        );
    };
    let literal = source.text.get(span.clone());
    let found = describe(at.value, literal);
    let expected = expected_for(at.key, at.element)
        .map_or_else(|| split_serde_message(&message).1, str::to_string);
    let key = shown(at.key);
    let element = if at.element { "an element of " } else { "" };
    let out_of_range =
        message.starts_with("invalid value") && matches!(at.value, DeValue::Integer(_));
    let text = if out_of_range {
        format!("{element}`{key}` in {owner} is out of range: found {found}, expected {expected}")
    } else {
        format!("wrong type for {element}`{key}` in {owner}: found {found}, expected {expected}")
    };
    let mut d = Diagnostic::at(
        "inventory::wrong-type",
        source,
        span,
        text,
        format!("expected {expected}"),
    );
    match at.value {
        DeValue::String(s) if at.key == "port" && s.trim().parse::<u16>().is_ok() => {
            d = d.with_help(format!(
                "write the number without quotes: `port = {}`",
                s.trim()
            ));
        }
        DeValue::String(s) if matches!(at.key, "groups" | "hosts") && !at.element => {
            d = d.with_help(format!("write an array: `{} = [{:?}]`", at.key, shown(s)));
        }
        _ => {}
    }
    d
}

/// "the string \"22\"", "the integer 70000", "an array": the value as found, short.
fn describe(value: &DeValue<'_>, literal: Option<&str>) -> String {
    let literal = literal.map_or_else(String::new, |l| shorten(l.trim()));
    match value {
        DeValue::String(s) => {
            let cut: String = s.chars().take(40).collect();
            let more = if cut.len() < s.len() { "…" } else { "" };
            format!("the string {cut:?}{more}")
        }
        DeValue::Integer(_) => format!("the integer {literal}"),
        DeValue::Float(_) => format!("the float {literal}"),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date-time {d}"),
        DeValue::Array(items) if items.is_empty() => "an empty array".to_string(),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// At most 40 characters of `text` on one line, with `…` when cut.
fn shorten(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    shown(&out).into_owned()
}

/// serde's "invalid type: string \"22\", expected u16" as (found, expected) in drover's words.
fn split_serde_message(message: &str) -> (String, String) {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .unwrap_or(message);
    let (found, expected) = rest
        .rsplit_once(", expected ")
        .unwrap_or((rest, "another value"));
    let expected = match expected {
        "u16" => "an integer from 1 to 65535".to_string(),
        "a sequence" => "an array".to_string(),
        "a map" => "a table".to_string(),
        e if e.starts_with("struct ") => "a table".to_string(),
        e => e.to_string(),
    };
    (found.to_string(), expected)
}

/// Messages go on one line after `path:line:col:`.
fn one_line(message: &str) -> String {
    message.trim().replace('\n', "; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Diagnostic> {
        let mut problems = Diagnostics::default();
        let _ = parse_file(SourceFile::new("fleet.toml", text), &mut problems);
        problems.sort();
        problems.0
    }

    #[test]
    fn every_unknown_key_of_every_table_is_reported() {
        let found = problems(
            "[hosts.a]\naddress = \"x\"\nprot = 22\nusr = \"me\"\n[tenants.t]\nhost = [\"a\"]\n[host.b]\n",
        );
        let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(found.len(), 4, "{messages:#?}");
        assert!(
            messages[0].starts_with("unknown key `prot` in host `a`: expected one of `address`")
        );
        assert_eq!(found[0].help.as_deref(), Some("did you mean `port`?"));
        assert!(messages[1].starts_with("unknown key `usr` in host `a`"));
        assert!(messages[2].starts_with("unknown key `host` in tenant `t`"));
        assert_eq!(
            messages[3],
            "unknown key `host` at the top level: expected one of `defaults`, `hosts`, `tenants`"
        );
    }

    #[test]
    fn a_wrong_type_names_the_key_the_value_and_the_expectation() {
        let found = problems("[hosts.a]\nport = \"22\"\n");
        assert_eq!(
            found[0].message,
            "wrong type for `port` in host `a`: found the string \"22\", expected a port number, an integer from 1 to 65535"
        );
        assert_eq!(found[0].labels[0].0, 17..21);
        assert_eq!(
            found[0].help.as_deref(),
            Some("write the number without quotes: `port = 22`")
        );

        let found = problems("[hosts.a]\nport = 70000\n");
        assert!(
            found[0]
                .message
                .starts_with("`port` in host `a` is out of range: found the integer 70000")
        );

        let found = problems("[tenants.t]\nhosts = [\"a\", 1]\n");
        assert_eq!(
            found[0].message,
            "wrong type for an element of `hosts` in tenant `t`: found the integer 1, expected a host name (a string)"
        );

        let found = problems("[hosts]\na = \"1.2.3.4\"\n");
        assert_eq!(
            found[0].message,
            "wrong type for host `a`: found the string \"1.2.3.4\", expected a table such as `[hosts.a]`"
        );
    }

    #[test]
    fn duplicate_keys_are_named() {
        let found = problems("[hosts.a]\naddress = \"x\"\naddress = \"y\"\n");
        assert_eq!(
            found[0].message,
            "invalid TOML: duplicate key `address`: expected each key once in a table"
        );
    }

    #[test]
    fn every_known_key_is_accepted_by_its_table() {
        // The key lists above and the serde structs must agree.
        let text = "[defaults]\nuser = \"u\"\nidentity = \"i\"\nknown_hosts = \"k\"\nport = 1\nbecome = \"sudo\"\n\
                    connect_timeout = \"1s\"\ncommand_timeout = \"1s\"\nsecrets_command = \"pass show x\"\n\
                    [hosts.a]\naddress = \"x\"\nport = 1\nuser = \"u\"\nidentity = \"i\"\ngroups = []\njump = \"a\"\n\
                    become = \"none\"\nconnect_timeout = \"1s\"\ncommand_timeout = \"1s\"\n\
                    [tenants.t]\nhosts = [\"a\"]\nport = 2\nvars = {}\n";
        let mut found = Diagnostics::default();
        let file = parse_file(SourceFile::new("f.toml", text), &mut found).unwrap();
        assert!(found.is_empty(), "{}", found.render(false));
        assert_eq!(file.raw.hosts.len(), 1);
        assert_eq!(file.raw.tenants.len(), 1);
        assert!(
            text.matches(" = ").count()
                >= DEFAULTS_KEYS.len() + HOST_KEYS.len() + TENANT_KEYS.len()
        );
    }
}

//! Semantic checks over parsed inventory files: every problem is collected, none stops
//! the others, and each names its file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics, clipped, shown};
use super::duration;
use super::inventory::{Defaults, ParsedFile, RawHost, parse_become, resolve_path};
use super::secrets::validate_secrets_command;
use super::source::SourceFile;

mod tenants;
use tenants::check_tenants;

/// Result of [`check`]: the problems, and the defaults merged over all files.
pub(crate) struct Checked {
    pub(crate) problems: Diagnostics,
    pub(crate) defaults: Defaults,
}

/// True for names drover accepts for hosts, groups and tenants: `[a-z][a-z0-9-]*`, at most
/// 63 characters. They end up in unit names, user names, paths and shell words.
#[must_use]
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
        && name.len() <= 63
}

/// The closest candidate to `found`, if any is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    found: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(found, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

struct Context<'a> {
    problems: Diagnostics,
    /// host name → (file, name span, raw host), for hosts whose table could be read.
    hosts: BTreeMap<&'a str, (&'a SourceFile, Range<usize>, &'a RawHost)>,
    /// Every host name defined, readable table or not: a reference to any of them is fine.
    defined: Defined<'a>,
}

/// Runs every semantic check over the parsed files.
pub(crate) fn check(files: &[ParsedFile]) -> Checked {
    let mut cx = Context {
        problems: Diagnostics::default(),
        hosts: BTreeMap::new(),
        defined: BTreeMap::new(),
    };
    let defaults = merge_defaults(&mut cx, files);
    collect_hosts(&mut cx, files);
    check_jumps(&mut cx);
    check_tenants(&mut cx, files);
    Checked {
        problems: cx.problems,
        defaults,
    }
}

/// What is wrong with a name that is not an identifier, as "found …".
fn name_problem(name: &str) -> Option<String> {
    if is_identifier(name) {
        return None;
    }
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Some("an empty name".into());
    };
    let describe = |c: char| match c {
        ' ' => "a space".to_string(),
        c if c.is_uppercase() => format!("uppercase `{c}`"),
        c if c.is_control() || c.is_whitespace() => format!("the character {:?}", c),
        c => format!("`{c}`"),
    };
    if !first.is_ascii_lowercase() {
        return Some(match first {
            '0'..='9' => format!("a leading digit `{first}`"),
            c if c.is_uppercase() => format!("a leading uppercase `{c}`"),
            c => format!("a leading {}", describe(c)),
        });
    }
    if let Some(bad) = chars.find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
        return Some(describe(bad));
    }
    Some(format!("{} characters", name.chars().count()))
}

const NAME_RULE: &str =
    "lowercase letters, digits and `-`, starting with a letter, at most 63 characters";

fn check_name(cx: &mut Context<'_>, source: &SourceFile, name: &Spanned<String>, what: &str) {
    let Some(problem) = name_problem(name.get_ref()) else {
        return;
    };
    let found = shown(name.get_ref());
    let suggestion: String = name
        .get_ref()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut d = Diagnostic::at(
        "inventory::unsafe-name",
        source,
        name.span(),
        format!(
            "{what} name `{found}` is not a safe identifier: found {problem}, expected {NAME_RULE}"
        ),
        format!("expected {NAME_RULE}"),
    );
    let help = "names end up in unit names, user names, paths and shell words";
    d = if is_identifier(&suggestion) {
        d.with_help(format!("{help}; try `{suggestion}`"))
    } else {
        d.with_help(help)
    };
    cx.problems.push(d);
}

fn check_duration(
    cx: &mut Context<'_>,
    source: &SourceFile,
    field: Option<&Spanned<String>>,
    key: &str,
) {
    if let Some(value) = field
        && let Err(expected) = duration::parse(value.get_ref())
    {
        cx.problems.push(Diagnostic::at(
            "inventory::bad-duration",
            source,
            value.span(),
            format!("invalid duration for `{key}`: {expected}"),
            "expected a duration such as \"10s\", \"1m30s\" or \"500ms\"",
        ));
    }
}

fn check_become(cx: &mut Context<'_>, source: &SourceFile, field: Option<&Spanned<String>>) {
    if let Some(value) = field
        && parse_become(value.get_ref()).is_none()
    {
        cx.problems.push(
            Diagnostic::at(
                "inventory::bad-become",
                source,
                value.span(),
                format!(
                    "invalid `become`: found {:?}, expected \"sudo\" or \"none\"",
                    clipped(value.get_ref())
                ),
                "expected \"sudo\" or \"none\"",
            )
            .with_help("\"sudo\" runs steps with `sudo -n`; \"none\" runs them as the login user"),
        );
    }
}

fn check_port(cx: &mut Context<'_>, source: &SourceFile, field: Option<&Spanned<u16>>) {
    if let Some(port) = field
        && *port.get_ref() == 0
    {
        cx.problems.push(Diagnostic::at(
            "inventory::bad-port",
            source,
            port.span(),
            "invalid port: found 0, expected a port number from 1 to 65535",
            "expected a port from 1 to 65535",
        ));
    }
}

fn merge_defaults(cx: &mut Context<'_>, files: &[ParsedFile]) -> Defaults {
    let mut out = Defaults::default();
    // Which file first set each key: a second setting elsewhere is ambiguous.
    let mut seen: HashMap<&'static str, (&SourceFile, Range<usize>)> = HashMap::new();
    for file in files {
        let Some(raw) = &file.raw.defaults else {
            continue;
        };
        let source = &file.source;
        let mut note = |cx: &mut Context<'_>, key: &'static str, span: Range<usize>| {
            if let Some((first, first_span)) = seen.get(key) {
                let (line, col) = first.line_col(first_span.start);
                cx.problems.push(
                    Diagnostic::at(
                        "inventory::duplicate-default",
                        source,
                        span,
                        format!(
                            "`defaults.{key}` is set twice: first at {}:{line}:{col}; expected it once across all inventory files",
                            first.path.display()
                        ),
                        "set again here",
                    )
                    .with_help("keep one of them"),
                );
            } else {
                seen.insert(key, (source, span));
            }
        };
        if let Some(v) = &raw.user {
            note(cx, "user", v.span());
            out.user = Some(v.get_ref().clone());
        }
        if let Some(v) = &raw.identity {
            note(cx, "identity", v.span());
            out.identity = Some(resolve_path(source, v.get_ref()));
        }
        if let Some(v) = &raw.known_hosts {
            note(cx, "known_hosts", v.span());
            out.known_hosts = Some(resolve_path(source, v.get_ref()));
        }
        if let Some(v) = &raw.port {
            note(cx, "port", v.span());
            out.port = Some(*v.get_ref());
        }
        if let Some(v) = &raw.r#become {
            note(cx, "become", v.span());
            out.r#become = parse_become(v.get_ref());
        }
        if let Some(v) = &raw.connect_timeout {
            note(cx, "connect_timeout", v.span());
            out.connect_timeout = duration::parse(v.get_ref()).ok();
        }
        if let Some(v) = &raw.command_timeout {
            note(cx, "command_timeout", v.span());
            out.command_timeout = duration::parse(v.get_ref()).ok();
        }
        if let Some(v) = &raw.secrets_command {
            note(cx, "secrets_command", v.span());
            out.secrets_command = validate_secrets_command(
                source,
                Some(v),
                "inventory::empty-secrets-command",
                &mut cx.problems,
            );
        }
        check_port(cx, source, raw.port.as_ref());
        check_become(cx, source, raw.r#become.as_ref());
        check_duration(cx, source, raw.connect_timeout.as_ref(), "connect_timeout");
        check_duration(cx, source, raw.command_timeout.as_ref(), "command_timeout");
    }
    out
}

fn is_plausible_address(address: &str) -> bool {
    !address.is_empty()
        && address.len() <= 253
        && !address.starts_with('-')
        && address
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
}

/// A name defined a second time (hosts, tenants): the message names the first place.
fn defined_twice(
    code: &'static str,
    what: &str,
    source: &SourceFile,
    name: &Spanned<String>,
    first: &SourceFile,
    first_span: &Range<usize>,
) -> Diagnostic {
    let (line, col) = first.line_col(first_span.start);
    Diagnostic::at(
        code,
        source,
        name.span(),
        format!(
            "{what} `{}` is defined twice: first at {}:{line}:{col}; expected each {what} name once across all inventory files",
            shown(name.get_ref()),
            first.path.display()
        ),
        "defined again here",
    )
    .with_help(format!("rename or remove one of the two `{}` {what}s", shown(name.get_ref())))
}

/// Registers a host name; false (after reporting it) when it was already defined.
fn define_host<'a>(
    cx: &mut Context<'a>,
    source: &'a SourceFile,
    name: &'a Spanned<String>,
) -> bool {
    check_name(cx, source, name, "host");
    match first_definition(
        &mut cx.defined,
        source,
        name,
        "host",
        "inventory::duplicate-host",
    ) {
        Some(d) => {
            cx.problems.push(d);
            false
        }
        None => true,
    }
}

/// Names seen so far, each with where it was first defined.
pub(super) type Defined<'a> = BTreeMap<&'a str, (&'a SourceFile, Range<usize>)>;

/// Records `name` as a `what` (host, tenant) defined at `source`; when it already was,
/// the "defined twice" problem `code` instead.
pub(super) fn first_definition<'a>(
    seen: &mut Defined<'a>,
    source: &'a SourceFile,
    name: &'a Spanned<String>,
    what: &str,
    code: &'static str,
) -> Option<Diagnostic> {
    if let Some((first, first_span)) = seen.get(name.get_ref().as_str()) {
        return Some(defined_twice(code, what, source, name, first, first_span));
    }
    seen.insert(name.get_ref(), (source, name.span()));
    None
}

fn collect_hosts<'a>(cx: &mut Context<'a>, files: &'a [ParsedFile]) {
    for file in files {
        let source = &file.source;
        for name in &file.raw.broken_hosts {
            define_host(cx, source, name);
        }
        for (name, host) in &file.raw.hosts {
            if !define_host(cx, source, name) {
                continue;
            }
            match &host.address {
                // An unknown key already reported as "did you mean `address`?" says it all.
                None if host.misspelled.contains(&"address") => {}
                None => cx.problems.push(
                    Diagnostic::at(
                        "inventory::missing-address",
                        source,
                        name.span(),
                        format!(
                            "host `{}` has no `address`: expected `address = \"...\"` with the IP address or DNS name to connect to",
                            shown(name.get_ref())
                        ),
                        "expected an `address` in this table",
                    )
                    .with_help("add e.g. `address = \"203.0.113.10\"` to the host's table"),
                ),
                Some(address) if !is_plausible_address(address.get_ref()) => {
                    cx.problems.push(Diagnostic::at(
                        "inventory::bad-address",
                        source,
                        address.span(),
                        format!(
                            "invalid address for host `{}`: found {:?}, expected an IPv4 or IPv6 address or a DNS name",
                            shown(name.get_ref()),
                            clipped(address.get_ref())
                        ),
                        "expected an IP address or DNS name",
                    ));
                }
                Some(_) => {}
            }
            for group in &host.groups {
                check_name(cx, source, group, "group");
            }
            check_port(cx, source, host.port.as_ref());
            check_become(cx, source, host.r#become.as_ref());
            check_duration(cx, source, host.connect_timeout.as_ref(), "connect_timeout");
            check_duration(cx, source, host.command_timeout.as_ref(), "command_timeout");
            cx.hosts.insert(name.get_ref(), (source, name.span(), host));
        }
    }
}

/// `what` (e.g. "tenant `acme` is placed on") names an unknown host; `not` is never suggested.
fn unknown_host(
    cx: &Context<'_>,
    source: &SourceFile,
    name: &Spanned<String>,
    what: &str,
    not: Option<&str>,
) -> Diagnostic {
    let mut d = Diagnostic::at(
        "inventory::unknown-host",
        source,
        name.span(),
        format!(
            "{what} unknown host `{}`: expected the name of a host defined as `[hosts.NAME]`",
            shown(name.get_ref())
        ),
        "unknown host",
    );
    let candidates = cx.defined.keys().copied().filter(|&h| Some(h) != not);
    if let Some(best) = did_you_mean(name.get_ref(), candidates) {
        d.labels[0].1 = format!("did you mean `{best}`?");
        d = d.with_help(format!("did you mean `{best}`?"));
    }
    d
}

fn check_jumps(cx: &mut Context<'_>) {
    let mut found = Vec::new();
    // Hosts already named in a reported cycle: each cycle is reported once, at its first host.
    let mut in_reported_cycle: Vec<&str> = Vec::new();
    for (&name, (source, _, host)) in &cx.hosts {
        let Some(jump) = &host.jump else { continue };
        if !cx.defined.contains_key(jump.get_ref().as_str()) {
            let what = format!("host `{}` jumps through", shown(name));
            found.push(unknown_host(cx, source, jump, &what, Some(name)));
            continue;
        }
        if jump.get_ref() == name {
            found.push(
                Diagnostic::at(
                    "inventory::jump-cycle",
                    source,
                    jump.span(),
                    format!(
                        "host `{}` jumps through itself: expected another host, or no `jump`",
                        shown(name)
                    ),
                    "the host itself",
                )
                .with_help("a jump chain must end at a host reached directly"),
            );
            continue;
        }
        if in_reported_cycle.contains(&name) {
            continue;
        }
        // Walk the chain; it ends at a host without `jump`, or comes back to some host.
        let mut chain = vec![name];
        let mut current = jump.get_ref().as_str();
        while !chain.contains(&current) {
            chain.push(current);
            match cx.hosts.get(current).and_then(|(_, _, h)| h.jump.as_ref()) {
                Some(next) => current = next.get_ref(),
                None => break,
            }
        }
        if current != name {
            // No loop, or a loop further on that does not include this host (reported there).
            continue;
        }
        in_reported_cycle.extend(chain.iter().copied());
        chain.push(name);
        let shown_chain: Vec<String> = chain.iter().map(|h| format!("`{}`", shown(h))).collect();
        let mut d = Diagnostic::at(
            "inventory::jump-cycle",
            source,
            jump.span(),
            format!(
                "jump hosts form a cycle {}: expected a chain that ends at a host reached directly",
                shown_chain.join(" → ")
            ),
            format!("`{}` jumps through `{}`", shown(name), shown(chain[1])),
        )
        .with_help("remove `jump` from one of these hosts");
        for pair in chain[1..].windows(2) {
            if let Some((other_source, _, other)) = cx.hosts.get(pair[0])
                && let (true, Some(other_jump)) =
                    (std::ptr::eq(*other_source, *source), &other.jump)
            {
                d = d.with_label(
                    other_jump.span(),
                    format!("`{}` jumps through `{}`", shown(pair[0]), shown(pair[1])),
                );
            }
        }
        found.push(d);
    }
    for d in found {
        cx.problems.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_lowercase_words_with_dashes() {
        assert!(is_identifier("web-1"));
        assert!(is_identifier("a"));
        assert!(!is_identifier("Web"));
        assert!(!is_identifier("1web"));
        assert!(!is_identifier("web_1"));
        assert!(!is_identifier("web 1"));
        assert!(!is_identifier("a;rm"));
        assert!(!is_identifier(""));
        assert!(!is_identifier(&"a".repeat(64)));
    }

    #[test]
    fn did_you_mean_picks_a_close_name_or_none() {
        assert_eq!(did_you_mean("prot", ["address", "port"]), Some("port"));
        assert_eq!(did_you_mean("zzz", ["address", "port"]), None);
    }
}

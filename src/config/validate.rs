//! Semantic checks over parsed inventory files: every problem is collected, none stops
//! the others, and each names its file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::duration;
use super::inventory::{Defaults, ParsedFile, RawHost, parse_become, resolve_path};
use super::source::SourceFile;

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

/// Turns a TOML parse or type error into a diagnostic, rewording serde's messages into
/// "found … expected …" form and adding a did-you-mean for unknown keys.
pub(crate) fn toml_error(source: &SourceFile, error: &toml::de::Error) -> Diagnostic {
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim().to_string();
    if let Some((field, expected)) = parse_unknown_field(&message) {
        let mut d = Diagnostic::at(
            "inventory::unknown-key",
            source,
            span,
            format!("unknown key `{field}`"),
            format!("expected one of {}", expected.join(", ")),
        );
        let names = expected.iter().map(|e| e.trim_matches('`'));
        if let Some(best) = did_you_mean(&field, names) {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        return d;
    }
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return Diagnostic::at(
            "inventory::missing-key",
            source,
            span,
            format!("missing key `{field}`"),
            format!("expected `{field}` in this table"),
        );
    }
    let code = if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "inventory::wrong-type"
    } else {
        "inventory::syntax"
    };
    Diagnostic::at(code, source, span, format!("invalid TOML: {message}"), message)
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .trim_start_matches(',')
        .trim()
        .trim_start_matches("expected one of ")
        .trim_start_matches("expected ")
        .split(", ")
        .filter(|s| s.starts_with('`'))
        .map(str::to_string)
        .collect();
    Some((field.to_string(), expected))
}

struct Context<'a> {
    problems: Diagnostics,
    /// host name → (file, name span, raw host)
    hosts: BTreeMap<&'a str, (&'a SourceFile, Range<usize>, &'a RawHost)>,
}

/// Runs every semantic check over the parsed files.
pub(crate) fn check(files: &[ParsedFile]) -> Checked {
    let mut cx = Context {
        problems: Diagnostics::default(),
        hosts: BTreeMap::new(),
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

fn check_name(cx: &mut Context<'_>, source: &SourceFile, name: &Spanned<String>, what: &str) {
    if !is_identifier(name.get_ref()) {
        let found = name.get_ref();
        let suggestion: String = found
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let mut d = Diagnostic::at(
            "inventory::unsafe-name",
            source,
            name.span(),
            format!("{what} name `{found}` is not a safe identifier"),
            "expected lowercase letters, digits and `-`, starting with a letter (at most 63)",
        );
        if is_identifier(&suggestion) {
            d = d.with_help(format!("names end up in unit names, users and paths; try `{suggestion}`"));
        }
        cx.problems.push(d);
    }
}

fn check_duration(cx: &mut Context<'_>, source: &SourceFile, field: Option<&Spanned<String>>, key: &str) {
    if let Some(value) = field {
        if let Err(expected) = duration::parse(value.get_ref()) {
            cx.problems.push(Diagnostic::at(
                "inventory::bad-duration",
                source,
                value.span(),
                format!("`{key}` is not a valid duration"),
                expected,
            ));
        }
    }
}

fn check_become(cx: &mut Context<'_>, source: &SourceFile, field: Option<&Spanned<String>>) {
    if let Some(value) = field {
        if parse_become(value.get_ref()).is_none() {
            cx.problems.push(Diagnostic::at(
                "inventory::bad-become",
                source,
                value.span(),
                format!("`become` must be \"sudo\" or \"none\", found \"{}\"", value.get_ref()),
                "expected \"sudo\" or \"none\"",
            ));
        }
    }
}

fn check_port(cx: &mut Context<'_>, source: &SourceFile, field: Option<&Spanned<u16>>) {
    if let Some(port) = field {
        if *port.get_ref() == 0 {
            cx.problems.push(Diagnostic::at(
                "inventory::bad-port",
                source,
                port.span(),
                "port 0 is not a usable port",
                "expected a port from 1 to 65535",
            ));
        }
    }
}

fn merge_defaults(cx: &mut Context<'_>, files: &[ParsedFile]) -> Defaults {
    let mut out = Defaults::default();
    // Which file first set each key: a second setting elsewhere is ambiguous.
    let mut seen: HashMap<&'static str, (&SourceFile, Range<usize>)> = HashMap::new();
    for file in files {
        let Some(raw) = &file.raw.defaults else { continue };
        let source = &file.source;
        let mut note = |cx: &mut Context<'_>, key: &'static str, span: Range<usize>| {
            if let Some((first, first_span)) = seen.get(key) {
                let (line, col) = first.line_col(first_span.start);
                cx.problems.push(
                    Diagnostic::at(
                        "inventory::duplicate-default",
                        source,
                        span,
                        format!("`defaults.{key}` is set in more than one inventory file"),
                        "set again here",
                    )
                    .with_help(format!(
                        "first set at {}:{line}:{col}; keep one",
                        first.path.display()
                    )),
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

fn collect_hosts<'a>(cx: &mut Context<'a>, files: &'a [ParsedFile]) {
    for file in files {
        let source = &file.source;
        for (name, host) in &file.raw.hosts {
            check_name(cx, source, name, "host");
            if let Some((first, first_span, _)) = cx.hosts.get(name.get_ref().as_str()) {
                let (line, col) = first.line_col(first_span.start);
                let help = format!("first defined at {}:{line}:{col}", first.path.display());
                cx.problems.push(
                    Diagnostic::at(
                        "inventory::duplicate-host",
                        source,
                        name.span(),
                        format!("host `{}` is defined twice", name.get_ref()),
                        "defined again here",
                    )
                    .with_help(help),
                );
                continue;
            }
            match &host.address {
                None => cx.problems.push(
                    Diagnostic::at(
                        "inventory::missing-address",
                        source,
                        name.span(),
                        format!("host `{}` has no `address`", name.get_ref()),
                        "expected an `address = \"...\"` key in this table",
                    )
                    .with_help("add the IP address or DNS name drover should connect to"),
                ),
                Some(address) if !is_plausible_address(address.get_ref()) => {
                    cx.problems.push(Diagnostic::at(
                        "inventory::bad-address",
                        source,
                        address.span(),
                        format!("`{}` is not a valid address", address.get_ref()),
                        "expected an IPv4/IPv6 address or a DNS name",
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

fn unknown_host(cx: &Context<'_>, source: &SourceFile, name: &Spanned<String>, role: &str) -> Diagnostic {
    let mut d = Diagnostic::at(
        "inventory::unknown-host",
        source,
        name.span(),
        format!("{role} `{}` is not a host in the inventory", name.get_ref()),
        "expected the name of a `[hosts.NAME]` table",
    );
    if let Some(best) = did_you_mean(name.get_ref(), cx.hosts.keys().copied()) {
        d = d.with_help(format!("did you mean `{best}`?"));
    }
    d
}

fn check_jumps(cx: &mut Context<'_>) {
    let mut found = Vec::new();
    for (&name, (source, _, host)) in &cx.hosts {
        let Some(jump) = &host.jump else { continue };
        if !cx.hosts.contains_key(jump.get_ref().as_str()) {
            found.push(unknown_host(cx, source, jump, "jump host"));
            continue;
        }
        // Walk the chain; a chain longer than the host count must loop.
        let mut chain = vec![name];
        let mut current = jump.get_ref().as_str();
        loop {
            if chain.contains(&current) {
                if current == name {
                    chain.push(current);
                    found.push(
                        Diagnostic::at(
                            "inventory::jump-cycle",
                            source,
                            jump.span(),
                            format!("jump hosts form a cycle: {}", chain.join(" → ")),
                            "this jump leads back to the host itself",
                        )
                        .with_help("a jump chain must end at a host reached directly"),
                    );
                }
                break;
            }
            chain.push(current);
            match cx.hosts.get(current).and_then(|(_, _, h)| h.jump.as_ref()) {
                Some(next) => current = next.get_ref(),
                None => break,
            }
        }
    }
    for d in found {
        cx.problems.push(d);
    }
}

fn check_tenants(cx: &mut Context<'_>, files: &[ParsedFile]) {
    let mut seen: HashMap<&str, (&SourceFile, Range<usize>)> = HashMap::new();
    // host → list of (tenant, port, file, span) for port overlap checks
    let mut ports: HashMap<&str, Vec<(&str, u16, &SourceFile, Range<usize>)>> = HashMap::new();
    for file in files {
        let source = &file.source;
        for (name, tenant) in &file.raw.tenants {
            check_name(cx, source, name, "tenant");
            if let Some((first, first_span)) = seen.get(name.get_ref().as_str()) {
                let (line, col) = first.line_col(first_span.start);
                cx.problems.push(
                    Diagnostic::at(
                        "inventory::duplicate-tenant",
                        source,
                        name.span(),
                        format!("tenant `{}` is defined twice", name.get_ref()),
                        "defined again here",
                    )
                    .with_help(format!("first defined at {}:{line}:{col}", first.path.display())),
                );
                continue;
            }
            seen.insert(name.get_ref(), (source, name.span()));
            if tenant.hosts.is_empty() {
                cx.problems.push(Diagnostic::at(
                    "inventory::tenant-without-hosts",
                    source,
                    name.span(),
                    format!("tenant `{}` is placed on no host", name.get_ref()),
                    "expected `hosts = [\"...\"]` naming at least one host",
                ));
            }
            check_port(cx, source, tenant.port.as_ref());
            if let Some(port) = &tenant.port {
                if *port.get_ref() == u16::MAX {
                    cx.problems.push(Diagnostic::at(
                        "inventory::bad-port",
                        source,
                        port.span(),
                        "tenant port 65535 leaves no room for the green color on port + 1",
                        "expected a port from 1 to 65534",
                    ));
                }
            }
            let mut listed: Vec<&str> = Vec::new();
            for host in &tenant.hosts {
                if listed.contains(&host.get_ref().as_str()) {
                    cx.problems.push(Diagnostic::at(
                        "inventory::duplicate-placement",
                        source,
                        host.span(),
                        format!("host `{}` is listed twice for tenant `{}`", host.get_ref(), name.get_ref()),
                        "expected each host once",
                    ));
                    continue;
                }
                listed.push(host.get_ref());
                if !cx.hosts.contains_key(host.get_ref().as_str()) {
                    let d = unknown_host(cx, source, host, "host");
                    cx.problems.push(d);
                    continue;
                }
                if let Some(port) = &tenant.port {
                    ports.entry(host.get_ref()).or_default().push((
                        name.get_ref(),
                        *port.get_ref(),
                        source,
                        port.span(),
                    ));
                }
            }
        }
    }
    check_port_overlaps(cx, &ports);
}

/// Each tenant uses `port` (blue) and `port + 1` (green) on every host it is placed on.
fn check_port_overlaps(
    cx: &mut Context<'_>,
    ports: &HashMap<&str, Vec<(&str, u16, &SourceFile, Range<usize>)>>,
) {
    let mut reported: Vec<(&str, &str)> = Vec::new();
    let mut hosts: Vec<&&str> = ports.keys().collect();
    hosts.sort();
    for host in hosts {
        let mut list = ports[*host].clone();
        list.sort_by_key(|(_, port, _, _)| *port);
        for pair in list.windows(2) {
            let (a, a_port, _, a_span) = &pair[0];
            let (b, b_port, b_source, b_span) = &pair[1];
            if u32::from(*b_port) > u32::from(*a_port) + 1 || reported.contains(&(a, b)) {
                continue;
            }
            reported.push((a, b));
            let mut d = Diagnostic::at(
                "inventory::port-overlap",
                b_source,
                b_span.clone(),
                format!(
                    "tenants `{a}` and `{b}` both use port {} on host `{host}`",
                    if a_port == b_port { *a_port } else { *b_port }
                ),
                format!("`{b}` uses ports {b_port}-{} here", b_port.saturating_add(1)),
            )
            .with_help(format!(
                "each tenant takes two ports (blue = port, green = port + 1); `{a}` has {a_port}-{}; pick a port at least 2 apart",
                a_port.saturating_add(1)
            ));
            if std::ptr::eq(pair[0].2, *b_source) {
                d = d.with_label(a_span.clone(), format!("`{a}` uses ports {a_port}-{} here", a_port.saturating_add(1)));
            }
            cx.problems.push(d);
        }
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
    fn unknown_field_messages_split_into_field_and_expectations() {
        let (field, expected) =
            parse_unknown_field("unknown field `prot`, expected one of `address`, `port`").unwrap();
        assert_eq!(field, "prot");
        assert_eq!(expected, ["`address`", "`port`"]);
        assert_eq!(did_you_mean("prot", ["address", "port"]), Some("port"));
        assert_eq!(did_you_mean("zzz", ["address", "port"]), None);
    }
}

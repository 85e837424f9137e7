//! Tenants: names, placements on known hosts, ports with room for green, and ports that
//! overlap on a shared host.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::{Context, Defined, check_name, check_port, first_definition, unknown_host};
use crate::config::diagnostic::{Diagnostic, shown};
use crate::config::inventory::{ParsedFile, RawTenant};
use crate::config::source::SourceFile;

/// Where a tenant with a port sits: (tenant, port, file, port span).
type Placement<'a> = (&'a str, u16, &'a SourceFile, Range<usize>);

pub(super) fn check_tenants<'a>(cx: &mut Context<'a>, files: &'a [ParsedFile]) {
    let mut seen = Defined::new();
    let mut define = |cx: &mut Context<'_>, source: &'a SourceFile, name: &'a Spanned<String>| {
        check_name(cx, source, name, "tenant");
        let twice = first_definition(
            &mut seen,
            source,
            name,
            "tenant",
            "inventory::duplicate-tenant",
        );
        twice.map(|d| cx.problems.push(d)).is_none()
    };
    // host → tenants with a port on it, for the overlap check
    let mut ports: BTreeMap<&str, Vec<Placement<'a>>> = BTreeMap::new();
    for file in files {
        let source = &file.source;
        for name in &file.raw.broken_tenants {
            define(cx, source, name);
        }
        for (name, tenant) in &file.raw.tenants {
            if !define(cx, source, name) {
                continue;
            }
            check_tenant_hosts(cx, source, name, tenant);
            check_tenant_port(cx, source, tenant);
            place_tenant(cx, source, name, tenant, &mut ports);
        }
    }
    check_port_overlaps(cx, &ports);
}

/// A tenant must be placed on at least one host.
fn check_tenant_hosts(
    cx: &mut Context<'_>,
    source: &SourceFile,
    name: &Spanned<String>,
    tenant: &RawTenant,
) {
    let tenant_name = shown(name.get_ref());
    match &tenant.hosts {
        None if tenant.misspelled.contains(&"hosts") => {}
        None => cx.problems.push(Diagnostic::at(
            "inventory::tenant-without-hosts",
            source,
            name.span(),
            format!(
                "tenant `{tenant_name}` is placed on no host: expected `hosts = [\"...\"]` naming at least one host"
            ),
            "expected a `hosts` array in this table",
        )),
        Some(hosts) if hosts.get_ref().is_empty() => cx.problems.push(Diagnostic::at(
            "inventory::tenant-without-hosts",
            source,
            hosts.span(),
            format!(
                "tenant `{tenant_name}` is placed on no host: found an empty `hosts` array, expected at least one host name"
            ),
            "expected at least one host name",
        )),
        Some(_) => {}
    }
}

/// A tenant's port, with room for green on `port + 1`.
fn check_tenant_port(cx: &mut Context<'_>, source: &SourceFile, tenant: &RawTenant) {
    check_port(cx, source, tenant.port.as_ref());
    if let Some(port) = &tenant.port
        && *port.get_ref() == u16::MAX
    {
        cx.problems.push(Diagnostic::at(
            "inventory::bad-port",
            source,
            port.span(),
            "invalid tenant port: found 65535, which leaves no room for the green color on port + 1; expected a port from 1 to 65534",
            "expected a port from 1 to 65534",
        ));
    }
}

/// Each host a tenant lists: once, known, and (with a port) recorded for the overlap check.
fn place_tenant<'a>(
    cx: &mut Context<'a>,
    source: &'a SourceFile,
    name: &'a Spanned<String>,
    tenant: &'a RawTenant,
    ports: &mut BTreeMap<&'a str, Vec<Placement<'a>>>,
) {
    let tenant_name = shown(name.get_ref());
    let mut listed: Vec<&str> = Vec::new();
    for host in tenant.host_list() {
        if listed.contains(&host.get_ref().as_str()) {
            cx.problems.push(Diagnostic::at(
                "inventory::duplicate-placement",
                source,
                host.span(),
                format!(
                    "host `{}` is listed twice for tenant `{tenant_name}`: expected each host once",
                    shown(host.get_ref())
                ),
                "listed again here",
            ));
            continue;
        }
        listed.push(host.get_ref());
        if !cx.defined.contains_key(host.get_ref().as_str()) {
            let what = format!("tenant `{tenant_name}` is placed on");
            let d = unknown_host(cx, source, host, &what, None);
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

/// Each tenant uses `port` (blue) and `port + 1` (green) on every host it is placed on.
fn check_port_overlaps(cx: &mut Context<'_>, ports: &BTreeMap<&str, Vec<Placement<'_>>>) {
    let mut reported: Vec<(&str, &str)> = Vec::new();
    for (host, list) in ports {
        let mut list = list.clone();
        list.sort_by_key(|(_, port, _, _)| *port);
        for pair in list.windows(2) {
            let (a, a_port, a_source, a_span) = &pair[0];
            let (b, b_port, b_source, b_span) = &pair[1];
            if u32::from(*b_port) > u32::from(*a_port) + 1 || reported.contains(&(a, b)) {
                continue;
            }
            reported.push((a, b));
            let (a_shown, b_shown, host_shown) = (shown(a), shown(b), shown(host));
            let range = |p: u16| format!("{p}-{}", u32::from(p) + 1);
            let mut d = Diagnostic::at(
                "inventory::port-overlap",
                b_source,
                b_span.clone(),
                format!(
                    "tenants `{a_shown}` and `{b_shown}` both use port {} on host `{host_shown}`: `{a_shown}` takes {} and `{b_shown}` takes {}; expected ports at least 2 apart",
                    b_port,
                    range(*a_port),
                    range(*b_port),
                ),
                format!("`{b_shown}` takes {} here", range(*b_port)),
            );
            let free = (u32::from(*a_port) + 2..u32::from(u16::MAX)).find(|&p| {
                list.iter()
                    .all(|(t, q, _, _)| t == b || p.abs_diff(u32::from(*q)) >= 2)
            });
            let mut help = "each tenant takes two ports: blue = port, green = port + 1".to_string();
            if let Some(free) = free {
                help.push_str(&format!("; `port = {free}` is free on `{host_shown}`"));
            }
            d = d.with_help(help);
            if std::ptr::eq(*a_source, *b_source) {
                d = d.with_label(
                    a_span.clone(),
                    format!("`{a_shown}` takes {} here", range(*a_port)),
                );
            }
            cx.problems.push(d);
        }
    }
}

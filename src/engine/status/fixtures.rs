//! Shared test fixtures: captured status script output, a host, its tenants.

use std::time::Duration;

use super::{HostReport, TargetReport, TenantQuery, evaluate_host, parse_status};
use crate::config::{Host, Inventory, SourceFile};

pub(super) const HEALTHY: &str = include_str!("../../../tests/fixtures/status/healthy.txt");
pub(super) const PROBLEMS: &str = include_str!("../../../tests/fixtures/status/problems.txt");

pub(super) fn host(name: &str) -> Host {
    let text = format!("[hosts.{name}]\naddress = \"10.0.0.1\"\n");
    Inventory::from_sources(vec![SourceFile::new("t.toml", text)])
        .unwrap()
        .hosts
        .remove(0)
}

pub(super) fn tenants() -> Vec<TenantQuery> {
    [("acme", 8100), ("umbrella", 8130), ("hooli", 8140)]
        .iter()
        .map(|(n, p)| TenantQuery {
            name: (*n).into(),
            port: Some(*p),
        })
        .collect()
}

pub(super) fn judge(text: &str) -> (HostReport, Vec<TargetReport>) {
    evaluate_host(
        &host("host-1"),
        &tenants(),
        &parse_status(text),
        Duration::from_millis(5),
    )
}

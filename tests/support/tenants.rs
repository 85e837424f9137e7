//! The tenants of a test fleet's generated inventory, and their targets.

use super::fleet::Fleet;

/// A tenant of a fleet inventory: where it is placed and its agent's (blue) port.
#[derive(Debug, Clone)]
pub(crate) struct Tenant {
    pub(crate) name: String,
    pub(crate) hosts: Vec<String>,
    pub(crate) port: u16,
}

/// The tenants of the fleet's inventory, by name: the order drover's plans, batches
/// and reports use.
pub(crate) fn fleet_tenants(fleet: &Fleet) -> Vec<Tenant> {
    let text = std::fs::read_to_string(fleet.inventory()).expect("fleet inventory");
    let table: toml::Table = toml::from_str(&text).expect("fleet inventory is TOML");
    let tenants = table
        .get("tenants")
        .and_then(toml::Value::as_table)
        .expect("the fleet inventory has [tenants.*]");
    let mut tenants: Vec<Tenant> = tenants
        .iter()
        .map(|(name, t)| Tenant {
            name: name.clone(),
            hosts: t["hosts"]
                .as_array()
                .expect("hosts")
                .iter()
                .map(|h| h.as_str().expect("host name").to_owned())
                .collect(),
            port: u16::try_from(t["port"].as_integer().expect("port")).expect("port fits"),
        })
        .collect();
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    tenants
}

/// The tenant called `name`; fails the test when the fleet has none.
#[track_caller]
pub(crate) fn tenant<'a>(tenants: &'a [Tenant], name: &str) -> &'a Tenant {
    match tenants.iter().find(|t| t.name == name) {
        Some(t) => t,
        None => panic!("the fleet has no tenant {name}: {tenants:?}"),
    }
}

/// Every target as (tenant, host), in drover's plan (= rollout) order.
pub(crate) fn targets(tenants: &[Tenant]) -> Vec<(String, String)> {
    tenants
        .iter()
        .flat_map(|t| t.hosts.iter().map(move |h| (t.name.clone(), h.clone())))
        .collect()
}

/// Every target as `tenant@host` (the key of drover's reports), in plan order.
pub(crate) fn target_keys(tenants: &[Tenant]) -> Vec<String> {
    targets(tenants)
        .into_iter()
        .map(|(tenant, host)| format!("{tenant}@{host}"))
        .collect()
}

//! Which (tenant, host) pairs a selection means for a deploy.
//!
//! A target is selected when its tenant passes the tenant filter (`--tenant`, if any)
//! AND its host passes the host filter (`--host`/`--group`, if any) AND the `--limit`
//! globs (if any). `--all` alone selects every target. So `--tenant acme --host web-1`
//! means acme's target on web-1 only.

use std::collections::{HashMap, HashSet};

use crate::config::select::{SelectError, Selection};
use crate::config::{Host, Inventory, Tenant};

/// The selected targets, in tenant then host order.
///
/// # Errors
/// An empty selection, an unknown name, a bad glob, or no target matching.
pub fn targets<'a>(
    inventory: &'a Inventory,
    selection: &Selection,
) -> Result<Vec<(&'a Tenant, &'a Host)>, SelectError> {
    // Validates names and globs, and gives the hosts that pass host-side selectors.
    let host_side = Selection {
        tenants: Vec::new(),
        ..selection.clone()
    };
    let hosts: Vec<&Host> = if host_side.is_empty() {
        if selection.is_empty() {
            return Err(SelectError::Nothing);
        }
        selection.hosts(inventory)?;
        inventory.hosts.iter().collect()
    } else {
        host_side.hosts(inventory)?
    };
    // By name, so a fleet's placements are matched in linear time.
    let hosts: HashMap<&str, &Host> = hosts.into_iter().map(|h| (h.name.as_str(), h)).collect();
    let hosts = &hosts;
    let tenants: HashSet<&str> = selection.tenants.iter().map(String::as_str).collect();
    let selected: Vec<(&Tenant, &Host)> = inventory
        .tenants
        .iter()
        .filter(|t| tenants.is_empty() || tenants.contains(t.name.as_str()))
        .flat_map(|t| {
            t.hosts
                .iter()
                .filter_map(move |h| hosts.get(h.as_str()).map(|h| (t, *h)))
        })
        .collect();
    if selected.is_empty() {
        return Err(SelectError::Empty);
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    fn inventory() -> Inventory {
        Inventory::from_sources(vec![SourceFile::new(
            "f.toml",
            "[hosts.a]\naddress = \"10.0.0.1\"\ngroups = [\"eu\"]\n[hosts.b]\naddress = \"10.0.0.2\"\n\
             [tenants.t1]\nhosts = [\"a\", \"b\"]\n[tenants.t2]\nhosts = [\"b\"]\n",
        )])
        .unwrap()
    }

    fn pairs(s: &Selection) -> Vec<String> {
        let inv = inventory();
        targets(&inv, s)
            .unwrap()
            .iter()
            .map(|(t, h)| format!("{}@{}", t.name, h.name))
            .collect()
    }

    #[test]
    fn tenant_and_host_selectors_intersect_for_targets() {
        assert_eq!(
            pairs(&Selection {
                all: true,
                ..Selection::default()
            }),
            ["t1@a", "t1@b", "t2@b"]
        );
        assert_eq!(
            pairs(&Selection {
                tenants: vec!["t1".into()],
                ..Selection::default()
            }),
            ["t1@a", "t1@b"]
        );
        assert_eq!(
            pairs(&Selection {
                hosts: vec!["b".into()],
                ..Selection::default()
            }),
            ["t1@b", "t2@b"]
        );
        assert_eq!(
            pairs(&Selection {
                tenants: vec!["t1".into()],
                groups: vec!["eu".into()],
                ..Selection::default()
            }),
            ["t1@a"]
        );
        let inv = inventory();
        assert_eq!(
            targets(&inv, &Selection::default()).err(),
            Some(SelectError::Nothing)
        );
        let s = Selection {
            tenants: vec!["t2".into()],
            hosts: vec!["a".into()],
            ..Selection::default()
        };
        assert_eq!(targets(&inv, &s).err(), Some(SelectError::Empty));
    }
}

//! A generated fleet shared by the benches: 10,000 hosts and 30,000 tenants, written as
//! the TOML an operator would keep in `inventory/fleet.toml` (built here, not checked in).
//!
//! Shape, like a real fleet: hosts `node-1` … `node-10000` in three regions and 50 racks,
//! a few on another SSH port or user, some behind a jump host; tenant `i` lives on host
//! `i / 3` (three tenants per host), every tenth also on a second host and every
//! hundredth on a third (33,300 placements, 3.33 tenants per host). Every tenant has a
//! port (two apart from the others on each of its hosts) and a few template variables.

use std::fmt::Write as _;
use std::path::PathBuf;

use drover::config::{Inventory, SourceFile};

/// Hosts in the fleet.
pub(crate) const HOSTS: usize = 10_000;
/// Tenants in the fleet.
pub(crate) const TENANTS: usize = 30_000;
/// (tenant, host) pairs: 30,000 homes + 3,000 second hosts + 300 third hosts.
pub(crate) const PLACEMENTS: usize = 33_300;

const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const MODELS: [&str; 4] = ["gpt-4o", "claude-sonnet", "llama-3-70b", "mistral-large"];

/// Host indices (0-based) tenant `i` is placed on.
fn placement(i: usize) -> Vec<usize> {
    let home = i / 3;
    let mut hosts = vec![home];
    if i % 10 == 9 {
        hosts.push((home + HOSTS / 2) % HOSTS);
    }
    if i % 100 == 99 {
        hosts.push((home + HOSTS / 4) % HOSTS);
    }
    hosts
}

/// The inventory file's text (3.9 MB, 190,000 lines).
pub(crate) fn fleet_toml() -> String {
    let mut out = String::with_capacity(4 << 20);
    out.push_str(
        "[defaults]\nuser = \"deploy\"\nidentity = \"~/.ssh/id_ed25519\"\n\
         known_hosts = \"known_hosts\"\nconnect_timeout = \"10s\"\ncommand_timeout = \"5m\"\n\n",
    );
    for h in 1..=HOSTS {
        let region = REGIONS[h % 3];
        let _ = writeln!(
            out,
            "[hosts.node-{h}]\naddress = \"10.{}.{}.{}\"",
            h / 65_536,
            (h / 256) % 256,
            h % 256
        );
        if h <= 20 {
            let _ = writeln!(
                out,
                "groups = [\"{region}\", \"rack-{}\", \"canary\"]",
                h % 50
            );
        } else {
            let _ = writeln!(out, "groups = [\"{region}\", \"rack-{}\"]", h % 50);
        }
        if h.is_multiple_of(500) {
            out.push_str("port = 2222\nuser = \"root\"\nbecome = \"none\"\n");
        }
        if h % 1000 == 7 && h != 7 {
            out.push_str("jump = \"node-7\"\n");
        }
        if h % 250 == 3 {
            out.push_str("connect_timeout = \"30s\"\n");
        }
        out.push('\n');
    }
    for i in 0..TENANTS {
        let hosts: Vec<String> = placement(i)
            .into_iter()
            .map(|h| format!("\"node-{}\"", h + 1))
            .collect();
        // Slots mod 64: the tenants sharing a host never land on neighbouring slots.
        let port = 8100 + 2 * (i % 64);
        let tier = if i.is_multiple_of(7) {
            ", tier = \"premium\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "[tenants.acme-{i}]\nhosts = [{}]\nport = {port}\nvars = {{ model = \"{}\", replicas = {}{tier} }}\n",
            hosts.join(", "),
            MODELS[i % MODELS.len()],
            1 + i % 3,
        );
    }
    out
}

/// The fleet's inventory file as a source, as `drover check` would read it.
pub(crate) fn fleet_source() -> SourceFile {
    SourceFile::new("inventory/fleet.toml", fleet_toml())
}

/// The fleet, loaded and checked.
///
/// # Panics
/// When the generated inventory does not pass `drover check` (a bug in this file).
pub(crate) fn fleet() -> Inventory {
    let inventory = match Inventory::from_sources(vec![fleet_source()]) {
        Ok(inv) => inv,
        Err(d) => panic!("generated inventory does not check:\n{}", d.render(false)),
    };
    assert_eq!(inventory.hosts.len(), HOSTS);
    assert_eq!(inventory.tenants.len(), TENANTS);
    assert_eq!(
        inventory
            .tenants
            .iter()
            .map(|t| t.hosts.len())
            .sum::<usize>(),
        PLACEMENTS
    );
    inventory
}

/// A path inside the repository, whatever directory the bench runs from.
pub(crate) fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

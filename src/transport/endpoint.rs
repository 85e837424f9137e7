//! Where and as whom to connect: an inventory host merged with `~/.ssh/config`.
//!
//! Precedence, most specific first: the inventory host's own keys, the inventory's
//! `[defaults]`, then `~/.ssh/config` (queried with the host's `address`, as if the
//! user typed `ssh <address>`), then built-in defaults (port 22, the local user).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Host, Inventory};

/// A resolved connection target, possibly reached through a chain of jump hosts.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name for messages: the inventory name, or the ssh_config alias of a jump host.
    pub name: String,
    /// Address to connect to (after ssh_config `HostName`).
    pub address: String,
    /// Port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Identity files to offer, in order (the inventory's first).
    pub identities: Vec<PathBuf>,
    /// The jump host to go through, if any.
    pub jump: Option<Box<Endpoint>>,
    /// Deadline for TCP connect + handshake + authentication.
    pub connect_timeout: Duration,
}

/// The user's `~/.ssh/config`, read once.
#[derive(Debug, Default, Clone)]
pub struct SshConfig {
    text: Option<String>,
}

impl SshConfig {
    /// Reads the file; a missing file is an empty config.
    #[must_use]
    pub fn load(path: Option<&Path>) -> Self {
        let text = path.and_then(|p| std::fs::read_to_string(p).ok());
        // Options before the first `Host` line apply to every host, exactly like a
        // leading `Host *`; russh-config wants the explicit form.
        Self {
            text: text.map(|t| format!("Host *\n{t}")),
        }
    }

    /// The user's default file, `~/.ssh/config`.
    #[must_use]
    pub fn default_path() -> Option<PathBuf> {
        dirs::home_dir().map(|h| h.join(".ssh").join("config"))
    }

    fn query(&self, host: &str) -> Option<russh_config::HostConfig> {
        let text = self.text.as_deref()?;
        russh_config::parse(text, host).ok().map(|c| c.host_config)
    }
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

fn default_identities() -> Vec<PathBuf> {
    let Some(home) = dirs::home_dir() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|f| home.join(".ssh").join(f))
        .filter(|p| p.exists())
        .collect()
}

fn expand_tilde(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// How deep jump chains may go before we call it a loop (ssh_config can loop too).
const MAX_JUMP_DEPTH: usize = 8;

/// Resolves an inventory host into an endpoint.
#[must_use]
pub fn resolve(host: &Host, inventory: &Inventory, ssh: &SshConfig) -> Endpoint {
    resolve_depth(host, inventory, ssh, 0)
}

fn resolve_depth(host: &Host, inventory: &Inventory, ssh: &SshConfig, depth: usize) -> Endpoint {
    let config = ssh.query(&host.address).unwrap_or_default();
    let mut identities: Vec<PathBuf> = host.identity.iter().cloned().collect();
    identities.extend(
        config
            .identity_file
            .iter()
            .flatten()
            .map(|p| expand_tilde(p)),
    );
    identities.extend(default_identities());
    dedup(&mut identities);
    let jump = match (&host.jump, depth < MAX_JUMP_DEPTH) {
        (Some(name), true) => inventory
            .host(name)
            .map(|j| Box::new(resolve_depth(j, inventory, ssh, depth + 1))),
        (None, true) => config
            .proxy_jump
            .as_deref()
            .filter(|j| !j.eq_ignore_ascii_case("none"))
            .and_then(|chain| {
                resolve_proxy_jump(chain, host.connect_timeout, inventory, ssh, depth + 1)
            }),
        _ => None,
    };
    Endpoint {
        name: host.name.clone(),
        address: config
            .hostname
            .clone()
            .unwrap_or_else(|| host.address.clone()),
        port: host.port.or(config.port).unwrap_or(22),
        user: host.user.clone().or(config.user).unwrap_or_else(local_user),
        identities,
        jump,
        connect_timeout: host.connect_timeout,
    }
}

/// `ProxyJump a,b` means: reach `a`, then `b` through `a`, then the target through `b`.
fn resolve_proxy_jump(
    chain: &str,
    timeout: Duration,
    inventory: &Inventory,
    ssh: &SshConfig,
    depth: usize,
) -> Option<Box<Endpoint>> {
    let mut previous: Option<Box<Endpoint>> = None;
    for hop in chain.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let mut endpoint = match inventory.host(hop) {
            Some(host) => resolve_depth(host, inventory, ssh, MAX_JUMP_DEPTH),
            None => resolve_alias(hop, timeout, ssh, depth),
        };
        endpoint.jump = previous.take();
        previous = Some(Box::new(endpoint));
    }
    previous
}

/// A jump host given as `[user@]host[:port]` in ssh_config, not in the inventory.
fn resolve_alias(spec: &str, timeout: Duration, ssh: &SshConfig, _depth: usize) -> Endpoint {
    let (user, rest) = match spec.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (alias, port) = match rest.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse().ok()),
        _ => (rest, None),
    };
    let config = ssh.query(alias).unwrap_or_default();
    let mut identities: Vec<PathBuf> = config
        .identity_file
        .iter()
        .flatten()
        .map(|p| expand_tilde(p))
        .collect();
    identities.extend(default_identities());
    dedup(&mut identities);
    Endpoint {
        name: alias.to_string(),
        address: config.hostname.unwrap_or_else(|| alias.to_string()),
        port: port.or(config.port).unwrap_or(22),
        user: user.or(config.user).unwrap_or_else(local_user),
        identities,
        jump: None,
        connect_timeout: timeout,
    }
}

fn dedup(paths: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    fn inventory(text: &str) -> Inventory {
        Inventory::from_sources(vec![SourceFile::new("/inv/fleet.toml", text)]).unwrap()
    }

    fn ssh(text: &str) -> SshConfig {
        SshConfig {
            text: Some(format!("Host *\n{text}")),
        }
    }

    #[test]
    fn ssh_config_fills_what_the_inventory_leaves_open() {
        let inv = inventory("[hosts.web-1]\naddress = \"web1.internal\"\n");
        let cfg = ssh(
            "Host web1.internal\n  HostName 10.0.0.5\n  User ops\n  Port 2200\n  IdentityFile /keys/ops\n",
        );
        let e = resolve(inv.host("web-1").unwrap(), &inv, &cfg);
        assert_eq!(
            (e.address.as_str(), e.port, e.user.as_str()),
            ("10.0.0.5", 2200, "ops")
        );
        assert_eq!(
            e.identities.first().map(PathBuf::as_path),
            Some(Path::new("/keys/ops"))
        );
    }

    #[test]
    fn the_inventory_wins_over_ssh_config() {
        let inv = inventory(
            "[defaults]\nuser = \"deploy\"\nidentity = \"/keys/deploy\"\n[hosts.web-1]\naddress = \"10.0.0.5\"\nport = 22\n",
        );
        let cfg = ssh("User ops\nPort 2200\nIdentityFile /keys/ops\n");
        let e = resolve(inv.host("web-1").unwrap(), &inv, &cfg);
        assert_eq!((e.port, e.user.as_str()), (22, "deploy"));
        assert_eq!(
            e.identities[..2],
            [PathBuf::from("/keys/deploy"), PathBuf::from("/keys/ops")]
        );
    }

    #[test]
    fn inventory_jumps_and_ssh_config_proxy_jump_chains_resolve() {
        let inv = inventory(
            "[hosts.bastion]\naddress = \"10.0.0.1\"\n[hosts.web-1]\naddress = \"10.0.0.5\"\njump = \"bastion\"\n[hosts.web-2]\naddress = \"10.0.0.6\"\n",
        );
        let cfg = ssh("Host 10.0.0.6\n  ProxyJump ops@outer:2201,bastion\n");
        let e = resolve(inv.host("web-1").unwrap(), &inv, &cfg);
        assert_eq!(e.jump.as_ref().unwrap().address, "10.0.0.1");
        let e = resolve(inv.host("web-2").unwrap(), &inv, &cfg);
        let first = e.jump.as_ref().unwrap();
        assert_eq!(first.name, "bastion");
        let outer = first.jump.as_ref().unwrap();
        assert_eq!(
            (outer.address.as_str(), outer.port, outer.user.as_str()),
            ("outer", 2201, "ops")
        );
    }
}

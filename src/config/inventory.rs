//! The inventory: hosts, groups and tenants, read from one or more TOML files.
//!
//! Parsing keeps spans (`toml::Spanned`) on everything a later check may point at;
//! [`Inventory::load`] runs every check and only then builds the resolved view.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::secrets::SecretsCommand;
use super::source::{ReadError, SourceFile};
use super::{parse, validate};

/// Default time allowed for TCP connect + SSH handshake + authentication.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a single remote command may run before it is ended.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The keys `[defaults]` accepts, in the order messages list them.
pub(crate) const DEFAULTS_KEYS: &[&str] = &[
    "user",
    "identity",
    "known_hosts",
    "port",
    "become",
    "connect_timeout",
    "command_timeout",
    "secrets_command",
];
/// The keys a `[hosts.NAME]` table accepts.
pub(crate) const HOST_KEYS: &[&str] = &[
    "address",
    "port",
    "user",
    "identity",
    "groups",
    "jump",
    "become",
    "connect_timeout",
    "command_timeout",
];
/// The keys a `[tenants.NAME]` table accepts.
pub(crate) const TENANT_KEYS: &[&str] = &["hosts", "port", "vars"];
/// The tables an inventory file may hold.
pub(crate) const FILE_KEYS: &[&str] = &["defaults", "hosts", "tenants"];

/// `[defaults]`: values every host inherits unless it sets its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub(crate) user: Option<Spanned<String>>,
    pub(crate) identity: Option<Spanned<String>>,
    pub(crate) known_hosts: Option<Spanned<String>>,
    pub(crate) port: Option<Spanned<u16>>,
    pub(crate) r#become: Option<Spanned<String>>,
    pub(crate) connect_timeout: Option<Spanned<String>>,
    pub(crate) command_timeout: Option<Spanned<String>>,
    pub(crate) secrets_command: Option<Spanned<String>>,
}

/// `[hosts.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) port: Option<Spanned<u16>>,
    pub(crate) user: Option<Spanned<String>>,
    pub(crate) identity: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) groups: Vec<Spanned<String>>,
    pub(crate) jump: Option<Spanned<String>>,
    pub(crate) r#become: Option<Spanned<String>>,
    pub(crate) connect_timeout: Option<Spanned<String>>,
    pub(crate) command_timeout: Option<Spanned<String>>,
    /// Known keys that an unknown key in this table probably meant (already reported), so
    /// checks on them stay quiet instead of reporting the same typo twice.
    #[serde(skip)]
    pub(crate) misspelled: Vec<&'static str>,
}

/// `[tenants.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    /// The hosts it is placed on; the outer span is the whole array.
    pub(crate) hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) port: Option<Spanned<u16>>,
    #[serde(default)]
    pub(crate) vars: toml::Table,
    /// As [`RawHost::misspelled`].
    #[serde(skip)]
    pub(crate) misspelled: Vec<&'static str>,
}

impl RawTenant {
    /// The host names listed, empty when `hosts` is absent.
    pub(crate) fn host_list(&self) -> &[Spanned<String>] {
        self.hosts.as_ref().map_or(&[], |h| h.get_ref().as_slice())
    }
}

/// One inventory file as written. Built table by table (see `parse.rs`) so that one bad
/// table does not hide the problems of the others.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    pub(crate) defaults: Option<RawDefaults>,
    pub(crate) hosts: BTreeMap<Spanned<String>, RawHost>,
    pub(crate) tenants: BTreeMap<Spanned<String>, RawTenant>,
    /// Hosts whose table had a wrong-typed value (already reported): they exist, so
    /// references to them are not reported again, but nothing else is checked on them.
    pub(crate) broken_hosts: Vec<Spanned<String>>,
    /// Tenants whose table had a wrong-typed value, as `broken_hosts`.
    pub(crate) broken_tenants: Vec<Spanned<String>>,
}

/// A parsed file with the source it came from.
#[derive(Debug)]
pub(crate) struct ParsedFile {
    pub(crate) source: SourceFile,
    pub(crate) raw: RawFile,
}

/// How steps become root on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Become {
    /// `sudo -n` (never prompts; a missing right is an error).
    Sudo,
    /// Run as the login user (e.g. when logging in as root).
    None,
}

/// A server reachable over SSH, with every default already applied.
#[derive(Debug, Clone)]
pub struct Host {
    /// Inventory name, a safe identifier.
    pub name: String,
    /// Address or DNS name to connect to.
    pub address: String,
    /// SSH port; `None` leaves it to `~/.ssh/config`, then 22.
    pub port: Option<u16>,
    /// Login user; `None` leaves it to `~/.ssh/config`, then the local user.
    pub user: Option<String>,
    /// Private key file; `None` uses the agent and `~/.ssh/config`/default keys.
    pub identity: Option<PathBuf>,
    /// Group labels.
    pub groups: Vec<String>,
    /// Name of the inventory host to jump through.
    pub jump: Option<String>,
    /// How steps become root.
    pub r#become: Become,
    /// Time allowed for TCP connect, handshake and authentication.
    pub connect_timeout: Duration,
    /// Time a single command may run.
    pub command_timeout: Duration,
    /// Tenants placed on this host, in name order.
    pub tenants: Vec<String>,
}

/// One customer's agent instance, placed on one or more hosts.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Inventory name, a safe identifier.
    pub name: String,
    /// Hosts it runs on.
    pub hosts: Vec<String>,
    /// Base port: blue listens on `port`, green on `port + 1`.
    pub port: Option<u16>,
    /// Free-form variables for templates.
    pub vars: toml::Table,
}

/// The whole, validated inventory.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Hosts in natural name order (`web-2` before `web-10`).
    pub hosts: Vec<Host>,
    /// Tenants in natural name order.
    pub tenants: Vec<Tenant>,
    /// Extra known_hosts files named by the inventory, consulted before `~/.ssh/known_hosts`.
    pub known_hosts: Vec<PathBuf>,
    /// `[defaults] secrets_command`: where secret values come from unless the playbook
    /// or `--secrets-cmd` says otherwise.
    pub secrets_command: Option<SecretsCommand>,
    host_index: HashMap<String, usize>,
    tenant_index: HashMap<String, usize>,
}

impl Inventory {
    /// Reads, parses and validates the given files, reporting every problem found.
    ///
    /// # Errors
    /// All diagnostics, sorted by file and position.
    pub fn load(paths: &[PathBuf]) -> Result<Self, Diagnostics> {
        let mut files = Vec::with_capacity(paths.len());
        let mut problems = Diagnostics::default();
        for path in paths {
            match std::fs::read(path) {
                Ok(bytes) => files.push((path.clone(), bytes)),
                Err(e) => problems.push(unreadable(path, &ReadError::Io(e))),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Self::from_bytes(files)
    }

    /// Parses and validates files already read (path, contents), which may not be UTF-8:
    /// a file that is not is reported at its first invalid byte.
    ///
    /// # Errors
    /// All diagnostics, sorted by file and position.
    pub fn from_bytes(files: Vec<(PathBuf, Vec<u8>)>) -> Result<Self, Diagnostics> {
        let mut sources = Vec::with_capacity(files.len());
        let mut problems = Diagnostics::default();
        for (path, bytes) in files {
            match SourceFile::from_bytes(&path, bytes) {
                Ok(source) => sources.push(source),
                Err(e) => problems.push(unreadable(&path, &e)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Self::from_sources(sources)
    }

    /// Parses and validates already-read sources (tests, fuzzing, generated inventories).
    ///
    /// # Errors
    /// All diagnostics, sorted by file and position.
    pub fn from_sources(sources: Vec<SourceFile>) -> Result<Self, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut files = Vec::with_capacity(sources.len());
        let mut unreadable = false;
        for source in sources {
            match parse::parse_file(source, &mut problems) {
                Some(file) => files.push(file),
                None => unreadable = true,
            }
        }
        // Cross-file checks (unknown hosts, port overlaps, duplicates) need every file; with
        // one unparsable they would only report its hosts as missing.
        if !unreadable {
            let checked = validate::check(&files);
            problems.0.extend(checked.problems.0);
            if problems.is_empty() {
                return Ok(build(&files, &checked.defaults));
            }
        }
        problems.sort();
        Err(problems)
    }

    /// The host of that name.
    #[must_use]
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.host_index.get(name).map(|&i| &self.hosts[i])
    }

    /// The tenant of that name.
    #[must_use]
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenant_index.get(name).map(|&i| &self.tenants[i])
    }

    /// Every group label in use, sorted.
    #[must_use]
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .hosts
            .iter()
            .flat_map(|h| h.groups.iter().map(String::as_str))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }
}

fn unreadable(path: &Path, error: &ReadError) -> Diagnostic {
    match error {
        ReadError::NotUtf8 { file, at, byte } => Diagnostic::at(
            "inventory::unreadable",
            file,
            at.clone(),
            "cannot read inventory file: it is not UTF-8 text; expected a readable UTF-8 TOML file",
            format!("byte 0x{byte:02x} is not UTF-8"),
        )
        .with_help("save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"),
        ReadError::Io(error) => Diagnostic::about_file(
            "inventory::unreadable",
            path,
            format!("cannot read inventory file: {error}; expected a readable UTF-8 TOML file"),
        )
        .with_help("pass inventory files with -i FILE, or put them in inventory/*.toml"),
    }
}

/// Defaults merged over all files, already parsed and with paths resolved.
#[derive(Debug, Default)]
pub(crate) struct Defaults {
    pub(crate) user: Option<String>,
    pub(crate) identity: Option<PathBuf>,
    pub(crate) known_hosts: Option<PathBuf>,
    pub(crate) port: Option<u16>,
    pub(crate) r#become: Option<Become>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) secrets_command: Option<SecretsCommand>,
}

/// Expands `~/` and makes relative paths relative to the inventory file that names them.
pub(crate) fn resolve_path(source: &SourceFile, text: &str) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    let path = Path::new(text);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        source.dir().join(path)
    }
}

pub(crate) fn parse_become(text: &str) -> Option<Become> {
    match text {
        "sudo" => Some(Become::Sudo),
        "none" => Some(Become::None),
        _ => None,
    }
}

fn build(files: &[ParsedFile], defaults: &Defaults) -> Inventory {
    let mut hosts = Vec::new();
    let mut tenants = Vec::new();
    for file in files {
        for (name, raw) in &file.raw.hosts {
            hosts.push(build_host(&file.source, name, raw, defaults));
        }
        for (name, raw) in &file.raw.tenants {
            tenants.push(build_tenant(name, raw));
        }
    }
    hosts.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    tenants.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let host_index: HashMap<String, usize> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (h.name.clone(), i))
        .collect();
    for tenant in &tenants {
        for host in &tenant.hosts {
            if let Some(&i) = host_index.get(host) {
                hosts[i].tenants.push(tenant.name.clone());
            }
        }
    }
    let tenant_index = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    Inventory {
        hosts,
        tenants,
        known_hosts: defaults.known_hosts.iter().cloned().collect(),
        secrets_command: defaults.secrets_command.clone(),
        host_index,
        tenant_index,
    }
}

/// A validated host table, with the defaults filled in (its tenants are added later).
fn build_host(
    source: &SourceFile,
    name: &Spanned<String>,
    raw: &RawHost,
    defaults: &Defaults,
) -> Host {
    let duration = |field: &Option<Spanned<String>>| {
        field
            .as_ref()
            .and_then(|d| super::duration::parse(d.get_ref()).ok())
    };
    Host {
        name: name.get_ref().clone(),
        address: raw
            .address
            .as_ref()
            .map(|a| a.get_ref().clone())
            .unwrap_or_default(),
        port: raw.port.as_ref().map(|p| *p.get_ref()).or(defaults.port),
        user: raw
            .user
            .as_ref()
            .map(|u| u.get_ref().clone())
            .or_else(|| defaults.user.clone()),
        identity: raw
            .identity
            .as_ref()
            .map(|i| resolve_path(source, i.get_ref()))
            .or_else(|| defaults.identity.clone()),
        groups: raw.groups.iter().map(|g| g.get_ref().clone()).collect(),
        jump: raw.jump.as_ref().map(|j| j.get_ref().clone()),
        r#become: raw
            .r#become
            .as_ref()
            .and_then(|b| parse_become(b.get_ref()))
            .or(defaults.r#become)
            .unwrap_or(Become::Sudo),
        connect_timeout: duration(&raw.connect_timeout)
            .or(defaults.connect_timeout)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        command_timeout: duration(&raw.command_timeout)
            .or(defaults.command_timeout)
            .unwrap_or(DEFAULT_COMMAND_TIMEOUT),
        tenants: Vec::new(),
    }
}

/// A validated tenant table.
fn build_tenant(name: &Spanned<String>, raw: &RawTenant) -> Tenant {
    Tenant {
        name: name.get_ref().clone(),
        hosts: raw
            .host_list()
            .iter()
            .map(|h| h.get_ref().clone())
            .collect(),
        port: raw.port.as_ref().map(|p| *p.get_ref()),
        vars: raw.vars.clone(),
    }
}

/// Orders names so that digit runs compare as numbers: `h2` < `h10`.
#[must_use]
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let order = na
                    .len()
                    .cmp(&nb.len())
                    .then_with(|| na.cmp(nb))
                    .then(da.cmp(&db));
                if order != std::cmp::Ordering::Equal {
                    return order;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn load(text: &str) -> Result<Inventory, Diagnostics> {
        Inventory::from_sources(vec![SourceFile::new("inventory/fleet.toml", text)])
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec!["web-10", "web-2", "web-1", "db", "web-02"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["db", "web-1", "web-2", "web-02", "web-10"]);
    }

    #[test]
    fn defaults_apply_to_hosts_unless_they_override() {
        let inv = load(
            r#"
[defaults]
user = "deploy"
port = 2222
connect_timeout = "3s"
become = "none"
identity = "keys/id"

[hosts.web-1]
address = "127.0.0.1"
groups = ["eu"]

[hosts.web-2]
address = "127.0.0.2"
user = "root"
port = 22
jump = "web-1"

[tenants.acme]
hosts = ["web-1", "web-2"]
port = 8100
vars = { model = "gpt-4o" }
"#,
        )
        .unwrap();
        let web1 = inv.host("web-1").unwrap();
        assert_eq!(web1.user.as_deref(), Some("deploy"));
        assert_eq!(web1.port, Some(2222));
        assert_eq!(web1.connect_timeout, Duration::from_secs(3));
        assert_eq!(web1.r#become, Become::None);
        assert_eq!(
            web1.identity.as_deref(),
            Some(Path::new("inventory/keys/id"))
        );
        assert_eq!(web1.tenants, ["acme"]);
        let web2 = inv.host("web-2").unwrap();
        assert_eq!(web2.user.as_deref(), Some("root"));
        assert_eq!(web2.port, Some(22));
        assert_eq!(web2.jump.as_deref(), Some("web-1"));
        assert_eq!(inv.groups(), ["eu"]);
        assert_eq!(
            inv.tenant("acme").unwrap().vars["model"].as_str(),
            Some("gpt-4o")
        );
    }

    #[test]
    fn several_files_merge_into_one_inventory() {
        let inv = Inventory::from_sources(vec![
            SourceFile::new("a.toml", "[hosts.a]\naddress = \"127.0.0.1\"\n"),
            SourceFile::new(
                "b.toml",
                "[hosts.b]\naddress = \"127.0.0.2\"\n[tenants.t]\nhosts = [\"a\", \"b\"]\n",
            ),
        ])
        .unwrap();
        assert_eq!(inv.hosts.len(), 2);
        assert_eq!(inv.host("a").unwrap().tenants, ["t"]);
    }
}

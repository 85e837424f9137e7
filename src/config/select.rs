//! Selectors: which hosts (and later targets) a command applies to.
//!
//! `--host`, `--group` and `--tenant` each add hosts (a union); `--all` adds every host;
//! `--limit GLOB` then keeps only hosts whose name matches one of the globs (alone, it
//! selects the matching hosts). Nothing selected is an error: drover never falls back
//! to the whole fleet.

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::inventory::{Host, Inventory};
use super::validate::did_you_mean;

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--all`.
    pub all: bool,
    /// `--host NAME`, repeatable.
    pub hosts: Vec<String>,
    /// `--group NAME`, repeatable.
    pub groups: Vec<String>,
    /// `--tenant NAME`, repeatable.
    pub tenants: Vec<String>,
    /// `--limit GLOB`, repeatable.
    pub limits: Vec<String>,
}

/// Why a selection could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    /// No selector at all.
    #[error(
        "no hosts selected: pass --all, --host, --group, --tenant or --limit (drover never defaults to the whole fleet)"
    )]
    Nothing,
    /// A name that is not in the inventory.
    #[error("unknown {kind} `{name}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown {
        /// host, group or tenant
        kind: &'static str,
        /// what was given
        name: String,
        /// the closest known name
        suggestion: Option<String>,
    },
    /// A malformed glob.
    #[error("invalid --limit pattern `{pattern}`: {reason}")]
    BadGlob {
        /// the pattern
        pattern: String,
        /// the parser's message
        reason: String,
    },
    /// The selectors were valid but matched nothing.
    #[error("the selection matches no host")]
    Empty,
}

impl Selection {
    /// True when no selector was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.all
            && self.hosts.is_empty()
            && self.groups.is_empty()
            && self.tenants.is_empty()
            && self.limits.is_empty()
    }

    /// The selected hosts, in inventory (natural name) order.
    ///
    /// # Errors
    /// [`SelectError`] for an empty selection, an unknown name or a bad glob.
    pub fn hosts<'a>(&self, inventory: &'a Inventory) -> Result<Vec<&'a Host>, SelectError> {
        if self.is_empty() {
            return Err(SelectError::Nothing);
        }
        let limit = self.limit_set()?;
        for name in &self.hosts {
            if inventory.host(name).is_none() {
                return Err(unknown(
                    "host",
                    name,
                    inventory.hosts.iter().map(|h| h.name.as_str()),
                ));
            }
        }
        let groups = inventory.groups();
        for name in &self.groups {
            if !groups.contains(&name.as_str()) {
                return Err(unknown("group", name, groups.iter().copied()));
            }
        }
        for name in &self.tenants {
            if inventory.tenant(name).is_none() {
                return Err(unknown(
                    "tenant",
                    name,
                    inventory.tenants.iter().map(|t| t.name.as_str()),
                ));
            }
        }
        let adds_any = self.all
            || !self.hosts.is_empty()
            || !self.groups.is_empty()
            || !self.tenants.is_empty();
        let selected: Vec<&Host> = inventory
            .hosts
            .iter()
            .filter(|h| {
                let added = !adds_any
                    || self.all
                    || self.hosts.contains(&h.name)
                    || h.groups.iter().any(|g| self.groups.contains(g))
                    || h.tenants.iter().any(|t| self.tenants.contains(t));
                added && limit.as_ref().is_none_or(|set| set.is_match(&h.name))
            })
            .collect();
        if selected.is_empty() {
            return Err(SelectError::Empty);
        }
        Ok(selected)
    }

    fn limit_set(&self) -> Result<Option<GlobSet>, SelectError> {
        if self.limits.is_empty() {
            return Ok(None);
        }
        let mut builder = GlobSetBuilder::new();
        for pattern in &self.limits {
            let glob = Glob::new(pattern).map_err(|e| SelectError::BadGlob {
                pattern: pattern.clone(),
                reason: e.kind().to_string(),
            })?;
            builder.add(glob);
        }
        builder.build().map(Some).map_err(|e| SelectError::BadGlob {
            pattern: self.limits.join(" "),
            reason: e.to_string(),
        })
    }
}

fn unknown<'a>(
    kind: &'static str,
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> SelectError {
    SelectError::Unknown {
        kind,
        name: name.to_string(),
        suggestion: did_you_mean(name, known).map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    fn inventory() -> Inventory {
        Inventory::from_sources(vec![SourceFile::new(
            "fleet.toml",
            r#"
[hosts.web-1]
address = "127.0.0.1"
groups = ["eu", "canary"]
[hosts.web-2]
address = "127.0.0.2"
groups = ["eu"]
[hosts.db-1]
address = "127.0.0.3"
groups = ["us"]
[tenants.acme]
hosts = ["web-2", "db-1"]
"#,
        )])
        .unwrap()
    }

    fn names(selection: &Selection) -> Result<Vec<String>, SelectError> {
        let inv = inventory();
        selection
            .hosts(&inv)
            .map(|hs| hs.iter().map(|h| h.name.clone()).collect())
    }

    #[test]
    fn no_selector_selects_nothing_and_says_so() {
        assert_eq!(names(&Selection::default()), Err(SelectError::Nothing));
    }

    #[test]
    fn all_selects_every_host_in_natural_order() {
        let s = Selection {
            all: true,
            ..Selection::default()
        };
        assert_eq!(names(&s).unwrap(), ["db-1", "web-1", "web-2"]);
    }

    #[test]
    fn host_group_and_tenant_selectors_add_up() {
        let s = Selection {
            hosts: vec!["web-1".into()],
            tenants: vec!["acme".into()],
            ..Selection::default()
        };
        assert_eq!(names(&s).unwrap(), ["db-1", "web-1", "web-2"]);
        let s = Selection {
            groups: vec!["canary".into()],
            ..Selection::default()
        };
        assert_eq!(names(&s).unwrap(), ["web-1"]);
    }

    #[test]
    fn limit_narrows_other_selectors_and_selects_alone() {
        let s = Selection {
            groups: vec!["eu".into()],
            limits: vec!["*-2".into()],
            ..Selection::default()
        };
        assert_eq!(names(&s).unwrap(), ["web-2"]);
        let s = Selection {
            limits: vec!["web-*".into()],
            ..Selection::default()
        };
        assert_eq!(names(&s).unwrap(), ["web-1", "web-2"]);
        let s = Selection {
            limits: vec!["nothing*".into()],
            ..Selection::default()
        };
        assert_eq!(names(&s), Err(SelectError::Empty));
    }

    #[test]
    fn unknown_names_are_errors_with_a_suggestion() {
        let s = Selection {
            hosts: vec!["web1".into()],
            ..Selection::default()
        };
        let err = names(&s).unwrap_err();
        assert!(err.to_string().contains("did you mean `web-1`"), "{err}");
        let s = Selection {
            groups: vec!["asia".into()],
            ..Selection::default()
        };
        assert!(matches!(
            names(&s),
            Err(SelectError::Unknown { kind: "group", .. })
        ));
    }
}

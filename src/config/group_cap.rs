//! `--max-per-group PATTERN=N` and `[rollout] max_per_group = { "zone-*" = 1 }`: no
//! batch takes more than N hosts that share a group matching PATTERN (one failure
//! domain — a zone, a rack, a load-balancer pool — loses at most N hosts at once).
//!
//! PATTERN is a glob where `*` matches any run of characters (`zone-*`, `*-pool`);
//! without a `*` it is a prefix (`rack` matches `rack`, `rack-1`, `rack7`). Each
//! matching group is capped on its own: `zone-*=1` allows one host of `zone-a` and
//! one of `zone-b` in the same batch.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::source::SourceFile;

/// A cap on the hosts per matching group in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCap {
    /// glob (`*` = anything) or prefix
    pub pattern: String,
    /// hosts per group per batch, at least 1
    pub max: usize,
}

impl GroupCap {
    /// Whether `group` is one this cap applies to.
    #[must_use]
    pub fn matches(&self, group: &str) -> bool {
        if self.pattern.contains('*') {
            glob(&self.pattern, group)
        } else {
            group.starts_with(&self.pattern)
        }
    }

    fn checked(pattern: &str, max: i64) -> Result<Self, String> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*');
        if pattern.is_empty() || !pattern.chars().all(ok_char) {
            return Err(format!(
                "`{pattern}` is not a group pattern (letters, digits, - _ . and *)"
            ));
        }
        match usize::try_from(max) {
            Ok(max) if max >= 1 => Ok(Self {
                pattern: pattern.to_owned(),
                max,
            }),
            _ => Err(format!(
                "{max} hosts per group allows nothing: expected at least 1"
            )),
        }
    }
}

/// `*` matches any run of characters, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl FromStr for GroupCap {
    type Err = String;

    /// `PATTERN=N`, as the command line gives it.
    fn from_str(text: &str) -> Result<Self, String> {
        let (pattern, max) = text
            .rsplit_once('=')
            .ok_or_else(|| format!("`{text}`: expected PATTERN=N, e.g. zone-*=1"))?;
        let max: i64 = max
            .trim()
            .parse()
            .map_err(|_| format!("`{max}` is not a number of hosts"))?;
        Self::checked(pattern.trim(), max)
    }
}

impl fmt::Display for GroupCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.pattern, self.max)
    }
}

/// `max_per_group` as written in `[rollout]`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(crate) struct RawGroupCaps(std::collections::BTreeMap<Spanned<String>, Spanned<i64>>);

/// Checks `[rollout] max_per_group`, each bad entry reported at its place.
pub(crate) fn validate_group_caps(
    source: &SourceFile,
    raw: RawGroupCaps,
    problems: &mut Diagnostics,
) -> Vec<GroupCap> {
    let mut caps = Vec::new();
    for (pattern, max) in raw.0 {
        match GroupCap::checked(pattern.get_ref(), *max.get_ref()) {
            Ok(cap) => caps.push(cap),
            Err(why) => problems.push(Diagnostic::at(
                "playbook::bad-group-cap",
                source,
                if why.contains("pattern") {
                    pattern.span()
                } else {
                    max.span()
                },
                why,
                "expected e.g. max_per_group = { \"zone-*\" = 1 }",
            )),
        }
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(text: &str) -> GroupCap {
        text.parse().unwrap()
    }

    #[test]
    fn a_pattern_with_a_star_is_a_glob_and_one_without_a_prefix() {
        assert!(cap("zone-*=1").matches("zone-a"));
        assert!(!cap("zone-*=1").matches("azone-a"));
        assert!(cap("*-pool=2").matches("eu-pool"));
        assert!(cap("r*k*=1").matches("rack-7"));
        assert!(!cap("r*k*x=1").matches("rack-7"));
        assert!(cap("rack=1").matches("rack"));
        assert!(cap("rack=1").matches("rack-1"));
        assert!(!cap("rack=1").matches("web"));
        assert_eq!(cap("zone-*=3").max, 3);
        assert_eq!(cap("zone-*=3").to_string(), "zone-*=3");
    }

    #[test]
    fn bad_caps_say_what_was_expected() {
        assert!(
            "zone"
                .parse::<GroupCap>()
                .unwrap_err()
                .contains("PATTERN=N")
        );
        assert!(
            "zone=0"
                .parse::<GroupCap>()
                .unwrap_err()
                .contains("at least 1")
        );
        assert!("zone=x".parse::<GroupCap>().unwrap_err().contains("number"));
        assert!("a b=1".parse::<GroupCap>().unwrap_err().contains("pattern"));
    }
}

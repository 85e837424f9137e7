//! The words of a rollout as the user writes them: strategy, batch sizes, failure
//! budget, and the playbook's `[rollout]` table of defaults that flags override.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::playbook::parse_duration_field;
use crate::config::source::SourceFile;

/// How a rollout updates its targets, as the user names it (`--strategy`, or
/// `strategy` in the playbook's `[rollout]`). Parsed once, where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Strategy {
    /// Every target at once, in place (bounded by --forks and --max-per-host).
    All,
    /// In place, batch after batch (--batch, --canary, --pause, --max-failures).
    Rolling,
    /// Into the idle color, then switch nginx to it; batch after batch.
    BlueGreen,
}

impl Strategy {
    /// The word the user writes.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Rolling => "rolling",
            Self::BlueGreen => "blue-green",
        }
    }

    /// Parses the word the user writes.
    ///
    /// # Errors
    /// What was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "all" => Ok(Self::All),
            "rolling" => Ok(Self::Rolling),
            "blue-green" => Ok(Self::BlueGreen),
            _ => Err("expected \"all\", \"rolling\" or \"blue-green\"".into()),
        }
    }

    /// Whether targets go in batches (canary, pause, failure budget), not all at once.
    #[must_use]
    pub fn batched(self) -> bool {
        self != Self::All
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// One batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// this many targets
    Count(usize),
    /// this percentage of all targets (rounded up, at least one)
    Percent(u32),
}

impl BatchSize {
    /// Parses `3`, `"25%"`.
    ///
    /// # Errors
    /// A message naming what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            let p: u32 = p
                .trim()
                .parse()
                .map_err(|_| format!("expected a percentage such as \"25%\", found \"{text}\""))?;
            if p == 0 || p > 100 {
                return Err(format!(
                    "expected a percentage from 1% to 100%, found \"{text}\""
                ));
            }
            return Ok(Self::Percent(p));
        }
        match text.parse::<usize>() {
            Ok(0) | Err(_) => Err(format!(
                "expected a batch size such as 2 or \"25%\", found \"{text}\""
            )),
            Ok(n) => Ok(Self::Count(n)),
        }
    }

    /// The number of targets this size means out of `total`.
    #[must_use]
    pub fn resolve(self, total: usize) -> usize {
        match self {
            Self::Count(n) => n,
            Self::Percent(p) => (total * p as usize).div_ceil(100).max(1),
        }
    }
}

/// How many failed targets a rollout tolerates before it halts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureBudget {
    /// this many failures are tolerated; one more halts
    Count(usize),
    /// this percentage of all targets may fail
    Percent(u32),
}

impl FailureBudget {
    /// Parses `0`, `2`, `"10%"`.
    ///
    /// # Errors
    /// A message naming what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            let p: u32 = p
                .trim()
                .parse()
                .map_err(|_| format!("expected a percentage such as \"10%\", found \"{text}\""))?;
            if p > 100 {
                return Err(format!("expected at most 100%, found \"{text}\""));
            }
            return Ok(Self::Percent(p));
        }
        text.parse::<usize>()
            .map(Self::Count)
            .map_err(|_| format!("expected a number of failures such as 0 or 2, or a percentage such as \"10%\", found \"{text}\""))
    }

    /// Failures allowed for a rollout of `total` targets (percentages round down).
    #[must_use]
    pub fn allowed(self, total: usize) -> usize {
        match self {
            Self::Count(n) => n,
            Self::Percent(p) => total * p as usize / 100,
        }
    }
}

/// `[rollout]`: the playbook's default rollout settings; command-line flags win.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    batch: Vec<Spanned<toml::Value>>,
    canary: Option<usize>,
    pause: Option<Spanned<String>>,
    max_failures: Option<Spanned<toml::Value>>,
    max_per_host: Option<usize>,
    revert_after: Option<Spanned<String>>,
    drain: Option<Spanned<String>>,
}

/// Rollout defaults from the playbook's `[rollout]` table (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutSettings {
    /// how targets are updated
    pub strategy: Option<Strategy>,
    /// batch sizes
    pub batch: Vec<BatchSize>,
    /// canary batch size
    pub canary: Option<usize>,
    /// soak after the canary
    pub pause: Option<Duration>,
    /// failure budget
    pub max_failures: Option<FailureBudget>,
    /// targets of one host per batch
    pub max_per_host: Option<usize>,
    /// deadline of the self-reverting switch
    pub revert_after: Option<Duration>,
    /// stop the old color after this drain period
    pub drain: Option<Duration>,
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn validate_rollout(
    source: &SourceFile,
    raw: RawRollout,
    problems: &mut Diagnostics,
) -> RolloutSettings {
    let mut out = RolloutSettings {
        canary: raw.canary,
        max_per_host: raw.max_per_host,
        ..RolloutSettings::default()
    };
    if let Some(s) = &raw.strategy {
        match Strategy::parse(s.get_ref()) {
            Ok(strategy) => out.strategy = Some(strategy),
            Err(expected) => problems.push(Diagnostic::at(
                "playbook::bad-strategy",
                source,
                s.span(),
                format!("unknown strategy `{}`", s.get_ref()),
                expected,
            )),
        }
    }
    for b in &raw.batch {
        match BatchSize::parse(&value_text(b.get_ref())) {
            Ok(size) => out.batch.push(size),
            Err(expected) => problems.push(Diagnostic::at(
                "playbook::bad-batch",
                source,
                b.span(),
                format!("`{}` is not a batch size", value_text(b.get_ref())),
                expected,
            )),
        }
    }
    if let Some(m) = &raw.max_failures {
        match FailureBudget::parse(&value_text(m.get_ref())) {
            Ok(budget) => out.max_failures = Some(budget),
            Err(expected) => problems.push(Diagnostic::at(
                "playbook::bad-budget",
                source,
                m.span(),
                format!("`{}` is not a failure budget", value_text(m.get_ref())),
                expected,
            )),
        }
    }
    for (field, key, slot) in [
        (&raw.pause, "pause", &mut out.pause),
        (&raw.revert_after, "revert_after", &mut out.revert_after),
        (&raw.drain, "drain", &mut out.drain),
    ] {
        if let Some(value) = field {
            *slot = Some(parse_duration_field(
                source,
                Some(value),
                key,
                Duration::ZERO,
                problems,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_parse_as_counts_or_percentages() {
        assert_eq!(BatchSize::parse("3"), Ok(BatchSize::Count(3)));
        assert_eq!(BatchSize::parse("25%"), Ok(BatchSize::Percent(25)));
        assert!(BatchSize::parse("0").is_err());
        assert!(BatchSize::parse("150%").is_err());
        assert!(BatchSize::parse("x").unwrap_err().contains("\"25%\""));
    }

    #[test]
    fn failure_budgets_parse_and_resolve() {
        assert_eq!(FailureBudget::parse("0").unwrap().allowed(10), 0);
        assert_eq!(FailureBudget::parse("2").unwrap().allowed(10), 2);
        assert_eq!(FailureBudget::parse("10%").unwrap().allowed(25), 2);
        assert!(FailureBudget::parse("-1").is_err());
    }

    #[test]
    fn strategies_parse_from_the_words_users_write() {
        for s in [Strategy::All, Strategy::Rolling, Strategy::BlueGreen] {
            assert_eq!(Strategy::parse(s.word()), Ok(s));
        }
        assert!(
            Strategy::parse("blue_green")
                .unwrap_err()
                .contains("blue-green")
        );
    }
}

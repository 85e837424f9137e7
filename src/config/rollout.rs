//! The words of a rollout as the user writes them: strategy, batch sizes, failure
//! budget, and the playbook's `[rollout]` table of defaults that flags override.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::group_cap::{GroupCap, RawGroupCaps, validate_group_caps};
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
        if let Some(p) = percent(text, 1, "25%") {
            return p.map(Self::Percent);
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

/// `text` as a percentage from `min`% to 100%, or `None` when it is not written as
/// one (no `%`). `example` shows the expected form in the error.
pub(crate) fn percent(text: &str, min: u32, example: &str) -> Option<Result<u32, String>> {
    let number = text.strip_suffix('%')?;
    Some(match number.trim().parse::<u32>() {
        Err(_) => Err(format!(
            "expected a percentage such as \"{example}\", found \"{text}\""
        )),
        Ok(p) if p < min || p > 100 => Err(format!(
            "expected a percentage from {min}% to 100%, found \"{text}\""
        )),
        Ok(p) => Ok(p),
    })
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
        if let Some(p) = percent(text, 0, "10%") {
            return p.map(Self::Percent);
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
    max_per_group: Option<RawGroupCaps>,
    revert_after: Option<Spanned<String>>,
    drain: Option<Spanned<String>>,
    lock_wait: Option<Spanned<String>>,
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
    /// hosts per matching group per batch; empty: not set
    pub max_per_group: Vec<GroupCap>,
    /// deadline of the self-reverting switch
    pub revert_after: Option<Duration>,
    /// stop the old color after this drain period
    pub drain: Option<Duration>,
    /// wait this long for a tenant's lock held by a live run
    pub lock_wait: Option<Duration>,
}

impl RolloutSettings {
    /// These settings where they are set, else `fallback`'s: command-line flags over
    /// the playbook's `[rollout]`. An empty batch list counts as not set.
    #[must_use]
    pub fn or(self, fallback: &RolloutSettings) -> RolloutSettings {
        RolloutSettings {
            strategy: self.strategy.or(fallback.strategy),
            batch: if self.batch.is_empty() {
                fallback.batch.clone()
            } else {
                self.batch
            },
            canary: self.canary.or(fallback.canary),
            pause: self.pause.or(fallback.pause),
            max_failures: self.max_failures.or(fallback.max_failures),
            max_per_host: self.max_per_host.or(fallback.max_per_host),
            max_per_group: if self.max_per_group.is_empty() {
                fallback.max_per_group.clone()
            } else {
                self.max_per_group
            },
            revert_after: self.revert_after.or(fallback.revert_after),
            drain: self.drain.or(fallback.drain),
            lock_wait: self.lock_wait.or(fallback.lock_wait),
        }
    }

    /// Every setting decided: what is still unset takes drover's default.
    #[must_use]
    pub fn resolve(self) -> Resolved {
        Resolved {
            strategy: self.strategy.unwrap_or(Strategy::All),
            batch: self.batch,
            canary: self.canary.unwrap_or(0),
            pause: self.pause.unwrap_or_default(),
            max_failures: self.max_failures.unwrap_or(FailureBudget::Count(0)),
            max_per_host: self.max_per_host.unwrap_or(DEFAULT_MAX_PER_HOST),
            max_per_group: self.max_per_group,
            revert_after: self.revert_after.unwrap_or(DEFAULT_REVERT_AFTER),
            drain: self.drain,
            lock_wait: self.lock_wait.filter(|d| !d.is_zero()),
        }
    }
}

/// Targets of one host per batch (and at once) unless told otherwise.
pub const DEFAULT_MAX_PER_HOST: usize = 16;

/// Deadline of the self-reverting switch unless told otherwise.
pub const DEFAULT_REVERT_AFTER: Duration = Duration::from_secs(60);

/// A rollout's settings with every choice made (flags, then playbook, then defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// how targets are updated
    pub strategy: Strategy,
    /// batch sizes; empty: one batch
    pub batch: Vec<BatchSize>,
    /// canary batch size; 0: none
    pub canary: usize,
    /// soak after the canary
    pub pause: Duration,
    /// failure budget
    pub max_failures: FailureBudget,
    /// targets of one host per batch
    pub max_per_host: usize,
    /// hosts per matching group per batch (none: no cap)
    pub max_per_group: Vec<GroupCap>,
    /// deadline of the self-reverting switch
    pub revert_after: Duration,
    /// stop the old color after this drain period; `None` keeps it warm
    pub drain: Option<Duration>,
    /// wait for a tenant's lock held by a live run; `None` fails at once
    pub lock_wait: Option<Duration>,
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
        max_per_group: raw
            .max_per_group
            .map(|caps| validate_group_caps(source, caps, problems))
            .unwrap_or_default(),
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
        (&raw.lock_wait, "lock_wait", &mut out.lock_wait),
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
    fn flags_win_over_the_playbook_which_wins_over_defaults() {
        let playbook = RolloutSettings {
            strategy: Some(Strategy::BlueGreen),
            batch: vec![BatchSize::Percent(25)],
            canary: Some(1),
            pause: Some(Duration::from_secs(30)),
            max_per_host: Some(2),
            ..RolloutSettings::default()
        };
        let flags = RolloutSettings {
            strategy: Some(Strategy::Rolling),
            pause: Some(Duration::from_secs(5)),
            max_failures: Some(FailureBudget::Count(3)),
            ..RolloutSettings::default()
        };
        let resolved = flags.or(&playbook).resolve();
        assert_eq!(resolved.strategy, Strategy::Rolling, "a flag wins");
        assert_eq!(resolved.pause, Duration::from_secs(5), "a flag wins");
        assert_eq!(resolved.max_failures, FailureBudget::Count(3));
        assert_eq!(
            resolved.batch,
            [BatchSize::Percent(25)],
            "no flag: the playbook's"
        );
        assert_eq!(resolved.canary, 1);
        assert_eq!(resolved.max_per_host, 2);
        assert_eq!(
            resolved.revert_after, DEFAULT_REVERT_AFTER,
            "neither: the default"
        );
        assert_eq!(resolved.drain, None);
        let defaults = RolloutSettings::default()
            .or(&RolloutSettings::default())
            .resolve();
        assert_eq!(defaults.strategy, Strategy::All);
        assert_eq!(defaults.max_failures, FailureBudget::Count(0));
        assert_eq!(defaults.max_per_host, DEFAULT_MAX_PER_HOST);
        assert!(defaults.batch.is_empty() && defaults.canary == 0 && defaults.pause.is_zero());
    }

    #[test]
    fn group_caps_from_flags_replace_the_playbooks_whole() {
        let cap = |t: &str| t.parse::<GroupCap>().unwrap();
        let playbook = RolloutSettings {
            max_per_group: vec![cap("zone-*=1"), cap("rack=2")],
            ..RolloutSettings::default()
        };
        let none = RolloutSettings::default().or(&playbook).resolve();
        assert_eq!(none.max_per_group.len(), 2, "no flag: the playbook's");
        let flags = RolloutSettings {
            max_per_group: vec![cap("zone-*=2")],
            ..RolloutSettings::default()
        };
        assert_eq!(
            flags.or(&playbook).resolve().max_per_group,
            [cap("zone-*=2")]
        );
    }

    #[test]
    fn a_batch_flag_replaces_the_playbooks_list_whole() {
        let playbook = RolloutSettings {
            batch: vec![BatchSize::Count(1), BatchSize::Percent(50)],
            ..RolloutSettings::default()
        };
        let flags = RolloutSettings {
            batch: vec![BatchSize::Count(3)],
            ..RolloutSettings::default()
        };
        assert_eq!(flags.or(&playbook).resolve().batch, [BatchSize::Count(3)]);
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

    #[test]
    fn a_lock_wait_is_a_duration_pointed_at_when_it_is_not() {
        use crate::config::{Playbook, SourceFile};
        let load = |v: &str| {
            let text = format!(
                "name = \"p\"\n[[steps]]\nname = \"s\"\nrun = {{ script = \"true\" }}\n[rollout]\nlock_wait = \"{v}\"\n"
            );
            Playbook::from_source(SourceFile::new("p.toml", text))
        };
        let err = load("soon").unwrap_err().render(false);
        assert!(err.contains("`lock_wait` is not a valid duration"), "{err}");
        assert!(err.contains("p.toml:6:13"), "{err}");
        let lock_wait = load("2m").unwrap().rollout.lock_wait;
        assert_eq!(lock_wait, Some(Duration::from_secs(120)));
    }
}

//! Progressive delivery as the playbook says it: the canary's weighted steps, its
//! stickiness and retries (`[rollout] canary_weights, sticky, retry_non_idempotent`),
//! and how its real traffic is judged (`[analysis]`).

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::playbook::parse_duration_field;
use crate::config::source::SourceFile;

/// How requests stick to one color during a weighted step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sticky {
    /// by client address
    Ip,
    /// by a cookie drover's nginx sets (by address until the client has it)
    Cookie,
}

impl Sticky {
    /// Parses the word the user writes.
    ///
    /// # Errors
    /// What was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "ip" => Ok(Self::Ip),
            "cookie" => Ok(Self::Cookie),
            _ => Err("expected \"ip\" or \"cookie\"".into()),
        }
    }
}

/// What a step with too few requests to judge counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inconclusive {
    /// the step passes (the report still says `inconclusive`)
    Pass,
    /// the step fails, like any failed check
    Fail,
}

/// `[analysis]`: thresholds the canary's real traffic is judged against, every
/// `interval` of every step and soak.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// how often the access log is read and judged
    pub interval: Duration,
    /// fewer requests to the new color in a step than this: `inconclusive`
    pub min_requests: u64,
    /// highest tolerated share of failed attempts on the new color (0..=1)
    pub max_error_rate: Option<f64>,
    /// highest tolerated p95 latency of the new color
    pub max_p95: Option<Duration>,
    /// highest tolerated p95 of the new color over the old color's
    pub max_p95_ratio: Option<f64>,
    /// what too few requests count as
    pub inconclusive: Inconclusive,
}

/// How often the canary is checked when the playbook has no `[analysis]`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

impl Default for Analysis {
    /// No traffic thresholds: the unit checks (restarts, failed unit) every second.
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            min_requests: 0,
            max_error_rate: None,
            max_p95: None,
            max_p95_ratio: None,
            inconclusive: Inconclusive::Pass,
        }
    }
}

impl Analysis {
    /// Whether any threshold on traffic is set (otherwise only the unit is judged).
    #[must_use]
    pub fn judges_traffic(&self) -> bool {
        self.max_error_rate.is_some() || self.max_p95.is_some() || self.max_p95_ratio.is_some()
    }
}

/// Progressive delivery settings of a playbook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progressive {
    /// shares of the tenant's traffic the canary's new color gets, step by step
    /// (percent, rising, each below 100); empty: all at once
    pub canary_weights: Vec<u8>,
    /// stickiness of a weighted step
    pub sticky: Option<Sticky>,
    /// whether nginx may re-send non-idempotent requests to the old color
    pub retry_non_idempotent: bool,
    /// how the canary's traffic is judged
    pub analysis: Analysis,
}

/// `[analysis]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAnalysis {
    interval: Option<Spanned<String>>,
    min_requests: Option<u64>,
    max_error_rate: Option<Spanned<String>>,
    max_p95: Option<Spanned<String>>,
    max_p95_ratio: Option<Spanned<f64>>,
    inconclusive: Option<Spanned<String>>,
}

/// The `[rollout]` keys of progressive delivery, as written.
#[derive(Debug, Default)]
pub(crate) struct RawCanary<'a> {
    pub canary_weights: &'a [Spanned<toml::Value>],
    pub sticky: Option<&'a Spanned<String>>,
    pub retry_non_idempotent: Option<bool>,
}

/// Parses canary weights (`"5%"`, `25`): each from 1 % to 99 %, rising.
///
/// # Errors
/// What was expected.
pub fn parse_weights<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::new();
    for item in items {
        push_weight(&mut out, item)?;
    }
    Ok(out)
}

/// Parses one weight and appends it to the rising list `weights`.
fn push_weight(weights: &mut Vec<u8>, item: &str) -> Result<(), String> {
    let text = item.trim();
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    match number.parse::<u8>() {
        Ok(w) if (1..=99).contains(&w) => match weights.last() {
            Some(&last) if w <= last => Err(format!(
                "expected rising weights, found \"{text}\" after {last}%"
            )),
            _ => {
                weights.push(w);
                Ok(())
            }
        },
        _ => Err(format!(
            "expected a share of traffic from 1% to 99% such as \"5%\", found \"{text}\""
        )),
    }
}

/// Parses an error rate: `"1%"`, `"0.5%"` (a share, 0..=100 %).
///
/// # Errors
/// What was expected.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let expected = || format!("expected a percentage such as \"1%\" or \"0.5%\", found \"{text}\"");
    let number = text.trim().strip_suffix('%').ok_or_else(expected)?;
    match number.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(expected()),
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Validates the progressive keys of `[rollout]` and the `[analysis]` table.
pub(crate) fn validate(
    source: &SourceFile,
    canary: &RawCanary<'_>,
    analysis: Option<RawAnalysis>,
    problems: &mut Diagnostics,
) -> Progressive {
    let mut out = Progressive {
        retry_non_idempotent: canary.retry_non_idempotent.unwrap_or(false),
        ..Progressive::default()
    };
    for w in canary.canary_weights {
        let text = value_text(w.get_ref());
        if let Err(expected) = push_weight(&mut out.canary_weights, &text) {
            problems.push(Diagnostic::at(
                "playbook::bad-weight",
                source,
                w.span(),
                format!("`{text}` is not a canary weight"),
                expected,
            ));
        }
    }
    if let Some(s) = canary.sticky {
        match Sticky::parse(s.get_ref()) {
            Ok(sticky) => out.sticky = Some(sticky),
            Err(expected) => problems.push(Diagnostic::at(
                "playbook::bad-sticky",
                source,
                s.span(),
                format!("unknown stickiness `{}`", s.get_ref()),
                expected,
            )),
        }
    }
    if let Some(raw) = analysis {
        out.analysis = validate_analysis(source, raw, problems);
    }
    out
}

fn validate_analysis(
    source: &SourceFile,
    raw: RawAnalysis,
    problems: &mut Diagnostics,
) -> Analysis {
    let mut out = Analysis {
        interval: parse_duration_field(
            source,
            raw.interval.as_ref(),
            "interval",
            DEFAULT_INTERVAL,
            problems,
        ),
        min_requests: raw.min_requests.unwrap_or(20),
        inconclusive: Inconclusive::Fail,
        ..Analysis::default()
    };
    if let Some(max_p95) = &raw.max_p95 {
        out.max_p95 = Some(parse_duration_field(
            source,
            Some(max_p95),
            "max_p95",
            Duration::ZERO,
            problems,
        ));
    }
    if let Some(rate) = &raw.max_error_rate {
        match parse_rate(rate.get_ref()) {
            Ok(r) => out.max_error_rate = Some(r),
            Err(expected) => problems.push(Diagnostic::at(
                "playbook::bad-rate",
                source,
                rate.span(),
                format!("`{}` is not an error rate", rate.get_ref()),
                expected,
            )),
        }
    }
    if let Some(ratio) = &raw.max_p95_ratio {
        if *ratio.get_ref() >= 1.0 && ratio.get_ref().is_finite() {
            out.max_p95_ratio = Some(*ratio.get_ref());
        } else {
            problems.push(Diagnostic::at(
                "playbook::bad-ratio",
                source,
                ratio.span(),
                format!("`{}` is not a latency ratio", ratio.get_ref()),
                "expected a number of at least 1.0, such as 1.5 (new p95 over old p95)",
            ));
        }
    }
    if let Some(word) = &raw.inconclusive {
        match word.get_ref().as_str() {
            "pass" => out.inconclusive = Inconclusive::Pass,
            "fail" => out.inconclusive = Inconclusive::Fail,
            other => problems.push(Diagnostic::at(
                "playbook::bad-inconclusive",
                source,
                word.span(),
                format!("`{other}` is not a verdict"),
                "expected \"pass\" or \"fail\"",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_weights_rise_from_one_to_ninety_nine_percent() {
        assert_eq!(parse_weights(["5%", "25%", "50"]), Ok(vec![5, 25, 50]));
        assert!(parse_weights(["25%", "5%"]).unwrap_err().contains("rising"));
        assert!(parse_weights(["100%"]).unwrap_err().contains("1% to 99%"));
        assert!(parse_weights(["0%"]).is_err());
        assert!(parse_weights(["x"]).unwrap_err().contains("\"x\""));
    }

    fn load(text: &str) -> Result<crate::config::Playbook, Diagnostics> {
        let steps = "[[steps]]\nname = \"r\"\nrun = { script = \"true\" }\n";
        let source = SourceFile::new("playbooks/p.toml", format!("name = \"x\"\n{text}{steps}"));
        crate::config::Playbook::from_source(source)
    }

    #[test]
    fn progressive_keys_parse_from_rollout_and_analysis() {
        let p = load(
            "[rollout]\ncanary_weights = [\"5%\", 25, \"50%\"]\nsticky = \"ip\"\nretry_non_idempotent = true\n\
             [analysis]\ninterval = \"2s\"\nmin_requests = 50\nmax_error_rate = \"0.5%\"\nmax_p95 = \"300ms\"\nmax_p95_ratio = 1.5\ninconclusive = \"pass\"\n",
        )
        .expect("valid");
        let g = &p.progressive;
        assert_eq!(g.canary_weights, [5, 25, 50]);
        assert_eq!(g.sticky, Some(Sticky::Ip));
        assert!(g.retry_non_idempotent);
        assert_eq!(g.analysis.interval, Duration::from_secs(2));
        assert_eq!(g.analysis.min_requests, 50);
        assert_eq!(g.analysis.max_error_rate, Some(0.005));
        assert_eq!(g.analysis.max_p95, Some(Duration::from_millis(300)));
        assert_eq!(g.analysis.max_p95_ratio, Some(1.5));
        assert_eq!(g.analysis.inconclusive, Inconclusive::Pass);
        let none = load("").expect("valid");
        assert!(!none.progressive.analysis.judges_traffic());
        assert!(none.progressive.canary_weights.is_empty());
    }

    #[test]
    fn bad_progressive_values_point_at_their_place() {
        let err = load(
            "[rollout]\ncanary_weights = [\"50%\", \"5%\"]\nsticky = \"session\"\n\
             [analysis]\nmax_error_rate = \"0.01\"\nmax_p95_ratio = 0.5\ninconclusive = \"maybe\"\nmax_p95 = \"fast\"\n",
        )
        .unwrap_err()
        .render(false);
        for (at, what) in [
            ("playbooks/p.toml:3:26", "not a canary weight"),
            ("playbooks/p.toml:4:10", "unknown stickiness"),
            ("playbooks/p.toml:6:18", "not an error rate"),
            ("playbooks/p.toml:7:17", "not a latency ratio"),
            ("playbooks/p.toml:8:16", "not a verdict"),
            ("playbooks/p.toml:9:11", "duration"),
        ] {
            assert!(
                err.contains(at) && err.contains(what),
                "{at} {what}:\n{err}"
            );
        }
        let unknown = load("[analysis]\nmax_error = \"1%\"\n")
            .unwrap_err()
            .render(false);
        assert!(
            unknown.contains("did you mean `max_error_rate`"),
            "{unknown}"
        );
    }

    #[test]
    fn error_rates_are_written_as_percentages() {
        assert_eq!(parse_rate("1%"), Ok(0.01));
        assert_eq!(parse_rate("0.5%"), Ok(0.005));
        assert!(parse_rate("0.01").unwrap_err().contains("\"1%\""));
        assert!(parse_rate("120%").is_err());
    }
}

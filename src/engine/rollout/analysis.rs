//! Judging a canary on its real traffic, pure: the lines nginx logged for the tenant
//! (`plan::upstream::ACCESS_FIELDS`) become per-color attempts, errors and latency
//! percentiles; a window of them and the unit's state are judged against the
//! playbook's `[analysis]`. The first failed check decides.
//!
//! A request nginx retried on the old color is an error of the new color even though
//! the user got an answer: the fallback hides a bad release from users, not from the
//! analysis.

use crate::config::progressive::{Analysis, Inconclusive};
use crate::outcome::{CanaryReport, ColorStats};

/// One attempt of one request on one upstream server.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Attempt {
    port: u16,
    failed: bool,
    ms: u64,
}

/// What one access-log line tells.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    /// what the user got
    status: u16,
    attempts: Vec<Attempt>,
}

/// Parses one line; `None` for lines that are not drover's format.
fn parse_line(line: &str) -> Option<Request> {
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    let [_msec, status, _method, addrs, statuses, times, request_time] = fields[..] else {
        return None;
    };
    let status = status.parse().ok()?;
    let request_ms = seconds_ms(request_time);
    // nginx joins the servers of one request with ", " (and upstream groups with " : ").
    let list = |s: &str| -> Vec<String> {
        s.split([',', ':'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let ports: Vec<u16> = addrs
        .split(',')
        .flat_map(|a| a.split(" : "))
        .filter_map(|a| a.trim().rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .collect();
    let statuses = list(statuses);
    let times = list(times);
    let attempts = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            let code = statuses.get(i).and_then(|s| s.parse::<u16>().ok());
            Attempt {
                port,
                failed: code.is_none_or(|c| c >= 500),
                ms: times
                    .get(i)
                    .and_then(|t| seconds_ms(t))
                    .or(request_ms)
                    .unwrap_or(0),
            }
        })
        .collect();
    Some(Request { status, attempts })
}

/// `0.123` (seconds) as 123 ms; `-` is none.
fn seconds_ms(text: &str) -> Option<u64> {
    let s: f64 = text.trim().parse().ok()?;
    // Truncation is intended: nginx logs milliseconds as three decimals.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((s * 1000.0).round().max(0.0) as u64)
}

/// Attempts on one color in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tally {
    latencies: Vec<u64>,
    errors: u64,
}

impl Tally {
    fn requests(&self) -> u64 {
        self.latencies.len() as u64
    }

    fn percentile(&self, p: usize) -> Option<u64> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let n = sorted.len();
        (n > 0).then(|| sorted[((n * p).div_ceil(100)).clamp(1, n) - 1])
    }

    fn error_rate(&self) -> f64 {
        match self.requests() {
            0 => 0.0,
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            n => self.errors as f64 / n as f64,
        }
    }

    fn stats(&self, color: &str) -> ColorStats {
        ColorStats {
            color: color.to_owned(),
            requests: self.requests(),
            errors: self.errors,
            error_rate: self.error_rate(),
            p50_ms: self.percentile(50),
            p95_ms: self.percentile(95),
            p99_ms: self.percentile(99),
        }
    }
}

/// A step's traffic so far, by color, and what users saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Window {
    new_port: u16,
    old_port: u16,
    new: Tally,
    old: Tally,
    failed_requests: u64,
    saved_by_fallback: u64,
}

impl Window {
    /// An empty window of the colors on these ports.
    pub(super) fn new(new_port: u16, old_port: u16) -> Self {
        Self {
            new_port,
            old_port,
            ..Self::default()
        }
    }

    /// Adds every line of `text` that is drover's access-log format.
    pub(super) fn add_lines(&mut self, text: &str) {
        for request in text.lines().filter_map(parse_line) {
            self.add(&request);
        }
    }

    fn add(&mut self, request: &Request) {
        let mut new_failed = false;
        for a in &request.attempts {
            let tally = if a.port == self.new_port {
                new_failed |= a.failed;
                &mut self.new
            } else if a.port == self.old_port {
                &mut self.old
            } else {
                continue;
            };
            tally.latencies.push(a.ms);
            tally.errors += u64::from(a.failed);
        }
        if request.status >= 500 {
            self.failed_requests += 1;
        } else if new_failed {
            self.saved_by_fallback += 1;
        }
    }
}

/// The unit of the new color, as the host reported it at a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnitState {
    /// systemd's ActiveState
    pub active: String,
    /// automatic restarts since the deploy started it
    pub restarts: u32,
}

/// What a check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// nothing failed (yet)
    Pass,
    /// too few requests to judge the traffic
    Inconclusive,
    /// this check failed, in words
    Fail(String),
}

/// Judges the unit and the window's traffic. `final_check` is the step's last: only
/// then do too few requests count as `inconclusive`.
pub(super) fn judge(
    analysis: &Analysis,
    unit: &UnitState,
    window: &Window,
    final_check: bool,
) -> Decision {
    if unit.restarts > 0 {
        return Decision::Fail(format!(
            "unit restarted {} time(s) by systemd",
            unit.restarts
        ));
    }
    if unit.active != "active" {
        return Decision::Fail(format!("unit is {}", unit.active));
    }
    if !analysis.judges_traffic() {
        return Decision::Pass;
    }
    if window.new.requests() < analysis.min_requests.max(1) {
        return if final_check {
            Decision::Inconclusive
        } else {
            Decision::Pass
        };
    }
    if let Some(max) = analysis.max_error_rate
        && window.new.error_rate() > max
    {
        return Decision::Fail(format!(
            "error rate {} > {}",
            pct(window.new.error_rate()),
            pct(max)
        ));
    }
    if window.new.requests() < LATENCY_SAMPLES {
        return Decision::Pass;
    }
    let p95 = window.new.percentile(95).unwrap_or(0);
    if let Some(max) = analysis.max_p95
        && u128::from(p95) > max.as_millis()
    {
        return Decision::Fail(format!("p95 {p95} ms > {} ms", max.as_millis()));
    }
    if let (Some(ratio), Some(old)) = (analysis.max_p95_ratio, window.old.percentile(95))
        && window.old.requests() >= analysis.min_requests.max(LATENCY_SAMPLES)
        && p95 > old + RATIO_NOISE_MS
    {
        #[allow(clippy::cast_precision_loss)] // milliseconds
        let seen = p95 as f64 / old.max(1) as f64;
        if seen > ratio {
            return Decision::Fail(format!(
                "p95 {p95} ms is {seen:.1}x the old color's {old} ms > {ratio}x"
            ));
        }
    }
    Decision::Pass
}

/// A new p95 within this many ms of the old color's is never too slow by ratio: a
/// fast service's 2 ms against 4 ms is jitter, not a regression.
const RATIO_NOISE_MS: u64 = 50;

/// Latency is judged from this many requests on: the p95 of fewer is their slowest
/// one, and one cold request is not a slow release.
const LATENCY_SAMPLES: u64 = 20;

/// Whether a decision lets the step go on (or end well).
pub(super) fn passes(analysis: &Analysis, decision: &Decision) -> bool {
    match decision {
        Decision::Pass => true,
        Decision::Inconclusive => analysis.inconclusive == Inconclusive::Pass,
        Decision::Fail(_) => false,
    }
}

/// A share as a percentage with one decimal (`21.0%`).
fn pct(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// The numbers of a decision, for the outcome, the journal and the audit line.
pub(super) fn report(
    analysis: &Analysis,
    decision: &Decision,
    window: &Window,
    colors: (&str, &str),
    step: (u8, u32, u64),
) -> CanaryReport {
    let (verdict, reason) = match decision {
        Decision::Pass => ("pass", None),
        Decision::Inconclusive => (
            "inconclusive",
            Some(format!(
                "{} request(s) to the new color, fewer than min_requests {}; counted as {}",
                window.new.requests(),
                analysis.min_requests,
                if passes(analysis, decision) {
                    "pass"
                } else {
                    "fail"
                }
            )),
        ),
        Decision::Fail(why) => ("fail", Some(why.clone())),
    };
    CanaryReport {
        verdict: verdict.to_owned(),
        reason,
        weight: step.0,
        checks: step.1,
        elapsed_ms: step.2,
        failed_requests: window.failed_requests,
        saved_by_fallback: window.saved_by_fallback,
        new: window.new.stats(colors.0),
        old: window.old.stats(colors.1),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn analysis() -> Analysis {
        Analysis {
            min_requests: 10,
            max_error_rate: Some(0.01),
            max_p95: Some(Duration::from_millis(500)),
            max_p95_ratio: Some(1.5),
            inconclusive: Inconclusive::Fail,
            ..Analysis::default()
        }
    }

    fn up() -> UnitState {
        UnitState {
            active: "active".into(),
            restarts: 0,
        }
    }

    fn line(status: u16, addrs: &str, statuses: &str, times: &str) -> String {
        format!("1795312171.123|{status}|GET|{addrs}|{statuses}|{times}|0.050\n")
    }

    fn window(lines: &[String]) -> Window {
        let mut w = Window::new(8101, 8100);
        w.add_lines(&lines.concat());
        w
    }

    #[test]
    fn a_request_saved_by_the_old_color_is_still_an_error_of_the_new_one() {
        let w = window(&[line(
            200,
            "127.0.0.1:8101, 127.0.0.1:8100",
            "502, 200",
            "0.000, 0.004",
        )]);
        assert_eq!((w.new.requests(), w.new.errors), (1, 1));
        assert_eq!((w.old.requests(), w.old.errors), (1, 0));
        assert_eq!((w.failed_requests, w.saved_by_fallback), (0, 1));
    }

    #[test]
    fn a_refused_connection_without_status_counts_as_failed() {
        let w = window(&[line(502, "127.0.0.1:8101", "-", "-")]);
        assert_eq!((w.new.errors, w.failed_requests), (1, 1));
        assert_eq!(w.new.latencies, [50], "the request time stands in");
    }

    #[test]
    fn lines_of_another_format_are_ignored() {
        let w = window(&["127.0.0.1 - - [x] \"GET / HTTP/1.1\" 200\n".to_string()]);
        assert_eq!(w, Window::new(8101, 8100));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let t = Tally {
            latencies: (1..=100).rev().collect(),
            errors: 0,
        };
        assert_eq!(
            (t.percentile(50), t.percentile(95), t.percentile(99)),
            (Some(50), Some(95), Some(99))
        );
        assert_eq!(Tally::default().percentile(95), None);
    }

    #[test]
    fn a_restarted_unit_fails_the_check_before_any_traffic_is_judged() {
        let down = UnitState {
            active: "activating".into(),
            restarts: 1,
        };
        let d = judge(&analysis(), &down, &Window::new(8101, 8100), false);
        assert_eq!(
            d,
            Decision::Fail("unit restarted 1 time(s) by systemd".into())
        );
    }

    #[test]
    fn too_many_errors_fail_with_the_measured_rate() {
        let mut lines = vec![line(500, "127.0.0.1:8101", "500", "0.002"); 3];
        lines.extend(vec![line(200, "127.0.0.1:8101", "200", "0.002"); 11]);
        let d = judge(&analysis(), &up(), &window(&lines), false);
        assert_eq!(d, Decision::Fail("error rate 21.4% > 1.0%".into()));
    }

    #[test]
    fn a_slow_new_color_fails_on_its_ratio_to_the_old_one() {
        let mut lines = vec![line(200, "127.0.0.1:8101", "200", "0.310"); 20];
        lines.extend(vec![line(200, "127.0.0.1:8100", "200", "0.010"); 20]);
        let a = Analysis {
            max_p95: None,
            ..analysis()
        };
        match judge(&a, &up(), &window(&lines), false) {
            Decision::Fail(why) => {
                assert!(why.contains("31.0x") && why.contains("> 1.5x"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        let strict = Analysis {
            max_p95: Some(Duration::from_millis(300)),
            ..analysis()
        };
        let d = judge(&strict, &up(), &window(&lines), false);
        assert_eq!(d, Decision::Fail("p95 310 ms > 300 ms".into()));
    }

    #[test]
    fn a_few_milliseconds_more_on_a_fast_service_is_not_too_slow() {
        let mut lines = vec![line(200, "127.0.0.1:8101", "200", "0.012"); 10];
        lines.extend(vec![line(200, "127.0.0.1:8100", "200", "0.002"); 10]);
        assert_eq!(
            judge(&analysis(), &up(), &window(&lines), false),
            Decision::Pass
        );
    }

    #[test]
    fn too_few_requests_are_inconclusive_at_the_end_of_a_step_only() {
        let lines = vec![line(200, "127.0.0.1:8101", "200", "0.002"); 3];
        let w = window(&lines);
        assert_eq!(judge(&analysis(), &up(), &w, false), Decision::Pass);
        let d = judge(&analysis(), &up(), &w, true);
        assert_eq!(d, Decision::Inconclusive);
        assert!(!passes(&analysis(), &d), "inconclusive fails unless told");
        let lenient = Analysis {
            inconclusive: Inconclusive::Pass,
            ..analysis()
        };
        assert!(passes(&lenient, &d));
        let r = report(&lenient, &d, &w, ("green", "blue"), (5, 3, 3000));
        assert_eq!(r.verdict, "inconclusive");
        assert!(r.reason.unwrap().contains("counted as pass"));
    }

    #[test]
    fn without_thresholds_only_the_unit_is_judged() {
        let lines = vec![line(500, "127.0.0.1:8101", "500", "0.002"); 30];
        let d = judge(&Analysis::default(), &up(), &window(&lines), true);
        assert_eq!(d, Decision::Pass);
    }
}

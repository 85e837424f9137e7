//! Final output of `drover deploy`: failures with their step and stderr, a per-target
//! table, diffs on request, the summary line; or one JSON object per target.

use std::fmt::Write as _;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::outcome::{StepStatus, TargetOutcome, TargetStatus};

/// Counts over targets and steps.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeployTally {
    /// targets already as wanted
    pub ok: usize,
    /// targets changed
    pub changed: usize,
    /// targets with a failed step
    pub failed: usize,
    /// targets not reached
    pub unreachable: usize,
    /// targets not started
    pub skipped: usize,
    /// steps that changed something
    pub steps_changed: usize,
}

impl DeployTally {
    /// Counts the outcomes.
    #[must_use]
    pub fn of(outcomes: &[TargetOutcome]) -> Self {
        let mut t = Self::default();
        for o in outcomes {
            match o.status {
                TargetStatus::Ok => t.ok += 1,
                TargetStatus::Changed => t.changed += 1,
                TargetStatus::Failed => t.failed += 1,
                TargetStatus::Unreachable => t.unreachable += 1,
                TargetStatus::Skipped => t.skipped += 1,
            }
            t.steps_changed += o
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Changed)
                .count();
        }
        t
    }
}

fn status_word(status: TargetStatus) -> &'static str {
    match status {
        TargetStatus::Ok => "ok",
        TargetStatus::Changed => "changed",
        TargetStatus::Failed => "failed",
        TargetStatus::Unreachable => "unreachable",
        TargetStatus::Skipped => "skipped",
    }
}

/// Rows shown in the table: all targets for small runs, only the interesting ones for
/// large fleets so the report stays readable.
const FULL_TABLE_UP_TO: usize = 60;

/// Lines of a failed step's stderr shown: its end, where the reason usually is.
const STDERR_TAIL: usize = 20;

/// Human-readable report: failures, diffs (with `--diff`), the table, the summary line.
#[must_use]
pub fn render_text(
    outcomes: &[TargetOutcome],
    elapsed: Duration,
    dry_run: bool,
    diff: bool,
) -> String {
    let mut out = String::new();
    for o in outcomes {
        failures(o, &mut out);
    }
    if diff {
        diffs(outcomes, &mut out);
    }
    table(outcomes, &mut out);
    sent(outcomes, &mut out);
    summary(outcomes, elapsed, dry_run, &mut out);
    out
}

/// Bytes the steps that count them (image steps) sent, per target and in total; past
/// [`FULL_TABLE_UP_TO`] targets only the total.
fn sent(outcomes: &[TargetOutcome], out: &mut String) {
    let counted: Vec<(String, u64)> = outcomes
        .iter()
        .filter_map(|o| {
            let bytes = o
                .steps
                .iter()
                .filter_map(|s| s.bytes_sent)
                .reduce(|a, b| a + b)?;
            Some((format!("{}@{}", o.tenant, o.host), bytes))
        })
        .collect();
    if counted.is_empty() {
        return;
    }
    if counted.len() <= FULL_TABLE_UP_TO {
        for (target, bytes) in &counted {
            let _ = writeln!(out, "sent to {target}: {}", human_bytes(*bytes));
        }
    }
    let total: u64 = counted.iter().map(|(_, b)| b).sum();
    let _ = writeln!(
        out,
        "sent {} in all to {} targets",
        human_bytes(total),
        counted.len()
    );
}

/// `512 B`, `12.3 kB`, `116.0 MB` (powers of 1000, as Docker prints sizes).
fn human_bytes(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a display figure
    let n = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", n / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n / 1e6),
        _ => format!("{:.2} GB", n / 1e9),
    }
}

/// Why a target failed: its connection error, or each failed step with its stderr's
/// last lines.
fn failures(o: &TargetOutcome, out: &mut String) {
    if let Some(error) = &o.error {
        let _ = writeln!(
            out,
            "✗ {}@{}: {}: {error}",
            o.tenant,
            o.host,
            status_word(o.status)
        );
        return;
    }
    for s in o.steps.iter().filter(|s| s.status == StepStatus::Failed) {
        let _ = writeln!(
            out,
            "✗ {}@{}: step `{}` ({}) failed{} after {} attempt{}",
            o.tenant,
            o.host,
            s.name,
            s.kind,
            s.exit_code
                .map(|c| format!(" with exit {c}"))
                .unwrap_or_default(),
            s.attempts,
            if s.attempts == 1 { "" } else { "s" }
        );
        let lines: Vec<&str> = s.stderr.trim_end().lines().collect();
        for line in &lines[lines.len().saturating_sub(STDERR_TAIL)..] {
            let _ = writeln!(out, "    {line}");
        }
    }
}

/// Each file step's diff, under a line naming the target and the step.
fn diffs(outcomes: &[TargetOutcome], out: &mut String) {
    for o in outcomes {
        for s in o.steps.iter().filter(|s| s.diff.is_some()) {
            let _ = writeln!(out, "--- diff {}@{} step `{}`", o.tenant, o.host, s.name);
            out.push_str(s.diff.as_deref().unwrap_or_default());
        }
    }
}

/// One row per target; past [`FULL_TABLE_UP_TO`] targets, the unchanged ones are only
/// counted.
fn table(outcomes: &[TargetOutcome], out: &mut String) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(["target", "result", "changed steps", "failed step", "time"]);
    let mut hidden = 0;
    for o in outcomes {
        let boring = o.status == TargetStatus::Ok;
        if outcomes.len() > FULL_TABLE_UP_TO && boring {
            hidden += 1;
            continue;
        }
        let changed = o
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Changed)
            .count();
        table.add_row([
            format!("{}@{}", o.tenant, o.host),
            status_word(o.status).to_string(),
            format!("{changed}/{}", o.steps.len()),
            o.failed_step.clone().unwrap_or_else(|| "-".into()),
            format!("{:.1}s", o.duration_ms as f64 / 1000.0),
        ]);
    }
    let _ = writeln!(out, "{table}");
    if hidden > 0 {
        let _ = writeln!(out, "({hidden} unchanged targets not shown)");
    }
}

/// Counts of each result (failed, unreachable and skipped only when there are some),
/// the steps changed and the time taken.
fn summary(outcomes: &[TargetOutcome], elapsed: Duration, dry_run: bool, out: &mut String) {
    let t = DeployTally::of(outcomes);
    let mut parts = vec![format!("ok {}", t.ok), format!("changed {}", t.changed)];
    for (n, word) in [
        (t.failed, "failed"),
        (t.unreachable, "unreachable"),
        (t.skipped, "skipped"),
    ] {
        if n > 0 {
            parts.push(format!("{word} {n}"));
        }
    }
    let _ = writeln!(
        out,
        "{}{} — {} step{} changed — {} targets in {:.2}s",
        if dry_run {
            "dry run, nothing was changed: "
        } else {
            ""
        },
        parts.join(", "),
        t.steps_changed,
        if t.steps_changed == 1 { "" } else { "s" },
        outcomes.len(),
        elapsed.as_secs_f64()
    );
}

/// One JSON object per target, one per line.
#[must_use]
pub fn render_json(outcomes: &[TargetOutcome]) -> String {
    outcomes
        .iter()
        .filter_map(|o| serde_json::to_string(o).ok())
        .map(|l| l + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::StepOutcome;

    fn step(name: &str, status: StepStatus, stderr: &str, diff: Option<&str>) -> StepOutcome {
        StepOutcome {
            name: name.into(),
            kind: "file",
            status,
            attempts: 1,
            duration_ms: 10,
            exit_code: (status == StepStatus::Failed).then_some(3),
            stdout: String::new(),
            stderr: stderr.into(),
            diff: diff.map(Into::into),
            bytes_sent: None,
        }
    }

    fn target(tenant: &str, status: TargetStatus, steps: Vec<StepOutcome>) -> TargetOutcome {
        let mut o = TargetOutcome::new(tenant, "web-1", status, None);
        o.failed_step = steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| s.name.clone());
        o.steps = steps;
        o.duration_ms = 1250;
        o
    }

    fn small_fleet() -> Vec<TargetOutcome> {
        vec![
            target(
                "acme",
                TargetStatus::Changed,
                vec![
                    step("env", StepStatus::Changed, "", Some("-A=1\n+A=2\n")),
                    step("unit", StepStatus::Ok, "", None),
                ],
            ),
            target(
                "beta",
                TargetStatus::Failed,
                vec![step(
                    "config",
                    StepStatus::Failed,
                    "warming up\ncannot write /etc/beta.conf\n",
                    None,
                )],
            ),
            TargetOutcome::new(
                "gamma",
                "web-2",
                TargetStatus::Unreachable,
                Some("connect to 10.0.0.2:22 timed out after 3s (tcp connect)".into()),
            ),
        ]
    }

    #[test]
    fn the_report_gives_failures_then_diffs_then_a_table_and_a_summary() {
        let text = render_text(&small_fleet(), Duration::from_millis(2500), false, true);
        let want = "\
✗ beta@web-1: step `config` (file) failed with exit 3 after 1 attempt
    warming up
    cannot write /etc/beta.conf
✗ gamma@web-2: unreachable: connect to 10.0.0.2:22 timed out after 3s (tcp connect)
--- diff acme@web-1 step `env`
-A=1
+A=2
┌────────────────────────────────────────────────────────────────┐
│ target        result        changed steps   failed step   time │
╞════════════════════════════════════════════════════════════════╡
│ acme@web-1    changed       1/2             -             1.2s │
│ beta@web-1    failed        0/1             config        1.2s │
│ gamma@web-2   unreachable   0/0             -             0.0s │
└────────────────────────────────────────────────────────────────┘
ok 0, changed 1, failed 1, unreachable 1 — 1 step changed — 3 targets in 2.50s
";
        assert_eq!(text, want);
    }

    #[test]
    fn without_diff_and_in_a_dry_run_no_diff_is_printed_and_the_summary_says_so() {
        let text = render_text(&small_fleet(), Duration::from_millis(2500), true, false);
        assert!(!text.contains("--- diff"), "{text}");
        assert!(
            text.ends_with(
                "\ndry run, nothing was changed: ok 0, changed 1, failed 1, unreachable 1 \
                 — 1 step changed — 3 targets in 2.50s\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_failed_step_shows_the_last_twenty_lines_of_its_stderr() {
        let stderr: String = (1..=25).map(|n| format!("line {n}\n")).collect();
        let outcomes = [target(
            "acme",
            TargetStatus::Failed,
            vec![step("config", StepStatus::Failed, &stderr, None)],
        )];
        let text = render_text(&outcomes, Duration::ZERO, false, false);
        let shown: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .collect();
        let want: Vec<String> = (6..=25).map(|n| format!("line {n}")).collect();
        assert_eq!(shown, want);
    }

    #[test]
    fn bytes_sent_by_image_steps_are_shown_per_target_and_in_total() {
        let mut image = step("agent image", StepStatus::Changed, "", None);
        image.bytes_sent = Some(41_234_567);
        let mut unchanged = step("agent image", StepStatus::Ok, "", None);
        unchanged.bytes_sent = Some(0);
        let outcomes = vec![
            target("acme", TargetStatus::Changed, vec![image]),
            target("beta", TargetStatus::Ok, vec![unchanged]),
        ];
        let text = render_text(&outcomes, Duration::from_secs(1), false, false);
        assert!(text.contains("sent to acme@web-1: 41.2 MB\n"), "{text}");
        assert!(text.contains("sent to beta@web-1: 0 B\n"), "{text}");
        assert!(
            text.contains("sent 41.2 MB in all to 2 targets\n"),
            "{text}"
        );
        let plain = render_text(&small_fleet(), Duration::from_secs(1), false, false);
        assert!(
            !plain.contains("sent "),
            "no line without image steps: {plain}"
        );
    }

    #[test]
    fn a_large_fleet_counts_the_unchanged_targets_instead_of_listing_them() {
        let mut outcomes: Vec<TargetOutcome> = (0..FULL_TABLE_UP_TO)
            .map(|n| target(&format!("t{n}"), TargetStatus::Ok, vec![]))
            .collect();
        outcomes.push(target("acme", TargetStatus::Changed, vec![]));
        let text = render_text(&outcomes, Duration::ZERO, false, false);
        assert!(text.contains("│ acme@web-1 "), "{text}");
        assert!(!text.contains("t0@web-1"), "{text}");
        assert!(text.contains(&format!(
            "({FULL_TABLE_UP_TO} unchanged targets not shown)\n"
        )));
        // At the limit, every target is listed.
        let text = render_text(&outcomes[..FULL_TABLE_UP_TO], Duration::ZERO, false, false);
        assert!(
            text.contains("t0@web-1") && !text.contains("not shown"),
            "{text}"
        );
    }
}

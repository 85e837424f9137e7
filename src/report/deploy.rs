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

/// Human-readable report.
#[must_use]
pub fn render_text(
    outcomes: &[TargetOutcome],
    elapsed: Duration,
    dry_run: bool,
    diff: bool,
) -> String {
    let mut out = String::new();
    for o in outcomes {
        if let Some(error) = &o.error {
            let _ = writeln!(
                out,
                "✗ {}@{}: {}: {error}",
                o.tenant,
                o.host,
                status_word(o.status)
            );
            continue;
        }
        for s in &o.steps {
            if s.status == StepStatus::Failed {
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
                for line in s
                    .stderr
                    .trim_end()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    if diff {
        for o in outcomes {
            for s in o.steps.iter().filter(|s| s.diff.is_some()) {
                let _ = writeln!(out, "--- diff {}@{} step `{}`", o.tenant, o.host, s.name);
                out.push_str(s.diff.as_deref().unwrap_or_default());
            }
        }
    }
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
    out
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

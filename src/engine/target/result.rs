//! What a step did, read from its output: drover's change markers, the `--diff` of a
//! file, a refused `sudo` explained, secrets redacted.

use std::time::Duration;

use crate::config::{Become, Host};
use crate::engine::root::{as_root, become_refused, sudo_refused};
use crate::outcome::{StepOutcome, StepStatus, millis};
use crate::plan::render::PlannedStep;
use crate::plan::steps::{CHANGED_MARKER, CURRENT_MARKER, StepSpec};

pub(super) fn skipped(step: &PlannedStep) -> StepOutcome {
    StepOutcome {
        name: step.name.clone(),
        kind: step.kind,
        status: StepStatus::Skipped,
        attempts: 0,
        duration_ms: 0,
        exit_code: None,
        stdout: String::new(),
        stderr: String::new(),
        diff: None,
        bytes_sent: None,
    }
}

/// What a step's exec (or its part of a chain) produced.
pub(super) struct Ran {
    pub(super) exit_status: Option<u32>,
    pub(super) timed_out: bool,
    pub(super) timeout: Duration,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) attempts: u32,
    pub(super) duration: Duration,
}

/// Reads a step's output: drover's markers, the `--diff` of a file, secrets redacted.
pub(super) fn finish(
    step: &PlannedStep,
    spec: &StepSpec,
    host: &Host,
    ran: Ran,
    secrets: &[String],
) -> StepOutcome {
    let ok = ran.exit_status == Some(0) && !ran.timed_out;
    let mut stderr = redact(&ran.stderr, secrets);
    if ran.timed_out {
        stderr.push_str(&format!(
            "\n[drover] step timed out after {}s",
            ran.timeout.as_secs_f64()
        ));
    }
    if !ok && step.r#become && host.r#become == Become::Sudo && sudo_refused(&stderr) {
        stderr = become_refused(host, &stderr);
    }
    let (body, current) = match ran.stdout.split_once(&format!("{CURRENT_MARKER}\n")) {
        Some((body, current)) => (body.to_string(), Some(current.to_string())),
        None => (ran.stdout.clone(), None),
    };
    let changed = body.lines().any(|l| l == CHANGED_MARKER);
    let cleaned: String = body
        .lines()
        .filter(|l| *l != CHANGED_MARKER)
        .map(|l| format!("{l}\n"))
        .collect();
    let diff = match (spec, current, changed) {
        (
            StepSpec::File {
                dest,
                content,
                secret: false,
                ..
            },
            Some(current),
            true,
        ) => {
            let new = String::from_utf8_lossy(content);
            Some(
                similar::TextDiff::from_lines(current.as_str(), new.as_ref())
                    .unified_diff()
                    .context_radius(3)
                    .header(dest, dest)
                    .to_string(),
            )
        }
        _ => None,
    };
    StepOutcome {
        name: step.name.clone(),
        kind: step.kind,
        status: match (ok, changed) {
            (false, _) => StepStatus::Failed,
            (true, true) => StepStatus::Changed,
            (true, false) => StepStatus::Ok,
        },
        attempts: ran.attempts,
        duration_ms: millis(ran.duration),
        exit_code: ran.exit_status,
        stdout: redact(&cleaned, secrets),
        stderr,
        diff: diff.map(|d| redact(&d, secrets)),
        bytes_sent: None,
    }
}

/// Wraps a script for `become`: root through `sudo -n` (never prompts).
pub(super) fn with_become(script: String, r#become: bool, host: &Host) -> String {
    if r#become {
        as_root(script, host)
    } else {
        script
    }
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

//! `keep_releases`: once a target is switched (blue-green) or deployed (in place),
//! still under the tenant's lock when blue-green, its old releases are pruned. The
//! result is one more step of the target, `prune releases`, listing each release
//! removed (in dry-run: each that would be). A failed prune is reported on that step;
//! it never fails a target whose release is live. A tenant without a releases folder
//! (a playbook that keeps none there) gets no such step.

use std::time::Instant;

use super::Rollout;
use super::context::TargetTask;
use crate::outcome::{StepOutcome, StepStatus, TargetOutcome, TargetStatus, millis};
use crate::plan::prune::{PrunePaths, prune};
use crate::transport::Connector;

/// The step's name in reports.
pub(super) const STEP: &str = "prune releases";

impl<C: Connector> Rollout<C> {
    /// Prunes the tenant's releases after a successful target; adds the step and its
    /// phase to `outcome`.
    pub(super) async fn prune(&self, task: &TargetTask<'_, C>, outcome: &mut TargetOutcome) {
        let Some(keep) = self.options.keep_releases else {
            return;
        };
        if !outcome.succeeded() {
            return;
        }
        let dry_run = self.options.steps.dry_run;
        let paths = PrunePaths::of(task.tenant);
        let script = prune(&paths, keep, &self.options.version, dry_run);
        let at = Instant::now();
        let result = task.root(script).await;
        outcome.phases.since("prune", at);
        let (status, exit_code, stdout, stderr) = match result {
            Ok(out) => {
                let stdout = out.stdout.text();
                let removed = stdout
                    .lines()
                    .any(|l| l.starts_with("removed ") || l.starts_with("would remove "));
                let status = match out.exit_status {
                    Some(0) if removed => StepStatus::Changed,
                    Some(0) => StepStatus::Ok,
                    _ => StepStatus::Failed,
                };
                (status, out.exit_status, stdout, out.stderr.text())
            }
            Err(e) => (StepStatus::Failed, None, String::new(), e.to_string()),
        };
        if status == StepStatus::Ok && stdout.is_empty() {
            return; // no releases folder: a playbook that keeps none there
        }
        if status == StepStatus::Changed && outcome.status == TargetStatus::Ok {
            outcome.status = TargetStatus::Changed;
        }
        outcome.steps.push(StepOutcome {
            name: STEP.into(),
            kind: "prune",
            status,
            attempts: 1,
            duration_ms: millis(at.elapsed()),
            exit_code,
            stdout,
            stderr,
            diff: None,
            bytes_sent: None,
        });
    }
}

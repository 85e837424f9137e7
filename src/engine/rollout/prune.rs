//! `keep_releases`: once a target is switched (blue-green) or deployed (in place),
//! still under the tenant's lock when blue-green, its old releases are pruned. The
//! result is one more step of the target, `prune releases`, listing each release
//! removed (in dry-run: each that would be). A failed prune is reported on that step;
//! it never fails a target whose release is live. A tenant without a releases folder
//! (a playbook that keeps none there) gets no such step.
//!
//! `keep_images` works the same way with a step `prune images` (see
//! [`crate::plan::prune_images`]); a host without podman gets no such step.

use std::time::Instant;

use super::Rollout;
use super::context::TargetTask;
use crate::outcome::{StepOutcome, StepStatus, TargetOutcome, TargetStatus, millis};
use crate::plan::prune::{PrunePaths, prune};
use crate::plan::prune_images::prune_images;
use crate::transport::Connector;

/// The step's name in reports.
pub(super) const STEP: &str = "prune releases";
/// The image pruning step's name in reports.
pub(super) const IMAGES_STEP: &str = "prune images";

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
        self.prune_step(task, outcome, STEP, script).await;
    }

    /// Prunes the host's images of the container step's repository after a
    /// successful target; adds the step and its phase to `outcome`.
    pub(super) async fn prune_images(&self, task: &TargetTask<'_, C>, outcome: &mut TargetOutcome) {
        let Some(k) = &self.options.keep_images else {
            return;
        };
        if !outcome.succeeded() {
            return;
        }
        let dry_run = self.options.steps.dry_run;
        let script = prune_images(&k.repository, k.keep, &self.options.version, dry_run);
        self.prune_step(task, outcome, IMAGES_STEP, script).await;
    }

    /// Runs a pruning script as root and records it as the step `name`: changed when
    /// it removed something, failed when it failed, absent when it printed nothing.
    async fn prune_step(
        &self,
        task: &TargetTask<'_, C>,
        outcome: &mut TargetOutcome,
        name: &'static str,
        script: String,
    ) {
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
            return; // nothing to look at: no releases folder, no podman
        }
        if status == StepStatus::Changed && outcome.status == TargetStatus::Ok {
            outcome.status = TargetStatus::Changed;
        }
        outcome.steps.push(StepOutcome {
            name: name.into(),
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

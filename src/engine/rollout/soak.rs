//! The canary soak in place: after the canary batch, the rollout waits `--pause`, then
//! checks the canaries again (their health steps). Blue-green canaries are watched
//! continuously instead ([`super::canary`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::target::run_target;
use super::context::TargetTask;
use super::{Plans, Rollout};
use crate::events::Event;
use crate::outcome::{TargetOutcome, TargetStatus};
use crate::plan::render::TargetPlan;
use crate::transport::Connector;

/// Why a canary failed its re-check.
#[derive(Debug, thiserror::Error)]
pub(super) enum SoakError {
    /// Its host could not be reached again.
    #[error("{0}")]
    Unreachable(String),
    /// In place: the playbook's health step failed again.
    #[error("unhealthy after the soak: {0}")]
    HealthStep(String),
}

impl<C: Connector> Rollout<C> {
    /// Soaks, then re-checks the canaries of `batch` that succeeded; a failing one is
    /// marked failed (and switched back, blue-green). Returns how many failed.
    pub(super) async fn soak(
        self: &Arc<Self>,
        batch: &[usize],
        outcomes: &mut [Option<TargetOutcome>],
    ) -> usize {
        if matches!(self.plans, Plans::BlueGreen { .. }) {
            return self.watch_canaries(batch, outcomes).await;
        }
        let pause = self.options.pause;
        let _ = self
            .cx
            .events
            .send(Event::Soaking {
                seconds: pause.as_secs(),
            })
            .await;
        let until = Instant::now() + pause;
        while Instant::now() < until && !self.halt.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(200).min(until - Instant::now())).await;
        }
        let mut failed = 0;
        for &i in batch {
            let Some(outcome) = outcomes[i].as_mut() else {
                continue;
            };
            if !outcome.succeeded() {
                continue;
            }
            let target = &self.plans.targets()[i];
            if let Err(why) = self.recheck(target).await {
                outcome.status = TargetStatus::Failed;
                outcome.failed_step = Some("canary re-check".into());
                outcome.error = Some(why.to_string());
                failed += 1;
                self.cx.finished(outcome).await;
            }
        }
        failed
    }

    /// The canary re-check: the playbook's health steps pass again.
    async fn recheck(&self, target: &TargetPlan) -> Result<(), SoakError> {
        let task = self
            .cx
            .task(target)
            .await
            .map_err(|o| SoakError::Unreachable(o.error.unwrap_or_default()))?;
        self.recheck_health_steps(&task, target).await
    }

    async fn recheck_health_steps(
        &self,
        task: &TargetTask<'_, C>,
        target: &TargetPlan,
    ) -> Result<(), SoakError> {
        let health = TargetPlan {
            tenant: target.tenant.clone(),
            host: target.host.clone(),
            steps: target
                .steps
                .iter()
                .filter(|s| s.kind == "health" && s.spec.is_some())
                .cloned()
                .collect(),
        };
        let options = &self.options.steps;
        let out = run_target(&*task.conn, task.host, &health, options, &self.secrets).await;
        if out.status == TargetStatus::Failed {
            let stderr = out.steps.last().map(|s| s.stderr.trim().to_string());
            return Err(SoakError::HealthStep(stderr.unwrap_or_default()));
        }
        Ok(())
    }
}

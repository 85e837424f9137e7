//! The canary soak: after the canary batch, the rollout waits `--pause`, then checks
//! the canaries again. A release that passes its first health check and dies later (a
//! crash loop restarted by systemd) is caught here and, blue-green, switched back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::target::run_target;
use super::context::{ScriptError, StateError, TargetTask};
use super::{Plans, Rollout, rollback};
use crate::events::Event;
use crate::outcome::{TargetOutcome, TargetStatus};
use crate::plan::bluegreen;
use crate::plan::render::TargetPlan;
use crate::transport::Connector;

/// Why a canary failed its re-check.
#[derive(Debug, thiserror::Error)]
pub(super) enum SoakError {
    /// Its host could not be reached again.
    #[error("{0}")]
    Unreachable(String),
    /// Its state could not be read.
    #[error("{0}")]
    State(StateError),
    /// Its live color is down, restarted, or does not answer through nginx.
    #[error("unhealthy after the soak: {0}")]
    Unhealthy(ScriptError),
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
                outcome.error = Some(self.after_failed_soak(target, why).await);
                failed += 1;
                self.cx.finished(outcome).await;
            }
        }
        failed
    }

    /// The canary's new color died after passing its first check: blue-green goes
    /// back to the previous color (kept warm) so the tenant stays live.
    async fn after_failed_soak(&self, target: &TargetPlan, why: SoakError) -> String {
        if !matches!(self.plans, Plans::BlueGreen { .. }) {
            return why.to_string();
        }
        match rollback::switch_back(&self.cx, &target.tenant, &target.host).await {
            Ok(now) => {
                if let Ok(mut list) = self.soak_rolled_back.lock() {
                    list.push(format!("{}@{}", target.tenant, target.host));
                }
                format!("{why}; switched back to {now}")
            }
            Err(e) => format!("{why}; switching back failed: {e}"),
        }
    }

    /// The canary re-check: the live color's unit is still up with no restart and
    /// answers healthy through nginx (blue-green), or the playbook's health steps pass
    /// again (in place).
    async fn recheck(&self, target: &TargetPlan) -> Result<(), SoakError> {
        let task = self
            .cx
            .task(target)
            .await
            .map_err(|o| SoakError::Unreachable(o.error.unwrap_or_default()))?;
        match &self.plans {
            Plans::BlueGreen { .. } => self.recheck_live_color(&task).await,
            Plans::InPlace(_) => self.recheck_health_steps(&task, target).await,
        }
    }

    async fn recheck_live_color(&self, task: &TargetTask<'_, C>) -> Result<(), SoakError> {
        if let Some(state) = task.state().await.map_err(SoakError::State)? {
            let check = bluegreen::soak_check(task.tenant, state.active);
            task.run(check).await.map_err(SoakError::Unhealthy)?;
        }
        let version = &self.options.version;
        let script = bluegreen::verify_through_proxy(task.tenant, version, 4);
        task.run(script).await.map_err(SoakError::Unhealthy)?;
        Ok(())
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

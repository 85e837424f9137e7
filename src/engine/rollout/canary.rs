//! The blue-green canary after its switch: weighted steps, each held for `--pause`
//! and judged every `[analysis] interval` on the unit and on real traffic (the
//! tenant's access log, read from where the last check stopped), then 100 % and a
//! last verification through nginx. The old color stays behind the new one the whole
//! time; the first failed check aborts the canary (back on the old color alone,
//! audited with the numbers that decided). A canary that passes is confirmed: its
//! timer disarmed, the old color taken out of the upstream, drained with `--drain`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Rollout;
use super::analysis::{self, Decision, UnitState, Window};
use super::bluegreen::{confirm_script, drain};
use super::context::TargetTask;
use crate::events::Event;
use crate::outcome::{CanaryReport, TargetOutcome, TargetStatus, millis};
use crate::plan::bluegreen::{REVERT_FIRED, Switch, TenantState};
use crate::plan::upstream::{self, Traffic};
use crate::plan::{Color, TenantLayout, live};
use crate::transport::Connector;

/// One canary being watched.
struct Watch {
    index: usize,
    switch: Switch,
    window: Window,
    offset: Option<u64>,
    checks: u32,
    /// the unit's automatic restarts at the first check: a color redeployed after a
    /// crash loop keeps systemd's count, so only restarts since then count
    restarts_base: Option<u32>,
}

impl<C: Connector> Rollout<C> {
    /// The switch of a blue-green target: pending (the old color behind the new one)
    /// until confirmed; a soaking canary's timer deadline covers its whole soak, and
    /// it starts at its first weight.
    pub(super) fn pending_switch(
        &self,
        task: &TargetTask<'_, C>,
        before: Option<TenantState>,
        to: (Color, &str),
        soaking: bool,
    ) -> Option<Switch> {
        let progressive = &self.options.progressive;
        let mut revert_after = self.options.revert_after;
        if soaking {
            revert_after = revert_after.map(|d| d + self.soak_time());
        }
        let mut switch = task.switch(before, to, revert_after, "deploy")?;
        switch.traffic = Some(Traffic {
            weight: progressive
                .canary_weights
                .first()
                .copied()
                .filter(|_| soaking),
            retry_non_idempotent: progressive.retry_non_idempotent,
            sticky: progressive.sticky,
        });
        Some(switch)
    }

    /// Every weighted step and the soak at 100 %, with time to spare for the checks.
    fn soak_time(&self) -> Duration {
        let steps = u32::try_from(self.options.progressive.canary_weights.len() + 1).unwrap_or(1);
        (self.options.pause + Duration::from_secs(10)) * steps
    }

    /// Watches the blue-green canaries of `batch` that switched, step by step; returns
    /// how many were aborted.
    pub(super) async fn watch_canaries(
        self: &Arc<Self>,
        batch: &[usize],
        outcomes: &mut [Option<TargetOutcome>],
    ) -> usize {
        let mut watching = Vec::new();
        let mut failed = 0;
        for &i in batch {
            if !outcomes[i].as_ref().is_some_and(TargetOutcome::succeeded) {
                continue;
            }
            let Some((watch, decision)) = self.start_watch(i).await else {
                continue;
            };
            if let Decision::Fail(why) = &decision {
                // It died between its switch and the soak.
                let analysis = &self.options.progressive.analysis;
                let first = self.options.progressive.canary_weights.first();
                let weight = first.copied().unwrap_or(100);
                let colors = watch.colors();
                let report = analysis::report(
                    analysis,
                    &decision,
                    &watch.window,
                    (colors.0.as_str(), colors.1.as_str()),
                    (weight, watch.checks, 0),
                );
                self.abort(&watch, report, &format!("analysis: {why}"), outcomes)
                    .await;
                failed += 1;
            } else {
                watching.push(watch);
            }
        }
        let weights = self.options.progressive.canary_weights.clone();
        let steps = weights.iter().copied().chain([100]);
        for (n, weight) in steps.enumerate() {
            if watching.is_empty() || self.halt.load(Ordering::Relaxed) {
                break;
            }
            if n > 0 {
                self.reweigh(&mut watching, weight, outcomes, &mut failed)
                    .await;
            }
            self.step(&mut watching, weight, outcomes, &mut failed)
                .await;
        }
        if self.halt.load(Ordering::Relaxed) {
            // A halted run leaves no canary in between: back to the old color.
            for watch in watching.drain(..) {
                let report = analysis::report(
                    &self.options.progressive.analysis,
                    &Decision::Fail("halted".into()),
                    &watch.window,
                    ("new", "old"),
                    (0, watch.checks, 0),
                );
                self.abort(&watch, report, "halted during the canary", outcomes)
                    .await;
                failed += 1;
            }
        }
        for watch in watching {
            failed += usize::from(!self.confirm_canary(&watch, outcomes).await);
        }
        failed
    }

    /// Reads the canary's state and where its access log ends now; the unit's state
    /// judged at once.
    async fn start_watch(&self, index: usize) -> Option<(Watch, Decision)> {
        let target = &self.plans.targets()[index];
        let task = self.cx.task(target).await.ok()?;
        let after = task.state().await.ok()??;
        let before = TenantState {
            active: after.previous?,
            version: after.previous_version.clone()?,
            ..after.clone()
        };
        let to = (after.active, after.version.as_str());
        let switch = self.pending_switch(&task, Some(before.clone()), to, true)?;
        let base = self.cx.base_port(&target.tenant)?;
        let window = Window::new(after.active.port(base), before.active.port(base));
        let mut watch = Watch {
            index,
            switch,
            window,
            offset: None,
            checks: 0,
            restarts_base: None,
        };
        let decision = self.check(&task, &mut watch).await;
        Some((watch, decision))
    }

    /// Moves every canary to `weight` (100: all traffic, the old color as backup).
    async fn reweigh(
        &self,
        watching: &mut Vec<Watch>,
        weight: u8,
        outcomes: &mut [Option<TargetOutcome>],
        failed: &mut usize,
    ) {
        let mut kept = Vec::new();
        for watch in watching.drain(..) {
            let target = &self.plans.targets()[watch.index];
            let script = watch.switch.reweigh(weight);
            let moved = match (self.cx.task(target).await, script) {
                (Ok(task), Some(script)) => task
                    .run(script)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                (Err(o), _) => Err(o.error.unwrap_or_default()),
                (_, None) => Ok(()),
            };
            match moved {
                Ok(_) => {
                    self.note(&watch, weight, &format!("{weight}% of traffic"))
                        .await;
                    kept.push(watch);
                }
                Err(e) => {
                    let report = CanaryReport {
                        verdict: "fail".into(),
                        reason: Some(format!("moving to {weight}% failed: {e}")),
                        weight,
                        ..CanaryReport::default()
                    };
                    self.abort(&watch, report, "weight change failed", outcomes)
                        .await;
                    *failed += 1;
                }
            }
        }
        *watching = kept;
    }

    /// One step: every `interval` until `--pause` has passed, each canary checked;
    /// then its last check, where too few requests are `inconclusive`.
    async fn step(
        &self,
        watching: &mut Vec<Watch>,
        weight: u8,
        outcomes: &mut [Option<TargetOutcome>],
        failed: &mut usize,
    ) {
        let analysis = self.options.progressive.analysis.clone();
        let started = Instant::now();
        let until = started + self.options.pause;
        let _ = self
            .cx
            .events
            .send(Event::Soaking {
                seconds: self.options.pause.as_secs(),
            })
            .await;
        for watch in watching.iter_mut() {
            watch.window = Window::new(watch.window_ports().0, watch.window_ports().1);
            watch.checks = 0;
        }
        loop {
            let now = Instant::now();
            let last = now >= until || self.halt.load(Ordering::Relaxed);
            if !last {
                tokio::time::sleep(analysis.interval.min(until - now)).await;
            }
            let mut kept = Vec::new();
            for mut watch in watching.drain(..) {
                let target = &self.plans.targets()[watch.index];
                let decision = match self.cx.task(target).await {
                    Err(o) => {
                        Decision::Fail(format!("host unreachable: {}", o.error.unwrap_or_default()))
                    }
                    Ok(task) => self.check(&task, &mut watch).await,
                };
                let decision = match decision {
                    Decision::Pass if last => {
                        let unit = UnitState {
                            active: "active".into(),
                            restarts: 0,
                        };
                        analysis::judge(&analysis, &unit, &watch.window, true)
                    }
                    d => d,
                };
                let colors = watch.colors();
                let elapsed = millis(started.elapsed());
                let report = analysis::report(
                    &analysis,
                    &decision,
                    &watch.window,
                    (colors.0.as_str(), colors.1.as_str()),
                    (weight, watch.checks, elapsed),
                );
                if analysis::passes(&analysis, &decision) {
                    if last {
                        self.note(&watch, weight, &summary(&report)).await;
                        if let Some(o) = outcomes[watch.index].as_mut() {
                            o.canary = Some(report);
                        }
                    }
                    kept.push(watch);
                } else {
                    let why = format!("analysis: {}", report.reason.clone().unwrap_or_default());
                    self.abort(&watch, report, &why, outcomes).await;
                    *failed += 1;
                }
            }
            *watching = kept;
            if last || watching.is_empty() {
                return;
            }
        }
    }

    /// One check of one canary: its unit and the new lines of its access log.
    async fn check(&self, task: &TargetTask<'_, C>, watch: &mut Watch) -> Decision {
        let unit = TenantLayout::of(task.tenant).unit(watch.switch.after.active);
        let script = upstream::watch(task.tenant, &unit, watch.offset);
        let out = match task.run(script).await {
            Ok(out) => out.stdout.text(),
            Err(e) => return Decision::Fail(format!("check failed: {e}")),
        };
        let Some(seen) = upstream::parse_watch(&out) else {
            return Decision::Fail(format!("check printed no state: {}", out.trim()));
        };
        watch.offset = Some(seen.next_offset);
        watch.window.add_lines(&seen.lines);
        watch.checks += 1;
        let base = *watch.restarts_base.get_or_insert(seen.restarts);
        let state = UnitState {
            active: seen.active,
            restarts: seen.restarts.saturating_sub(base),
        };
        analysis::judge(
            &self.options.progressive.analysis,
            &state,
            &watch.window,
            false,
        )
    }

    /// Aborts a canary: back on the old color alone, audited with `why`; its outcome
    /// failed with the numbers that decided.
    async fn abort(
        &self,
        watch: &Watch,
        report: CanaryReport,
        why: &str,
        outcomes: &mut [Option<TargetOutcome>],
    ) {
        let target = &self.plans.targets()[watch.index];
        let back = match (self.cx.task(target).await, watch.switch.abort_script(why)) {
            (Ok(task), Some(script)) => match task.run(script).await {
                Ok(_) => {
                    // `on-rollback` hears of canaries switched back, as of a rollback.
                    if let Ok(mut list) = self.soak_rolled_back.lock() {
                        list.push(format!("{}@{}", target.tenant, target.host));
                    }
                    format!("switched back to {}", label(watch.switch.before.as_ref()))
                }
                Err(e) => format!("switching back failed: {e}"),
            },
            (Err(o), _) => format!(
                "switching back failed: {}; the host's revert timer will",
                o.error.unwrap_or_default()
            ),
            (_, None) => "nothing to switch back to".into(),
        };
        self.note(watch, 0, &format!("aborted ({why}); {back}"))
            .await;
        let Some(outcome) = outcomes[watch.index].as_mut() else {
            return;
        };
        outcome.status = TargetStatus::Failed;
        outcome.failed_step = Some("canary analysis".into());
        outcome.error = Some(format!("canary aborted ({why}); {back}"));
        outcome.canary = Some(report);
        self.cx.finished(outcome).await;
    }

    /// Confirms a canary that passed every step: verified through nginx, timer
    /// disarmed, the old color out of the upstream, drained with `--drain`.
    async fn confirm_canary(&self, watch: &Watch, outcomes: &mut [Option<TargetOutcome>]) -> bool {
        let target = &self.plans.targets()[watch.index];
        let version = &self.options.version;
        let result = match self.cx.task(target).await {
            Err(o) => Err(o.error.unwrap_or_default()),
            Ok(task) => {
                let verify = live::verify_live(task.tenant, watch.switch.after.active, version, 20);
                match task.run(verify).await {
                    Err(e) => Err(format!("through nginx at 100%: {e}")),
                    Ok(_) => match task.run(confirm_script(&watch.switch)).await {
                        Err(e) if e.status() == Some(REVERT_FIRED) => {
                            Err("the revert timer fired first: the host switched back".into())
                        }
                        Err(e) => Err(format!("confirming failed: {e}")),
                        Ok(_) => {
                            drain(self, &task, watch.switch.before.as_ref()).await;
                            Ok(())
                        }
                    },
                }
            }
        };
        match result {
            Ok(()) => {
                self.note(watch, 100, "confirmed").await;
                true
            }
            Err(why) => {
                let report = outcomes[watch.index]
                    .as_ref()
                    .and_then(|o| o.canary.clone())
                    .unwrap_or_default();
                self.abort(watch, report, &why, outcomes).await;
                false
            }
        }
    }

    /// Tells the live report and the journal where a canary's traffic stands.
    async fn note(&self, watch: &Watch, weight: u8, what: &str) {
        let target = &self.plans.targets()[watch.index];
        let name = format!("{}@{}", target.tenant, target.host);
        if let Some(journal) = &self.cx.journal {
            journal.canary(&name, weight, what);
        }
        let message = format!("{name}: {what}");
        let _ = self.cx.events.send(Event::Canary { message }).await;
    }
}

impl Watch {
    fn colors(&self) -> (String, String) {
        let old = self
            .switch
            .before
            .as_ref()
            .map_or(String::new(), |b| b.active.to_string());
        (self.switch.after.active.to_string(), old)
    }

    fn window_ports(&self) -> (u16, u16) {
        let base = self.switch.base_port;
        let old = self
            .switch
            .before
            .as_ref()
            .map_or(self.switch.after.active.other(), |b| b.active);
        (self.switch.after.active.port(base), old.port(base))
    }
}

fn label(state: Option<&TenantState>) -> String {
    state.map_or("nothing".into(), |s| format!("{}@{}", s.active, s.version))
}

/// A step's numbers in one line.
fn summary(r: &CanaryReport) -> String {
    let ms = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v}ms"));
    format!(
        "{}% step {}: {} request(s) to {}, error rate {:.1}%, p95 {} (old {}: {} request(s), p95 {}){}",
        r.weight,
        r.verdict,
        r.new.requests,
        r.new.color,
        r.new.error_rate * 100.0,
        ms(r.new.p95_ms),
        r.old.color,
        r.old.requests,
        ms(r.old.p95_ms),
        r.reason
            .as_ref()
            .map_or(String::new(), |w| format!("; {w}")),
    )
}

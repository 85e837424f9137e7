//! Where a rollout's time went (`drover deploy -v`): per phase, the median and 95th
//! percentile over the targets that went through it, and each batch's critical path —
//! its slowest target, phase by phase, since a batch ends when its slowest target does.

use std::fmt::Write as _;

use crate::outcome::TargetOutcome;

/// The phase table and the batches' critical paths; empty when no target was timed.
#[must_use]
pub fn render(outcomes: &[TargetOutcome]) -> String {
    let timed: Vec<&TargetOutcome> = outcomes.iter().filter(|o| !o.phases.is_empty()).collect();
    if timed.is_empty() {
        return String::new();
    }
    let mut out = format!("phases over {} target(s): median / p95 ms\n", timed.len());
    for name in phase_names(&timed) {
        let mut times: Vec<u64> = timed
            .iter()
            .filter(|o| o.phases.iter().any(|(n, _)| n == name))
            .map(|o| o.phases.get(name))
            .collect();
        times.sort_unstable();
        let _ = writeln!(
            out,
            "  {name:<8} {:>7} {:>7}  ({} target(s))",
            percentile(&times, 50),
            percentile(&times, 95),
            times.len()
        );
    }
    out.push_str(&critical_paths(&timed));
    out
}

/// Every phase name, in the order phases first appear.
fn phase_names(timed: &[&TargetOutcome]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for o in timed {
        for (name, _) in o.phases.iter() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The value at percentile `p` of sorted `times` (nearest rank).
fn percentile(times: &[u64], p: usize) -> u64 {
    if times.is_empty() {
        return 0;
    }
    let rank = (times.len() * p).div_ceil(100).max(1);
    times[rank - 1]
}

/// Per batch: its slowest target and that target's phases.
fn critical_paths(timed: &[&TargetOutcome]) -> String {
    let mut batches: Vec<usize> = timed.iter().filter_map(|o| o.batch).collect();
    batches.sort_unstable();
    batches.dedup();
    let mut out = String::new();
    for batch in batches {
        let members = timed.iter().filter(|o| o.batch == Some(batch));
        let Some(slowest) = members.clone().max_by_key(|o| o.duration_ms) else {
            continue;
        };
        let phases: Vec<String> = slowest
            .phases
            .iter()
            .map(|(name, ms)| format!("{name} {ms}"))
            .collect();
        let _ = writeln!(
            out,
            "batch {batch}: {} target(s), critical path {} ({} ms): {}",
            members.count(),
            slowest.name(),
            slowest.duration_ms,
            phases.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TargetStatus;

    fn target(host: &str, batch: usize, phases: &[(&'static str, u64)]) -> TargetOutcome {
        let mut o = TargetOutcome::new("acme", host, TargetStatus::Changed, None);
        o.batch = Some(batch);
        for &(name, ms) in phases {
            o.phases.add(name, ms);
        }
        o.duration_ms = phases.iter().map(|(_, ms)| ms).sum();
        o
    }

    #[test]
    fn phases_get_a_median_and_p95_and_each_batch_its_slowest_target() {
        let outcomes: Vec<TargetOutcome> = (1..=20)
            .map(|i| {
                target(
                    &format!("h{i}"),
                    1 + (i > 10) as usize,
                    &[("steps", i * 10), ("switch", 50)],
                )
            })
            .chain([TargetOutcome::new(
                "acme",
                "skipped",
                TargetStatus::Skipped,
                None,
            )])
            .collect();
        let text = render(&outcomes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "phases over 20 target(s): median / p95 ms");
        assert_eq!(lines[1], "  steps        100     190  (20 target(s))");
        assert_eq!(lines[2], "  switch        50      50  (20 target(s))");
        assert_eq!(
            lines[3],
            "batch 1: 10 target(s), critical path acme@h10 (150 ms): steps 100, switch 50"
        );
        assert!(lines[4].starts_with("batch 2: 10 target(s), critical path acme@h20 (250 ms)"));
    }

    #[test]
    fn a_run_without_timed_targets_prints_nothing() {
        let skipped = TargetOutcome::new("acme", "h1", TargetStatus::Skipped, None);
        assert_eq!(render(&[skipped]), "");
    }
}

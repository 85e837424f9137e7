//! A target's steps cut into execs: runs of steps that can share one script (a
//! [`super::super::chain::Chain`]), and steps that must go alone (retries, a large
//! input, an image).

use std::ops::Range;

use crate::plan::render::PlannedStep;
use crate::plan::steps::StepScript;

/// The target's steps cut into execs, in order (see [`chain_end`]).
pub(super) fn groups(steps: &[PlannedStep], scripts: &[Option<StepScript>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < steps.len() {
        let end = chain_end(steps, scripts, at);
        out.push(at..end);
        at = end;
    }
    out
}

/// Larger inputs (release uploads) go in their own exec: `dd` holds a step's input in
/// memory on the host while handing it over.
const MAX_CHAINED_STDIN: usize = 4 << 20;

/// Whether step `i` can run inside a chain: it runs (not skipped), has no retries and a
/// small input.
pub(super) fn chainable(steps: &[PlannedStep], scripts: &[Option<StepScript>], i: usize) -> bool {
    // An image step talks with the host in several execs of its own (engine::image).
    if matches!(
        steps[i].spec,
        Some(crate::plan::steps::StepSpec::Image { .. })
    ) {
        return false;
    }
    scripts[i].as_ref().is_some_and(|s| {
        s.stdin
            .as_ref()
            .is_none_or(|b| b.len() <= MAX_CHAINED_STDIN)
            && steps[i].retries == 0
    })
}

/// End (exclusive) of the chain that starts at `at`: the following steps that can share
/// its exec. Steps skipped by `when` do not break a chain.
fn chain_end(steps: &[PlannedStep], scripts: &[Option<StepScript>], at: usize) -> usize {
    let chainable = |i: usize| chainable(steps, scripts, i);
    if !chainable(at) {
        return at + 1;
    }
    let mut end = at + 1;
    while end < steps.len()
        && (scripts[end].is_none() || (chainable(end) && steps[end].r#become == steps[at].r#become))
    {
        end += 1;
    }
    end
}

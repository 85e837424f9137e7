//! A tenant's deploy lock as status sees it: held for too long, or held by a run this
//! control node knows has ended or died (left over: the next deploy is refused).

use super::report::{
    Lock, Problem, ProblemKind, STALE_LOCK, TargetReport, TargetState, human_duration, problem,
};
use super::script::RawTenant;
use crate::engine::journal::Liveness;

/// The tenant's deploy lock, when one is held.
pub(super) fn lock_of(raw: &RawTenant) -> Option<Lock> {
    raw.lock_age.map(|age| {
        let get = |k: &str| raw.lock.get(k).cloned();
        Lock {
            run: get("run"),
            operator: get("operator"),
            since: get("since"),
            age_seconds: Some(age),
            stale: age > STALE_LOCK.as_secs(),
            holder: None,
        }
    })
}

pub(super) fn stale_lock_problem(l: &Lock) -> Option<Problem> {
    l.stale.then(|| {
        problem(
            ProblemKind::StaleLock,
            format!(
                "deploy lock held for {} by run {} ({}): its run probably died; `drover deploy --force-unlock` takes it",
                human_duration(l.age_seconds.unwrap_or(0)),
                l.run.as_deref().unwrap_or("unknown"),
                l.operator.as_deref().unwrap_or("unknown operator")
            ),
        )
    })
}

/// Flags at once a lock whose run this control node knows to have ended or died (it
/// was cut off from the host before it could unlock): the next deploy of the tenant
/// would be refused, so it is left over whatever its age. `liveness` tells what the
/// local run journal says of a run.
pub fn judge_lock_holders(report: &mut TargetReport, liveness: impl Fn(&str) -> Liveness) {
    let Some(lock) = report.lock.as_mut() else {
        return;
    };
    let Some(run) = lock.run.clone() else {
        return;
    };
    let verdict = liveness(&run);
    lock.holder = Some(verdict.word().to_owned());
    // A run that ended has nothing left to resume; one that died takes its own locks
    // again when resumed.
    let (why, clear) = match verdict {
        Liveness::Ended => (
            "has ended (its journal here says so)".to_owned(),
            "`drover deploy … --force-unlock` (audited)".to_owned(),
        ),
        Liveness::Died => (
            "died (its journal here has no end and no drover process runs)".to_owned(),
            format!("`drover resume {run}`, or `drover deploy … --force-unlock` (audited)"),
        ),
        Liveness::Running | Liveness::Unknown => return,
    };
    let already = lock.stale;
    lock.stale = true;
    let message = format!(
        "deploy lock left over by run {run} ({}), which {why}: the next deploy of {} is refused until it is cleared — {clear}",
        lock.operator.as_deref().unwrap_or("unknown operator"),
        report.tenant,
    );
    report
        .problems
        .retain(|p| !(already && p.kind == ProblemKind::StaleLock));
    report
        .problems
        .push(problem(ProblemKind::StaleLock, message));
    if report.state == TargetState::Ok {
        report.state = TargetState::Problem;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::unknown_target;

    fn locked_target(age: u64) -> TargetReport {
        let mut t = unknown_target("acme", "web-1", "");
        t.state = TargetState::Ok;
        t.error = None;
        t.lock = Some(Lock {
            run: Some("20261202t100000z-00042".into()),
            operator: Some("ops@laptop".into()),
            since: None,
            age_seconds: Some(age),
            stale: age > STALE_LOCK.as_secs(),
            holder: None,
        });
        if let Some(p) = t.lock.as_ref().and_then(stale_lock_problem) {
            t.problems.push(p);
            t.state = TargetState::Problem;
        }
        t
    }

    #[test]
    fn a_lock_whose_run_has_ended_is_flagged_at_once_with_the_way_out() {
        let mut t = locked_target(25);
        judge_lock_holders(&mut t, |_| Liveness::Ended);
        assert_eq!(t.state, TargetState::Problem);
        let lock = t.lock.as_ref().unwrap();
        assert!(lock.stale);
        assert_eq!(lock.holder.as_deref(), Some("ended"));
        assert_eq!(t.problems.len(), 1);
        let message = &t.problems[0].message;
        assert_eq!(t.problems[0].kind, ProblemKind::StaleLock);
        assert!(
            message.contains("left over by run 20261202t100000z-00042"),
            "{message}"
        );
        assert!(message.contains("--force-unlock"), "{message}");
        assert!(
            !message.contains("drover resume"),
            "an ended run has nothing to resume"
        );
    }

    #[test]
    fn a_lock_of_a_dead_run_replaces_the_age_based_verdict_instead_of_doubling_it() {
        let mut t = locked_target(7200);
        judge_lock_holders(&mut t, |_| Liveness::Died);
        assert_eq!(t.problems.len(), 1, "{:?}", t.problems);
        assert!(t.problems[0].message.contains("which died"));
        assert!(
            t.problems[0]
                .message
                .contains("drover resume 20261202t100000z-00042")
        );
    }

    #[test]
    fn a_lock_held_by_a_running_or_unknown_run_is_not_flagged_before_30_minutes() {
        for liveness in [Liveness::Running, Liveness::Unknown] {
            let mut t = locked_target(25);
            judge_lock_holders(&mut t, |_| liveness);
            assert_eq!(t.state, TargetState::Ok);
            assert!(t.problems.is_empty());
            assert!(!t.lock.as_ref().unwrap().stale);
            assert_eq!(t.lock.unwrap().holder.as_deref(), Some(liveness.word()));
        }
    }
}

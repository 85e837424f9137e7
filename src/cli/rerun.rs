//! `drover run --rerun-failed [RUN]` and `drover deploy … --only-failed [RUN]`: the
//! hosts (run) or targets (deploy) that failed or were unreachable in a recorded run,
//! read from its journal, and nothing else. RUN defaults to the newest run of the kind.

use std::collections::HashMap;

use super::{CliError, SelectOpts};
use crate::config::{Host, Inventory, Selection, Tenant};
use crate::engine::journal::{self, KIND_DEPLOY, KIND_RUN, RunRecord};
use crate::plan::targets::targets;

/// What `--rerun-failed` / `--only-failed` without a RUN stands for.
pub(super) const LATEST: &str = "latest";

/// Statuses that count as failed: the target or host did not end as wanted.
const FAILED: &[&str] = &["failed", "unreachable", "timed_out"];

/// The names (`tenant@host`, or host) whose last recorded status is a failure, in the
/// order they were first recorded. A target recorded again (a resume, a failed canary
/// re-check) counts by its last record.
fn failed_in(entries: &[(String, String)]) -> Vec<String> {
    let mut last: HashMap<&str, &str> = HashMap::new();
    let mut order = Vec::new();
    for (name, status) in entries {
        if last.insert(name, status).is_none() {
            order.push(name.as_str());
        }
    }
    order
        .into_iter()
        .filter(|n| FAILED.contains(&last[n]))
        .map(str::to_owned)
        .collect()
}

/// A recorded run of `kind`: its id and record. `run` is an id or [`LATEST`]: the
/// newest other than `own` (a resumed re-run must not pick itself).
fn recorded(kind: &str, run: &str, own: Option<&str>) -> Result<(String, RunRecord), CliError> {
    let id = if run == LATEST {
        journal::latest_run_of(kind, own).ok_or_else(|| {
            CliError::Input(format!(
                "no `drover {kind}` run recorded in {}",
                journal::runs_dir().display()
            ))
        })?
    } else if journal::is_run_id(run) {
        run.to_owned()
    } else {
        return Err(CliError::Input(format!("`{run}` is not a run id")));
    };
    let record = journal::read(&id).map_err(CliError::Input)?;
    if record.kind != kind {
        return Err(CliError::Input(format!(
            "run {id} was a `drover {}`, not a `drover {kind}`",
            record.kind
        )));
    }
    Ok((id, record))
}

/// The failed hosts of a `drover run`, with its id and command line.
pub(super) fn failed_hosts(run: &str) -> Result<(String, Vec<String>, Vec<String>), CliError> {
    let (id, record) = recorded(KIND_RUN, run, None)?;
    Ok((id, failed_in(&record.hosts), record.args))
}

/// The failed targets (`tenant@host`) of a `drover deploy` other than `own`, with its id.
fn failed_targets(run: &str, own: Option<&str>) -> Result<(String, Vec<String>), CliError> {
    let (id, record) = recorded(KIND_DEPLOY, run, own)?;
    Ok((id, failed_in(&record.targets)))
}

/// The deploy's targets: as selected, or (`--only-failed`) those that failed in the
/// recorded deploy, narrowed by the selectors when any are given (none: empty, said).
pub(super) fn only_failed_targets<'a>(
    inventory: &'a Inventory,
    select: &SelectOpts,
    only_failed: Option<&str>,
    own: Option<&str>,
) -> Result<Vec<(&'a Tenant, &'a Host)>, CliError> {
    let selection = Selection::from(select.clone());
    let Some(run) = only_failed else {
        return Ok(targets(inventory, &selection)?);
    };
    let (id, failed) = failed_targets(run, own)?;
    let picked: Vec<_> = targets(inventory, &widen(selection))?
        .into_iter()
        .filter(|(t, h)| failed.contains(&format!("{}@{}", t.name, h.name)))
        .collect();
    if picked.is_empty() {
        eprintln!(
            "nothing to deploy: run {id} has no failed or unreachable target{}",
            if failed.is_empty() {
                ""
            } else {
                " among the selected ones"
            }
        );
        return Ok(picked);
    }
    eprintln!(
        "deploying the {} failed target(s) of run {id}: {}",
        picked.len(),
        picked
            .iter()
            .map(|(t, h)| format!("{}@{}", t.name, h.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(picked)
}

/// A re-run selects from the whole inventory unless selectors narrow it.
pub(super) fn widen(mut selection: Selection) -> Selection {
    let none = !selection.all
        && selection.hosts.is_empty()
        && selection.groups.is_empty()
        && selection.tenants.is_empty()
        && selection.limits.is_empty();
    if none {
        selection.all = true;
    }
    selection
}

/// The command of a recorded `drover run`: the words after `--`.
pub(super) fn recorded_command(args: &[String]) -> Vec<String> {
    args.iter()
        .skip_while(|a| *a != "--")
        .skip(1)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect()
    }

    #[test]
    fn only_failed_and_unreachable_ones_are_picked_by_their_last_record() {
        let e = entries(&[
            ("a@h1", "changed"),
            ("a@h2", "failed"),
            ("b@h3", "unreachable"),
            ("b@h4", "skipped"),
            ("c@h5", "changed"),
            ("c@h5", "failed"),  // a canary that failed its re-check
            ("a@h2", "changed"), // resumed and then fine
            ("h6", "timed_out"),
        ]);
        assert_eq!(failed_in(&e), ["b@h3", "c@h5", "h6"]);
    }

    #[test]
    fn the_recorded_command_is_what_followed_the_double_dash() {
        let args = [
            "drover",
            "-i",
            "x.toml",
            "run",
            "--all",
            "--",
            "systemctl",
            "is-active",
            "x",
        ]
        .map(String::from);
        assert_eq!(recorded_command(&args), ["systemctl", "is-active", "x"]);
        assert!(recorded_command(&args[..5]).is_empty());
    }

    #[test]
    fn a_rerun_without_selectors_selects_from_the_whole_inventory() {
        assert!(widen(Selection::default()).all);
        let narrowed = Selection {
            groups: vec!["eu".into()],
            ..Selection::default()
        };
        assert!(!widen(narrowed).all);
    }
}

//! The groups a rollout's caps bind, per selected target, and the batches as
//! `deploy --dry-run` prints them.

use crate::config::group_cap::GroupCap;
use crate::config::rollout::Resolved;
use crate::config::{Host, Tenant};
use crate::plan::batch::Batches;

/// For each selected target, the groups of its host that some cap matches.
pub(super) fn capped_groups<'a>(
    selected: &[(&Tenant, &'a Host)],
    caps: &[GroupCap],
) -> Vec<Vec<&'a str>> {
    selected
        .iter()
        .map(|(_, h)| {
            h.groups
                .iter()
                .map(String::as_str)
                .filter(|g| caps.iter().any(|c| c.matches(g)))
                .collect()
        })
        .collect()
}

/// The batches, one line each, with the targets' capped groups.
pub(super) fn render(
    selected: &[(&Tenant, &Host)],
    batches: &Batches,
    settings: &Resolved,
) -> String {
    let names: Vec<String> = selected
        .iter()
        .map(|(t, h)| format!("{}@{}", t.name, h.name))
        .collect();
    let groups = capped_groups(selected, &settings.max_per_group);
    crate::report::batches::render(batches, &names, &groups)
}

//! The batches of a rollout as text, for `deploy --dry-run`: which targets go
//! together, and the hosts' capped groups, so a group cap can be checked by eye.

use std::fmt::Write as _;

use crate::plan::batch::Batches;

/// One line per batch: `batch 2/3 (canary): acme@host-1 [zone-a], …`. `names[i]`
/// is target i's `tenant@host`, `groups[i]` the capped groups of its host.
#[must_use]
pub fn render<S: AsRef<str>>(batches: &Batches, names: &[String], groups: &[Vec<S>]) -> String {
    let all: Vec<&Vec<usize>> = batches.iter().collect();
    let mut out = String::new();
    for (n, batch) in all.iter().enumerate() {
        let canary = if n == 0 && batches.canary.is_some() {
            " (canary)"
        } else {
            ""
        };
        let targets: Vec<String> = batch
            .iter()
            .map(|&i| {
                let gs: Vec<&str> = groups
                    .get(i)
                    .map_or(Vec::new(), |g| g.iter().map(AsRef::as_ref).collect());
                if gs.is_empty() {
                    names[i].clone()
                } else {
                    format!("{} [{}]", names[i], gs.join(" "))
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "batch {}/{}{canary}: {}",
            n + 1,
            all.len(),
            targets.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_batch_is_a_line_with_its_targets_and_their_capped_groups() {
        let b = Batches {
            canary: Some(vec![0]),
            rest: vec![vec![1, 2]],
        };
        let names = ["a@h1", "a@h2", "b@h3"].map(String::from);
        let groups = vec![vec!["zone-a"], vec!["zone-b"], vec![]];
        assert_eq!(
            render(&b, &names, &groups),
            "batch 1/2 (canary): a@h1 [zone-a]\nbatch 2/2: a@h2 [zone-b], b@h3\n"
        );
    }
}

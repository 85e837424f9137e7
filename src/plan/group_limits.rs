//! Group caps for batches (`--max-per-group`): which caps bind each target, and a
//! batch's tally of hosts per capped group. Pure.

use std::collections::{HashMap, HashSet};

use crate::config::group_cap::GroupCap;

/// For each target, the capped groups its host is in; for each capped group, its cap.
#[derive(Debug, Clone, Default)]
pub struct GroupLimits {
    /// per target: ids of the (cap, group) pairs that bind it
    keys: Vec<Vec<usize>>,
    /// per id: hosts allowed per batch
    max: Vec<usize>,
}

impl GroupLimits {
    /// `groups[i]` are the groups of target i's host. A group matched by two caps is
    /// bound by both (the smaller wins in effect).
    #[must_use]
    pub fn new<S: AsRef<str>>(groups: &[Vec<S>], caps: &[GroupCap]) -> Self {
        let mut ids: HashMap<(usize, &str), usize> = HashMap::new();
        let mut max = Vec::new();
        let keys = groups
            .iter()
            .map(|gs| {
                let mut mine = Vec::new();
                for (c, cap) in caps.iter().enumerate() {
                    for g in gs.iter().map(AsRef::as_ref).filter(|g| cap.matches(g)) {
                        let id = *ids.entry((c, g)).or_insert_with(|| {
                            max.push(cap.max);
                            max.len() - 1
                        });
                        mine.push(id);
                    }
                }
                mine
            })
            .collect();
        Self { keys, max }
    }

    /// A fresh tally for one batch.
    pub(crate) fn tally(&self) -> Tally<'_> {
        Tally {
            limits: self,
            hosts: vec![HashSet::new(); self.max.len()],
        }
    }
}

/// The hosts a batch holds so far, per capped group.
pub(crate) struct Tally<'a> {
    limits: &'a GroupLimits,
    hosts: Vec<HashSet<&'a str>>,
}

impl<'a> Tally<'a> {
    /// Takes target `i` on `host` into the batch if no cap forbids it; whether it did.
    /// A host already in the batch never counts twice.
    pub(crate) fn admit(&mut self, i: usize, host: &'a str) -> bool {
        let Some(keys) = self.limits.keys.get(i) else {
            return true;
        };
        let fits = keys
            .iter()
            .all(|&k| self.hosts[k].contains(host) || self.hosts[k].len() < self.limits.max[k]);
        if fits {
            for &k in keys {
                self.hosts[k].insert(host);
            }
        }
        fits
    }
}

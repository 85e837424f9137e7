//! Rollout batches: which targets go together, in which order. Pure.
//!
//! Batches are given like Ansible's `serial`: a count (`2`), a percentage (`"25%"`) or a
//! growing list (`[1, "10%", "50%"]`, the last size repeating). An optional canary
//! batch comes first. `max_per_host` keeps tenants that share a server from all
//! restarting at once: a batch takes at most that many targets of one host, the rest
//! move to later batches. Group caps ([`GroupLimits`], `--max-per-group zone-*=1`) do
//! the same for hosts sharing a group: a zone, a rack, a pool.

use std::collections::HashMap;

use super::group_limits::GroupLimits;
use crate::config::rollout::BatchSize;

/// The batches of a rollout, as indices into the target list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batches {
    /// the canary batch, if any (always first)
    pub canary: Option<Vec<usize>>,
    /// the remaining batches, in order
    pub rest: Vec<Vec<usize>>,
}

impl Batches {
    /// All batches in order, canary first.
    pub fn iter(&self) -> impl Iterator<Item = &Vec<usize>> {
        self.canary.iter().chain(self.rest.iter())
    }
}

/// Splits `hosts` (the host of each target, in target order) into batches.
/// Sizes are resolved against the total target count; with no sizes, one batch.
#[must_use]
pub fn plan_batches(
    hosts: &[&str],
    sizes: &[BatchSize],
    canary: usize,
    max_per_host: usize,
) -> Batches {
    plan_capped_batches(hosts, sizes, canary, max_per_host, &GroupLimits::default())
}

/// [`plan_batches`] with group caps too: no batch holds more hosts of a capped group
/// than its cap.
#[must_use]
pub fn plan_capped_batches(
    hosts: &[&str],
    sizes: &[BatchSize],
    canary: usize,
    max_per_host: usize,
    groups: &GroupLimits,
) -> Batches {
    let total = hosts.len();
    let mut pending: Vec<usize> = (0..total).collect();
    let max_per_host = if max_per_host == 0 {
        usize::MAX
    } else {
        max_per_host
    };
    let take = |want: usize, pending: &mut Vec<usize>| -> Vec<usize> {
        let mut per_host: HashMap<&str, usize> = HashMap::new();
        let mut tally = groups.tally();
        let mut batch = Vec::with_capacity(want.min(pending.len()));
        let mut left = Vec::with_capacity(pending.len());
        let mut scanned = 0;
        // Only the targets looked at until the batch is full are counted per host; the
        // rest move on untouched, so a rollout of many small batches stays linear in
        // the targets each batch takes (plus one copy of the remainder).
        for &i in pending.iter() {
            if batch.len() == want {
                break;
            }
            scanned += 1;
            let n = per_host.entry(hosts[i]).or_default();
            if *n < max_per_host && tally.admit(i, hosts[i]) {
                *n += 1;
                batch.push(i);
            } else {
                left.push(i);
            }
        }
        left.extend_from_slice(&pending[scanned..]);
        *pending = left;
        batch
    };
    let canary = (canary > 0)
        .then(|| take(canary, &mut pending))
        .filter(|b| !b.is_empty());
    let mut rest = Vec::new();
    let mut step = 0;
    while !pending.is_empty() {
        let size = match sizes.get(step).or(sizes.last()) {
            Some(s) => s.resolve(total),
            None => total,
        };
        step += 1;
        let batch = take(size.max(1), &mut pending);
        if batch.is_empty() {
            break; // cannot happen: an empty batch admits any one target
        }
        rest.push(batch);
    }
    Batches { canary, rest }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{}", i % 4)).collect()
    }

    fn sizes(b: &Batches) -> Vec<usize> {
        b.iter().map(Vec::len).collect()
    }

    #[test]
    fn percentages_round_up_and_the_last_size_repeats() {
        let h = hosts(12);
        let refs: Vec<&str> = h.iter().map(String::as_str).collect();
        let b = plan_batches(&refs, &[BatchSize::Percent(25)], 0, 0);
        assert_eq!(sizes(&b), [3, 3, 3, 3]);
        let b = plan_batches(
            &refs,
            &[
                BatchSize::Count(1),
                BatchSize::Percent(10),
                BatchSize::Percent(50),
            ],
            0,
            0,
        );
        assert_eq!(sizes(&b), [1, 2, 6, 3]);
        let b = plan_batches(&refs, &[], 0, 0);
        assert_eq!(sizes(&b), [12]);
    }

    #[test]
    fn a_canary_batch_comes_first() {
        let h = hosts(8);
        let refs: Vec<&str> = h.iter().map(String::as_str).collect();
        let b = plan_batches(&refs, &[BatchSize::Count(4)], 1, 0);
        assert_eq!(b.canary, Some(vec![0]));
        assert_eq!(sizes(&b), [1, 4, 3]);
    }

    #[test]
    fn max_per_host_spreads_a_hosts_targets_over_batches() {
        // three tenants on each of two hosts
        let refs = ["a", "a", "a", "b", "b", "b"];
        let b = plan_batches(&refs, &[BatchSize::Count(6)], 0, 1);
        assert_eq!(b.rest, vec![vec![0, 3], vec![1, 4], vec![2, 5]]);
        let every: Vec<usize> = {
            let mut v: Vec<usize> = b.iter().flatten().copied().collect();
            v.sort_unstable();
            v
        };
        assert_eq!(every, [0, 1, 2, 3, 4, 5], "every target exactly once");
    }

    #[test]
    fn many_small_batches_keep_every_target_once_and_the_per_host_limit() {
        // 3,000 targets, three per host in a row, as tenants are placed.
        let h: Vec<String> = (0..3000).map(|i| format!("h{}", i / 3)).collect();
        let refs: Vec<&str> = h.iter().map(String::as_str).collect();
        let b = plan_batches(&refs, &[BatchSize::Count(7)], 1, 1);
        let mut every: Vec<usize> = b.iter().flatten().copied().collect();
        every.sort_unstable();
        assert_eq!(every, (0..3000).collect::<Vec<_>>());
        for batch in b.iter() {
            let mut seen: Vec<&str> = batch.iter().map(|&i| refs[i]).collect();
            seen.sort_unstable();
            let before = seen.len();
            seen.dedup();
            assert_eq!(seen.len(), before, "two targets of one host in {batch:?}");
            assert!(batch.len() <= 7);
        }
        // Order is kept: after the canary (target 0, host h0), the first batch takes
        // the next target of each host in turn.
        assert_eq!(b.canary, Some(vec![0]));
        assert_eq!(b.rest[0], [1, 3, 6, 9, 12, 15, 18]);
    }
    /// Hosts `h0..`, host k in `zone-{k % zones}` and `rack-{k % racks}`.
    fn zoned(hosts: usize, zones: usize, racks: usize) -> Vec<Vec<String>> {
        (0..hosts)
            .map(|k| {
                vec![
                    format!("zone-{}", k % zones),
                    format!("rack-{}", k % racks),
                    "all".into(),
                ]
            })
            .collect()
    }

    fn cap(text: &str) -> crate::config::group_cap::GroupCap {
        text.parse().unwrap()
    }

    #[test]
    fn a_zone_cap_of_one_takes_one_host_per_zone_per_batch() {
        // 6 hosts in 3 zones, one target each; batches of up to 6.
        let hosts: Vec<String> = (0..6).map(|k| format!("h{k}")).collect();
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let limits = GroupLimits::new(&zoned(6, 3, 6), &[cap("zone-*=1")]);
        let b = plan_capped_batches(&refs, &[BatchSize::Count(6)], 0, 0, &limits);
        assert_eq!(b.rest, vec![vec![0, 1, 2], vec![3, 4, 5]]);
    }

    #[test]
    fn two_tenants_of_one_host_count_as_one_host_of_its_zone() {
        let refs = ["h0", "h0", "h1", "h2"];
        let groups = vec![
            vec!["zone-a"],
            vec!["zone-a"],
            vec!["zone-a"],
            vec!["zone-b"],
        ];
        let limits = GroupLimits::new(&groups, &[cap("zone=1")]);
        let b = plan_capped_batches(&refs, &[], 0, 0, &limits);
        assert_eq!(b.rest, vec![vec![0, 1, 3], vec![2]]);
    }

    proptest::proptest! {
        #[test]
        fn no_batch_breaks_a_cap_and_every_target_is_in_exactly_one(
            targets in proptest::collection::vec((0usize..12, 0usize..5), 1..120),
            zones in 1usize..5,
            racks in 1usize..7,
            zone_max in 1usize..3,
            rack_max in 1usize..4,
            per_host in 0usize..3,
            size in 1usize..20,
            canary in 0usize..3,
        ) {
            // (host, _) pairs: several tenants may share a host.
            let names: Vec<String> = targets.iter().map(|(h, _)| format!("h{h}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let host_groups = zoned(12, zones, racks);
            let groups: Vec<Vec<String>> = targets.iter().map(|(h, _)| host_groups[*h].clone()).collect();
            let caps = [cap(&format!("zone-*={zone_max}")), cap(&format!("rack={rack_max}"))];
            let limits = GroupLimits::new(&groups, &caps);
            let b = plan_capped_batches(&refs, &[BatchSize::Count(size)], canary, per_host, &limits);
            let mut every: Vec<usize> = b.iter().flatten().copied().collect();
            every.sort_unstable();
            proptest::prop_assert_eq!(every, (0..targets.len()).collect::<Vec<_>>());
            for batch in b.iter() {
                proptest::prop_assert!(!batch.is_empty() && batch.len() <= size.max(canary));
                let mut per: HashMap<(&str, &str), std::collections::BTreeSet<&str>> = HashMap::new();
                let mut on_host: HashMap<&str, usize> = HashMap::new();
                for &i in batch {
                    *on_host.entry(refs[i]).or_default() += 1;
                    for g in &groups[i] {
                        for c in &caps {
                            if c.matches(g) {
                                per.entry((c.pattern.as_str(), g.as_str())).or_default().insert(refs[i]);
                            }
                        }
                    }
                }
                if per_host > 0 {
                    proptest::prop_assert!(on_host.values().all(|&n| n <= per_host));
                }
                for ((pattern, group), hosts) in &per {
                    let max = caps.iter().find(|c| c.pattern == *pattern).unwrap().max;
                    proptest::prop_assert!(hosts.len() <= max, "{} hosts of {} in {:?}", hosts.len(), group, batch);
                }
            }
        }
    }
}

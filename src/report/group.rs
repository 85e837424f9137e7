//! Grouping identical results (like `clush -b`) and folding host lists into ranges.

use std::collections::HashMap;

use crate::config::inventory::natural_cmp;
use crate::outcome::{HostOutcome, HostStatus};

/// Hosts that produced exactly the same result.
#[derive(Debug)]
pub struct Group<'a> {
    /// Members, in the order of the outcomes given.
    pub hosts: Vec<&'a HostOutcome>,
}

impl Group<'_> {
    /// The shared result (every member has the same).
    #[must_use]
    pub fn first(&self) -> &HostOutcome {
        self.hosts[0]
    }
}

/// Groups outcomes by status, exit code, signal, output and error text (with each
/// host's own address masked, so "connect to <address> refused" groups). Largest
/// group first, then by first host.
#[must_use]
pub fn group(outcomes: &[HostOutcome]) -> Vec<Group<'_>> {
    type Key<'k> = (
        HostStatus,
        Option<u32>,
        Option<&'k str>,
        &'k [u8],
        &'k [u8],
        Option<String>,
    );
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for outcome in outcomes {
        let error = outcome
            .error
            .as_ref()
            .map(|e| e.replace(&outcome.address, "<address>"));
        let key = (
            outcome.status,
            outcome.exit_code,
            outcome.signal.as_deref(),
            outcome.stdout.bytes.as_slice(),
            outcome.stderr.bytes.as_slice(),
            error,
        );
        match index.get(&key) {
            Some(&i) => groups[i].hosts.push(outcome),
            None => {
                index.insert(key, groups.len());
                groups.push(Group {
                    hosts: vec![outcome],
                });
            }
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.hosts.len()));
    groups
}

/// Folds names into ranges: `web-1, web-2, web-3, web-7, db` → `db,web-[1-3,7]`.
/// Zero-padded numbers keep their width (`h[00001-00050]`).
#[must_use]
pub fn fold<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    // (prefix, width or 0 when unpadded) → numbers
    let mut series: Vec<((&str, usize), Vec<u64>)> = Vec::new();
    let mut lookup: HashMap<(&str, usize), usize> = HashMap::new();
    let mut plain: Vec<&str> = Vec::new();
    for name in names {
        let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
        let (prefix, number) = name.split_at(name.len() - digits);
        match number.parse::<u64>() {
            Ok(n) if digits <= 18 => {
                let width = if number.starts_with('0') && digits > 1 {
                    digits
                } else {
                    0
                };
                let key = (prefix, width);
                let at = *lookup.entry(key).or_insert_with(|| {
                    series.push((key, Vec::new()));
                    series.len() - 1
                });
                series[at].1.push(n);
            }
            _ => plain.push(name),
        }
    }
    let mut parts: Vec<String> = plain.iter().map(|s| (*s).to_string()).collect();
    for ((prefix, width), mut numbers) in series {
        numbers.sort_unstable();
        numbers.dedup();
        let show = |n: u64| format!("{n:0width$}");
        if numbers.len() == 1 {
            parts.push(format!("{prefix}{}", show(numbers[0])));
            continue;
        }
        let mut ranges = Vec::new();
        let mut start = numbers[0];
        let mut end = start;
        for &n in &numbers[1..] {
            if n == end + 1 {
                end = n;
            } else {
                ranges.push((start, end));
                start = n;
                end = n;
            }
        }
        ranges.push((start, end));
        let inner: Vec<String> = ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    show(a)
                } else {
                    format!("{}-{}", show(a), show(b))
                }
            })
            .collect();
        parts.push(format!("{prefix}[{}]", inner.join(",")));
    }
    parts.sort_by(|a, b| natural_cmp(a, b));
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Captured;
    use std::time::Duration;

    fn outcome(host: &str, status: HostStatus, code: Option<u32>, out: &str) -> HostOutcome {
        HostOutcome {
            host: host.into(),
            address: format!("10.0.0.{}", host.len()),
            status,
            exit_code: code,
            signal: None,
            stdout: Captured {
                bytes: out.as_bytes().to_vec(),
                dropped: 0,
            },
            stderr: Captured::default(),
            duration: Duration::ZERO,
            error: None,
        }
    }

    #[test]
    fn identical_results_share_a_group_and_the_largest_comes_first() {
        let outcomes = vec![
            outcome("a", HostStatus::Failed, Some(1), "x"),
            outcome("b", HostStatus::Ok, Some(0), "same"),
            outcome("c", HostStatus::Ok, Some(0), "same"),
            outcome("d", HostStatus::Failed, Some(2), "same"),
        ];
        let groups = group(&outcomes);
        assert_eq!(groups.len(), 3);
        let names: Vec<&str> = groups[0].hosts.iter().map(|o| o.host.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn host_lists_fold_into_ranges() {
        assert_eq!(
            fold(["web-1", "web-2", "web-3", "web-7", "db"]),
            "db,web-[1-3,7]"
        );
        assert_eq!(fold(["h00001", "h00002", "h00010"]), "h[00001-00002,00010]");
        assert_eq!(fold(["a1", "b"]), "a1,b");
        assert_eq!(fold(["host-2", "host-10", "host-1"]), "host-[1-2,10]");
    }
}

//! Target selection on the 10,000-host, 30,000-tenant fleet (see `common/mod.rs`).
//!
//! - `hosts/*`: [`Selection::hosts`] (`drover run`'s selection) for `--all`,
//!   `--group eu` (a third of the fleet), `--tenant acme-29999` (one tenant, three hosts)
//!   and `--limit 'node-1*'` (1,112 hosts).
//! - `targets_of/*`: [`targets`], the (tenant, host) pairs of a deploy or rollout, for
//!   `--all` (33,300 targets), `--group eu` (11,097) and `--tenant acme-29999` (3).
//!
//! Run: `cargo bench --bench select`.

#[allow(dead_code)] // each bench uses its own part of the shared fleet
mod common;

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use drover::config::{Inventory, Selection};
use drover::plan::targets::targets;

fn main() {
    divan::main();
}

static FLEET: LazyLock<Inventory> = LazyLock::new(common::fleet);

const CASES: [&str; 4] = ["all", "group-eu", "tenant-one", "limit-glob"];

fn selection(case: &str) -> Selection {
    let mut s = Selection::default();
    match case {
        "all" => s.all = true,
        "group-eu" => s.groups.push("eu".into()),
        "tenant-one" => s.tenants.push("acme-29999".into()),
        "limit-glob" => s.limits.push("node-1*".into()),
        other => unreachable!("unknown case {other}"),
    }
    s
}

#[divan::bench(args = CASES)]
fn hosts(bencher: Bencher, case: &str) {
    let inventory = &*FLEET;
    let selection = selection(case);
    let selected = selection.hosts(inventory).map_or(0, |h| h.len());
    assert!(selected > 0, "{case} selects nothing");
    bencher
        .counter(ItemsCount::new(common::HOSTS))
        .bench(|| divan::black_box(&selection).hosts(inventory));
}

#[divan::bench(args = ["all", "group-eu", "tenant-one"], sample_count = 5, sample_size = 1)]
fn targets_of(bencher: Bencher, case: &str) {
    let inventory = &*FLEET;
    let selection = selection(case);
    let selected = targets(inventory, &selection).map_or(0, |t| t.len());
    assert!(selected > 0, "{case} selects nothing");
    bencher
        .counter(ItemsCount::new(selected))
        .bench(|| targets(inventory, divan::black_box(&selection)));
}

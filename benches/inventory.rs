//! `drover check` on a 10,000-host, 30,000-tenant inventory (see `common/mod.rs`).
//!
//! - `parse_and_check`: [`Inventory::from_sources`] on the file's text: TOML parse,
//!   every validation (names, addresses, jumps, placements, port overlaps), the
//!   resolved view. The inventory half of `drover check`.
//! - `load_file`: the same through [`Inventory::load`], reading the file (page cache).
//! - `drover_check`: the whole command, `drover -q -i fleet.toml check
//!   playbooks/agent.toml`, through [`drover::cli::main`]: the inventory, then the
//!   reference playbook rendered in blue and green for all 33,300 targets.
//!
//! Run: `cargo bench --bench inventory`.

#[allow(dead_code)] // each bench uses its own part of the shared fleet
mod common;

use std::ffi::OsString;
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use drover::config::{Inventory, SourceFile};

fn main() {
    divan::main();
}

static SOURCE: LazyLock<SourceFile> = LazyLock::new(common::fleet_source);

/// The fleet written to a temporary directory, as `inventory/fleet.toml` would be.
static FILE: LazyLock<(tempfile::TempDir, std::path::PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, SOURCE.text.as_bytes()).expect("write the inventory");
    (dir, path)
});

#[divan::bench(sample_count = 10, sample_size = 1)]
fn parse_and_check(bencher: Bencher) {
    let source = &*SOURCE;
    // Fails loudly here, before timing, if the generated fleet does not check.
    drop(common::fleet());
    bencher
        .counter(ItemsCount::new(common::HOSTS))
        .bench(|| Inventory::from_sources(vec![divan::black_box(source.clone())]));
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn load_file(bencher: Bencher) {
    let path = FILE.1.clone();
    bencher.counter(ItemsCount::new(common::HOSTS)).bench(|| {
        let inventory = Inventory::load(std::slice::from_ref(divan::black_box(&path)));
        assert!(inventory.is_ok());
        inventory
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn drover_check(bencher: Bencher) {
    let args: Vec<OsString> = vec![
        "drover".into(),
        "-q".into(),
        "--color".into(),
        "never".into(),
        "-i".into(),
        FILE.1.clone().into(),
        "check".into(),
        common::repo_path("playbooks/agent.toml").into(),
    ];
    bencher
        .counter(ItemsCount::new(common::PLACEMENTS))
        .bench(|| {
            let code = drover::cli::main(divan::black_box(args.clone()));
            assert_eq!(code, 0, "drover check failed");
        });
}

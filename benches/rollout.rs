//! The pure part of a rolling rollout over the 10,000-host fleet (see `common/mod.rs`):
//! everything `drover deploy playbooks/agent.toml --all --strategy rolling …` does
//! before it opens a connection.
//!
//! - `render`: [`plan`] of the reference playbook `playbooks/agent.toml` (15 steps:
//!   user, dirs, upload, env file with a secret, systemd unit, switch script, service,
//!   health, logrotate, cron) for 30,000 (tenant, host) targets, one color.
//! - `batches/*`: [`plan_batches`] of the 30,000 targets, plus the failure
//!   budget: one batch (`--strategy all`), `--canary 1 --batch 10%`, a ramp
//!   `--batch 1,10%,50%`, and `--canary 1 --batch 100 --max-per-host 1` (303 batches).
//! - `prepare_all`: the whole pure pipeline of `--all --canary 1 --batch 10%` on the
//!   full fleet (33,300 targets): [`targets`], [`plan`], [`plan_batches`].
//!
//! Run: `cargo bench --bench rollout`.

#[allow(dead_code)] // each bench uses its own part of the shared fleet
mod common;

use std::collections::HashMap;
use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use drover::config::playbook::Playbook;
use drover::config::{BatchSize, FailureBudget};
use drover::config::{Host, Inventory, Selection, Tenant};
use drover::plan::Color;
use drover::plan::batch::plan_batches;
use drover::plan::render::{PlanOptions, plan};
use drover::plan::targets::targets;

fn main() {
    divan::main();
}

/// Targets rendered and batched.
const TARGETS: usize = 30_000;

static FLEET: LazyLock<Inventory> = LazyLock::new(common::fleet);

static PLAYBOOK: LazyLock<Playbook> =
    LazyLock::new(
        || match Playbook::load(&common::repo_path("playbooks/agent.toml")) {
            Ok(p) => p,
            Err(d) => panic!("playbooks/agent.toml: {}", d.render(false)),
        },
    );

fn all() -> Selection {
    Selection {
        all: true,
        ..Selection::default()
    }
}

/// The first 30,000 targets of `--all`, in the order a deploy takes them.
static SELECTED: LazyLock<Vec<(&Tenant, &Host)>> = LazyLock::new(|| {
    let mut selected = match targets(&FLEET, &all()) {
        Ok(t) => t,
        Err(e) => panic!("selecting the fleet: {e}"),
    };
    assert_eq!(selected.len(), common::PLACEMENTS);
    selected.truncate(TARGETS);
    selected
});

/// As `drover deploy --set version=2.0.0` with `DROVER_SECRET_API_KEY` set.
fn options(color: Color) -> PlanOptions {
    PlanOptions {
        color,
        overrides: vec![("version".into(), "2.0.0".into())],
        secrets: Some(HashMap::from([(
            "API_KEY".to_string(),
            "sk-bench-0123456789".to_string(),
        )])),
    }
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn render(bencher: Bencher) {
    let (inventory, playbook, selected) = (&*FLEET, &*PLAYBOOK, &*SELECTED);
    let options = options(Color::Blue);
    match plan(inventory, playbook, selected, &options) {
        Ok(p) => assert_eq!(p.targets.len(), TARGETS),
        Err(d) => panic!("the plan does not render: {}", d.render(false)),
    }
    bencher
        .counter(ItemsCount::new(TARGETS))
        .bench(|| plan(inventory, playbook, divan::black_box(selected), &options));
}

/// (name, batch sizes, canary, max per host); the budget is `--max-failures 1%`.
const BATCHINGS: [(&str, &str, usize, usize); 4] = [
    ("all", "", 0, 0),
    ("canary1-10pct", "10%", 1, 16),
    ("ramp-1-10pct-50pct", "1,10%,50%", 0, 16),
    ("canary1-100-per-host1", "100", 1, 1),
];

#[divan::bench(args = ["all", "canary1-10pct", "ramp-1-10pct-50pct", "canary1-100-per-host1"], sample_count = 20)]
fn batches(bencher: Bencher, name: &str) {
    let Some(&(_, sizes, canary, max_per_host)) = BATCHINGS.iter().find(|b| b.0 == name) else {
        unreachable!("unknown batching {name}");
    };
    let sizes: Vec<BatchSize> = sizes
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| BatchSize::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    let hosts: Vec<&str> = SELECTED.iter().map(|(_, h)| h.name.as_str()).collect();
    let budget = FailureBudget::Percent(1);
    let planned = plan_batches(&hosts, &sizes, canary, max_per_host);
    assert_eq!(planned.iter().map(Vec::len).sum::<usize>(), TARGETS);
    bencher.counter(ItemsCount::new(TARGETS)).bench(|| {
        let hosts = divan::black_box(&hosts);
        (
            plan_batches(hosts, &sizes, canary, max_per_host),
            budget.allowed(hosts.len()),
        )
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn prepare_all(bencher: Bencher) {
    let (inventory, playbook) = (&*FLEET, &*PLAYBOOK);
    let options = options(Color::Blue);
    let sizes = [BatchSize::Percent(10)];
    bencher
        .counter(ItemsCount::new(common::PLACEMENTS))
        .bench(|| {
            let selected = targets(inventory, divan::black_box(&all()))
                .unwrap_or_else(|e| panic!("selecting the fleet: {e}"));
            let rendered = plan(inventory, playbook, &selected, &options);
            let hosts: Vec<&str> = selected.iter().map(|(_, h)| h.name.as_str()).collect();
            let batches = plan_batches(&hosts, &sizes, 1, 16);
            (rendered, batches)
        });
}

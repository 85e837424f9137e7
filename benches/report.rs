//! `drover run`'s summary of 10,000 hosts, as for `drover run --all -- systemctl
//! is-active nginx` on a fleet where most hosts agree and some do not:
//!
//! - 9,500 `ok`, `active`; 200 exit 3, `inactive`; 100 exit 3, `failed` with a stderr
//!   line; 100 unreachable (`connect to <their address>:22: Connection refused`, one
//!   group once the address is masked); 25 timed out; 75 with output of their own.
//!   80 groups in all.
//!
//! - `group_outcomes`: [`group`], identical results grouped.
//! - `fold_names`: [`fold`] of the 9,500 hosts of the largest group into `node-[1-95,101-…]`.
//! - `summary_text`: [`render_text`], the whole text summary (grouping, folded host
//!   lists, headlines, outputs, tally line).
//!
//! Run: `cargo bench --bench report`.

use std::sync::LazyLock;
use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use drover::outcome::{HostOutcome, HostStatus};
use drover::report::group::{fold, group};
use drover::report::run::render_text;
use drover::transport::Captured;

fn main() {
    divan::main();
}

const HOSTS: usize = 10_000;

fn captured(text: &str) -> Captured {
    Captured {
        bytes: text.as_bytes().to_vec(),
        dropped: 0,
    }
}

fn outcome(i: usize) -> HostOutcome {
    let n = i + 1;
    let address = format!("10.{}.{}.{}", n / 65_536, (n / 256) % 256, n % 256);
    let mut o = HostOutcome {
        host: format!("node-{n}"),
        address: address.clone(),
        status: HostStatus::Ok,
        exit_code: Some(0),
        signal: None,
        stdout: captured("active\n"),
        stderr: Captured::default(),
        duration: Duration::from_millis(180 + (i % 50) as u64),
        error: None,
    };
    match i % 100 {
        0..=94 => {}
        95 | 96 => {
            o.status = HostStatus::Failed;
            o.exit_code = Some(3);
            o.stdout = captured("inactive\n");
        }
        97 => {
            o.status = HostStatus::Failed;
            o.exit_code = Some(3);
            o.stdout = captured("failed\n");
            o.stderr = captured(
                "Job for nginx.service failed because the control process exited with error code.\n",
            );
        }
        98 => {
            o.status = HostStatus::Unreachable;
            o.exit_code = None;
            o.stdout = Captured::default();
            o.error = Some(format!(
                "connect to {address}:22: Connection refused (os error 111)"
            ));
        }
        _ if (i / 100).is_multiple_of(4) => {
            o.status = HostStatus::TimedOut;
            o.exit_code = None;
            o.stdout = Captured::default();
            o.error = Some("command ran past its 30s timeout and was ended".into());
        }
        _ => o.stdout = captured(&format!("activating (start-pre) since {i}s\n")),
    }
    o
}

static OUTCOMES: LazyLock<Vec<HostOutcome>> = LazyLock::new(|| (0..HOSTS).map(outcome).collect());

#[divan::bench]
fn group_outcomes(bencher: Bencher) {
    let outcomes = &*OUTCOMES;
    let groups = group(outcomes);
    assert_eq!(groups.len(), 80);
    assert_eq!(groups[0].hosts.len(), 9_500);
    bencher
        .counter(ItemsCount::new(HOSTS))
        .bench(|| group(divan::black_box(outcomes)));
}

#[divan::bench]
fn fold_names(bencher: Bencher) {
    let names: Vec<&str> = OUTCOMES
        .iter()
        .filter(|o| o.stdout.bytes == b"active\n")
        .map(|o| o.host.as_str())
        .collect();
    assert_eq!(names.len(), 9_500);
    bencher
        .counter(ItemsCount::new(names.len()))
        .bench(|| fold(divan::black_box(&names).iter().copied()));
}

#[divan::bench]
fn summary_text(bencher: Bencher) {
    let outcomes = &*OUTCOMES;
    bencher
        .counter(ItemsCount::new(HOSTS))
        .bench(|| render_text(divan::black_box(outcomes), Duration::from_secs(12)));
}

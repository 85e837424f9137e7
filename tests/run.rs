//! `drover run` against real sshds on loopback.

use crate::support::cli::{drover, run};
use crate::support::sshd::SshdFleet;

#[test]
fn fifty_loopback_hosts_all_run_the_command() {
    let fleet = SshdFleet::start(50);
    let inv = fleet.write_inventory("");
    let r = run(drover(fleet.dir.path()).arg("-i").arg(&inv).args(["run", "--all", "--", "echo", "hello"]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("h[1-50] (50) ok\n"), "{r:?}");
    assert!(r.stdout.contains("ok 50 — 50 hosts"), "{r:?}");
}

//! The tenant's deploy lock on a host: taken atomically (a rename), re-entrant for its
//! own run, forced only with an audit line, released only by its holder.

use std::fmt::Write as _;

use super::q;
use crate::plan::layout::{AUDIT_LOG, TenantLayout};

/// Who holds a lock, as recorded in `lock.d/owner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    /// run id
    pub run: String,
    /// operator (`user@machine`)
    pub operator: String,
    /// when it was taken (UTC, RFC 3339)
    pub since: String,
}

/// Exit status of [`lock`] when another run holds the lock.
pub const LOCK_HELD: u32 = 75;

/// Takes the tenant's deploy lock atomically. When it is held by another run the script
/// prints the owner file and exits [`LOCK_HELD`]. `force` takes it anyway (audited).
/// Re-entrant for the same run id (resume, or two inventory hosts on one filesystem).
///
/// The owner file is written into a private directory that is then renamed to `lock.d`
/// (`rename(2)` onto an existing, non-empty directory fails): the lock never exists
/// without its owner, so a second taker always reads who holds it.
#[must_use]
pub fn lock(tenant: &str, owner: &LockOwner, force: bool) -> String {
    lock_in(&TenantLayout::of(tenant), tenant, owner, force)
}

pub(super) fn lock_in(p: &TenantLayout, tenant: &str, owner: &LockOwner, force: bool) -> String {
    let info = format!(
        "run={}\noperator={}\nsince={}\n",
        owner.run, owner.operator, owner.since
    );
    let mut s = format!("set -eu\nmkdir -p {dir}\n", dir = q(&p.state_dir));
    if force {
        let _ = writeln!(
            s,
            "if [ -d {lock} ]; then mkdir -p /var/log/drover; printf '%s run=%s operator=%s tenant=%s action=force-unlock previous=%s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" {run} {op} {t} \"$(tr '\\n' ' ' < {lock}/owner 2>/dev/null | tr ' ' ',')\" >> {audit}; rm -rf {lock}; fi",
            lock = q(&p.lock),
            run = q(&owner.run),
            op = q(&owner.operator),
            t = q(tenant),
            audit = AUDIT_LOG,
        );
    }
    let _ = write!(
        s,
        "new={lock}.new.$$\n\
         for _ in 1 2 3; do\n  \
           rm -rf \"$new\"; mkdir \"$new\"; printf '%s' {info} > \"$new/owner\"\n  \
           if mv -T \"$new\" {lock} 2>/dev/null; then exit 0; fi\n  \
           rm -rf \"$new\"\n  \
           if grep -qx {mine} {lock}/owner 2>/dev/null; then exit 0; fi\n  \
           if held=$(cat {lock}/owner 2>/dev/null) && since=$(stat -c %Y {lock} 2>/dev/null); then\n    \
             printf '%s\\nage=%s\\n' \"$held\" \"$(( $(date +%s) - since ))\"\n    \
             exit {LOCK_HELD}\n  \
           fi\n\
         done\n\
         echo 'run=unknown'\n\
         exit {LOCK_HELD}\n",
        lock = q(&p.lock),
        info = q(&info),
        mine = q(&format!("run={}", owner.run)),
    );
    s
}

/// Parses the owner text printed by a refused [`lock`]: (owner, age in seconds).
#[must_use]
pub fn parse_lock_owner(text: &str) -> (LockOwner, Option<u64>) {
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or("unknown")
            .to_string()
    };
    let age = text
        .lines()
        .find_map(|l| l.strip_prefix("age="))
        .and_then(|a| a.trim().parse().ok());
    (
        LockOwner {
            run: get("run"),
            operator: get("operator"),
            since: get("since"),
        },
        age,
    )
}

/// Releases the lock if this run holds it. The lock is renamed away before it is
/// removed, so no other run ever sees it half gone.
#[must_use]
pub fn unlock(tenant: &str, run: &str) -> String {
    unlock_in(&TenantLayout::of(tenant), run)
}

pub(super) fn unlock_in(p: &TenantLayout, run: &str) -> String {
    format!(
        "if grep -qx {mine} {lock}/owner 2>/dev/null && mv -T {lock} {lock}.old.$$ 2>/dev/null; then rm -rf {lock}.old.$$; fi",
        mine = q(&format!("run={run}")),
        lock = q(&p.lock)
    )
}

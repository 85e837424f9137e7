//! What a run's images leave running or lying around (registry processes, scratch
//! dirs), recorded process-wide so that an abort that ends the process at once (a
//! second Ctrl-C: no destructor runs) still stops the registries (by PID) and removes
//! the scratch dirs. A normal end goes through the owners' `Drop` instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static PIDS: Mutex<Option<HashSet<u32>>> = Mutex::new(None);
static DIRS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn with<T, R>(set: &Mutex<Option<HashSet<T>>>, f: impl FnOnce(&mut HashSet<T>) -> R) -> R {
    let mut guard = set
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(guard.get_or_insert_with(HashSet::new))
}

pub(super) fn started(pid: u32) {
    with(&PIDS, |s| s.insert(pid));
}

pub(super) fn stopped(pid: u32) {
    with(&PIDS, |s| s.remove(&pid));
}

pub(super) fn made(dir: &Path) {
    with(&DIRS, |s| s.insert(dir.to_path_buf()));
}

pub(super) fn removed(dir: &Path) {
    with(&DIRS, |s| s.remove(dir));
}

/// Stops every registry this process started (SIGTERM by PID, through `kill(1)`) and
/// removes its scratch dirs; for the abort path, just before the process exits.
pub fn abort() {
    for pid in with(&PIDS, std::mem::take) {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    for dir in with(&DIRS, std::mem::take) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

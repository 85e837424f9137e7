//! Paths inside the repository the tests read: the reference playbook, fixtures.

use std::path::{Path, PathBuf};

/// The repository root (the crate's manifest dir).
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path as the `&str` drover's argv wants (test paths are UTF-8).
pub(crate) fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

/// `playbooks/agent.toml`, the reference playbook.
pub(crate) fn agent_playbook() -> String {
    path_str(&root().join("playbooks/agent.toml"))
}

/// The reference playbook's text, its releases read from `releases/<version>` instead
/// of `examples/agent/releases/`: for tests that bring releases of their own.
pub(crate) fn agent_playbook_reading(releases: &Path) -> String {
    let text = std::fs::read_to_string(agent_playbook()).expect("agent.toml");
    let from = "\"../examples/agent/releases/{{ version }}\"";
    assert!(
        text.contains(from),
        "playbooks/agent.toml no longer uploads {from}; update tests/support/repo.rs"
    );
    text.replace(
        from,
        &format!("\"{}/{{{{ version }}}}\"", path_str(releases)),
    )
}

/// `tests/fixtures/<area>`: the fixtures of one test file.
pub(crate) fn fixtures(area: &str) -> PathBuf {
    root().join("tests/fixtures").join(area)
}

//! The step library: each built-in step as a shell script that checks state before it
//! acts, so a second run changes nothing. Pure: values in, script text out.
//!
//! Protocol between a step script and the engine:
//! - exit status 0 = success, anything else = failed (stderr is shown);
//! - a stdout line `__drover_changed__` = the step changed something (or, in dry-run,
//!   would change something); without it the step was already in the wanted state;
//! - in dry-run (`DRY=1` at the top of the script) nothing on the host is modified;
//! - with diff on, a file-writing step prints `__drover_current__` followed by the
//!   file's current content (nothing when it does not exist) at the end of stdout, so
//!   the control node can diff it against the new content.
//! Every value interpolated into a script is quoted with `shell_escape`; file contents
//! and secrets travel on stdin, never on the command line.

use std::time::Duration;

/// Marker line: the step changed (or would change) the host.
pub const CHANGED_MARKER: &str = "__drover_changed__";
/// Marker line: what follows is the current content of the file, for `--diff`.
pub const CURRENT_MARKER: &str = "__drover_current__";

/// Owner, group and mode for files and directories; `None` leaves that part alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    /// user name
    pub owner: Option<String>,
    /// group name
    pub group: Option<String>,
    /// octal mode, e.g. `0755`
    pub mode: Option<String>,
}

/// One file of an uploaded tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    /// path relative to the tree root, `/`-separated, no `..`
    pub path: String,
    /// content
    pub bytes: Vec<u8>,
    /// true for executables (mode 0755 instead of 0644)
    pub executable: bool,
}

/// What a service should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// running (started if not)
    Started,
    /// not running
    Stopped,
    /// restarted every run (always "changed")
    Restarted,
    /// reloaded every run
    Reloaded,
}

/// How a health check reaches the service, from the host itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe {
    /// HTTP GET; passes on `status` and, if given, when the body contains `body`.
    Http {
        /// e.g. `http://127.0.0.1:8100/health`
        url: String,
        /// expected status code
        status: u16,
        /// substring the body must contain
        body: Option<String>,
    },
    /// A TCP connect to host:port.
    Tcp {
        /// host
        host: String,
        /// port
        port: u16,
    },
}

/// A built-in step with every value already rendered for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepSpec {
    /// System user and group of the same name, with a home, no login shell.
    User {
        /// user (and group) name
        name: String,
        /// home directory
        home: String,
    },
    /// A directory with owner and mode.
    Dir {
        /// absolute path
        path: String,
        /// owner/group/mode
        ownership: Ownership,
    },
    /// A tree of files landed atomically at `dest` (written aside, then renamed);
    /// skipped when `dest` already holds the same content (checksum manifest).
    Upload {
        /// absolute destination directory
        dest: String,
        /// files
        files: Vec<UploadFile>,
        /// owner/group applied to the tree
        ownership: Ownership,
    },
    /// A file with exactly this content (templates, units, logrotate, cron, env).
    File {
        /// absolute path
        dest: String,
        /// content
        content: Vec<u8>,
        /// owner/group/mode
        ownership: Ownership,
        /// true when the content holds secrets: never printed, never diffed
        secret: bool,
        /// a command run after the file changed (e.g. `systemctl daemon-reload`)
        on_change: Option<String>,
    },
    /// A systemd service's run state and enablement.
    Service {
        /// unit name, e.g. `drover-acme-blue.service`
        name: String,
        /// wanted state
        state: ServiceState,
        /// enabled at boot, if given
        enabled: Option<bool>,
    },
    /// Wait until a probe passes: retries × interval, within an overall timeout.
    Health {
        /// the probe
        probe: HealthProbe,
        /// attempts
        retries: u32,
        /// pause between attempts
        interval: Duration,
    },
    /// An arbitrary script, guarded for idempotence.
    Run {
        /// the script (`sh`)
        script: String,
        /// skip when this path exists
        creates: Option<String>,
        /// skip when this command succeeds
        unless: Option<String>,
    },
}

/// A step ready to send: the script and what it reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepScript {
    /// shell text for `sh -c`
    pub script: String,
    /// bytes for its stdin
    pub stdin: Option<Vec<u8>>,
}

/// Builds the script for a step.
#[must_use]
pub fn script(spec: &StepSpec, dry_run: bool, diff: bool) -> StepScript {
    let _ = (spec, dry_run, diff);
    StepScript { script: "echo 'step library not written yet' >&2; exit 1".into(), stdin: None }
}

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
//!
//! Every value interpolated into a script is quoted with `shell_escape`; file contents
//! and secrets travel on stdin, never on the command line.
//!
//! Scripts are POSIX `sh` (Debian's dash) run as root; they need only coreutils
//! (`stat`, `mktemp`, `sha1sum`, `mv -T`…), tar, diffutils (`cmp`), `getent` and shadow's
//! `useradd` family, `systemctl`, and for health checks `curl` or `python3` (TCP:
//! `python3`, else perl-base's `IO::Socket::IP`, else `nc`, else `curl`). The changed
//! marker is printed at most once, as soon as the first change is known. Details:
//!
//! - [`StepSpec::File`]: stdin is the content (always `Some`, also when empty). A real
//!   run writes it to a `0600` temp file beside the destination, compares it with `cmp`,
//!   and renames it over the destination only when it differs. Attributes not given are
//!   taken from the file being replaced (new files: root, `0644`, or `0600` when secret).
//!   `on_change` runs (stdout sent to stderr) only when the content changed; when it fails
//!   the previous file is put back (or the new one removed), so the next run tries again.
//!   A dry run compares stdin with `cmp -` and writes nothing. Secret files never print
//!   their content and print no `__drover_current__` section at all.
//! - [`StepSpec::Upload`]: stdin is a ustar stream (pax records for long names) that
//!   holds the tree and a `.drover-manifest` file: one line per file with its sha1,
//!   mode, length and path, plus the wanted root owner/group/mode. The tree is unchanged
//!   when the sha1 of `DEST/.drover-manifest` equals the expected one; then stdin is read
//!   and discarded. Otherwise (the parent of `DEST` must exist; in dry-run: report and
//!   stop) it is unpacked into `DEST.drover-tmp.PID`, owned
//!   (`chown -R`), and renamed onto `DEST`. Files are `0644` (`0755` when executable),
//!   directories `0755`, the root directory `ownership.mode` (default `0755`). A tree
//!   already at `DEST` is swapped with `mv --exchange` when coreutils has it (9.5+),
//!   else moved aside then replaced: for that instant `DEST` is missing. `DEST` ends up
//!   holding exactly the tree: whatever else was in it is gone. Files edited
//!   by hand on the host are not noticed (the manifest is trusted): trees are immutable
//!   release directories.
//! - [`StepSpec::Health`] is skipped in dry-run (it prints a line saying so): on a bare
//!   host the service a dry run would have started does not exist yet.
//! - [`HealthProbe::Command`] runs `sh -c COMMAND` as the user (`runuser`, else `su`,
//!   when root; directly when already that user), each attempt bounded by `timeout`.
//!   A real run first records the runner script (root, `0644`) where `drover status`
//!   and the blue-green verification find it.
//! - [`StepSpec::Run`]: `unless` also runs in dry-run, so it must only read; `script`
//!   and `unless` get `/dev/null` as stdin.
//!
//! [`validate`] checks a spec (absolute clean paths, relative clean upload paths, octal
//! modes, unit and user names, no NUL bytes…). [`script`] validates too: an invalid
//! spec yields a script that fails at once with the reason, so nothing unchecked ever
//! reaches a host; the planner should call [`validate`] to report it before any run.

use std::time::Duration;

pub use crate::config::playbook::{ImageVia, ServiceState};

mod check;
mod command_probe;
mod container;
mod files;
pub mod image;
mod probe;
mod shell;
mod system;
#[cfg(test)]
mod testkit;
mod upload;

/// Marker line: the step changed (or would change) the host.
pub const CHANGED_MARKER: &str = "__drover_changed__";
/// Written in a container unit where the container's `--user` goes: the step
/// script puts the uid:gid of the tenant's user there, as the host knows it.
pub const CONTAINER_USER_MARK: &str = "@DROVER_UID_GID@";
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
    /// A command run as `user` (from `/`, stdin closed): exit 0 = healthy. For workers
    /// that serve no HTTP.
    Command {
        /// the command (`sh -c`)
        command: String,
        /// the user it runs as (through `runuser` when the step runs as root)
        user: String,
        /// where a real run records the command for `drover status` and the
        /// blue-green verification (root-owned, see [`crate::plan::layout`])
        record: Option<String>,
        /// run inside this container (`podman exec`, as the container's user)
        /// instead of as `user` on the host
        container: Option<String>,
    },
}

/// Where an image comes from on the control node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageSource {
    /// a reference (or ID) in the control node's Docker, or podman when there is no
    /// docker
    Local(String),
    /// a docker-archive file (`docker save` output)
    Archive(std::path::PathBuf),
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
        files: std::sync::Arc<Vec<UploadFile>>,
        /// owner/group applied to the whole tree; mode applied to `dest` itself
        /// (default `0755`; e.g. `0750` keeps other users out). Files are `0644`
        /// (`0755` when executable), subdirectories `0755`.
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
    /// Wait until a probe passes: `retries` attempts `interval` apart, each attempt
    /// bounded by `interval` clamped to 2..=10 s (the overall bound is the engine's
    /// step timeout). Never reports a change; skipped in dry-run.
    Health {
        /// the probe
        probe: HealthProbe,
        /// attempts
        retries: u32,
        /// pause between attempts
        interval: Duration,
    },
    /// An OCI image on the host's podman under `name`, content-addressed: sent only
    /// when the host lacks the image ID (see [`image`]). The engine runs it itself
    /// (the ID is known at run time only), never in a chain.
    Image {
        /// where the image is on the control node
        source: ImageSource,
        /// the reference it gets on the host
        name: String,
        /// how its layers travel
        via: ImageVia,
    },
    /// A systemd unit that runs a container ([`crate::config::playbook::Container`]):
    /// installed like [`StepSpec::File`] (written only when it changed, then
    /// `daemon-reload` and `try-restart`), after `CONTAINER_USER_MARK` in `unit` is
    /// replaced by the uid:gid of `user` on the host.
    Container {
        /// unit name, e.g. `drover-acme-blue.service`
        name: String,
        /// the unit's text
        unit: String,
        /// the user (non-root) whose uid:gid the container runs as
        user: String,
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

/// Why a step spec cannot be turned into a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct StepError {
    /// the offending field, e.g. `dest`, `files`, `ownership.mode`
    pub field: &'static str,
    /// what is wrong, quoting the value (debug-escaped)
    pub problem: String,
}

/// Checks that a spec can be rendered: paths absolute and clean (no empty, `.` or `..`
/// components, no trailing `/`), upload paths relative and clean and distinct, modes
/// octal (`755`, `0640`, `2775`), user/unit/host names well formed, no NUL bytes
/// anywhere, `retries >= 1`.
///
/// # Errors
/// The first problem found.
pub fn validate(spec: &StepSpec) -> Result<(), StepError> {
    check::spec(spec)
}

/// Builds the script for a step. An invalid spec (see [`validate`]) yields a script that
/// fails at once with the reason, and no stdin.
#[must_use]
pub fn script(spec: &StepSpec, dry_run: bool, diff: bool) -> StepScript {
    if let Err(e) = validate(spec) {
        return StepScript {
            script: shell::invalid(dry_run, &e),
            stdin: None,
        };
    }
    match spec {
        StepSpec::User { name, home } => system::user(name, home, dry_run),
        StepSpec::Dir { path, ownership } => files::dir(path, ownership, dry_run),
        StepSpec::Upload {
            dest,
            files,
            ownership,
        } => upload::upload(dest, files, ownership, dry_run),
        StepSpec::File {
            dest,
            content,
            ownership,
            secret,
            on_change,
        } => files::file(
            &files::FileArgs {
                dest,
                content,
                ownership,
                secret: *secret,
                on_change: on_change.as_deref(),
            },
            dry_run,
            diff,
        ),
        StepSpec::Service {
            name,
            state,
            enabled,
        } => system::service(name, *state, *enabled, dry_run),
        StepSpec::Health {
            probe,
            retries,
            interval,
        } => probe::health(probe, *retries, *interval, dry_run),
        StepSpec::Run {
            script,
            creates,
            unless,
        } => probe::run(script, creates.as_deref(), unless.as_deref(), dry_run),
        // The ID to compare with is the control node's, known at run time only: the
        // engine builds the image scripts itself (`engine::image`).
        StepSpec::Image { .. } => StepScript {
            script: shell::invalid(
                dry_run,
                &StepError {
                    field: "image",
                    problem: "an image step runs through drover's image shipping, not as a script"
                        .into(),
                },
            ),
            stdin: None,
        },
        StepSpec::Container { name, unit, user } => {
            container::install(name, unit, user, dry_run, diff)
        }
    }
}

//! Playbooks: a named, ordered list of steps in TOML, rendered per target by the planner.
//!
//! Every templated field keeps its span, so a template that does not render (a missing
//! variable, a syntax error) is reported at `drover check` with file, line and column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::duration;
use crate::config::hooks::{Hooks, RawHooks, validate_hooks};
use crate::config::progressive::{self, Progressive, RawAnalysis};
use crate::config::rollout::{RawRollout, RolloutSettings, validate_rollout};
use crate::config::secrets::{SecretsCommand, validate_secrets_command};
use crate::config::source::{ReadError, SourceFile};

mod container;
mod image;
mod step;
pub use container::{Container, ContainerSpec, KeepImages};
pub use image::{ImageSpec, ImageVia};
use step::validate_step;

/// A templated string from the playbook, with its place in the file.
pub type Text = Spanned<String>;

/// Owner, group and mode fields shared by file-like steps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipSpec {
    /// owner user name (template)
    pub owner: Option<Text>,
    /// group name (template)
    pub group: Option<Text>,
    /// octal mode such as "0755" (template)
    pub mode: Option<Text>,
}

macro_rules! step_struct {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($(#[$fdoc])* pub $field: $ty),* }
    };
}

step_struct!(
    /// `user = { name, home }`: a system user and group, no login shell.
    UserSpec { /// user name
    name: Text, /// home directory (default /var/lib/NAME)
    home: Option<Text> });
step_struct!(
    /// `dir = { path, owner, group, mode }`.
    DirSpec { /// path
    path: Text, /// owner
    owner: Option<Text>, /// group
    group: Option<Text>, /// mode
    mode: Option<Text> });
step_struct!(
    /// `upload = { src, dest, owner, group }`: a local directory tree, landed atomically.
    UploadSpec { /// local directory, relative to the playbook
    src: Text, /// remote directory
    dest: Text, /// owner
    owner: Option<Text>, /// group
    group: Option<Text> });
step_struct!(
    /// `template = { src, dest, owner, group, mode }`: a minijinja template rendered per target.
    TemplateSpec { /// template file, relative to the playbook
    src: Text, /// remote path
    dest: Text, /// owner
    owner: Option<Text>, /// group
    group: Option<Text>, /// mode
    mode: Option<Text> });
step_struct!(
    /// `unit = { name, template }`: a systemd unit; daemon-reload only when it changed.
    UnitSpec { /// unit name, e.g. "drover-{{ tenant }}-{{ color }}.service"
    name: Text, /// template file (default: drover's built-in agent unit)
    template: Option<Text>, /// ExecStart command line (for the built-in template)
    exec: Option<Text>, /// MemoryMax (built-in template; default 512M)
    memory_max: Option<Text>, /// CPUQuota (built-in template; default 100%)
    cpu_quota: Option<Text>, /// the user the service runs as (built-in template)
    user: Option<Text>, /// EnvironmentFile (built-in template)
    env_file: Option<Text> });
step_struct!(
    /// `service = { name, state, enabled }`.
    ServiceSpec { /// unit name
    name: Text, /// started (default), stopped, restarted or reloaded
    state: Option<Spanned<String>>, /// enabled at boot
    enabled: Option<bool> });
step_struct!(
    /// `health = { url | tcp | command, status, body, user, retries, interval }`, run on the host.
    HealthSpec { /// HTTP URL to GET
    url: Option<Text>, /// "host:port" to connect to
    tcp: Option<Text>, /// a command (sh) run as `user`: exit 0 = healthy (workers without HTTP)
    command: Option<Text>, /// the user `command` runs as (required with `command`)
    user: Option<Text>, /// expected HTTP status (default 200)
    status: Option<u16>, /// substring the body must contain
    body: Option<Text>, /// run `command` inside the color's container (`podman exec`)
    in_container: Option<bool>, /// attempts (default 10)
    retries: Option<u32>, /// pause between attempts (default 1s)
    interval: Option<Spanned<String>> });
step_struct!(
    /// `env = { dest, vars, secrets }`: an environment file, 0600 root by default.
    EnvSpec { /// remote path
    dest: Text, /// NAME = "template" pairs
    #[serde(default)] vars: toml::Table, /// secret names, values from the control node
    #[serde(default)] secrets: Vec<Spanned<String>>, /// owner (default root)
    owner: Option<Text>, /// group (default root)
    group: Option<Text>, /// mode (default 0600)
    mode: Option<Text> });
step_struct!(
    /// `logrotate = { name, paths, rotate, frequency }`.
    LogrotateSpec { /// config name under /etc/logrotate.d
    name: Text, /// log paths or globs
    paths: Vec<Text>, /// rotations kept (default 4)
    rotate: Option<u32>, /// daily, weekly (default) or monthly
    frequency: Option<Spanned<String>>, /// `create` argument (default "0640 root root")
    create: Option<Text> });
step_struct!(
    /// `cron = { name, schedule, command, user }`: a job in /etc/cron.d.
    CronSpec { /// file name under /etc/cron.d
    name: Text, /// five cron fields, e.g. "*/5 * * * *"
    schedule: Text, /// the command (sh)
    command: Text, /// user it runs as (default root)
    user: Option<Text> });
step_struct!(
    /// `run = { script, creates, unless }`: an arbitrary script, guarded.
    RunSpec { /// the script (sh)
    script: Text, /// skip when this path exists
    creates: Option<Text>, /// skip when this command succeeds
    unless: Option<Text> });

/// One `[[steps]]` table as written: common settings and exactly one action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// shown in reports
    pub name: Spanned<String>,
    /// minijinja expression; the step is skipped when false
    pub when: Option<Spanned<String>>,
    /// extra attempts after a failure (default 0)
    pub retries: Option<u32>,
    /// pause between attempts (default 1s)
    pub delay: Option<Spanned<String>>,
    /// time limit of one attempt (default: the host's command_timeout)
    pub timeout: Option<Spanned<String>>,
    /// run as root through the host's `become` (default true)
    pub r#become: Option<bool>,
    /// action
    pub user: Option<UserSpec>,
    /// action
    pub dir: Option<DirSpec>,
    /// action
    pub upload: Option<UploadSpec>,
    /// action
    pub template: Option<TemplateSpec>,
    /// action
    pub unit: Option<UnitSpec>,
    /// action
    pub service: Option<ServiceSpec>,
    /// action
    pub health: Option<HealthSpec>,
    /// action
    pub env: Option<EnvSpec>,
    /// action
    pub logrotate: Option<LogrotateSpec>,
    /// action
    pub cron: Option<CronSpec>,
    /// action
    pub run: Option<RunSpec>,
    /// action
    pub image: Option<ImageSpec>,
    pub container: Option<ContainerSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    vars: toml::Table,
    #[serde(default)]
    steps: Vec<RawStep>,
    rollout: Option<RawRollout>,
    secrets_command: Option<Spanned<String>>,
    hooks: Option<RawHooks>,
    keep_releases: Option<Spanned<i64>>,
    keep_images: Option<Spanned<i64>>,
    analysis: Option<RawAnalysis>,
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

/// The action of a step.
#[derive(Debug, Clone)]
pub enum Action {
    /// see [`UserSpec`]
    User(UserSpec),
    /// see [`DirSpec`]
    Dir(DirSpec),
    /// see [`UploadSpec`]
    Upload(UploadSpec),
    /// see [`TemplateSpec`]
    Template(TemplateSpec),
    /// see [`UnitSpec`]
    Unit(UnitSpec),
    /// see [`ServiceSpec`]
    Service(ServiceSpec, ServiceState),
    /// see [`HealthSpec`]
    Health(HealthSpec, Duration),
    /// see [`EnvSpec`]
    Env(EnvSpec),
    /// see [`LogrotateSpec`]
    Logrotate(LogrotateSpec),
    /// see [`CronSpec`]
    Cron(CronSpec),
    /// see [`RunSpec`]
    Run(RunSpec),
    /// see [`ImageSpec`]
    Image(ImageSpec, ImageVia),
    /// see [`ContainerSpec`]
    Container(Box<Container>),
}

impl Action {
    /// The step kind's name, as written in the playbook.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Action::User(_) => "user",
            Action::Dir(_) => "dir",
            Action::Upload(_) => "upload",
            Action::Template(_) => "template",
            Action::Unit(_) => "unit",
            Action::Service(..) => "service",
            Action::Health(..) => "health",
            Action::Env(_) => "env",
            Action::Logrotate(_) => "logrotate",
            Action::Cron(_) => "cron",
            Action::Run(_) => "run",
            Action::Image(..) => "image",
            Action::Container(_) => "container",
        }
    }
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// shown in reports
    pub name: String,
    /// where the step's name is in the playbook (for diagnostics)
    pub span: std::ops::Range<usize>,
    /// condition (minijinja expression)
    pub when: Option<Spanned<String>>,
    /// extra attempts
    pub retries: u32,
    /// pause between attempts
    pub delay: Duration,
    /// time limit of one attempt
    pub timeout: Option<Duration>,
    /// run as root through the host's `become`
    pub r#become: bool,
    /// what it does
    pub action: Action,
}

/// A validated playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// where it came from (for diagnostics)
    pub source: SourceFile,
    /// its name
    pub name: String,
    /// free text
    pub description: Option<String>,
    /// variables, in file order; strings are templates rendered per target
    pub vars: toml::Table,
    /// the steps, in order
    pub steps: Vec<Step>,
    /// rollout defaults (`[rollout]`)
    pub rollout: RolloutSettings,
    /// `secrets_command`: where this playbook's secret values come from
    pub secrets_command: Option<SecretsCommand>,
    /// `[hooks]`: local commands at points of a deploy
    pub hooks: Hooks,
    /// releases kept per tenant after a successful deploy (`keep_releases`, default 5;
    /// live ones are always kept)
    pub keep_releases: u32,
    /// `keep_images = N`: images of the container step's repository kept per host
    /// (those a color names always); `None` prunes no image
    pub keep_images: Option<KeepImages>,
    /// weighted canary steps and traffic analysis (`[rollout]`, `[analysis]`)
    pub progressive: Progressive,
}

/// A playbook that cannot be read: the I/O error, or the place where it stops being UTF-8.
fn unreadable(path: &Path, error: ReadError) -> Diagnostic {
    match error {
        ReadError::NotUtf8 { file, at, byte } => Diagnostic::at(
            "playbook::unreadable",
            &file,
            at,
            "cannot read playbook: it is not UTF-8 text; expected a UTF-8 TOML file",
            format!("byte 0x{byte:02x} is not UTF-8"),
        ),
        ReadError::Io(e) => Diagnostic::bare(
            "playbook::unreadable",
            format!("cannot read playbook {}: {e}", path.display()),
        ),
    }
}

impl Playbook {
    /// Reads and validates a playbook file.
    ///
    /// # Errors
    /// Every problem found, with file, line and column.
    pub fn load(path: &Path) -> Result<Self, Diagnostics> {
        let source = SourceFile::read(path).map_err(|e| Diagnostics::from(unreadable(path, e)))?;
        Self::from_source(source)
    }

    /// Parses and validates playbook text.
    ///
    /// # Errors
    /// Every problem found, with file, line and column.
    pub fn from_source(source: SourceFile) -> Result<Self, Diagnostics> {
        let raw: RawPlaybook =
            toml::from_str(&source.text).map_err(|e| Diagnostics::from(toml_error(&source, &e)))?;
        let mut problems = Diagnostics::default();
        let canary = raw
            .rollout
            .as_ref()
            .map(RawRollout::canary)
            .unwrap_or_default();
        let progressive = progressive::validate(&source, &canary, raw.analysis, &mut problems);
        let rollout = raw
            .rollout
            .map(|r| validate_rollout(&source, r, &mut problems))
            .unwrap_or_default();
        let secrets_command = validate_secrets_command(
            &source,
            raw.secrets_command.as_ref(),
            "playbook::empty-secrets-command",
            &mut problems,
        );
        let hooks = raw
            .hooks
            .map(|h| validate_hooks(&source, h, &mut problems))
            .unwrap_or_default();
        let keep_releases = keep_releases(&source, raw.keep_releases.as_ref(), &mut problems);
        let mut steps = Vec::with_capacity(raw.steps.len());
        for raw_step in raw.steps {
            if let Some(step) = validate_step(&source, raw_step, &mut problems) {
                steps.push(step);
            }
        }
        container::resolve_env_files(&source, &mut steps, &mut problems);
        let keep_images =
            container::keep_images(&source, raw.keep_images.as_ref(), &steps, &mut problems);
        if steps.is_empty() && problems.is_empty() {
            problems.push(Diagnostic::at(
                "playbook::no-steps",
                &source,
                raw.name.span(),
                format!("playbook `{}` has no steps", raw.name.get_ref()),
                "expected at least one [[steps]] table",
            ));
        }
        if !problems.is_empty() {
            problems.sort();
            return Err(problems);
        }
        Ok(Self {
            name: raw.name.into_inner(),
            description: raw.description,
            vars: raw.vars,
            steps,
            rollout,
            secrets_command,
            hooks,
            keep_releases,
            keep_images,
            progressive,
            source,
        })
    }

    /// The directory relative paths in the playbook are resolved against.
    #[must_use]
    pub fn dir(&self) -> PathBuf {
        self.source.dir().to_path_buf()
    }
}

/// Releases kept per tenant when the playbook does not say (`keep_releases`).
pub const DEFAULT_KEEP_RELEASES: u32 = 5;

/// `keep_releases = N`: at least 1 (the release just deployed), default 5.
fn keep_releases(
    source: &SourceFile,
    raw: Option<&Spanned<i64>>,
    problems: &mut Diagnostics,
) -> u32 {
    let Some(n) = raw else {
        return DEFAULT_KEEP_RELEASES;
    };
    match u32::try_from(*n.get_ref()) {
        Ok(n) if n >= 1 => n,
        _ => {
            problems.push(Diagnostic::at(
                "playbook::keep-releases",
                source,
                n.span(),
                format!("keep_releases = {} keeps nothing", n.get_ref()),
                "expected a whole number of releases, at least 1",
            ));
            DEFAULT_KEEP_RELEASES
        }
    }
}

/// A TOML or shape error as a diagnostic; unknown keys get a did-you-mean.
fn toml_error(source: &SourceFile, error: &toml::de::Error) -> Diagnostic {
    if let Some((span, message)) = crate::config::parse::too_many_key_parts(source, error) {
        return Diagnostic::at("playbook::invalid", source, span, message, "this key");
    }
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim().replace('\n', " ");
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once('`')
    {
        let expected = expected.trim_start_matches(", ").to_string();
        let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let mut d = Diagnostic::at(
            "playbook::unknown-key",
            source,
            span,
            format!("unknown key `{field}`"),
            expected.clone(),
        );
        if let Some(best) = crate::config::validate::did_you_mean(field, names) {
            d = d.with_help(format!("did you mean `{best}`?"));
        }
        return d;
    }
    Diagnostic::at(
        "playbook::invalid",
        source,
        span,
        format!("invalid playbook: {message}"),
        message,
    )
}

pub(crate) fn parse_duration_field(
    source: &SourceFile,
    field: Option<&Spanned<String>>,
    key: &str,
    default: Duration,
    problems: &mut Diagnostics,
) -> Duration {
    match field {
        None => default,
        Some(value) => duration::parse(value.get_ref()).unwrap_or_else(|expected| {
            problems.push(Diagnostic::at(
                "playbook::bad-duration",
                source,
                value.span(),
                format!("`{key}` is not a valid duration"),
                expected,
            ));
            default
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Playbook, Diagnostics> {
        Playbook::from_source(SourceFile::new("playbooks/p.toml", text))
    }

    #[test]
    fn steps_parse_with_one_action_each() {
        let p = load(
            r#"
name = "agent"
[vars]
version = "1.0.0"
[[steps]]
name = "user"
user = { name = "agent-{{ tenant }}" }
[[steps]]
name = "health"
retries = 2
health = { url = "http://127.0.0.1:{{ port }}/health", interval = "200ms" }
"#,
        )
        .unwrap();
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[0].action.kind(), "user");
        assert_eq!(p.steps[1].retries, 2);
        assert!(
            matches!(p.steps[1].action, Action::Health(_, d) if d == Duration::from_millis(200))
        );
    }

    #[test]
    fn a_step_with_two_actions_or_none_is_an_error_at_its_name() {
        let err = load("name = \"x\"\n[[steps]]\nname = \"both\"\nuser = { name = \"a\" }\nrun = { script = \"true\" }\n")
            .unwrap_err();
        let text = err.render(false);
        assert!(text.contains("playbooks/p.toml:3:8"), "{text}");
        assert!(text.contains("found user, run"), "{text}");
        let err = load("name = \"x\"\n[[steps]]\nname = \"none\"\n").unwrap_err();
        assert!(err.render(false).contains("found none"));
    }

    #[test]
    fn rollout_defaults_parse_and_bad_values_point_at_their_place() {
        let p = load(
            "name = \"x\"\n[rollout]\nstrategy = \"blue-green\"\nbatch = [1, \"25%\"]\ncanary = 1\npause = \"30s\"\nmax_failures = \"10%\"\n[[steps]]\nname = \"r\"\nrun = { script = \"true\" }\n",
        )
        .unwrap();
        assert_eq!(p.rollout.strategy, Some(crate::config::Strategy::BlueGreen));
        assert_eq!(p.rollout.batch.len(), 2);
        assert_eq!(p.rollout.pause, Some(Duration::from_secs(30)));
        let err = load("name = \"x\"\n[rollout]\nstrategy = \"fast\"\nbatch = [0]\n[[steps]]\nname = \"r\"\nrun = { script = \"true\" }\n")
            .unwrap_err()
            .render(false);
        assert!(
            err.contains("playbooks/p.toml:3:12") && err.contains("unknown strategy"),
            "{err}"
        );
        assert!(
            err.contains("playbooks/p.toml:4:10") && err.contains("not a batch size"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_in_a_step_action_are_reported_with_did_you_mean() {
        let err =
            load("name = \"x\"\n[[steps]]\nname = \"d\"\ndir = { pth = \"/x\" }\n").unwrap_err();
        let text = err.render(false);
        assert!(
            text.contains("unknown key `pth`") && text.contains("did you mean `path`"),
            "{text}"
        );
    }
    #[test]
    fn keep_releases_defaults_to_5_and_below_1_points_at_its_place() {
        let run = "[[steps]]\nname = \"r\"\nrun = { script = \"true\" }\n";
        assert_eq!(
            load(&format!("name = \"x\"\n{run}")).unwrap().keep_releases,
            5
        );
        let p = load(&format!("name = \"x\"\nkeep_releases = 2\n{run}")).unwrap();
        assert_eq!(p.keep_releases, 2);
        for bad in ["0", "-3"] {
            let err = load(&format!("name = \"x\"\nkeep_releases = {bad}\n{run}"))
                .unwrap_err()
                .render(false);
            assert!(
                err.contains("playbooks/p.toml:2:17") && err.contains("at least 1"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_health_command_needs_its_user_and_excludes_url_and_tcp() {
        let step = |h: &str| format!("name = \"x\"\n[[steps]]\nname = \"h\"\nhealth = {h}\n");
        let ok = load(&step("{ command = \"true\", user = \"{{ user }}\" }")).unwrap();
        assert!(matches!(&ok.steps[0].action, Action::Health(h, _) if h.command.is_some()));
        let err = load(&step("{ command = \"true\" }"))
            .unwrap_err()
            .render(false);
        assert!(
            err.contains("playbooks/p.toml:4:22") && err.contains("needs the `user`"),
            "{err}"
        );
        let err = load(&step(
            "{ command = \"true\", url = \"http://x\", user = \"u\" }",
        ))
        .unwrap_err()
        .render(false);
        assert!(
            err.contains("exactly one of `url`, `tcp` or `command`"),
            "{err}"
        );
    }
}

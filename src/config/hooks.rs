//! The playbook's `[hooks]`: local commands drover runs on the control node at fixed
//! points of a deploy (notify a chat, gate on a calendar, register in a load balancer).
//! Here they are only read and checked; `engine/hooks` runs them.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::playbook::parse_duration_field;
use crate::config::source::SourceFile;

/// A hook's time limit unless `[hooks] timeout` says otherwise.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where in a deploy a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookPoint {
    /// before anything connects; failing stops the deploy
    PreDeploy,
    /// after each target switched to the new release (blue-green: confirmed; in
    /// place: its steps succeeded)
    PostSwitch,
    /// when the rollout halted (failure budget, `drover halt`, Ctrl-C)
    OnHalt,
    /// when the run switched targets back
    OnRollback,
    /// after the rollout, whatever its result
    PostDeploy,
}

impl HookPoint {
    /// The key in `[hooks]`.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::PreDeploy => "pre-deploy",
            Self::PostSwitch => "post-switch",
            Self::OnHalt => "on-halt",
            Self::OnRollback => "on-rollback",
            Self::PostDeploy => "post-deploy",
        }
    }
}

/// `[hooks]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    #[serde(rename = "pre-deploy")]
    pre_deploy: Option<Spanned<String>>,
    #[serde(rename = "post-switch")]
    post_switch: Option<Spanned<String>>,
    #[serde(rename = "on-halt")]
    on_halt: Option<Spanned<String>>,
    #[serde(rename = "on-rollback")]
    on_rollback: Option<Spanned<String>>,
    #[serde(rename = "post-deploy")]
    post_deploy: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

/// The playbook's hooks: a `sh -c` command per point, and their time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    commands: Vec<(HookPoint, String)>,
    /// time limit of one hook run (it is killed, with its children, after it)
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

impl Hooks {
    /// The command at `point`, if the playbook has one.
    #[must_use]
    pub fn command(&self, point: HookPoint) -> Option<&str> {
        self.commands
            .iter()
            .find(|(p, _)| *p == point)
            .map(|(_, c)| c.as_str())
    }
}

/// Checks `[hooks]`: every command non-blank, the timeout a positive duration.
pub(crate) fn validate_hooks(
    source: &SourceFile,
    raw: RawHooks,
    problems: &mut Diagnostics,
) -> Hooks {
    let timeout = parse_duration_field(
        source,
        raw.timeout.as_ref(),
        "timeout",
        DEFAULT_HOOK_TIMEOUT,
        problems,
    );
    if timeout.is_zero()
        && let Some(t) = &raw.timeout
    {
        problems.push(Diagnostic::at(
            "playbook::bad-hook-timeout",
            source,
            t.span(),
            "`[hooks] timeout` is zero",
            "expected a positive duration such as \"60s\"",
        ));
    }
    let mut commands = Vec::new();
    for (point, field) in [
        (HookPoint::PreDeploy, raw.pre_deploy),
        (HookPoint::PostSwitch, raw.post_switch),
        (HookPoint::OnHalt, raw.on_halt),
        (HookPoint::OnRollback, raw.on_rollback),
        (HookPoint::PostDeploy, raw.post_deploy),
    ] {
        let Some(field) = field else { continue };
        if field.get_ref().trim().is_empty() {
            problems.push(Diagnostic::at(
                "playbook::empty-hook",
                source,
                field.span(),
                format!("hook `{}` is empty", point.word()),
                "expected a shell command run on this machine, e.g. \"./notify.sh\"",
            ));
            continue;
        }
        commands.push((point, field.into_inner()));
    }
    Hooks { commands, timeout }
}

#[cfg(test)]
mod tests {
    use crate::config::{Playbook, SourceFile};

    fn load(hooks: &str) -> Result<Playbook, String> {
        let text = format!(
            "name = \"p\"\n[[steps]]\nname = \"s\"\nrun = {{ script = \"true\" }}\n[hooks]\n{hooks}"
        );
        Playbook::from_source(SourceFile::new("p.toml", text)).map_err(|d| d.render(false))
    }

    #[test]
    fn hooks_are_read_by_point_with_a_default_timeout() {
        let p = load("pre-deploy = \"./gate\"\npost-switch = \"echo $DROVER_HOST\"\n").unwrap();
        assert_eq!(p.hooks.command(super::HookPoint::PreDeploy), Some("./gate"));
        assert_eq!(p.hooks.command(super::HookPoint::OnHalt), None);
        assert_eq!(p.hooks.timeout, super::DEFAULT_HOOK_TIMEOUT);
    }

    #[test]
    fn a_misspelt_hook_is_named_with_its_line_and_a_suggestion() {
        let err = load("pre_deploy = \"x\"\n").unwrap_err();
        assert!(err.contains("unknown key `pre_deploy`"), "{err}");
        assert!(err.contains("p.toml:6:1"), "{err}");
        assert!(err.contains("did you mean `pre-deploy`?"), "{err}");
    }

    #[test]
    fn an_empty_hook_and_a_bad_timeout_are_pointed_at() {
        let err = load("on-halt = \" \"\ntimeout = \"soon\"\n").unwrap_err();
        assert!(err.contains("hook `on-halt` is empty"), "{err}");
        assert!(err.contains("p.toml:6:11"), "{err}");
        assert!(err.contains("`timeout` is not a valid duration"), "{err}");
        assert!(err.contains("p.toml:7:11"), "{err}");
    }
}

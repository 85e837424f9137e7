//! One `[[steps]]` entry validated: exactly one action, its values checked, the common
//! keys (`retries`, `delay`, `timeout`, `become`) read.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::{
    Action, HealthSpec, LogrotateSpec, RawStep, ServiceSpec, ServiceState, Step,
    parse_duration_field,
};
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::source::SourceFile;

pub(super) fn validate_step(
    source: &SourceFile,
    raw: RawStep,
    problems: &mut Diagnostics,
) -> Option<Step> {
    let mut actions = Vec::new();
    let name_span = raw.name.span();
    if let Some(a) = raw.user {
        actions.push(Action::User(a));
    }
    if let Some(a) = raw.dir {
        actions.push(Action::Dir(a));
    }
    if let Some(a) = raw.upload {
        actions.push(Action::Upload(a));
    }
    if let Some(a) = raw.template {
        actions.push(Action::Template(a));
    }
    if let Some(a) = raw.unit {
        actions.push(Action::Unit(a));
    }
    if let Some(a) = raw.service {
        let state = service_state(source, &a, &name_span, problems);
        actions.push(Action::Service(a, state));
    }
    if let Some(a) = raw.health {
        let interval = health_interval(source, &a, &name_span, problems);
        actions.push(Action::Health(a, interval));
    }
    if let Some(a) = raw.env {
        actions.push(Action::Env(a));
    }
    if let Some(a) = raw.logrotate {
        check_frequency(source, &a, problems);
        actions.push(Action::Logrotate(a));
    }
    if let Some(a) = raw.cron {
        actions.push(Action::Cron(a));
    }
    if let Some(a) = raw.run {
        actions.push(Action::Run(a));
    }
    if let Some(a) = raw.image {
        let via = super::image::validate_image(source, &a, &name_span, problems);
        actions.push(Action::Image(a, via));
    }
    if let Some(a) = raw.container {
        let c = super::container::validate_container(source, a, problems);
        actions.push(Action::Container(Box::new(c)));
    }
    let retries = raw.retries.unwrap_or(0);
    let delay = parse_duration_field(
        source,
        raw.delay.as_ref(),
        "delay",
        Duration::from_secs(1),
        problems,
    );
    let timeout = raw.timeout.as_ref().map(|t| {
        parse_duration_field(
            source,
            Some(t),
            "timeout",
            Duration::from_secs(300),
            problems,
        )
    });
    if actions.len() != 1 {
        problems.push(not_one_action(source, &raw.name, &actions));
        return None;
    }
    Some(Step {
        span: raw.name.span(),
        name: raw.name.into_inner(),
        when: raw.when,
        retries,
        delay,
        timeout,
        r#become: raw.r#become.unwrap_or(true),
        action: actions.remove(0),
    })
}

/// A service step's `state`; an unknown one is reported (and taken as started).
fn service_state(
    source: &SourceFile,
    a: &ServiceSpec,
    name_span: &Range<usize>,
    problems: &mut Diagnostics,
) -> ServiceState {
    match a.state.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("started") => ServiceState::Started,
        Some("stopped") => ServiceState::Stopped,
        Some("restarted") => ServiceState::Restarted,
        Some("reloaded") => ServiceState::Reloaded,
        Some(other) => {
            let span = a.state.as_ref().map_or(name_span.clone(), Spanned::span);
            problems.push(Diagnostic::at(
                "playbook::bad-state",
                source,
                span,
                format!("unknown service state `{other}`"),
                "expected \"started\", \"stopped\", \"restarted\" or \"reloaded\"",
            ));
            ServiceState::Started
        }
    }
}

/// A health step's interval; a step without exactly one of `url`, `tcp` and `command`,
/// or with a command but no `user`, is reported.
fn health_interval(
    source: &SourceFile,
    a: &HealthSpec,
    name_span: &Range<usize>,
    problems: &mut Diagnostics,
) -> Duration {
    let interval = parse_duration_field(
        source,
        a.interval.as_ref(),
        "interval",
        Duration::from_secs(1),
        problems,
    );
    let probes = [a.url.is_some(), a.tcp.is_some(), a.command.is_some()];
    if probes.iter().filter(|&&p| p).count() != 1 {
        problems.push(Diagnostic::at(
            "playbook::health-probe",
            source,
            name_span.clone(),
            "a health step needs exactly one of `url`, `tcp` or `command`",
            "expected `url = \"http://…\"`, `tcp = \"127.0.0.1:PORT\"` or `command = \"…\", user = \"…\"`",
        ));
    } else if let Some(flag) = a.in_container.filter(|_| a.command.is_none()) {
        problems.push(Diagnostic::at(
            "playbook::health-in-container",
            source,
            name_span.clone(),
            format!("`in_container = {flag}` needs a health `command`"),
            "expected `command = \"…\", in_container = true`",
        ));
    } else if let Some(c) = a
        .command
        .as_ref()
        .filter(|_| a.user.is_none() && a.in_container != Some(true))
    {
        problems.push(Diagnostic::at(
            "playbook::health-user",
            source,
            c.span(),
            "a health command needs the `user` it runs as",
            "expected `user = \"{{ user }}\"` beside this command (the tenant's user, not root)",
        ));
    }
    interval
}

/// A logrotate step's `frequency`, if any, is one logrotate knows.
fn check_frequency(source: &SourceFile, a: &LogrotateSpec, problems: &mut Diagnostics) {
    if let Some(f) = &a.frequency
        && !matches!(f.get_ref().as_str(), "daily" | "weekly" | "monthly")
    {
        problems.push(Diagnostic::at(
            "playbook::bad-frequency",
            source,
            f.span(),
            format!("unknown logrotate frequency `{}`", f.get_ref()),
            "expected \"daily\", \"weekly\" or \"monthly\"",
        ));
    }
}

/// A step with no action or several: names the ones it has.
fn not_one_action(source: &SourceFile, name: &Spanned<String>, actions: &[Action]) -> Diagnostic {
    let found = if actions.is_empty() {
        "none".to_string()
    } else {
        actions
            .iter()
            .map(Action::kind)
            .collect::<Vec<_>>()
            .join(", ")
    };
    Diagnostic::at(
        "playbook::step-action",
        source,
        name.span(),
        format!(
            "step `{}` must have exactly one action, found {found}",
            name.get_ref()
        ),
        "expected one of user, dir, upload, template, unit, service, health, env, logrotate, cron, run, image, container",
    )
}

//! Rendering a playbook for each target: variables, `when`, and every step turned into
//! a [`StepSpec`] with concrete values. Pure apart from reading the playbook's local
//! files (templates, upload trees), each read once per plan.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use minijinja::Environment;
use toml::Spanned;

mod action;
mod container;
mod container_unit;
mod context;
mod cron;
mod env;
mod fields;
mod files;
mod health;
mod logrotate;
mod template;
mod unit;

use template::{
    Ctx, TEMPLATE_LIMIT, describe, is_limit, key_of, keys, new_environment, render_bounded,
    template_code, to_value,
};
pub use template::{MAX_RENDERED_BYTES, TEMPLATE_FUEL};

use super::Color;
use super::steps::{Ownership, StepSpec, UploadFile};
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::playbook::{Action, Playbook, Step, Text};
use crate::config::{Host, Inventory, Tenant};

/// drover's default systemd unit for agents (restart policy, start-limit protection,
/// memory and CPU limits, sandboxing, runs as the tenant user).
pub const AGENT_UNIT_TEMPLATE: &str = include_str!("../../templates/agent.service.j2");

/// Values that come from outside the playbook and inventory.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Color deployed (ports: blue the tenant port, green the next one).
    pub color: Color,
    /// `--set NAME=VALUE`: replaces playbook variables, taken literally.
    pub overrides: Vec<(String, String)>,
    /// Secret values by name. `None` while checking: placeholders are used.
    pub secrets: Option<HashMap<String, String>>,
}

/// One step, rendered for one target.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// shown in reports
    pub name: String,
    /// step kind (user, dir, …)
    pub kind: &'static str,
    /// what to do; `None` when `when` is false (skipped)
    pub spec: Option<StepSpec>,
    /// extra attempts after a failure
    pub retries: u32,
    /// pause between attempts
    pub delay: Duration,
    /// time limit per attempt (`None`: the host's command timeout)
    pub timeout: Option<Duration>,
    /// run as root through the host's `become`
    pub r#become: bool,
}

/// The rendered steps of one (tenant, host) pair.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    /// tenant name
    pub tenant: String,
    /// host name
    pub host: String,
    /// steps in order
    pub steps: Vec<PlannedStep>,
}

/// Everything a deploy will do, target by target.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// playbook name
    pub playbook: String,
    /// targets in (tenant, host) order
    pub targets: Vec<TargetPlan>,
    /// every secret value the plan carries, for redaction of outputs
    pub secret_values: Vec<String>,
    /// tenant → base port (blue), for tenants that have one
    pub base_ports: HashMap<String, u16>,
}

struct Renderer<'p> {
    env: Environment<'static>,
    playbook: &'p Playbook,
    /// compiled templates by field offset in the playbook
    compiled: HashMap<usize, String>,
    named: std::collections::HashSet<String>,
    files: HashMap<PathBuf, Result<Arc<str>, String>>,
    trees: HashMap<PathBuf, Result<Arc<Vec<UploadFile>>, String>>,
    options: &'p PlanOptions,
    secret_values: Vec<String>,
}

/// Plans with fewer targets render on one thread: starting threads would cost more
/// than it saves.
const PARALLEL_MIN_TARGETS: usize = 512;

/// Renders the playbook for every target.
///
/// Large plans render on several threads, each over a contiguous run of the targets,
/// joined in target order: the plan and its diagnostics are the same whatever the
/// number of threads.
///
/// # Errors
/// Diagnostics pointing into the playbook (a template that does not render, a value
/// that is not allowed where it lands), each naming the first target it failed for.
pub fn plan(
    inventory: &Inventory,
    playbook: &Playbook,
    targets: &[(&Tenant, &Host)],
    options: &PlanOptions,
) -> Result<Plan, Diagnostics> {
    let _ = inventory;
    let threads = if targets.len() < PARALLEL_MIN_TARGETS {
        1
    } else {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    };
    plan_on(threads, playbook, targets, options)
}

/// [`plan`] on up to `threads` threads.
fn plan_on(
    threads: usize,
    playbook: &Playbook,
    targets: &[(&Tenant, &Host)],
    options: &PlanOptions,
) -> Result<Plan, Diagnostics> {
    let runs: Vec<Rendered> = if threads <= 1 {
        vec![render_run(playbook, options, targets)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .chunks(targets.len().div_ceil(threads))
                .map(|run| scope.spawn(move || render_run(playbook, options, run)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut problems = Diagnostics::default();
    // One report per failing field, not one per target: the first target in order.
    let mut seen = std::collections::HashSet::new();
    let mut plans = Vec::with_capacity(targets.len());
    let mut secret_values = Vec::new();
    for run in runs {
        plans.extend(run.plans);
        secret_values.extend(run.secret_values);
        for d in run.problems {
            if seen.insert(problem_key(&d)) {
                problems.push(d);
            }
        }
    }
    if !problems.is_empty() {
        problems.sort();
        return Err(problems);
    }
    secret_values.sort();
    secret_values.dedup();
    let base_ports = targets
        .iter()
        .filter_map(|(t, _)| t.port.map(|p| (t.name.clone(), p)))
        .collect();
    Ok(Plan {
        playbook: playbook.name.clone(),
        targets: plans,
        secret_values,
        base_ports,
    })
}

/// What makes two failures the same problem: the field (its offset) and the kind.
fn problem_key(d: &Diagnostic) -> (usize, &'static str) {
    (d.labels.first().map_or(0, |(s, _)| s.start), d.code)
}

/// What rendering a run of targets on one thread yields.
struct Rendered {
    /// the targets that rendered, in order
    plans: Vec<TargetPlan>,
    /// the first failure of each field, in target order
    problems: Vec<Diagnostic>,
    secret_values: Vec<String>,
}

/// Renders a run of targets with a renderer of its own (templates compiled and local
/// files read once per run).
fn render_run(
    playbook: &Playbook,
    options: &PlanOptions,
    targets: &[(&Tenant, &Host)],
) -> Rendered {
    let mut renderer = Renderer {
        env: new_environment(),
        playbook,
        compiled: HashMap::new(),
        named: std::collections::HashSet::new(),
        files: HashMap::new(),
        trees: HashMap::new(),
        options,
        secret_values: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Rendered {
        plans: Vec::with_capacity(targets.len()),
        problems: Vec::new(),
        secret_values: Vec::new(),
    };
    for (tenant, host) in targets {
        match renderer.target(tenant, host) {
            Ok(plan) => out.plans.push(plan),
            Err(d) => {
                if seen.insert(problem_key(&d)) {
                    out.problems.push(d);
                }
            }
        }
    }
    out.secret_values = renderer.secret_values;
    out
}

impl Renderer<'_> {
    fn diag(
        &self,
        span: Range<usize>,
        code: &'static str,
        message: String,
        label: String,
    ) -> Diagnostic {
        Diagnostic::at(code, &self.playbook.source, span, message, label)
    }

    /// Renders `source` under a stable name, compiling it only the first time: the same
    /// templates render for thousands of targets.
    fn render_named(
        &mut self,
        key: &str,
        source: &str,
        ctx: &Ctx,
    ) -> Result<String, minijinja::Error> {
        if !self.named.contains(key) {
            self.env
                .add_template_owned(key.to_string(), source.to_string())?;
            self.named.insert(key.to_string());
        }
        render_bounded(&self.env.get_template(key)?, ctx)
    }

    fn render(&mut self, field: &Text, ctx: &Ctx, target: &str) -> Result<String, Diagnostic> {
        let text = field.get_ref();
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.clone());
        }
        let span = field.span();
        let name = match self.compiled.get(&span.start) {
            Some(name) => name.clone(),
            None => {
                let name = format!("field@{}", span.start);
                self.env
                    .add_template_owned(name.clone(), text.clone())
                    .map_err(|e| {
                        self.diag(
                            span.clone(),
                            "playbook::template",
                            format!("template syntax error: {}", describe(&e)),
                            "here".into(),
                        )
                    })?;
                self.compiled.insert(span.start, name.clone());
                name
            }
        };
        let result = self
            .env
            .get_template(&name)
            .and_then(|t| render_bounded(&t, ctx));
        result.map_err(|e| {
            if is_limit(&e) {
                let key = key_of(&self.playbook.source.text, span.start)
                    .map(|k| format!("key `{k}`: "))
                    .unwrap_or_default();
                self.diag(
                    span,
                    TEMPLATE_LIMIT,
                    format!(
                        "{key}template does not render for {target}: {}",
                        describe(&e)
                    ),
                    "this template".into(),
                )
            } else {
                self.diag(
                    span,
                    "playbook::template",
                    format!("template does not render for {target}: {}", describe(&e)),
                    format!("available: {}", keys(ctx)),
                )
            }
        })
    }

    fn render_opt(
        &mut self,
        field: Option<&Text>,
        ctx: &Ctx,
        target: &str,
    ) -> Result<Option<String>, Diagnostic> {
        field.map(|f| self.render(f, ctx, target)).transpose()
    }

    fn target(&mut self, tenant: &Tenant, host: &Host) -> Result<TargetPlan, Diagnostic> {
        let target = format!("{}@{}", tenant.name, host.name);
        let ctx = self.context(tenant, host)?;
        let playbook = self.playbook;
        let mut planned = Vec::with_capacity(playbook.steps.len());
        for step in &playbook.steps {
            planned.push(self.step(step, &ctx, &target)?);
        }
        Ok(TargetPlan {
            tenant: tenant.name.clone(),
            host: host.name.clone(),
            steps: planned,
        })
    }

    fn when(&self, when: &Spanned<String>, ctx: &Ctx, target: &str) -> Result<bool, Diagnostic> {
        let expr = self.env.compile_expression(when.get_ref()).map_err(|e| {
            self.diag(
                when.span(),
                "playbook::when",
                format!("`when` is not an expression: {}", describe(&e)),
                "here".into(),
            )
        })?;
        expr.eval(ctx).map(|v| v.is_true()).map_err(|e| {
            self.diag(
                when.span(),
                "playbook::when",
                format!("`when` does not evaluate for {target}: {}", describe(&e)),
                format!("available: {}", keys(ctx)),
            )
        })
    }

    fn step(&mut self, step: &Step, ctx: &Ctx, target: &str) -> Result<PlannedStep, Diagnostic> {
        let active = match &step.when {
            Some(w) => self.when(w, ctx, target)?,
            None => true,
        };
        let spec = if active {
            let spec = self.action(&step.action, ctx, target).map_err(|mut d| {
                // A template stopped by a limit: say in which step, not only where.
                if d.code == TEMPLATE_LIMIT {
                    d.message = format!("step `{}`, {}", step.name, d.message);
                }
                d
            })?;
            // The step library's own checks (paths, modes, names, URLs), reported here
            // rather than as a failing script on the host.
            if let Err(e) = super::steps::validate(&spec) {
                return Err(self.diag(
                    step.span.clone(),
                    "playbook::invalid-step",
                    format!("step `{}` for {target}: {e}", step.name),
                    "this step".into(),
                ));
            }
            Some(spec)
        } else {
            None
        };
        Ok(PlannedStep {
            name: step.name.clone(),
            kind: step.action.kind(),
            spec,
            retries: step.retries,
            delay: step.delay,
            timeout: step.timeout,
            r#become: step.r#become,
        })
    }

    fn action(&mut self, action: &Action, ctx: &Ctx, target: &str) -> Result<StepSpec, Diagnostic> {
        match action {
            Action::User(u) => self.user_step(u, ctx, target),
            Action::Dir(d) => self.dir_step(d, ctx, target),
            Action::Upload(u) => self.upload_step(u, ctx, target),
            Action::Template(t) => self.template_step(t, ctx, target),
            Action::Unit(u) => self.unit_step(u, ctx, target),
            Action::Service(s, state) => self.service_step(s, state, ctx, target),
            Action::Health(h, interval) => self.health_step(h, interval, ctx, target),
            Action::Env(e) => self.env_step(e, ctx, target),
            Action::Logrotate(l) => self.logrotate_step(l, ctx, target),
            Action::Cron(c) => self.cron_step(c, ctx, target),
            Action::Run(r) => self.run_step(r, ctx, target),
            Action::Image(i, via) => self.image_step(i, *via, ctx, target),
            Action::Container(c) => self.container_step(c, ctx, target),
        }
    }
}

fn root_file(mode: &str) -> Ownership {
    Ownership {
        owner: Some("root".into()),
        group: Some("root".into()),
        mode: Some(mode.into()),
    }
}

/// A systemd EnvironmentFile line: the value double-quoted with `\`, `"`, `$` and
/// newlines escaped, so any byte sequence arrives as data.
fn env_line(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + name.len() + 4);
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            // Inside double quotes systemd keeps a newline as it is; a backtick is
            // unescaped by systemd and would run in a shell that sources the file.
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    out.push_str("\"\n");
    out
}

#[cfg(test)]
mod tests;

//! Rendering a playbook for each target: variables, `when`, and every step turned into
//! a [`StepSpec`] with concrete values. Pure apart from reading the playbook's local
//! files (templates, upload trees), each read once per plan.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use minijinja::{Environment, UndefinedBehavior, Value};
use toml::Spanned;

use super::Color;
use super::steps::{HealthProbe, Ownership, StepSpec, UploadFile};
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::playbook::{Action, OwnershipSpec, Playbook, Step, Text};
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

fn shell_quote(value: &str) -> String {
    shell_escape::unix::escape(value.into()).into_owned()
}

/// The work one render (a template, a variable, a `when`) may do, in minijinja
/// instructions: far beyond any real playbook (the reference agent playbook's longest
/// template takes a few hundred), and spent in well under a second, so that a loop that
/// does not end stops `check` instead of hanging it.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// The largest value one render may produce: a template is a file or a field, not a data
/// set. Checked while rendering, so a runaway template stops at the limit instead of
/// filling memory.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// Diagnostic code of a template that hit [`TEMPLATE_FUEL`] or [`MAX_RENDERED_BYTES`].
const TEMPLATE_LIMIT: &str = "playbook::template-limit";

fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    // Files are compared byte for byte on the host: keep their final newline.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.add_filter("shell_quote", shell_quote);
    env
}

/// Renders `template` into a string of at most [`MAX_RENDERED_BYTES`].
fn render_bounded(
    template: &minijinja::Template<'_, '_>,
    ctx: &Ctx,
) -> Result<String, minijinja::Error> {
    let mut out = Bounded::default();
    match template.render_captured_to(ctx, &mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
        Err(_) if out.overflowed => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            TOO_LARGE,
        )),
        Err(e) => Err(e),
    }
}

/// The detail of the error for a value over [`MAX_RENDERED_BYTES`].
const TOO_LARGE: &str = "its value is larger than 1 MiB";

/// A render's output that refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other(TOO_LARGE));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The diagnostic code of a template that does not render.
fn template_code(error: &minijinja::Error) -> &'static str {
    if is_limit(error) {
        TEMPLATE_LIMIT
    } else {
        "playbook::template"
    }
}

/// True when `error` is a template stopped by [`TEMPLATE_FUEL`] or [`MAX_RENDERED_BYTES`].
fn is_limit(error: &minijinja::Error) -> bool {
    error.kind() == minijinja::ErrorKind::OutOfFuel || error.detail() == Some(TOO_LARGE)
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

fn to_value(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::from(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::from(*b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        toml::Value::Array(a) => Value::from(a.iter().map(to_value).collect::<Vec<_>>()),
        toml::Value::Table(t) => Value::from(
            t.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// A target's template context: a minijinja map, built once per target and shared
/// (cheaply cloned) by every render, rather than converted anew for each field.
type Ctx = Value;

fn keys(ctx: &Ctx) -> String {
    ctx.try_iter()
        .map(|it| it.map(|k| k.to_string()).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
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

    fn context(&mut self, tenant: &Tenant, host: &Host) -> Result<Ctx, Diagnostic> {
        let base = tenant.port.unwrap_or(0);
        let port = self.options.color.port(base);
        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in &tenant.vars {
            ctx.insert(k.clone(), to_value(v));
        }
        ctx.insert("tenant".into(), Value::from(tenant.name.clone()));
        ctx.insert("host".into(), Value::from(host.name.clone()));
        ctx.insert("address".into(), Value::from(host.address.clone()));
        ctx.insert("groups".into(), Value::from(host.groups.clone()));
        ctx.insert("color".into(), Value::from(self.options.color.as_str()));
        ctx.insert("port".into(), Value::from(port));
        ctx.insert("blue_port".into(), Value::from(base));
        ctx.insert("green_port".into(), Value::from(base.saturating_add(1)));
        let playbook = self.playbook;
        for (name, value) in &playbook.vars {
            if let Some((_, v)) = self.options.overrides.iter().find(|(k, _)| k == name) {
                ctx.insert(name.clone(), Value::from(v.clone()));
                continue;
            }
            let rendered = match value {
                toml::Value::String(s) => {
                    let key = format!("var:{name}");
                    let text = self
                        .render_named(&key, s, &Value::from(ctx.clone()))
                        .map_err(|e| self.var_error(name, &e, tenant, host))?;
                    Value::from(text)
                }
                other => to_value(other),
            };
            ctx.insert(name.clone(), rendered);
        }
        // --set wins over tenant and playbook variables alike.
        for (name, value) in &self.options.overrides {
            ctx.insert(name.clone(), Value::from(value.clone()));
        }
        Ok(Value::from(ctx))
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

    fn var_error(
        &self,
        name: &str,
        error: &minijinja::Error,
        tenant: &Tenant,
        host: &Host,
    ) -> Diagnostic {
        // Point at the variable's key in [vars]: find `name =` in the text.
        let text = &self.playbook.source.text;
        let start = text.find(&format!("\n{name} =")).map_or(0, |i| i + 1);
        self.diag(
            start..start + name.len(),
            template_code(error),
            format!(
                "variable `{name}` does not render for {}@{}: {}",
                tenant.name,
                host.name,
                describe(error)
            ),
            "expected a template over defined variables".into(),
        )
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

    fn ownership(
        &mut self,
        o: &OwnershipSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<Ownership, Diagnostic> {
        let owner = self.checked_name(o.owner.as_ref(), ctx, target)?;
        let group = self.checked_name(o.group.as_ref(), ctx, target)?;
        let mode = self.render_opt(o.mode.as_ref(), ctx, target)?;
        if let (Some(m), Some(field)) = (&mode, &o.mode)
            && (!(m.len() == 3 || m.len() == 4) || !m.chars().all(|c| ('0'..='7').contains(&c)))
        {
            return Err(self.diag(
                field.span(),
                "playbook::bad-mode",
                format!("mode `{m}` is not an octal file mode"),
                "expected 3 or 4 octal digits such as \"0644\"".into(),
            ));
        }
        Ok(Ownership { owner, group, mode })
    }

    /// User and group names: rendered, then checked so nothing odd reaches useradd/chown.
    fn checked_name(
        &mut self,
        field: Option<&Text>,
        ctx: &Ctx,
        target: &str,
    ) -> Result<Option<String>, Diagnostic> {
        let Some(field) = field else { return Ok(None) };
        let value = self.render(field, ctx, target)?;
        let ok = value.len() <= 32
            && value
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok {
            Ok(Some(value))
        } else {
            Err(self.diag(
                field.span(),
                "playbook::bad-name",
                format!("`{value}` (for {target}) is not a valid user or group name"),
                "expected [a-z_][a-z0-9_-]*, at most 32 characters".into(),
            ))
        }
    }

    /// Remote paths: absolute, one line, no `..` component.
    fn checked_path(
        &mut self,
        field: &Text,
        ctx: &Ctx,
        target: &str,
    ) -> Result<String, Diagnostic> {
        let value = self.render(field, ctx, target)?;
        let bad = !value.starts_with('/')
            || value.contains(['\n', '\r', '\0'])
            || value.split('/').any(|c| c == "..");
        if bad {
            return Err(self.diag(
                field.span(),
                "playbook::bad-path",
                format!(
                    "path `{}` (for {target}) is not allowed",
                    value.escape_debug()
                ),
                "expected an absolute path on one line without `..`".into(),
            ));
        }
        Ok(value)
    }

    /// File names inside a fixed directory (units, cron, logrotate).
    fn checked_file_name(
        &mut self,
        field: &Text,
        ctx: &Ctx,
        target: &str,
        allow_dot: bool,
    ) -> Result<String, Diagnostic> {
        let value = self.render(field, ctx, target)?;
        let ok = !value.is_empty()
            && !value.starts_with(['.', '-'])
            && value.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '-'
                    || c == '_'
                    || c == '@'
                    || (allow_dot && c == '.')
            });
        if ok {
            Ok(value)
        } else {
            Err(self.diag(
                field.span(),
                "playbook::bad-name",
                format!(
                    "`{}` (for {target}) is not a valid file name here",
                    value.escape_debug()
                ),
                if allow_dot {
                    "expected letters, digits, `-`, `_`, `@` and `.`".into()
                } else {
                    "expected letters, digits, `-` and `_` (cron ignores names with dots)".into()
                },
            ))
        }
    }

    fn local_path(&self, rendered: &str) -> PathBuf {
        let p = Path::new(rendered);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.playbook.dir().join(p)
        }
    }

    fn read_file(&mut self, field: &Text, ctx: &Ctx, target: &str) -> Result<Arc<str>, Diagnostic> {
        let rendered = self.render(field, ctx, target)?;
        let path = self.local_path(&rendered);
        let entry = self.files.entry(path.clone()).or_insert_with(|| {
            std::fs::read_to_string(&path)
                .map(Arc::from)
                .map_err(|e| e.to_string())
        });
        entry.clone().map_err(|e| {
            self.diag(
                field.span(),
                "playbook::missing-file",
                format!("cannot read template {}: {e}", path.display()),
                "expected a readable file, relative to the playbook".into(),
            )
        })
    }

    fn read_tree(
        &mut self,
        field: &Text,
        ctx: &Ctx,
        target: &str,
    ) -> Result<Arc<Vec<UploadFile>>, Diagnostic> {
        let rendered = self.render(field, ctx, target)?;
        let path = self.local_path(&rendered);
        let entry = self
            .trees
            .entry(path.clone())
            .or_insert_with(|| read_tree(&path).map(Arc::new));
        entry.clone().map_err(|e| {
            self.diag(
                field.span(),
                "playbook::missing-dir",
                format!("cannot upload {}: {e}", path.display()),
                "expected a local directory, relative to the playbook".into(),
            )
        })
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

    #[allow(clippy::too_many_lines)]
    fn action(&mut self, action: &Action, ctx: &Ctx, target: &str) -> Result<StepSpec, Diagnostic> {
        Ok(match action {
            Action::User(u) => {
                let name = self
                    .checked_name(Some(&u.name), ctx, target)?
                    .unwrap_or_default();
                let home = match &u.home {
                    Some(h) => self.checked_path(h, ctx, target)?,
                    None => format!("/var/lib/{name}"),
                };
                StepSpec::User { name, home }
            }
            Action::Dir(d) => StepSpec::Dir {
                path: self.checked_path(&d.path, ctx, target)?,
                ownership: self.ownership(
                    &OwnershipSpec {
                        owner: d.owner.clone(),
                        group: d.group.clone(),
                        mode: d.mode.clone(),
                    },
                    ctx,
                    target,
                )?,
            },
            Action::Upload(u) => {
                let files = self.read_tree(&u.src, ctx, target)?;
                StepSpec::Upload {
                    dest: self.checked_path(&u.dest, ctx, target)?,
                    files,
                    ownership: self.ownership(
                        &OwnershipSpec {
                            owner: u.owner.clone(),
                            group: u.group.clone(),
                            mode: None,
                        },
                        ctx,
                        target,
                    )?,
                }
            }
            Action::Template(t) => {
                let source = self.read_file(&t.src, ctx, target)?;
                let key = format!("file:{source}");
                let content = self.render_named(&key, &source, ctx).map_err(|e| {
                    self.diag(
                        t.src.span(),
                        template_code(&e),
                        format!(
                            "template {} does not render for {target}: {}",
                            t.src.get_ref(),
                            describe(&e)
                        ),
                        "this template".into(),
                    )
                })?;
                let mut ownership = self.ownership(
                    &OwnershipSpec {
                        owner: t.owner.clone(),
                        group: t.group.clone(),
                        mode: t.mode.clone(),
                    },
                    ctx,
                    target,
                )?;
                ownership.mode.get_or_insert_with(|| "0644".into());
                StepSpec::File {
                    dest: self.checked_path(&t.dest, ctx, target)?,
                    content: content.into_bytes(),
                    ownership,
                    secret: false,
                    on_change: None,
                }
            }
            Action::Unit(u) => {
                let name = self.checked_file_name(&u.name, ctx, target, true)?;
                let mut unit_values: BTreeMap<String, Value> = BTreeMap::new();
                let defaults = [
                    ("unit_exec", &u.exec, "/bin/false"),
                    ("unit_user", &u.user, "nobody"),
                    ("unit_memory_max", &u.memory_max, "512M"),
                    ("unit_cpu_quota", &u.cpu_quota, "100%"),
                    ("unit_env_file", &u.env_file, ""),
                ];
                for (key, field, default) in defaults {
                    let value = self
                        .render_opt(field.as_ref(), ctx, target)?
                        .unwrap_or_else(|| default.into());
                    if value.contains(['\n', '\r']) {
                        let span = field.as_ref().map_or(u.name.span(), Spanned::span);
                        return Err(self.diag(
                            span,
                            "playbook::bad-value",
                            format!("`{key}` may not span lines"),
                            "expected one line".into(),
                        ));
                    }
                    unit_values.insert(key.into(), Value::from(value));
                }
                let (source, span) = match &u.template {
                    Some(t) => (self.read_file(t, ctx, target)?, t.span()),
                    None => (Arc::from(AGENT_UNIT_TEMPLATE), u.name.span()),
                };
                let key = format!("file:{source}");
                // The target's context with the unit's own values on top.
                let unit_ctx = minijinja::context! {
                    unit_exec => unit_values.remove("unit_exec"),
                    unit_user => unit_values.remove("unit_user"),
                    unit_memory_max => unit_values.remove("unit_memory_max"),
                    unit_cpu_quota => unit_values.remove("unit_cpu_quota"),
                    unit_env_file => unit_values.remove("unit_env_file"),
                    ..ctx.clone()
                };
                let content = self.render_named(&key, &source, &unit_ctx).map_err(|e| {
                    self.diag(
                        span,
                        template_code(&e),
                        format!(
                            "unit template does not render for {target}: {}",
                            describe(&e)
                        ),
                        "here".into(),
                    )
                })?;
                StepSpec::File {
                    dest: format!("/etc/systemd/system/{name}"),
                    content: content.into_bytes(),
                    ownership: root_file("0644"),
                    secret: false,
                    on_change: Some("systemctl daemon-reload".into()),
                }
            }
            Action::Service(s, state) => StepSpec::Service {
                name: self.checked_file_name(&s.name, ctx, target, true)?,
                state: *state,
                enabled: s.enabled,
            },
            Action::Health(h, interval) => {
                let probe = if let Some(url) = &h.url {
                    let url_text = self.render(url, ctx, target)?;
                    if !(url_text.starts_with("http://") || url_text.starts_with("https://")) {
                        return Err(self.diag(
                            url.span(),
                            "playbook::bad-url",
                            format!("`{url_text}` is not an http(s) URL"),
                            "expected http://… or https://…".into(),
                        ));
                    }
                    HealthProbe::Http {
                        url: url_text,
                        status: h.status.unwrap_or(200),
                        body: self.render_opt(h.body.as_ref(), ctx, target)?,
                    }
                } else {
                    let field = h.tcp.as_ref().expect("validated: url or tcp");
                    let text = self.render(field, ctx, target)?;
                    let parsed = text
                        .rsplit_once(':')
                        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)));
                    let Some((host, port)) = parsed else {
                        return Err(self.diag(
                            field.span(),
                            "playbook::bad-tcp",
                            format!("`{text}` is not host:port"),
                            "expected e.g. \"127.0.0.1:8100\"".into(),
                        ));
                    };
                    HealthProbe::Tcp { host, port }
                };
                StepSpec::Health {
                    probe,
                    retries: h.retries.unwrap_or(10).max(1),
                    interval: *interval,
                }
            }
            Action::Env(e) => {
                let mut content = String::from("# Managed by drover. Do not edit.\n");
                for (name, value) in &e.vars {
                    let value = match value {
                        toml::Value::String(s) => self
                            .render_named(&format!("env:{}:{name}", e.dest.span().start), s, ctx)
                            .map_err(|err| {
                                self.diag(
                                    e.dest.span(),
                                    template_code(&err),
                                    format!(
                                        "env variable `{name}` does not render for {target}: {}",
                                        describe(&err)
                                    ),
                                    "in this env step".into(),
                                )
                            })?,
                        other => other.to_string(),
                    };
                    content.push_str(&env_line(name, &value));
                }
                for secret in &e.secrets {
                    let name = secret.get_ref();
                    let value = match &self.options.secrets {
                        None => "<secret>".to_string(),
                        Some(values) => values.get(name).cloned().ok_or_else(|| {
                            self.diag(
                                secret.span(),
                                "playbook::missing-secret",
                                format!("secret `{name}` has no value"),
                                format!("expected it in the environment as DROVER_SECRET_{name} or in the --secrets file"),
                            )
                        })?,
                    };
                    if !value.is_empty() {
                        self.secret_values.push(value.clone());
                    }
                    content.push_str(&env_line(name, &value));
                }
                let mut ownership = self.ownership(
                    &OwnershipSpec {
                        owner: e.owner.clone(),
                        group: e.group.clone(),
                        mode: e.mode.clone(),
                    },
                    ctx,
                    target,
                )?;
                ownership.owner.get_or_insert_with(|| "root".into());
                ownership.group.get_or_insert_with(|| "root".into());
                ownership.mode.get_or_insert_with(|| "0600".into());
                StepSpec::File {
                    dest: self.checked_path(&e.dest, ctx, target)?,
                    content: content.into_bytes(),
                    ownership,
                    secret: true,
                    on_change: None,
                }
            }
            Action::Logrotate(l) => {
                let name = self.checked_file_name(&l.name, ctx, target, false)?;
                let mut paths = Vec::new();
                for p in &l.paths {
                    let path = self.checked_path(p, ctx, target)?;
                    // logrotate has its own quoting: keep paths to what needs none.
                    if path.contains(|c: char| {
                        c.is_whitespace()
                            || c == '"'
                            || c == '\''
                            || c == '\\'
                            || c == '{'
                            || c == '}'
                    }) {
                        return Err(self.diag(
                            p.span(),
                            "playbook::bad-path",
                            format!("log path `{path}` has characters logrotate would misread"),
                            "expected no spaces, quotes, backslashes or braces".into(),
                        ));
                    }
                    paths.push(path);
                }
                let create = self
                    .render_opt(l.create.as_ref(), ctx, target)?
                    .unwrap_or_else(|| "0640 root root".into());
                let frequency = l
                    .frequency
                    .as_ref()
                    .map_or("weekly", |f| f.get_ref().as_str());
                let content = format!(
                    "# Managed by drover.\n{} {{\n    {frequency}\n    rotate {}\n    compress\n    delaycompress\n    missingok\n    notifempty\n    create {create}\n}}\n",
                    paths
                        .iter()
                        .map(|p| format!("\"{p}\""))
                        .collect::<Vec<_>>()
                        .join(" "),
                    l.rotate.unwrap_or(4),
                );
                StepSpec::File {
                    dest: format!("/etc/logrotate.d/{name}"),
                    content: content.into_bytes(),
                    ownership: root_file("0644"),
                    secret: false,
                    on_change: None,
                }
            }
            Action::Cron(c) => {
                let name = self.checked_file_name(&c.name, ctx, target, false)?;
                let schedule = self.render(&c.schedule, ctx, target)?;
                let valid_schedule = schedule.split_whitespace().count() == 5
                    && schedule
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || " */,-".contains(ch));
                if !valid_schedule {
                    return Err(self.diag(
                        c.schedule.span(),
                        "playbook::bad-schedule",
                        format!("`{schedule}` is not a cron schedule"),
                        "expected five fields such as \"*/5 * * * *\"".into(),
                    ));
                }
                let user = self
                    .checked_name(c.user.as_ref(), ctx, target)?
                    .unwrap_or_else(|| "root".into());
                let command = self.render(&c.command, ctx, target)?;
                if command.contains(['\n', '\r']) {
                    return Err(self.diag(
                        c.command.span(),
                        "playbook::bad-value",
                        "a cron command may not span lines".into(),
                        "expected one line".into(),
                    ));
                }
                // cron turns an unescaped % into a newline.
                let command = command.replace('%', "\\%");
                let content = format!(
                    "# Managed by drover.\nSHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n{schedule} {user} {command}\n"
                );
                StepSpec::File {
                    dest: format!("/etc/cron.d/{name}"),
                    content: content.into_bytes(),
                    ownership: root_file("0644"),
                    secret: false,
                    on_change: None,
                }
            }
            Action::Run(r) => StepSpec::Run {
                script: self.render(&r.script, ctx, target)?,
                creates: self.render_opt(r.creates.as_ref(), ctx, target)?,
                unless: self.render_opt(r.unless.as_ref(), ctx, target)?,
            },
        })
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

/// The message of a template error without minijinja's debug dump (which could print
/// variable values, secrets included).
fn describe(error: &minijinja::Error) -> String {
    let mut text = if error.kind() == minijinja::ErrorKind::OutOfFuel {
        format!(
            "it runs too long: more than {TEMPLATE_FUEL} template instructions (a loop that does not end?)"
        )
    } else {
        error
            .detail()
            .map_or_else(|| error.kind().to_string(), str::to_string)
    };
    if let Some(line) = error.line() {
        text.push_str(&format!(" (template line {line})"));
    }
    text
}

/// The key a value at byte `offset` is written under, from the text before it on its line
/// (`script` in `run = { script = "…" }`); `None` when that is not `KEY =`.
fn key_of(text: &str, offset: usize) -> Option<&str> {
    let line = &text[..offset.min(text.len())];
    let line = &line[line.rfind(['\n', '\r']).map_or(0, |i| i + 1)..];
    let before = line.trim_end().strip_suffix('=')?.trim_end();
    let key = &before[before.rfind(['{', ',', ' ', '\t']).map_or(0, |i| i + 1)..];
    (!key.is_empty()).then_some(key)
}

/// Reads a local directory tree for upload: sorted, regular files only, no symlinks
/// out of the tree.
fn read_tree(root: &Path) -> Result<Vec<UploadFile>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<UploadFile>) -> Result<(), String> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(|e| e.to_string())?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else if meta.is_file() {
                let rel = path.strip_prefix(root).map_err(|e| e.to_string())?;
                let rel = rel
                    .to_str()
                    .ok_or_else(|| format!("{} is not UTF-8", rel.display()))?;
                if rel.contains(['\n', '\r']) {
                    return Err(format!("file name {rel:?} spans lines"));
                }
                let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                #[cfg(unix)]
                let executable = {
                    use std::os::unix::fs::PermissionsExt;
                    meta.permissions().mode() & 0o111 != 0
                };
                #[cfg(not(unix))]
                let executable = false;
                out.push(UploadFile {
                    path: rel.replace('\\', "/"),
                    bytes,
                    executable,
                });
            } else {
                return Err(format!(
                    "{} is neither a file nor a directory",
                    path.display()
                ));
            }
        }
        Ok(())
    }
    let meta = std::fs::metadata(root).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a directory".into());
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    fn inventory() -> Inventory {
        Inventory::from_sources(vec![SourceFile::new(
            "inv.toml",
            "[hosts.h1]\naddress = \"10.0.0.1\"\n[hosts.h2]\naddress = \"10.0.0.2\"\n[tenants.acme]\nhosts = [\"h1\", \"h2\"]\nport = 8100\nvars = { model = \"m1\" }\n",
        )])
        .unwrap()
    }

    fn playbook(text: &str) -> Playbook {
        Playbook::from_source(SourceFile::new("/pb/agent.toml", text)).unwrap()
    }

    fn plan_for(p: &Playbook, options: &PlanOptions) -> Result<Plan, Diagnostics> {
        let inv = inventory();
        let tenant = inv.tenant("acme").unwrap();
        let targets: Vec<(&Tenant, &Host)> = tenant
            .hosts
            .iter()
            .map(|h| (tenant, inv.host(h).unwrap()))
            .collect();
        plan(&inv, p, &targets, options)
    }

    /// 1,000 tenants on 10 hosts; only the even ones have `model`.
    fn wide_inventory() -> Inventory {
        let mut text = String::new();
        for h in 0..10 {
            text.push_str(&format!("[hosts.h{h}]\naddress = \"10.0.0.{}\"\n", h + 1));
        }
        for t in 0..1000 {
            let vars = if t % 2 == 0 {
                "vars = { model = \"m\" }\n"
            } else {
                ""
            };
            text.push_str(&format!(
                "[tenants.t{t}]\nhosts = [\"h{}\"]\nport = {}\n{vars}",
                t % 10,
                8000 + 2 * (t / 10)
            ));
        }
        Inventory::from_sources(vec![SourceFile::new("inv.toml", text)]).unwrap()
    }

    #[test]
    fn a_plan_is_the_same_on_one_thread_and_on_several() {
        let inv = wide_inventory();
        let targets: Vec<(&Tenant, &Host)> = inv
            .tenants
            .iter()
            .flat_map(|t| {
                let inv = &inv;
                t.hosts.iter().map(move |h| (t, inv.host(h).unwrap()))
            })
            .collect();
        assert_eq!(targets.len(), 1000);
        let fine = playbook(
            "name = \"a\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ tenant }}/{{ host }}/{{ port }}\" }\n",
        );
        let one = plan_on(1, &fine, &targets, &blue()).unwrap();
        let three = plan_on(3, &fine, &targets, &blue()).unwrap();
        assert_eq!(format!("{:?}", one.targets), format!("{:?}", three.targets));
        assert_eq!(one.targets[999].tenant, "t999");

        // The odd tenants fail: one report per field, naming the first target in order.
        let broken = playbook(
            "name = \"a\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ model }}\" }\n[[steps]]\nname = \"e\"\ndir = { path = \"/opt/{{ nope }}\" }\n",
        );
        let one = plan_on(1, &broken, &targets, &blue())
            .unwrap_err()
            .render(false);
        let three = plan_on(3, &broken, &targets, &blue())
            .unwrap_err()
            .render(false);
        assert_eq!(one, three);
        assert!(one.contains("t0@h0") && one.contains("t1@h1"), "{one}");
        assert_eq!(one.matches("error:").count(), 2, "{one}");
    }

    fn blue() -> PlanOptions {
        PlanOptions {
            color: Color::Blue,
            ..PlanOptions::default()
        }
    }

    #[test]
    fn variables_render_per_target_from_tenant_host_and_playbook() {
        let p = playbook(
            "name = \"a\"\n[vars]\nuser = \"agent-{{ tenant }}\"\nversion = \"1.0.0\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ tenant }}/{{ version }}/{{ host }}/{{ model }}/{{ port }}\", owner = \"{{ user }}\" }\n",
        );
        let plan = plan_for(&p, &blue()).unwrap();
        assert_eq!(plan.targets.len(), 2);
        match &plan.targets[1].steps[0].spec {
            Some(StepSpec::Dir { path, ownership }) => {
                assert_eq!(path, "/opt/acme/1.0.0/h2/m1/8100");
                assert_eq!(ownership.owner.as_deref(), Some("agent-acme"));
            }
            other => panic!("{other:?}"),
        }
        let green = PlanOptions {
            color: Color::Green,
            overrides: vec![("version".into(), "2.0.0".into())],
            secrets: None,
        };
        let plan = plan_for(&p, &green).unwrap();
        assert!(
            matches!(&plan.targets[0].steps[0].spec, Some(StepSpec::Dir { path, .. }) if path == "/opt/acme/2.0.0/h1/m1/8101")
        );
    }

    #[test]
    fn a_missing_variable_is_an_error_at_the_field_naming_the_target() {
        let p = playbook(
            "name = \"a\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ tennant }}\" }\n",
        );
        let text = plan_for(&p, &blue()).unwrap_err().render(false);
        assert!(text.contains("/pb/agent.toml:4:16"), "{text}");
        assert!(
            text.contains("acme@h1") && text.contains("tennant"),
            "{text}"
        );
        assert_eq!(
            text.matches("error:").count(),
            1,
            "one report per field: {text}"
        );
    }

    #[test]
    fn when_false_skips_a_step() {
        let p = playbook(
            "name = \"a\"\n[[steps]]\nname = \"r\"\nwhen = \"host == 'h2'\"\nrun = { script = \"true\" }\n",
        );
        let plan = plan_for(&p, &blue()).unwrap();
        assert!(plan.targets[0].steps[0].spec.is_none());
        assert!(plan.targets[1].steps[0].spec.is_some());
    }

    #[test]
    fn unsafe_rendered_names_and_paths_are_rejected_before_anything_runs() {
        for (field, expect) in [
            (
                "user = { name = \"a;rm -rf /\" }",
                "not a valid user or group name",
            ),
            ("dir = { path = \"relative/x\" }", "not allowed"),
            ("dir = { path = \"/opt/../etc\" }", "not allowed"),
            (
                "dir = { path = \"/opt/x\", owner = \"$(id)\" }",
                "not a valid user or group name",
            ),
            (
                "dir = { path = \"/opt/x\", mode = \"99\" }",
                "not an octal file mode",
            ),
            (
                "cron = { name = \"a.b\", schedule = \"* * * * *\", command = \"true\" }",
                "not a valid file name",
            ),
            (
                "cron = { name = \"ab\", schedule = \"* * * * * rm\", command = \"true\" }",
                "not a cron schedule",
            ),
            ("service = { name = \"x;y\" }", "not a valid file name"),
        ] {
            let p = playbook(&format!("name = \"a\"\n[[steps]]\nname = \"s\"\n{field}\n"));
            let text = plan_for(&p, &blue()).unwrap_err().render(false);
            assert!(text.contains(expect), "{field}: {text}");
        }
    }

    #[test]
    fn env_files_quote_values_and_carry_secrets_without_leaking_them_into_errors() {
        let p = playbook(
            "name = \"a\"\n[[steps]]\nname = \"e\"\nenv = { dest = \"/etc/drover/{{ tenant }}.env\", vars = { MODEL = \"{{ model }} \\\"x\\\" $HOME\" }, secrets = [\"API_KEY\"] }\n",
        );
        let missing = plan_for(
            &p,
            &PlanOptions {
                color: Color::Blue,
                overrides: vec![],
                secrets: Some(HashMap::new()),
            },
        );
        assert!(
            missing
                .unwrap_err()
                .render(false)
                .contains("DROVER_SECRET_API_KEY")
        );
        let secrets = HashMap::from([("API_KEY".to_string(), "s3cr3t\nline".to_string())]);
        let plan = plan_for(
            &p,
            &PlanOptions {
                color: Color::Blue,
                overrides: vec![],
                secrets: Some(secrets),
            },
        )
        .unwrap();
        match &plan.targets[0].steps[0].spec {
            Some(StepSpec::File {
                content,
                secret,
                ownership,
                ..
            }) => {
                let text = String::from_utf8_lossy(content);
                assert!(text.contains("MODEL=\"m1 \\\"x\\\" \\$HOME\"\n"), "{text}");
                assert!(text.contains("API_KEY=\"s3cr3t\nline\"\n"), "{text}");
                assert!(*secret);
                assert_eq!(ownership.mode.as_deref(), Some("0600"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plan.secret_values, ["s3cr3t\nline"]);
    }

    #[test]
    fn the_default_unit_has_the_hardening_and_limits() {
        let p = playbook(
            "name = \"a\"\n[[steps]]\nname = \"u\"\nunit = { name = \"drover-{{ tenant }}-{{ color }}.service\", exec = \"/usr/bin/python3 /opt/x/agent.py --port {{ port }}\", user = \"agent-{{ tenant }}\" }\n",
        );
        let plan = plan_for(&p, &blue()).unwrap();
        match &plan.targets[0].steps[0].spec {
            Some(StepSpec::File {
                dest,
                content,
                on_change,
                ..
            }) => {
                assert_eq!(dest, "/etc/systemd/system/drover-acme-blue.service");
                let text = String::from_utf8_lossy(content);
                for needle in [
                    "Restart=on-failure",
                    "StartLimitBurst=",
                    "MemoryMax=512M",
                    "CPUQuota=100%",
                    "NoNewPrivileges=yes",
                    "ProtectSystem=strict",
                    "PrivateTmp=yes",
                    "User=agent-acme",
                    "--port 8100",
                ] {
                    assert!(text.contains(needle), "{needle} missing in\n{text}");
                }
                assert_eq!(on_change.as_deref(), Some("systemctl daemon-reload"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn env_lines_escape_everything_a_shell_or_systemd_would_interpret() {
        assert_eq!(
            env_line("A", "x\"y\\z$w\nv`id`"),
            "A=\"x\\\"y\\\\z\\$w\nv\\`id\\`\"\n"
        );
    }
}

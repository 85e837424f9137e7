//! The template engine as drover uses it: strict about undefined variables, bounded in
//! work (fuel) and in the size of what a render produces, and errors described without
//! minijinja's debug dump (which could print secrets).

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};

pub(super) fn shell_quote(value: &str) -> String {
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
pub(super) const TEMPLATE_LIMIT: &str = "playbook::template-limit";

pub(super) fn new_environment() -> Environment<'static> {
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
pub(super) fn render_bounded(
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
pub(super) const TOO_LARGE: &str = "its value is larger than 1 MiB";

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
pub(super) fn template_code(error: &minijinja::Error) -> &'static str {
    if is_limit(error) {
        TEMPLATE_LIMIT
    } else {
        "playbook::template"
    }
}

/// True when `error` is a template stopped by [`TEMPLATE_FUEL`] or [`MAX_RENDERED_BYTES`].
pub(super) fn is_limit(error: &minijinja::Error) -> bool {
    error.kind() == minijinja::ErrorKind::OutOfFuel || error.detail() == Some(TOO_LARGE)
}

pub(super) fn to_value(value: &toml::Value) -> Value {
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
pub(super) type Ctx = Value;

pub(super) fn keys(ctx: &Ctx) -> String {
    ctx.try_iter()
        .map(|it| it.map(|k| k.to_string()).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// The message of a template error without minijinja's debug dump (which could print
/// variable values, secrets included).
pub(super) fn describe(error: &minijinja::Error) -> String {
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
pub(super) fn key_of(text: &str, offset: usize) -> Option<&str> {
    let line = &text[..offset.min(text.len())];
    let line = &line[line.rfind(['\n', '\r']).map_or(0, |i| i + 1)..];
    let before = line.trim_end().strip_suffix('=')?.trim_end();
    let key = &before[before.rfind(['{', ',', ' ', '\t']).map_or(0, |i| i + 1)..];
    (!key.is_empty()).then_some(key)
}

//! `unit`: a systemd unit rendered from drover's default template or the playbook's.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use toml::Spanned;

use super::{AGENT_UNIT_TEMPLATE, Ctx, Renderer, describe, root_file, template_code};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::UnitSpec;
use crate::plan::steps::StepSpec;

impl Renderer<'_> {
    /// A systemd unit, from drover's default template or the playbook's (`unit = { name, exec, … }`).
    pub(super) fn unit_step(
        &mut self,
        u: &UnitSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
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
        Ok(StepSpec::File {
            dest: format!("/etc/systemd/system/{name}"),
            content: content.into_bytes(),
            ownership: root_file("0644"),
            secret: false,
            on_change: Some("systemctl daemon-reload".into()),
        })
    }
}

//! A target's template context: tenant and host facts, ports of the color, the tenant's
//! variables, the playbook's (rendered in order) and `--set` values over all.

use std::collections::BTreeMap;

use minijinja::Value;

use super::{Ctx, Renderer, describe, template_code, to_value};
use crate::config::diagnostic::Diagnostic;
use crate::config::{Host, Tenant};

impl Renderer<'_> {
    pub(super) fn context(&mut self, tenant: &Tenant, host: &Host) -> Result<Ctx, Diagnostic> {
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

    pub(super) fn var_error(
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
}

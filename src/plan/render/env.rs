//! `env`: an environment file of variables and secrets, 0600 root.

use super::{Ctx, Renderer, describe, env_line, template_code};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::{EnvSpec, OwnershipSpec};
use crate::plan::steps::StepSpec;

impl Renderer<'_> {
    /// An environment file with variables and secrets (`env = { dest, vars, secrets }`).
    pub(super) fn env_step(
        &mut self,
        e: &EnvSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
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
        Ok(StepSpec::File {
            dest: self.checked_path(&e.dest, ctx, target)?,
            content: content.into_bytes(),
            ownership,
            secret: true,
            on_change: None,
        })
    }
}

//! `health`: an HTTP, TCP or command probe run on the host.

use std::time::Duration;

use super::{Ctx, Renderer};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::HealthSpec;
use crate::plan::steps::{HealthProbe, StepSpec};

impl Renderer<'_> {
    /// A health probe, HTTP, TCP or a command (`health = { url | tcp | command, … }`).
    pub(super) fn health_step(
        &mut self,
        h: &HealthSpec,
        interval: &Duration,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let interval2 = *interval;

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
        } else if let Some(command) = &h.command {
            let tenant = target.split('@').next().unwrap_or(target);
            let layout = crate::plan::TenantLayout::of(tenant);
            // Inside the container the command runs as the container's own user.
            let (user, container) = if h.in_container == Some(true) {
                (None, Some(layout.container(self.options.color)))
            } else {
                (self.checked_name(h.user.as_ref(), ctx, target)?, None)
            };
            HealthProbe::Command {
                command: self.render(command, ctx, target)?,
                user: user.unwrap_or_default(),
                record: Some(layout.health_command(self.options.color)),
                container,
            }
        } else {
            let field = h.tcp.as_ref().expect("validated: url, tcp or command");
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
        Ok(StepSpec::Health {
            probe,
            retries: h.retries.unwrap_or(10).max(1),
            interval: interval2,
        })
    }
}

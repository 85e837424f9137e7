//! `cron`: a job in /etc/cron.d.

use super::{Ctx, Renderer, root_file};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::CronSpec;
use crate::plan::steps::StepSpec;

impl Renderer<'_> {
    /// A cron job in /etc/cron.d (`cron = { name, schedule, command, user }`).
    pub(super) fn cron_step(
        &mut self,
        c: &CronSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
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
        Ok(StepSpec::File {
            dest: format!("/etc/cron.d/{name}"),
            content: content.into_bytes(),
            ownership: root_file("0644"),
            secret: false,
            on_change: None,
        })
    }
}

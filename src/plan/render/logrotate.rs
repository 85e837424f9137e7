//! `logrotate`: a rule in /etc/logrotate.d.

use super::{Ctx, Renderer, root_file};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::LogrotateSpec;
use crate::plan::steps::StepSpec;

impl Renderer<'_> {
    /// A logrotate rule (`logrotate = { name, paths, … }`).
    pub(super) fn logrotate_step(
        &mut self,
        l: &LogrotateSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let name = self.checked_file_name(&l.name, ctx, target, false)?;
        let mut paths = Vec::new();
        for p in &l.paths {
            let path = self.checked_path(p, ctx, target)?;
            // logrotate has its own quoting: keep paths to what needs none.
            if path.contains(|c: char| {
                c.is_whitespace() || c == '"' || c == '\'' || c == '\\' || c == '{' || c == '}'
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
        Ok(StepSpec::File {
            dest: format!("/etc/logrotate.d/{name}"),
            content: content.into_bytes(),
            ownership: root_file("0644"),
            secret: false,
            on_change: None,
        })
    }
}

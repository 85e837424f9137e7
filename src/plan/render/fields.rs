//! Rendered values checked before anything runs: user and group names, modes, remote paths
//! and file names.

use super::{Ctx, Renderer};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::{OwnershipSpec, Text};
use crate::plan::steps::Ownership;

impl Renderer<'_> {
    pub(super) fn ownership(
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
    pub(super) fn checked_name(
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
    pub(super) fn checked_path(
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
    pub(super) fn checked_file_name(
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
}

//! The simple steps: user, dir, upload, template, service and run.

use super::{Ctx, Renderer, describe, template_code};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::{
    DirSpec, ImageSpec, ImageVia, OwnershipSpec, RunSpec, ServiceSpec, ServiceState, TemplateSpec,
    UploadSpec, UserSpec,
};
use crate::plan::steps::{ImageSource, StepSpec};

impl Renderer<'_> {
    /// A system user (`user = { name, home }`).
    pub(super) fn user_step(
        &mut self,
        u: &UserSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let name = self
            .checked_name(Some(&u.name), ctx, target)?
            .unwrap_or_default();
        let home = match &u.home {
            Some(h) => self.checked_path(h, ctx, target)?,
            None => format!("/var/lib/{name}"),
        };
        Ok(StepSpec::User { name, home })
    }

    /// A directory (`dir = { path, owner, group, mode }`).
    pub(super) fn dir_step(
        &mut self,
        d: &DirSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        Ok(StepSpec::Dir {
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
        })
    }

    /// A local tree uploaded (`upload = { src, dest, owner, group }`).
    pub(super) fn upload_step(
        &mut self,
        u: &UploadSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let files = self.read_tree(&u.src, ctx, target)?;
        Ok(StepSpec::Upload {
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
        })
    }

    /// A file rendered from a local template (`template = { src, dest, … }`).
    pub(super) fn template_step(
        &mut self,
        t: &TemplateSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
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
        Ok(StepSpec::File {
            dest: self.checked_path(&t.dest, ctx, target)?,
            content: content.into_bytes(),
            ownership,
            secret: false,
            on_change: None,
        })
    }

    /// A service state (`service = { name, state, enabled }`).
    pub(super) fn service_step(
        &mut self,
        s: &ServiceSpec,
        state: &ServiceState,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let state2 = *state;
        Ok(StepSpec::Service {
            name: self.checked_file_name(&s.name, ctx, target, true)?,
            state: state2,
            enabled: s.enabled,
        })
    }

    /// A guarded script (`run = { script, creates, unless }`).
    pub(super) fn run_step(
        &mut self,
        r: &RunSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        Ok(StepSpec::Run {
            script: self.render(&r.script, ctx, target)?,
            creates: self.render_opt(r.creates.as_ref(), ctx, target)?,
            unless: self.render_opt(r.unless.as_ref(), ctx, target)?,
        })
    }

    /// An image shipped to the host (`image = { from | archive, name, via }`); an
    /// archive must be a readable file, relative to the playbook.
    pub(super) fn image_step(
        &mut self,
        i: &ImageSpec,
        via: ImageVia,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let source = match (&i.from, &i.archive) {
            (Some(from), _) => ImageSource::Local(self.render(from, ctx, target)?),
            (None, Some(archive)) => {
                let rendered = self.render(archive, ctx, target)?;
                let path = self.local_path(&rendered);
                if !path.is_file() {
                    return Err(self.diag(
                        archive.span(),
                        "playbook::missing-file",
                        format!("cannot ship image archive {}: no such file", path.display()),
                        "expected a `docker save` archive, relative to the playbook".into(),
                    ));
                }
                ImageSource::Archive(path)
            }
            // validated at load: one of the two is there
            (None, None) => ImageSource::Local(String::new()),
        };
        Ok(StepSpec::Image {
            source,
            name: self.render(&i.name, ctx, target)?,
            via,
        })
    }
}

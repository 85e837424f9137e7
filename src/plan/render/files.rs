//! The playbook's local files: templates and upload trees, each read once per plan.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Ctx, Renderer};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::Text;
use crate::plan::steps::UploadFile;

impl Renderer<'_> {
    pub(super) fn local_path(&self, rendered: &str) -> PathBuf {
        let p = Path::new(rendered);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.playbook.dir().join(p)
        }
    }

    pub(super) fn read_file(
        &mut self,
        field: &Text,
        ctx: &Ctx,
        target: &str,
    ) -> Result<Arc<str>, Diagnostic> {
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

    pub(super) fn read_tree(
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

//! `upload`: a tree of files sent as a ustar stream, skipped when the checksum manifest
//! already at the destination matches, landed atomically otherwise.

use std::fmt::Write as _;

use data_encoding::HEXLOWER;
use sha1::{Digest as _, Sha1};

use super::shell::{chmod_mode, prelude, q};
use super::{Ownership, StepScript, UploadFile};

mod ustar;

use ustar::tar;

/// The manifest's file name at the root of an uploaded tree.
pub(super) const MANIFEST: &str = ".drover-manifest";

/// Nothing to do when the manifest at `dest` matches; else the tree is unpacked next
/// to `dest` and swapped in (`mv --exchange`, or moved aside then replaced).
pub(super) fn upload(
    dest: &str,
    files: &[UploadFile],
    own: &Ownership,
    dry_run: bool,
) -> StepScript {
    let (parent, _) = dest.rsplit_once('/').unwrap_or(("", ""));
    let parent = if parent.is_empty() { "/" } else { parent };
    let manifest = manifest(files, own);
    let want = HEXLOWER.encode(&Sha1::digest(&manifest));
    let root_mode = own
        .mode
        .as_deref()
        .and_then(chmod_mode)
        .unwrap_or_else(|| "00755".into());
    let chown = tree_ownership(own);
    let mut s = prelude(dry_run);
    let _ = write!(
        s,
        "d={d}\n\
         dir={dir}\n\
         want={want}\n\
         have=''\n\
         if [ -d \"$d\" ] && [ ! -L \"$d\" ] && [ -f \"$d/{MANIFEST}\" ]; then have=$(sha1sum <\"$d/{MANIFEST}\") || have=''; fi\n\
         if [ \"${{have%% *}}\" = \"$want\" ]; then cat >/dev/null; exit 0; fi\n\
         changed\n\
         if [ \"$DRY\" = 1 ]; then cat >/dev/null; exit 0; fi\n\
         [ -d \"$dir\" ] || {{ cat >/dev/null; fail \"directory $dir does not exist\"; }}\n\
         if [ -L \"$d\" ] || {{ [ -e \"$d\" ] && [ ! -d \"$d\" ]; }}; then cat >/dev/null; fail \"$d exists and is not a directory\"; fi\n\
         tmp=\"$d.drover-tmp.$$\"; old=''\n\
         trap 'rm -rf -- \"$tmp\"; if [ -n \"$old\" ]; then rm -rf -- \"$old\"; fi' EXIT\n\
         trap 'exit 1' HUP INT TERM\n\
         rm -rf -- \"$tmp\"\n\
         mkdir -- \"$tmp\" || {{ cat >/dev/null; fail \"cannot create $tmp\"; }}\n\
         tar -x -p -m --no-same-owner -f - -C \"$tmp\" || {{ cat >/dev/null; fail \"cannot unpack the tree into $tmp\"; }}\n\
         cat >/dev/null\n\
         {chown}\
         chmod {root_mode} \"$tmp\" || fail \"cannot set the mode of the tree\"\n\
         if [ ! -d \"$d\" ]; then\n\
         mv -T -- \"$tmp\" \"$d\" || fail \"cannot rename $tmp to $d\"\n\
         elif mv --exchange -T -- \"$tmp\" \"$d\" 2>/dev/null; then :\n\
         else\n\
         old=\"$d.drover-old.$$\"; rm -rf -- \"$old\"\n\
         mv -T -- \"$d\" \"$old\" || {{ old=''; fail \"cannot move $d aside\"; }}\n\
         mv -T -- \"$tmp\" \"$d\" || {{ mv -T -- \"$old\" \"$d\"; old=''; fail \"cannot rename $tmp to $d\"; }}\n\
         fi\n",
        d = q(dest),
        dir = q(parent),
    );
    StepScript {
        script: s,
        stdin: Some(tar(files, &manifest)),
    }
}

/// `chown -R` / `chgrp -R` of the unpacked tree, for the owner and group asked for.
fn tree_ownership(own: &Ownership) -> String {
    let mut chown = String::new();
    if let Some(o) = &own.owner {
        let _ = writeln!(
            chown,
            "chown -R -- {} \"$tmp\" || fail \"cannot set the owner of the tree\"",
            q(o)
        );
    }
    if let Some(g) = &own.group {
        let _ = writeln!(
            chown,
            "chgrp -R -- {} \"$tmp\" || fail \"cannot set the group of the tree\"",
            q(g)
        );
    }
    chown
}

/// Content-derived description of the tree: sha1 of each file, its mode, length and
/// path, plus the wanted root attributes. Sorted; lines cannot be forged by a path
/// (backslashes and newlines escaped).
fn manifest(files: &[UploadFile], own: &Ownership) -> Vec<u8> {
    let mut sorted: Vec<&UploadFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let field = |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_owned(), escape_line);
    let mut m = format!(
        "drover-manifest 1\nroot owner={} group={} mode={}\n",
        field(&own.owner),
        field(&own.group),
        field(&own.mode),
    );
    for f in sorted {
        let _ = writeln!(
            m,
            "{} {} {} {}",
            HEXLOWER.encode(&Sha1::digest(&f.bytes)),
            if f.executable { "755" } else { "644" },
            f.bytes.len(),
            escape_line(&f.path),
        );
    }
    m.into_bytes()
}

fn escape_line(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::path::Path;

    use super::ustar::BLOCK;
    use super::*;
    use crate::plan::steps::testkit::{hostile, pwned_path, run};
    use crate::plan::steps::{StepSpec, script};

    fn file(path: &str, bytes: &[u8], executable: bool) -> UploadFile {
        UploadFile {
            path: path.into(),
            bytes: bytes.to_vec(),
            executable,
        }
    }

    fn step(dest: &Path, files: Vec<UploadFile>, own: Ownership) -> StepSpec {
        StepSpec::Upload {
            dest: dest.to_str().unwrap().into(),
            files: files.into(),
            ownership: own,
        }
    }

    fn nobody(mode: Option<&str>) -> Ownership {
        Ownership {
            owner: Some("nobody".into()),
            group: Some("nogroup".into()),
            mode: mode.map(Into::into),
        }
    }

    fn release() -> Vec<UploadFile> {
        vec![
            file("bin/agent", b"#!/bin/sh\necho hi\n", true),
            file("app/main.py", b"print('hi')\n", false),
            file("app/lib/util.py", b"", false),
            file("README", b"readme", false),
        ]
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".drover-tmp") || n.contains(".drover-old"))
            .collect()
    }

    /// Every regular file under `root` (but the manifest) with its bytes and mode.
    fn tree(root: &Path) -> Vec<(String, Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().unwrap() != MANIFEST {
                    let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
                    let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
                    out.push((rel, fs::read(&p).unwrap(), mode));
                }
            }
        }
        out.sort();
        out
    }

    fn expected(files: &[UploadFile]) -> Vec<(String, Vec<u8>, u32)> {
        let mut v: Vec<_> = files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    f.bytes.clone(),
                    if f.executable { 0o755 } else { 0o644 },
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn upload_lands_the_tree_with_its_modes_and_owner() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("v1");
        let out = run(&script(
            &step(&dest, release(), nobody(Some("0750"))),
            false,
            false,
        ))
        .ok();
        assert!(out.changed());
        assert_eq!(tree(&dest), expected(&release()));
        let root = fs::metadata(&dest).unwrap();
        assert_eq!(
            (root.uid(), root.gid(), root.permissions().mode() & 0o7777),
            (65534, 65534, 0o750)
        );
        let lib = fs::metadata(dest.join("app/lib")).unwrap();
        assert_eq!(
            (lib.uid(), lib.permissions().mode() & 0o7777),
            (65534, 0o755)
        );
        assert_eq!(fs::metadata(dest.join("bin/agent")).unwrap().gid(), 65534);
        assert!(leftovers(t.path()).is_empty());
    }

    #[test]
    fn upload_of_the_same_tree_is_skipped() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("v1");
        let spec = step(&dest, release(), Ownership::default());
        run(&script(&spec, false, false)).ok();
        let ino = fs::metadata(&dest).unwrap().ino();
        let mtime = fs::metadata(dest.join("README")).unwrap().mtime_nsec();
        let mut reordered = release();
        reordered.reverse();
        let out = run(&script(
            &step(&dest, reordered, Ownership::default()),
            false,
            false,
        ))
        .ok();
        assert!(!out.changed(), "{out:?}");
        assert_eq!(fs::metadata(&dest).unwrap().ino(), ino);
        assert_eq!(
            fs::metadata(dest.join("README")).unwrap().mtime_nsec(),
            mtime
        );
        // Another owner or one changed byte is a different tree.
        assert!(
            run(&script(&step(&dest, release(), nobody(None)), true, false))
                .ok()
                .changed()
        );
        let mut edited = release();
        edited[3].bytes = b"readmE".to_vec();
        assert!(
            run(&script(
                &step(&dest, edited, Ownership::default()),
                true,
                false
            ))
            .ok()
            .changed()
        );
    }

    #[test]
    fn upload_replaces_a_different_tree_whole_and_leaves_no_temp() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("current");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("stale"), "old").unwrap();
        let out = run(&script(
            &step(&dest, release(), Ownership::default()),
            false,
            false,
        ))
        .ok();
        assert!(out.changed());
        assert_eq!(tree(&dest), expected(&release()), "the old file is gone");
        let v2 = vec![file("only", b"2", false)];
        run(&script(
            &step(&dest, v2.clone(), Ownership::default()),
            false,
            false,
        ))
        .ok();
        assert_eq!(tree(&dest), expected(&v2));
        assert!(leftovers(t.path()).is_empty(), "{:?}", leftovers(t.path()));
        assert!(
            !run(&script(
                &step(&dest, v2, Ownership::default()),
                false,
                false
            ))
            .ok()
            .changed()
        );
    }

    #[test]
    fn upload_dry_run_reports_the_change_and_alters_nothing() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("v1");
        assert!(
            run(&script(
                &step(&dest, release(), Ownership::default()),
                true,
                false
            ))
            .ok()
            .changed()
        );
        assert!(!dest.exists());
        run(&script(
            &step(&dest, release(), Ownership::default()),
            false,
            false,
        ))
        .ok();
        let v2 = vec![file("x", b"y", false)];
        assert!(
            run(&script(&step(&dest, v2, Ownership::default()), true, false))
                .ok()
                .changed()
        );
        assert_eq!(tree(&dest), expected(&release()));
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn upload_into_a_missing_directory_fails_clearly() {
        let t = tempfile::tempdir().unwrap();
        let out = run(&script(
            &step(&t.path().join("a/b"), release(), Ownership::default()),
            false,
            false,
        ));
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("does not exist"), "{out:?}");
    }

    #[test]
    fn upload_with_hostile_names_and_long_paths_stays_inert() {
        let t = tempfile::tempdir().unwrap();
        let pwned = pwned_path("upload");
        let dest = t.path().join(hostile(&pwned).replace('/', "_"));
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(120));
        let files = vec![
            file(
                &hostile(&pwned).replace('/', "_"),
                hostile(&pwned).as_bytes(),
                false,
            ),
            file(&format!("sub dir/{}", hostile(&pwned)), b"nested", true),
            file(&long, b"long", false),
            file(
                &format!("{}/{}", "p".repeat(60), "n".repeat(60)),
                b"prefix",
                false,
            ),
            file(&format!("{}/x", "é".repeat(80)), b"utf8", false),
        ];
        let spec = step(&dest, files.clone(), Ownership::default());
        assert!(run(&script(&spec, false, false)).ok().changed());
        assert_eq!(tree(&dest), expected(&files));
        assert!(!run(&script(&spec, false, false)).ok().changed());
        let bad_owner = Ownership {
            owner: Some(hostile(&pwned)),
            ..Ownership::default()
        };
        let bad = step(&dest, vec![file("z", b"", false)], bad_owner);
        assert_eq!(run(&script(&bad, false, false)).code, 1);
        assert_eq!(
            tree(&dest),
            expected(&files),
            "a failed upload leaves the old tree"
        );
        assert!(leftovers(t.path()).is_empty());
        assert!(!pwned.exists(), "injection executed");
    }

    #[test]
    fn tar_stream_is_deterministic_and_block_aligned() {
        let a = script(
            &step(Path::new("/x"), release(), Ownership::default()),
            false,
            false,
        );
        let mut r = release();
        r.rotate_left(2);
        let b = script(
            &step(Path::new("/x"), r, Ownership::default()),
            false,
            false,
        );
        assert_eq!(a, b);
        let tar = a.stdin.unwrap();
        assert_eq!(tar.len() % BLOCK, 0);
        assert!(tar.ends_with(&[0u8; 1024]));
    }
}

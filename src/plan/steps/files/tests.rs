//! `dir` and `file` steps run locally with `sh`, the way a host runs them.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use crate::plan::steps::testkit::{hostile, pwned_path, run};
use crate::plan::steps::{CURRENT_MARKER, Ownership, StepSpec, script};

fn own(owner: Option<&str>, group: Option<&str>, mode: Option<&str>) -> Ownership {
    Ownership {
        owner: owner.map(Into::into),
        group: group.map(Into::into),
        mode: mode.map(Into::into),
    }
}

fn dir_step(p: &Path, o: Ownership) -> StepSpec {
    StepSpec::Dir {
        path: p.to_str().unwrap().into(),
        ownership: o,
    }
}

fn file_step(p: &Path, content: &[u8], o: Ownership, on_change: Option<&str>) -> StepSpec {
    StepSpec::File {
        dest: p.to_str().unwrap().into(),
        content: content.to_vec(),
        ownership: o,
        secret: false,
        on_change: on_change.map(Into::into),
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn mtime_ns(p: &Path) -> (i64, i64) {
    let m = fs::metadata(p).unwrap();
    (m.mtime(), m.mtime_nsec())
}

fn temp_leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("drover-tmp") || n.contains("drover-old"))
        .collect()
}

#[test]
fn dir_is_created_with_its_attributes_then_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("a/b");
    let spec = dir_step(&p, own(Some("nobody"), Some("nogroup"), Some("0750")));
    let first = run(&script(&spec, false, false)).ok();
    assert!(first.changed());
    let m = fs::metadata(&p).unwrap();
    assert!(m.is_dir());
    assert_eq!((m.uid(), m.gid(), mode(&p)), (65534, 65534, 0o750));
    let before = mtime_ns(&p);
    let second = run(&script(&spec, false, false)).ok();
    assert!(!second.changed(), "{second:?}");
    assert_eq!(mtime_ns(&p), before);
}

#[test]
fn dir_fixes_only_the_attributes_that_differ() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("d");
    fs::create_dir(&p).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o2777)).unwrap();
    let spec = dir_step(&p, own(None, Some("nogroup"), Some("755")));
    let dry = run(&script(&spec, true, false)).ok();
    assert!(dry.changed());
    assert_eq!(mode(&p), 0o2777, "dry-run must not chmod");
    assert_eq!(fs::metadata(&p).unwrap().gid(), 0);
    assert!(run(&script(&spec, false, false)).ok().changed());
    let m = fs::metadata(&p).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), mode(&p)),
        (0, 65534, 0o755),
        "setgid cleared, owner untouched"
    );
    assert!(!run(&script(&spec, false, false)).ok().changed());
}

#[test]
fn dir_dry_run_reports_the_change_and_creates_nothing() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("x/y");
    let out = run(&script(
        &dir_step(&p, own(Some("nobody"), None, Some("0700"))),
        true,
        false,
    ))
    .ok();
    assert!(out.changed());
    assert!(!t.path().join("x").exists());
}

#[test]
fn dir_over_a_file_fails_clearly() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("f");
    fs::write(&p, "x").unwrap();
    let out = run(&script(&dir_step(&p, Ownership::default()), false, false));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("exists and is not a directory"),
        "{out:?}"
    );
}

#[test]
fn dir_with_a_hostile_name_and_owner_stays_inert() {
    let t = tempfile::tempdir().unwrap();
    let pwned = pwned_path("dir");
    let p = t.path().join(hostile(&pwned));
    let out = run(&script(&dir_step(&p, Ownership::default()), false, false)).ok();
    assert!(out.changed());
    assert!(p.is_dir(), "the literal name was created");
    let bad_owner = own(Some(&hostile(&pwned)), Some(&hostile(&pwned)), None);
    let out = run(&script(&dir_step(&p, bad_owner), false, false));
    assert_eq!(out.code, 1, "an unknown owner fails: {out:?}");
    assert!(!pwned.exists(), "injection executed");
}

#[test]
fn file_is_written_once_then_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("app.conf");
    let spec = file_step(
        &p,
        b"a=1\n",
        own(Some("nobody"), Some("nogroup"), Some("0640")),
        None,
    );
    let out = run(&script(&spec, false, false)).ok();
    assert!(out.changed());
    assert_eq!(fs::read(&p).unwrap(), b"a=1\n");
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.uid(), m.gid(), mode(&p)), (65534, 65534, 0o640));
    let (before, ino) = (mtime_ns(&p), m.ino());
    let out = run(&script(&spec, false, false)).ok();
    assert!(!out.changed(), "{out:?}");
    assert_eq!(
        (mtime_ns(&p), fs::metadata(&p).unwrap().ino()),
        (before, ino)
    );
    assert!(temp_leftovers(t.path()).is_empty());
}

#[test]
fn file_new_content_is_renamed_into_place_keeping_unspecified_attributes() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("f");
    fs::write(&p, "old").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o604)).unwrap();
    std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
    let ino = fs::metadata(&p).unwrap().ino();
    let out = run(&script(
        &file_step(&p, b"", Ownership::default(), None),
        false,
        false,
    ))
    .ok();
    assert!(out.changed());
    let m = fs::metadata(&p).unwrap();
    assert_eq!((m.len(), m.uid(), mode(&p)), (0, 65534, 0o604));
    assert_ne!(m.ino(), ino, "replaced by rename, not rewritten in place");
    assert!(temp_leftovers(t.path()).is_empty());
    let fresh = t.path().join("new");
    run(&script(
        &file_step(&fresh, b"x", Ownership::default(), None),
        false,
        false,
    ))
    .ok();
    assert_eq!(
        (mode(&fresh), fs::metadata(&fresh).unwrap().uid()),
        (0o644, 0)
    );
}

#[test]
fn file_dry_run_reports_a_change_and_alters_nothing() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("f");
    fs::write(&p, "old\n").unwrap();
    let before = mtime_ns(&p);
    let mark = t.path().join("ran");
    let on_change = format!("touch {}", mark.display());
    let spec = file_step(
        &p,
        b"new\n",
        own(None, None, Some("0600")),
        Some(&on_change),
    );
    let out = run(&script(&spec, true, false)).ok();
    assert!(out.changed());
    assert_eq!(fs::read(&p).unwrap(), b"old\n");
    assert_eq!(mtime_ns(&p), before);
    assert!(!mark.exists());
    assert_eq!(
        fs::read_dir(t.path()).unwrap().count(),
        1,
        "no temp file, even briefly kept"
    );
    // Same content, different mode: still a change in dry-run; same everything: none.
    let same = file_step(&p, b"old\n", own(None, None, Some("0600")), None);
    assert!(run(&script(&same, true, false)).ok().changed());
    let same = file_step(&p, b"old\n", Ownership::default(), None);
    assert!(!run(&script(&same, true, false)).ok().changed());
    let missing = file_step(&t.path().join("nodir/f"), b"x", Ownership::default(), None);
    assert!(run(&script(&missing, true, false)).ok().changed());
}

#[test]
fn file_on_change_runs_only_when_the_content_changes() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("unit");
    let log = t.path().join("log");
    let on_change = format!("echo reloaded >> {}", log.display());
    let step = |content: &[u8], mode: &str| {
        file_step(&p, content, own(None, None, Some(mode)), Some(&on_change))
    };
    run(&script(&step(b"v1", "0644"), false, false)).ok();
    run(&script(&step(b"v1", "0644"), false, false)).ok();
    assert!(
        run(&script(&step(b"v1", "0600"), false, false))
            .ok()
            .changed()
    );
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "reloaded\n",
        "mode-only change: no on_change"
    );
    let out = run(&script(&step(b"v2", "0600"), false, false)).ok();
    assert!(
        !out.stdout.contains("reloaded"),
        "on_change output goes to stderr"
    );
    assert_eq!(fs::read_to_string(&log).unwrap(), "reloaded\nreloaded\n");
    assert!(temp_leftovers(t.path()).is_empty());
}

#[test]
fn file_on_change_failure_puts_the_previous_file_back() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("nginx.conf");
    fs::write(&p, "good").unwrap();
    let out = run(&script(
        &file_step(
            &p,
            b"bad",
            Ownership::default(),
            Some("echo nope >&2; exit 3"),
        ),
        false,
        false,
    ));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("on_change command failed with status 3"),
        "{out:?}"
    );
    assert!(out.stderr.contains("nope"));
    assert_eq!(fs::read(&p).unwrap(), b"good");
    assert!(temp_leftovers(t.path()).is_empty());
    let fresh = t.path().join("fresh");
    run(&script(
        &file_step(&fresh, b"x", Ownership::default(), Some("false")),
        false,
        false,
    ));
    assert!(!fresh.exists(), "a new file is removed again");
}

#[test]
fn file_diff_prints_the_current_content_last() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("f");
    let spec = file_step(&p, b"new\n", Ownership::default(), Some("echo hook"));
    let out = run(&script(&spec, true, true)).ok();
    assert!(
        out.stdout.ends_with(&format!("{CURRENT_MARKER}\n")),
        "{out:?}"
    );
    fs::write(&p, "old\nlines").unwrap();
    let out = run(&script(&spec, true, true)).ok();
    assert_eq!(
        out.stdout,
        format!("__drover_changed__\n{CURRENT_MARKER}\nold\nlines")
    );
    let out = run(&script(&spec, false, true)).ok();
    assert_eq!(
        out.stdout,
        format!("__drover_changed__\n{CURRENT_MARKER}\nold\nlines")
    );
    let out = run(&script(&spec, false, true)).ok();
    assert_eq!(out.stdout, format!("{CURRENT_MARKER}\nnew\n"));
}

#[test]
fn secret_file_is_private_and_never_printed() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("env");
    fs::write(&p, "TOKEN=old-secret\n").unwrap();
    let spec = StepSpec::File {
        dest: p.to_str().unwrap().into(),
        content: b"TOKEN=hunter2\n".to_vec(),
        ownership: Ownership::default(),
        secret: true,
        on_change: None,
    };
    let built = script(&spec, false, true);
    assert!(
        !built.script.contains("hunter2"),
        "secrets travel on stdin only"
    );
    fs::remove_file(&p).unwrap();
    for dry in [true, false, false] {
        let out = run(&script(&spec, dry, true)).ok();
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.contains("hunter2") && !all.contains(CURRENT_MARKER),
            "{out:?}"
        );
    }
    assert_eq!(mode(&p), 0o600);
    assert_eq!(fs::read(&p).unwrap(), b"TOKEN=hunter2\n");
}

#[test]
fn file_with_hostile_name_content_and_hook_stays_inert() {
    let t = tempfile::tempdir().unwrap();
    let pwned = pwned_path("file");
    let p = t.path().join(hostile(&pwned)).join(hostile(&pwned));
    let sub = p.parent().unwrap().to_path_buf();
    fs::create_dir_all(&sub).unwrap();
    let content = hostile(&pwned).into_bytes();
    let spec = file_step(
        &p,
        &content,
        Ownership::default(),
        Some("printf '%s' \"$0\" >&2"),
    );
    let out = run(&script(&spec, false, true)).ok();
    assert!(out.changed());
    assert_eq!(fs::read(&p).unwrap(), content);
    assert!(!run(&script(&spec, false, false)).ok().changed());
    let bad = file_step(&p, b"x", own(Some(&hostile(&pwned)), None, None), None);
    assert_eq!(run(&script(&bad, false, false)).code, 1);
    assert_eq!(fs::read(&p).unwrap(), content, "failed before the rename");
    assert!(temp_leftovers(&sub).is_empty());
    assert!(!pwned.exists(), "injection executed");
}

#[test]
fn file_in_a_missing_directory_fails_clearly() {
    let t = tempfile::tempdir().unwrap();
    let out = run(&script(
        &file_step(&t.path().join("no/f"), b"x", Ownership::default(), None),
        false,
        false,
    ));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("does not exist"), "{out:?}");
}

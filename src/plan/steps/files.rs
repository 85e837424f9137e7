//! `dir` and `file`: a directory or a single file with owner, group and mode.

use std::fmt::Write as _;

use super::shell::{chmod_mode, fix_ownership, prelude, q};
use super::{CURRENT_MARKER, Ownership, StepScript};

/// `mkdir -p`, then owner/group/mode each only when different.
pub(super) fn dir(path: &str, own: &Ownership, dry_run: bool) -> StepScript {
    let mut s = prelude(dry_run);
    let _ = write!(
        s,
        "p={p}\n\
         if [ -d \"$p\" ]; then :\n\
         elif [ -e \"$p\" ] || [ -L \"$p\" ]; then fail \"$p exists and is not a directory\"\n\
         else changed; if [ \"$DRY\" = 0 ]; then mkdir -p -- \"$p\" || fail \"cannot create directory $p\"; fi\n\
         fi\n\
         if [ -d \"$p\" ]; then\n{own}fi\n",
        p = q(path),
        own = fix_ownership("p", own),
    );
    StepScript {
        script: s,
        stdin: None,
    }
}

/// Everything a `file` step needs.
pub(super) struct FileArgs<'a> {
    pub(super) dest: &'a str,
    pub(super) content: &'a [u8],
    pub(super) ownership: &'a Ownership,
    pub(super) secret: bool,
    pub(super) on_change: Option<&'a str>,
}

/// Exact content from stdin, written aside and renamed; `on_change` after a content
/// change, undone when it fails.
pub(super) fn file(a: &FileArgs<'_>, dry_run: bool, diff: bool) -> StepScript {
    let mut s = prelude(dry_run);
    s.push_str(&what_is_there(a.dest));
    // Printed last on stdout, for --diff: the content before this run changed it.
    let current = if diff && !a.secret {
        format!("echo {CURRENT_MARKER}; if [ \"$cur\" = file ]; then cat -- \"$d\"; fi\n")
    } else {
        String::new()
    };
    if dry_run {
        s.push_str(&compare_only(a.ownership, &current));
    } else {
        s.push_str(&write_aside_and_rename(a, &current));
    }
    StepScript {
        script: s,
        stdin: Some(a.content.to_vec()),
    }
}

/// Sets `d` to the destination and `cur` to what is there (`link`, `file` or `none`);
/// anything else fails the step.
fn what_is_there(dest: &str) -> String {
    format!(
        "d={d}\n\
         if [ -L \"$d\" ]; then cur='link'\n\
         elif [ -f \"$d\" ]; then cur='file'\n\
         elif [ -e \"$d\" ]; then cat >/dev/null; fail \"$d exists and is not a regular file\"\n\
         else cur='none'; fi\n",
        d = q(dest),
    )
}

/// Dry run: compares stdin with the file and reports a change, writing nothing.
fn compare_only(own: &Ownership, current: &str) -> String {
    format!(
        "if [ \"$cur\" = file ] && cmp -s -- - \"$d\"; then same=1; else same=0; fi\n\
         cat >/dev/null\n\
         if [ \"$same\" = 1 ]; then\n{own}else changed; fi\n{current}",
        own = fix_ownership("d", own),
    )
}

/// Writes stdin to a temporary file next to the destination; when it differs, gives
/// it its attributes and renames it over the destination, then runs `on_change`.
fn write_aside_and_rename(a: &FileArgs<'_>, current: &str) -> String {
    let (parent, _) = a.dest.rsplit_once('/').unwrap_or(("", ""));
    let parent = if parent.is_empty() { "/" } else { parent };
    let keep_old = if a.on_change.is_some() { KEEP_OLD } else { "" };
    format!(
        "dir={dir}\n\
         [ -d \"$dir\" ] || {{ cat >/dev/null; fail \"directory $dir does not exist\"; }}\n\
         tmp=''; old=''\n\
         trap 'if [ -n \"$tmp\" ]; then rm -f -- \"$tmp\"; fi; if [ -n \"$old\" ]; then rm -f -- \"$old\"; fi' EXIT\n\
         trap 'exit 1' HUP INT TERM\n\
         tmp=$(mktemp -- \"$dir/.drover-tmp.XXXXXXXX\") || {{ cat >/dev/null; fail \"cannot create a temporary file in $dir\"; }}\n\
         cat >\"$tmp\" || fail \"cannot write $tmp\"\n\
         if [ \"$cur\" = file ] && cmp -s -- \"$tmp\" \"$d\"; then\n\
         rm -f -- \"$tmp\"; tmp=''\n\
         {fix}\
         {current}\
         else\n\
         changed\n\
         {current}\
         {attrs}\
         {keep_old}\
         mv -f -T -- \"$tmp\" \"$d\" || fail \"cannot rename $tmp to $d\"\n\
         tmp=''\n\
         {on_change}\
         fi\n",
        dir = q(parent),
        fix = fix_ownership("d", a.ownership),
        attrs = new_file_attributes(a),
        on_change = a.on_change.map(on_change_or_put_back).unwrap_or_default(),
    )
}

/// Attributes of the new file: those asked for, else the replaced file's, else defaults.
fn new_file_attributes(a: &FileArgs<'_>) -> String {
    let own = a.ownership;
    let mut attrs = String::from(
        "if [ \"$cur\" = file ]; then\n\
         chown --reference=\"$d\" -- \"$tmp\" || fail \"cannot copy the owner of $d\"\n\
         chmod --reference=\"$d\" -- \"$tmp\" || fail \"cannot copy the mode of $d\"\n\
         fi\n",
    );
    if own.mode.is_none() {
        let default = if a.secret { "00600" } else { "00644" };
        let _ = writeln!(
            attrs,
            "if [ \"$cur\" != file ]; then chmod {default} \"$tmp\" || fail \"cannot chmod $tmp\"; fi"
        );
    }
    if let Some(o) = &own.owner {
        let _ = writeln!(
            attrs,
            "chown -- {} \"$tmp\" || fail \"cannot set the owner of $d\"",
            q(o)
        );
    }
    if let Some(g) = &own.group {
        let _ = writeln!(
            attrs,
            "chgrp -- {} \"$tmp\" || fail \"cannot set the group of $d\"",
            q(g)
        );
    }
    if let Some(m) = own.mode.as_deref().and_then(chmod_mode) {
        let _ = writeln!(
            attrs,
            "chmod {m} \"$tmp\" || fail \"cannot set the mode of $d\""
        );
    }
    attrs
}

/// Keeps the replaced file as `old` (a hard link, else a copy), so that a failed
/// `on_change` can put it back.
const KEEP_OLD: &str = "if [ \"$cur\" = file ]; then old=\"$dir/.drover-old.$$\"; { ln -f -- \"$d\" \"$old\" 2>/dev/null || cp -p -- \"$d\" \"$old\"; } || fail \"cannot keep the previous $d\"; fi\n";

/// Runs the hook; when it fails, the previous file (or none) is put back.
fn on_change_or_put_back(cmd: &str) -> String {
    format!(
        "sh -c {cmd} </dev/null >&2; rc=$?\n\
         if [ \"$rc\" != 0 ]; then\n\
         if [ -n \"$old\" ]; then mv -f -T -- \"$old\" \"$d\" && old=''; else rm -f -- \"$d\"; fi\n\
         fail \"on_change command failed with status $rc; $d was put back as it was\"\n\
         fi\n",
        cmd = q(cmd),
    )
}

#[cfg(test)]
mod tests;

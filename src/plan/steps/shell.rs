//! Shell text shared by every step: quoting, the prelude, ownership checks.

use std::fmt::Write as _;

use super::{CHANGED_MARKER, Ownership, StepError};

/// Quotes a value for POSIX sh so it reaches the host as one inert word.
pub(super) fn q(s: &str) -> String {
    shell_escape::unix::escape(s.into()).into_owned()
}

/// The first lines of every script: the dry-run flag, the `changed` and `fail` helpers,
/// a predictable umask.
pub(super) fn prelude(dry_run: bool) -> String {
    format!(
        "DRY={dry}\n\
         CH=0\n\
         changed() {{ if [ \"$CH\" = 0 ]; then CH=1; echo {CHANGED_MARKER}; fi; }}\n\
         fail() {{ printf 'drover: %s\\n' \"$1\" >&2; exit 1; }}\n\
         umask 022\n",
        dry = u8::from(dry_run),
    )
}

/// A script that fails at once because the spec is invalid.
pub(super) fn invalid(dry_run: bool, err: &StepError) -> String {
    let mut s = prelude(dry_run);
    let _ = writeln!(s, "fail {}", q(&format!("invalid step: {err}")));
    s
}

/// The mode as chmod should get it: five octal digits, so GNU chmod also clears a
/// directory's setgid bit when the mode does not ask for it.
pub(super) fn chmod_mode(mode: &str) -> Option<String> {
    parse_mode(mode).map(|m| format!("0{m:04o}"))
}

/// The mode as `stat -c %a` prints it.
pub(super) fn stat_mode(mode: &str) -> Option<String> {
    parse_mode(mode).map(|m| format!("{m:o}"))
}

/// Octal `755`, `0640`, `2775`: three or four digits.
pub(super) fn parse_mode(mode: &str) -> Option<u32> {
    if !(3..=4).contains(&mode.len()) || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(mode, 8).ok()
}

/// Shell that compares the owner, group and mode of the path in `$var` (following a
/// symlink) with the wanted ones and fixes each that differs, reporting a change; in
/// dry-run it only reports. Parts left `None` are not touched. Never empty (`:`), so
/// it can fill an `if` body.
pub(super) fn fix_ownership(var: &str, own: &Ownership) -> String {
    let mut s = String::new();
    let path = format!("\"${var}\"");
    let mut part = |fmt: &str, want: &str, cmd: &str, arg: &str| {
        let _ = write!(
            s,
            "c=$(stat -L -c {fmt} -- {path}) || fail \"cannot stat ${var}\"\n\
             if [ \"$c\" != {want} ]; then changed; if [ \"$DRY\" = 0 ]; then \
             {cmd} -- {arg} {path} || fail \"cannot set attributes of ${var}\"; fi; fi\n",
        );
    };
    if let Some(owner) = &own.owner {
        let fmt = if is_numeric(owner) { "%u" } else { "%U" };
        part(fmt, &q(owner), "chown", &q(owner));
    }
    if let Some(group) = &own.group {
        let fmt = if is_numeric(group) { "%g" } else { "%G" };
        part(fmt, &q(group), "chgrp", &q(group));
    }
    if let (Some(stat), Some(chmod)) = (
        own.mode.as_deref().and_then(stat_mode),
        own.mode.as_deref().and_then(chmod_mode),
    ) {
        part("%a", &q(&stat), "chmod", &chmod);
    }
    if s.is_empty() {
        s.push_str(":\n");
    }
    s
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

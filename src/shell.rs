//! Shell words: the one quoting function. Every value drover puts into a remote
//! shell script goes through [`quote`], so it arrives as one inert word.

use std::borrow::Cow;

/// `value` as one POSIX shell word (single-quoted when it needs to be).
#[must_use]
pub fn quote(value: &str) -> Cow<'_, str> {
    shell_escape::unix::escape(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_one_inert_word() {
        assert_eq!(quote("plain-word_1.0"), "plain-word_1.0");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's $(rm -rf /)"), "'it'\\''s $(rm -rf /)'");
        assert_eq!(quote(""), "''");
    }
}

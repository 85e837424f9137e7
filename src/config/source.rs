//! A file read once, with byte-offset → line/column conversion for diagnostics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One configuration file's path and full text, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (kept relative so messages stay short).
    pub path: PathBuf,
    /// The whole text of the file.
    pub text: Arc<str>,
}

impl SourceFile {
    /// Wraps text that did not come from disk (tests, generated inventories).
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    /// Reads a file from disk.
    ///
    /// # Errors
    /// The I/O error of reading `path`.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::new(path, text))
    }

    /// 1-based line and column (in characters) of a byte offset, clamped to the text.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        // Line breaks as editors (and miette) see them: `\n`, `\r\n`, or a lone `\r`.
        let line = before.matches('\n').count() + before.matches('\r').count()
            - before.matches("\r\n").count()
            + 1;
        let line_start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
        // A byte-order mark opening the file is invisible in editors: it takes no column.
        let mut line_text = &before[line_start..];
        if line_start == 0 {
            line_text = line_text.strip_prefix('\u{feff}').unwrap_or(line_text);
        }
        let column = line_text.chars().count() + 1;
        (line, column)
    }

    /// The directory relative paths inside this file are resolved against.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_lines_and_columns() {
        let file = SourceFile::new("a.toml", "ab\ncd\n\u{e9}x");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(1), (1, 2));
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.line_col(6), (3, 1));
        // inside the two-byte é: clamps back to its start
        assert_eq!(file.line_col(7), (3, 1));
        assert_eq!(file.line_col(8), (3, 2));
        assert_eq!(file.line_col(999), (3, 3));
    }

    #[test]
    fn crlf_counts_as_one_line_break_and_a_lone_cr_as_one() {
        let file = SourceFile::new("a.toml", "a\r\nb\rc");
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.line_col(5), (3, 1));
        assert_eq!(file.line_col(6), (3, 2));
    }

    #[test]
    fn a_byte_order_mark_takes_no_column() {
        let file = SourceFile::new("a.toml", "\u{feff}[x]");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(3), (1, 1));
        assert_eq!(file.line_col(4), (1, 2));
        // Anywhere else it is an ordinary (zero-width) character.
        let file = SourceFile::new("a.toml", "\n\u{feff}x");
        assert_eq!(file.line_col(4), (2, 2));
    }
}

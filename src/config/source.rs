//! A file read once, with byte-offset → line/column conversion for diagnostics.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Why a file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read at all.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not UTF-8. `file` holds its text with each invalid sequence replaced by
    /// U+FFFD, so that a diagnostic can quote it; `at` is the span of the first replacement,
    /// at the byte offset of the first invalid byte (the text before it is unchanged).
    #[error("it is not UTF-8 text (byte 0x{byte:02x})")]
    NotUtf8 {
        /// The text, invalid sequences replaced.
        file: SourceFile,
        /// The first replacement character in `file`.
        at: Range<usize>,
        /// The first invalid byte.
        byte: u8,
    },
}

/// One configuration file's path and full text, shared by every diagnostic that points into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (kept relative so messages stay short).
    pub path: PathBuf,
    /// The whole text of the file.
    pub text: Arc<str>,
    /// Where lines start and how many characters come before each block of bytes, built
    /// the first time a position is asked for: a file with 100,000 problems, all on one long
    /// line maybe, is not scanned from its start (or the line's) for each.
    index: Arc<OnceLock<Index>>,
}

/// Bytes per block of [`Index::chars_before_block`].
const BLOCK: usize = 1024;

/// Positions in a text, for line and column lookups in O(log lines + [`BLOCK`]).
#[derive(Debug)]
struct Index {
    /// Byte offset of the start of each line (see [`line_starts`]).
    line_starts: Vec<usize>,
    /// Characters in the text before byte `k * BLOCK`, for each `k`.
    chars_before_block: Vec<usize>,
}

impl Index {
    fn new(text: &str) -> Self {
        let mut chars_before_block = Vec::with_capacity(text.len() / BLOCK + 1);
        let mut chars = 0;
        for block in text.as_bytes().chunks(BLOCK) {
            chars_before_block.push(chars);
            chars += block.iter().filter(|&&b| !is_continuation(b)).count();
        }
        Self {
            line_starts: line_starts(text),
            chars_before_block,
        }
    }

    /// Characters in `text[..offset]` (`offset` on a char boundary).
    fn chars_before(&self, text: &str, offset: usize) -> usize {
        let block = offset / BLOCK;
        let Some(&before) = self.chars_before_block.get(block) else {
            return text.chars().count();
        };
        let rest = &text.as_bytes()[block * BLOCK..offset];
        before + rest.iter().filter(|&&b| !is_continuation(b)).count()
    }
}

/// A byte that continues a UTF-8 character rather than starting one.
fn is_continuation(byte: u8) -> bool {
    byte & 0xc0 == 0x80
}

impl SourceFile {
    /// Wraps text that did not come from disk (tests, generated inventories).
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            index: Arc::default(),
        }
    }

    /// Reads a file from disk.
    ///
    /// # Errors
    /// The I/O error of reading `path`, or where the file stops being UTF-8.
    pub fn read(path: &Path) -> Result<Self, ReadError> {
        let bytes = std::fs::read(path)?;
        Self::from_bytes(path, bytes)
    }

    /// Wraps bytes that should be UTF-8 text.
    ///
    /// # Errors
    /// [`ReadError::NotUtf8`] naming the first invalid byte.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, ReadError> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Self::new(path, text)),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let byte = e.as_bytes()[offset];
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let at = offset..offset + char::REPLACEMENT_CHARACTER.len_utf8();
                Err(ReadError::NotUtf8 {
                    file: Self::new(path, text),
                    at,
                    byte,
                })
            }
        }
    }

    /// 1-based line and column (in characters) of a byte offset, clamped to the text.
    #[must_use]
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let text = &*self.text;
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let index = self.index.get_or_init(|| Index::new(text));
        // The last line starting at or before the offset.
        let line = index.line_starts.partition_point(|&s| s <= offset);
        let mut line_start = index.line_starts[line - 1];
        if line_start == 0 && text.starts_with('\u{feff}') && offset >= 3 {
            // A byte-order mark opening the file is invisible in editors: it takes no column.
            line_start = 3;
        } else if line_start > 0
            && text.as_bytes()[line_start - 1] == b'\r'
            && text[line_start..].starts_with('\n')
            && offset > line_start
        {
            // The `\n` of a `\r\n` still ends the line before.
            line_start += 1;
        }
        let column = index.chars_before(text, offset) - index.chars_before(text, line_start) + 1;
        (line, column)
    }

    /// The directory relative paths inside this file are resolved against.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }
}

/// Where each line starts. Line breaks as editors (and miette) see them: `\n`, `\r\n`, or a
/// lone `\r`. A line after `\r\n` starts after the `\r`: an offset between the two is at
/// its first column already (see [`SourceFile::line_col`]).
fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = vec![0];
    for (i, &b) in bytes.iter().enumerate() {
        let after_cr = i > 0 && bytes[i - 1] == b'\r';
        if b == b'\r' || (b == b'\n' && !after_cr) {
            starts.push(i + 1);
        }
    }
    starts
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
    fn bytes_that_are_not_utf8_are_located_at_the_first_invalid_byte() {
        let Err(ReadError::NotUtf8 { file, at, byte }) =
            SourceFile::from_bytes("a.toml", b"a = 1\nb = \"caf\xe9 \xff\"\n".to_vec())
        else {
            panic!("read as UTF-8");
        };
        assert_eq!(byte, 0xe9);
        assert_eq!(at, 14..17);
        assert_eq!(&file.text[at.clone()], "\u{fffd}");
        assert_eq!(file.line_col(at.start), (2, 9));
        let ok = SourceFile::from_bytes("a.toml", "é".as_bytes().to_vec()).expect("UTF-8");
        assert_eq!(&*ok.text, "é");
    }

    #[test]
    fn an_offset_between_cr_and_lf_is_at_the_start_of_the_next_line() {
        let file = SourceFile::new("a.toml", "a\r\nb\r\r\nc");
        assert_eq!(file.line_col(1), (1, 2));
        assert_eq!(file.line_col(2), (2, 1));
        assert_eq!(file.line_col(3), (2, 1));
        assert_eq!(file.line_col(4), (2, 2));
        assert_eq!(file.line_col(5), (3, 1));
        assert_eq!(file.line_col(6), (4, 1));
        assert_eq!(file.line_col(7), (4, 1));
        assert_eq!(file.line_col(8), (4, 2));
    }

    #[test]
    fn columns_far_into_a_long_line_count_characters() {
        let text = format!("k\n{}x", "é🚀a".repeat(5_000));
        let file = SourceFile::new("a.toml", text.as_str());
        let x = text.len() - 1;
        assert_eq!(file.line_col(x), (2, 15_001));
        assert_eq!(file.line_col(x - 1), (2, 15_000));
        assert_eq!(file.line_col(2 + 2 + 4), (2, 3));
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

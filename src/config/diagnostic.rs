//! Compiler-style diagnostics for configuration files: file, line, column, found, expected.

use std::fmt;
use std::ops::Range;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceCode, SourceSpan};
use serde::Serialize;

use super::snippet::Snippet;
use super::source::SourceFile;

/// One problem in a configuration file, with the spans it points at.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable machine-readable code, e.g. `inventory::unknown-host`.
    pub code: &'static str,
    /// What is wrong, naming what was found and what was expected.
    pub message: String,
    /// The file and the spans inside it; the first label is the primary location.
    pub file: Option<SourceFile>,
    /// Byte ranges with their label text.
    pub labels: Vec<(Range<usize>, String)>,
    /// A suggestion, such as a did-you-mean.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic pointing into `file` at `span`.
    pub fn at(
        code: &'static str,
        file: &SourceFile,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            file: Some(file.clone()),
            labels: vec![(span, label.into())],
            help: None,
        }
    }

    /// A diagnostic about something that has no place in a file (e.g. an unreadable path).
    pub fn bare(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            file: None,
            labels: Vec::new(),
            help: None,
        }
    }

    /// A diagnostic about a whole file (one that cannot be read): it names the path, with no
    /// line or column.
    pub fn about_file(
        code: &'static str,
        path: &std::path::Path,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            file: Some(SourceFile::new(path, "")),
            labels: Vec::new(),
            help: None,
        }
    }

    /// Adds a suggestion.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label in the same file.
    #[must_use]
    pub fn with_label(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.labels.push((span, label.into()));
        self
    }

    /// `path:line:column` of the primary label, or `path` when there is none.
    #[must_use]
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        Some(match self.labels.first() {
            Some((span, _)) => {
                let (line, column) = file.line_col(span.start);
                format!("{}:{line}:{column}", file.path.display())
            }
            None => file.path.display().to_string(),
        })
    }

    /// Sort key: file, then offset, so several problems read top to bottom.
    fn sort_key(&self) -> (String, usize) {
        (
            self.file
                .as_ref()
                .map(|f| f.path.display().to_string())
                .unwrap_or_default(),
            self.labels.first().map_or(0, |(s, _)| s.start),
        )
    }

    /// The JSON form used by `drover check --format json`.
    #[must_use]
    pub fn to_json(&self) -> JsonDiagnostic {
        let mut out = JsonDiagnostic {
            file: self.file.as_ref().map(|f| f.path.display().to_string()),
            line: None,
            column: None,
            end_line: None,
            end_column: None,
            code: self.code,
            message: self.message.clone(),
            help: self.help.clone(),
        };
        if let (Some(file), Some((span, _))) = (&self.file, self.labels.first()) {
            let (line, column) = file.line_col(span.start);
            let (end_line, end_column) = file.line_col(span.end);
            out.line = Some(line);
            out.column = Some(column);
            out.end_line = Some(end_line);
            out.end_column = Some(end_column);
        }
        out
    }
}

/// The documented JSON shape of one diagnostic (1-based lines and columns).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    /// Path of the file, as given.
    pub file: Option<String>,
    /// Line of the start of the problem.
    pub line: Option<usize>,
    /// Column (in characters) of the start.
    pub column: Option<usize>,
    /// Line of the end.
    pub end_line: Option<usize>,
    /// Column of the end, exclusive: the column just after the last character, so
    /// `end_column - column` is the length of a one-line span.
    pub end_column: Option<usize>,
    /// Stable code.
    pub code: &'static str,
    /// The message.
    pub message: String,
    /// The suggestion, if any.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    /// None: miette would quote the whole file, and a long line there makes it panic.
    /// [`Diagnostics::render`] gives it a [`Snippet`] of the file instead.
    fn source_code(&self) -> Option<&dyn SourceCode> {
        None
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        labeled(&self.labels)
    }
}

/// Labels as miette takes them, the first one primary; `None` when there are none.
fn labeled(
    labels: &[(Range<usize>, String)],
) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
    if labels.is_empty() {
        return None;
    }
    Some(Box::new(labels.iter().enumerate().map(
        |(i, (span, text))| {
            let span = SourceSpan::from(span.clone());
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(text.clone()), span)
            }
        },
    )))
}

/// Problems rendered with their source; the rest get their `error:` line only. A file
/// broken in the same way on each of its 100,000 lines reads no better with every snippet,
/// and is rendered in a fraction of the time.
pub const MAX_SNIPPETS: usize = 100;

/// All problems found in one `check`, reported together.
#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// True when nothing was found.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sorts by file and offset so the output reads like a compiler's.
    pub fn sort(&mut self) {
        // Each key once, not once per comparison: a broken file can hold 100,000 problems.
        self.0.sort_by_cached_key(Diagnostic::sort_key);
    }

    /// Renders every diagnostic for a terminal: an `error: path:line:col: message` line (one
    /// line, so editors and `grep` can jump to it), then the annotated source and the help.
    /// Past [`MAX_SNIPPETS`] problems, only their `error:` lines.
    #[must_use]
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        // Lines are not wrapped: the output must not depend on the terminal, and a label or
        // help that is too long wraps in the terminal anyway.
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(100)
            .with_wrap_lines(false);
        let mut out = String::new();
        for (i, diagnostic) in self.0.iter().enumerate() {
            out.push_str("error: ");
            out.push_str(&diagnostic.to_string());
            out.push('\n');
            if i == MAX_SNIPPETS {
                out.push_str(&format!(
                    "note: the problems after the first {MAX_SNIPPETS} are listed without their source\n"
                ));
            }
            if i >= MAX_SNIPPETS {
                continue;
            }
            let mut body = String::new();
            // Writing into a String cannot fail; a span miette cannot read only leaves the
            // snippet out, and the line above still names the place.
            let _ = handler.render_report(&mut body, &Body::new(diagnostic));
            // miette starts with a `  ×` line for the message, which the line above already
            // gave in full; keep only the source snippet and the help after it, without the
            // trailing spaces miette leaves on empty source lines.
            for line in body.lines().skip(1) {
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        out
    }
}

/// A diagnostic as miette renders it under drover's own `error:` line: no code header and an
/// empty message, so only the snippet, its labels and the help remain. It quotes a
/// [`Snippet`] of the file (long lines cut to a window around the labels), not the file.
struct Body<'a> {
    diagnostic: &'a Diagnostic,
    /// The excerpt with the labels moved into it; `None` without a file or labels (e.g. a
    /// placeholder from `about_file`, which must not be rendered as a snippet).
    snippet: Option<Snippet>,
}

impl<'a> Body<'a> {
    fn new(diagnostic: &'a Diagnostic) -> Self {
        let snippet = match &diagnostic.file {
            Some(file) if !diagnostic.labels.is_empty() => {
                Some(Snippet::new(file, &diagnostic.labels))
            }
            _ => None,
        };
        Self {
            diagnostic,
            snippet,
        }
    }
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Body<'_> {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl std::error::Error for Body<'_> {}

impl miette::Diagnostic for Body<'_> {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::help(self.diagnostic)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.snippet.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        labeled(&self.snippet.as_ref()?.labels)
    }
}

/// A name or value from a user's file, made safe to print on one line: control characters
/// (a newline in a quoted key, an escape sequence) are shown escaped, and a long one is
/// [`clipped`].
#[must_use]
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let text = clipped(text);
    if text.chars().any(char::is_control) {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if c.is_control() {
                out.extend(c.escape_debug());
            } else {
                out.push(c);
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        text
    }
}

/// The longest name or value a message quotes whole.
pub const MAX_QUOTED_CHARS: usize = 80;

/// `text` when it is at most [`MAX_QUOTED_CHARS`] long; otherwise its start and its end
/// around a `…`, [`MAX_QUOTED_CHARS`] characters in all: a message stays one readable line
/// even for a value of 100,000 characters.
#[must_use]
pub fn clipped(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_QUOTED_CHARS {
        return std::borrow::Cow::Borrowed(text);
    }
    let count = text.chars().count();
    if count <= MAX_QUOTED_CHARS {
        return std::borrow::Cow::Borrowed(text);
    }
    let tail = MAX_QUOTED_CHARS / 4;
    let head: String = text.chars().take(MAX_QUOTED_CHARS - tail - 1).collect();
    let end: String = text.chars().skip(count - tail).collect();
    std::borrow::Cow::Owned(format!("{head}…{end}"))
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_names_the_file_line_and_column() {
        let file = SourceFile::new("inv/fleet.toml", "[hosts.a]\nprot = 22\n");
        let d = Diagnostic::at("x", &file, 10..14, "unknown key `prot`", "not a host key")
            .with_help("did you mean `port`?");
        let text = Diagnostics::from(d).render(false);
        assert!(
            text.contains("inv/fleet.toml:2:1: unknown key `prot`"),
            "{text}"
        );
        assert!(text.contains("[inv/fleet.toml:2:1]"), "{text}");
        assert!(text.contains("did you mean `port`?"), "{text}");
    }

    #[test]
    fn a_label_on_a_line_of_100000_characters_renders_a_window_of_it() {
        let text = format!(
            "[hosts.a]\naddress = \"{}\"\nprot = 22\n",
            "x".repeat(100_000)
        );
        let file = SourceFile::new("a.toml", text.as_str());
        let at = text.find("prot").unwrap();
        let end = text.len() - 1;
        let d = Diagnostic::at(
            "x",
            &file,
            at..at + 4,
            "unknown key `prot`",
            "not a host key",
        )
        .with_label(20..end, "and this")
        .with_label(100_005..100_006, "here");
        let out = Diagnostics::from(d).render(false);
        assert!(out.contains("[a.toml:3:1]"), "{out}");
        assert!(out.len() < 2_000, "{} bytes:\n{out}", out.len());
        assert!(out.contains('…'), "{out}");
    }

    #[test]
    fn a_long_value_is_quoted_by_its_start_and_end() {
        let long = format!("start{}end", "x".repeat(100_000));
        let short = clipped(&long);
        assert_eq!(short.chars().count(), MAX_QUOTED_CHARS);
        assert!(
            short.starts_with("startxx") && short.ends_with("xxend"),
            "{short}"
        );
        assert!(short.contains('…'));
        assert_eq!(clipped("é".repeat(80).as_str()), "é".repeat(80));
        assert_eq!(
            shown(&format!("a\n{}", "b".repeat(200)))
                .chars()
                .filter(|&c| c == '\\')
                .count(),
            1
        );
    }
}

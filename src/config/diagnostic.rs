//! Compiler-style diagnostics for configuration files: file, line, column, found, expected.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use serde::Serialize;

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
    named: Option<NamedSource<Arc<str>>>,
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
        let named = NamedSource::new(file.path.display().to_string(), Arc::clone(&file.text))
            .with_language("toml");
        Self {
            code,
            message: message.into(),
            file: Some(file.clone()),
            labels: vec![(span, label.into())],
            help: None,
            named: Some(named),
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
            named: None,
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
            self.file.as_ref().map(|f| f.path.display().to_string()).unwrap_or_default(),
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
    /// Column of the end.
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
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.named.as_ref().map(|n| n as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(|(i, (span, text))| {
            let span = miette::SourceSpan::from(span.clone());
            if i == 0 {
                LabeledSpan::new_primary_with_span(Some(text.clone()), span)
            } else {
                LabeledSpan::new_with_span(Some(text.clone()), span)
            }
        })))
    }
}

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
        self.0.sort_by_key(Diagnostic::sort_key);
    }

    /// Renders every diagnostic for a terminal: a `path:line:col: message` line, then
    /// the annotated source.
    #[must_use]
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        for diagnostic in &self.0 {
            out.push_str("error: ");
            out.push_str(&diagnostic.to_string());
            out.push('\n');
            // Writing into a String cannot fail.
            let _ = handler.render_report(&mut out, diagnostic);
        }
        out
    }
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
        assert!(text.contains("inv/fleet.toml:2:1: unknown key `prot`"), "{text}");
        assert!(text.contains("[inv/fleet.toml:2:1]"), "{text}");
        assert!(text.contains("did you mean `port`?"), "{text}");
    }
}

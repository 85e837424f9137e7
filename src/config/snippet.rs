//! The excerpt of a file that a diagnostic quotes: the lines around its labels, each long
//! line cut to a window around the label (`…` where it was cut), and the labels moved into
//! the excerpt.
//!
//! miette renders this excerpt, never the whole file: a line of 100,000 characters would
//! make its formatting panic (a padding width above 65,535), and rendering costs the size
//! of the excerpt, not of the file.

use std::ops::Range;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use super::source::SourceFile;

/// Lines longer than this many characters are cut to a window of this many characters.
pub(crate) const MAX_LINE_CHARS: usize = 120;
/// Characters kept before the first label on a cut line.
const CHARS_BEFORE: usize = 40;
/// A label over more lines than this is shortened to its first line.
const MAX_LABEL_LINES: usize = 8;
/// Lines of context around a label (what miette shows by default).
const CONTEXT_LINES: usize = 1;
/// Two labels' snippets with at most this many lines between them are shown as one, the
/// lines between included; further apart, as two (and the lines between are left out).
const MERGE_GAP: usize = 4;
/// Marks where a line was cut.
const ELLIPSIS: &str = "…";

/// What miette renders for one diagnostic: an excerpt and the labels inside it.
#[derive(Debug)]
pub(crate) struct Snippet {
    name: String,
    text: String,
    /// 0-based line number, in the file, of the excerpt's first line.
    first_line: usize,
    /// The labels with their spans in the excerpt.
    pub(crate) labels: Vec<(Range<usize>, String)>,
    /// 0-based line and column (in characters), in the file, of each label's start.
    starts: Vec<(usize, usize)>,
}

/// One line of the file: where it starts, where its text ends, where the next one starts.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

impl Line {
    /// The line holding byte `offset` (a line break belongs to the line it ends).
    fn at(text: &str, offset: usize) -> Self {
        let start = text[..offset].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        // A `\r\n` split in the middle: the `\n` ends the line the `\r` began ending.
        let start = if start == offset
            && offset > 0
            && text[..offset].ends_with("\r")
            && text[offset..].starts_with('\n')
        {
            Self::at(text, offset - 1).start
        } else {
            start
        };
        Self::from_start(text, start)
    }

    /// The line starting at byte `start`.
    fn from_start(text: &str, start: usize) -> Self {
        let end = text[start..]
            .find(['\n', '\r'])
            .map_or(text.len(), |i| start + i);
        let next = if text[end..].starts_with("\r\n") {
            end + 2
        } else if end < text.len() {
            end + 1
        } else {
            end
        };
        Self { start, end, next }
    }

    /// The line before this one, if any.
    fn previous(self, text: &str) -> Option<Self> {
        (self.start > 0).then(|| Self::at(text, self.start - 1))
    }

    /// The line after this one, if any.
    fn following(self, text: &str) -> Option<Self> {
        (self.next > self.end).then(|| Self::from_start(text, self.next))
    }
}

/// The largest char boundary at or before `offset`, within the text.
fn floor(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The part of a line that is shown: `window` of the file, with `…` before and after when
/// the line was cut there.
struct Shown {
    window: Range<usize>,
    cut_before: bool,
    cut_after: bool,
}

/// Which part of `line` to show, given the label offsets that fall on it.
fn window(text: &str, line: Line, focus: Option<usize>) -> Shown {
    let all = &text[line.start..line.end];
    if all.len() <= MAX_LINE_CHARS || all.chars().count() <= MAX_LINE_CHARS {
        return Shown {
            window: line.start..line.end,
            cut_before: false,
            cut_after: false,
        };
    }
    let focus = focus.unwrap_or(line.start).clamp(line.start, line.end);
    let start = text[line.start..focus]
        .char_indices()
        .rev()
        .nth(CHARS_BEFORE - 1)
        .map_or(line.start, |(i, _)| line.start + i);
    let end = text[start..line.end]
        .char_indices()
        .nth(MAX_LINE_CHARS)
        .map_or(line.end, |(i, _)| start + i);
    // Keep the window full when the focus is near the end of the line.
    let start = if end == line.end {
        text[line.start..line.end]
            .char_indices()
            .rev()
            .nth(MAX_LINE_CHARS - 1)
            .map_or(line.start, |(i, _)| line.start + i)
            .min(start)
    } else {
        start
    };
    Shown {
        window: start..end,
        cut_before: start > line.start,
        cut_after: end < line.end,
    }
}

impl Snippet {
    /// The excerpt of `file` that shows `labels` (byte spans into the file, the first one
    /// primary). Spans are clamped to the text and to char boundaries.
    pub(crate) fn new(file: &SourceFile, labels: &[(Range<usize>, String)]) -> Self {
        let text: &str = &file.text;
        let spans: Vec<Range<usize>> = labels.iter().map(|(s, _)| clamp(text, s)).collect();
        let first = spans.iter().map(|s| s.start).min().unwrap_or(0);
        let last = spans.iter().map(|s| s.end).max().unwrap_or(0);
        let mut line = Line::at(text, first);
        for _ in 0..CONTEXT_LINES {
            line = line.previous(text).unwrap_or(line);
        }
        let first_line = file.line_col(line.start).0 - 1;
        let mut copy = Copy::new(text, &spans);
        loop {
            let is_last = line.end >= last || line.following(text).is_none();
            copy.line(line);
            if is_last && copy.next_point == copy.points.len() {
                break;
            }
            match line.following(text) {
                Some(following) => line = following,
                None => break,
            }
        }
        // Context after the last label's line.
        for _ in 0..CONTEXT_LINES {
            match line.following(text) {
                Some(following) => {
                    line = following;
                    copy_line(&mut copy.out, text, &window(text, line, None), line);
                }
                None => break,
            }
        }
        let (text, moved) = copy.finish();
        let labels = labels
            .iter()
            .enumerate()
            .map(|(i, (_, label))| {
                (
                    moved[2 * i]..moved[2 * i + 1].max(moved[2 * i]),
                    label.clone(),
                )
            })
            .collect();
        let starts = spans
            .iter()
            .map(|s| {
                let (line, column) = file.line_col(s.start);
                (line - 1, column - 1)
            })
            .collect();
        Self {
            name: file.path.display().to_string(),
            text,
            first_line,
            labels,
            starts,
        }
    }
}

/// The excerpt as it is copied line by line, with every label's start and end moved into it
/// as their lines are copied.
struct Copy<'t> {
    text: &'t str,
    /// The lines that may be shown (see [`kept_lines`]); others are left empty.
    kept: Vec<Range<usize>>,
    /// (offset in the file, 2 × label + 0 for its start or 1 for its end), by offset.
    points: Vec<(usize, usize)>,
    /// Where each point landed in the excerpt.
    moved: Vec<usize>,
    /// The first point not moved yet.
    next_point: usize,
    out: String,
}

impl<'t> Copy<'t> {
    fn new(text: &'t str, spans: &[Range<usize>]) -> Self {
        let mut points: Vec<(usize, usize)> = spans
            .iter()
            .enumerate()
            .flat_map(|(i, s)| [(s.start, 2 * i), (s.end, 2 * i + 1)])
            .collect();
        points.sort_unstable();
        Self {
            text,
            kept: kept_lines(text, spans),
            moved: vec![0; points.len()],
            points,
            next_point: 0,
            out: String::new(),
        }
    }

    /// Copies `line`: a window of it when it is kept, else an empty line.
    fn line(&mut self, line: Line) {
        let kept = self
            .kept
            .iter()
            .any(|k| k.start < line.next.max(line.end + 1) && line.start < k.end);
        let shown = if kept {
            let focus = self.points[self.next_point..]
                .iter()
                .map(|&(o, _)| o)
                .find(|&o| o >= line.start && o <= line.end);
            window(self.text, line, focus)
        } else {
            // Between two distant labels: the line is left empty.
            Shown {
                window: line.start..line.start,
                cut_before: false,
                cut_after: false,
            }
        };
        while let Some(&(offset, which)) = self.points.get(self.next_point) {
            // A point in the next line (the last line, without a break, takes the rest).
            if offset >= line.next && line.next > line.end {
                break;
            }
            self.moved[which] = move_offset(&self.out, &shown, line, offset);
            self.next_point += 1;
        }
        copy_line(&mut self.out, self.text, &shown, line);
    }

    /// The excerpt, and where each point landed (past its end for points not reached).
    fn finish(mut self) -> (String, Vec<usize>) {
        for &(_, which) in &self.points[self.next_point..] {
            self.moved[which] = self.out.len();
        }
        (self.out, self.moved)
    }
}

/// `span` within the text, on char boundaries, and shortened to its first line when it
/// runs over more than [`MAX_LABEL_LINES`] lines.
fn clamp(text: &str, span: &Range<usize>) -> Range<usize> {
    let start = floor(text, span.start);
    let end = floor(text, span.end).max(start);
    let breaks = text[start..end].matches(['\n', '\r']).count();
    if breaks > MAX_LABEL_LINES {
        start..Line::at(text, start).end.max(start)
    } else {
        start..end
    }
}

/// The byte ranges whose lines may be shown: each label's lines with their context, and the
/// lines up to [`MERGE_GAP`] further, which show when two labels' snippets are merged.
fn kept_lines(text: &str, spans: &[Range<usize>]) -> Vec<Range<usize>> {
    spans
        .iter()
        .map(|s| {
            let mut first = Line::at(text, s.start);
            let mut last = Line::at(text, s.end);
            for _ in 0..CONTEXT_LINES + MERGE_GAP {
                first = first.previous(text).unwrap_or(first);
                last = last.following(text).unwrap_or(last);
            }
            first.start..last.next.max(last.end + 1)
        })
        .collect()
}

/// Where `offset` (on `line` of the file) lands in the excerpt, when `line` is copied next
/// after `out`.
fn move_offset(out: &str, shown: &Shown, line: Line, offset: usize) -> usize {
    let text_start = out.len() + if shown.cut_before { ELLIPSIS.len() } else { 0 };
    let window = &shown.window;
    if offset <= window.start {
        text_start
    } else if offset <= window.end {
        text_start + (offset - window.start)
    } else if offset <= line.end {
        text_start + window.len()
    } else {
        // In the line break.
        let after = text_start + window.len() + if shown.cut_after { ELLIPSIS.len() } else { 0 };
        after + (offset - line.end)
    }
}

/// Appends the shown part of `line` and its line break.
fn copy_line(out: &mut String, text: &str, shown: &Shown, line: Line) {
    if shown.cut_before {
        out.push_str(ELLIPSIS);
    }
    out.push_str(&text[shown.window.clone()]);
    if shown.cut_after {
        out.push_str(ELLIPSIS);
    }
    match &text[line.end..line.next] {
        // A lone `\r` ends a line for editors and for miette's line numbers, but miette's
        // snippet drawing would keep it inside the line: hand it a `\n` (the same length).
        "\r" => out.push('\n'),
        line_break => out.push_str(line_break),
    }
}

/// miette counts columns in bytes and lines from the excerpt's start; the place it prints
/// above a snippet (`╭─[path:line:col]`) is the label's place in the file instead, in
/// characters, so that it agrees with the `path:line:col` line and the JSON output.
impl SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner =
            self.text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        let (mut line, mut column) = (inner.line() + self.first_line, inner.column());
        if context_lines_before == 0 && context_lines_after == 0 {
            // A label's own line: what goes into `╭─[path:line:col]`.
            if let Some(i) = self
                .labels
                .iter()
                .position(|(s, _)| s.start == span.offset())
            {
                (line, column) = self.starts[i];
            }
        }
        // miette merges two labels' snippets when the first one's line plus its line count
        // reaches the second one's line: count the lines shown, plus the gap allowed.
        let data = inner.data();
        let breaks = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count()
            - data.windows(2).filter(|w| w == b"\r\n").count();
        let ends_in_break = data.last().is_some_and(|&b| b == b'\n' || b == b'\r');
        let lines = breaks + usize::from(!ends_in_break);
        let contents = MietteSpanContents::new_named(
            self.name.clone(),
            data,
            *inner.span(),
            line,
            column,
            lines + MERGE_GAP,
        )
        .with_language("toml");
        Ok(Box::new(contents))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippet(text: &str, span: Range<usize>) -> Snippet {
        Snippet::new(&SourceFile::new("a.toml", text), &[(span, "here".into())])
    }

    fn labelled(s: &Snippet) -> &str {
        &s.text[s.labels[0].0.clone()]
    }

    #[test]
    fn short_lines_are_quoted_whole_with_a_line_of_context_each_side() {
        let text = "a = 1\nb = 2\nc = 3\nd = 4\n";
        let s = snippet(text, 6..7);
        assert_eq!(s.text, "a = 1\nb = 2\nc = 3\n");
        assert_eq!(s.first_line, 0);
        assert_eq!(labelled(&s), "b");
        let s = snippet(text, 18..19);
        assert_eq!(s.text, "c = 3\nd = 4\n");
        assert_eq!(s.first_line, 2);
        assert_eq!(labelled(&s), "d");
    }

    #[test]
    fn a_long_line_is_cut_to_a_window_around_the_label_with_ellipses() {
        let value = "x".repeat(100_000);
        let text = format!("[hosts.a]\naddress = \"{value}\" oops\n");
        let at = text.find("oops").unwrap();
        let s = snippet(&text, at..at + 4);
        assert_eq!(labelled(&s), "oops");
        let cut = s.text.lines().nth(1).unwrap();
        assert!(cut.starts_with('…'), "{cut}");
        assert!(cut.chars().count() <= MAX_LINE_CHARS + 2, "{cut}");
        assert!(cut.contains(&format!("{}\" oops", "x".repeat(CHARS_BEFORE - 2))));
        assert_eq!(s.starts[0], (1, at - "[hosts.a]\n".len()));
    }

    #[test]
    fn a_label_at_the_start_of_a_long_line_keeps_the_start_and_cuts_the_end() {
        let text = format!("k = \"{}\"\n", "é".repeat(50_000));
        let s = snippet(&text, 0..1);
        assert_eq!(labelled(&s), "k");
        let line = s.text.lines().next().unwrap();
        assert!(line.starts_with("k = \"é") && line.ends_with('…'), "{line}");
        assert_eq!(line.chars().count(), MAX_LINE_CHARS + 1);
    }

    #[test]
    fn a_label_longer_than_the_window_is_cut_with_it() {
        let value = "y".repeat(10_000);
        let text = format!("a = \"{value}\"\n");
        let s = snippet(&text, 4..text.len() - 1);
        let shown = labelled(&s);
        assert!(shown.starts_with("\"yyy") && shown.len() < 200, "{shown}");
    }

    #[test]
    fn labels_far_apart_leave_the_lines_between_empty() {
        let text: String = (0..10_000).map(|i| format!("k{i} = {i}\n")).collect();
        let second = text.find("k9000 ").unwrap();
        let file = SourceFile::new("a.toml", text.as_str());
        let s = Snippet::new(
            &file,
            &[(0..2, "one".into()), (second..second + 5, "two".into())],
        );
        assert!(s.text.len() < 12_000, "{}", s.text.len());
        assert_eq!(&s.text[s.labels[1].0.clone()], "k9000");
        assert_eq!(s.starts[1], (9000, 0));
    }

    #[test]
    fn a_label_over_many_lines_is_shortened_to_its_first_line() {
        let text: String = "a = [\n".to_string() + &"1,\n".repeat(1000) + "]\n";
        let s = snippet(&text, 4..text.len() - 1);
        assert_eq!(labelled(&s), "[");
        assert!(s.text.lines().count() <= 3, "{}", s.text);
    }

    #[test]
    fn crlf_and_a_byte_order_mark_keep_their_lines_and_columns() {
        let text = format!("\u{feff}a = 1\r\nb = \"{}\" bad\r\n", "z".repeat(500));
        let at = text.find("bad").unwrap();
        let s = snippet(&text, at..at + 3);
        assert_eq!(labelled(&s), "bad");
        assert_eq!(s.starts[0], (1, 507));
        assert!(
            s.text.starts_with("\u{feff}a = 1\r\n…"),
            "{:?}",
            &s.text[..20]
        );
    }

    #[test]
    fn a_lone_carriage_return_is_quoted_as_a_line_feed() {
        let s = snippet("a = 1\rb = 2\r\nc\r", 6..7);
        assert_eq!(s.text, "a = 1\nb = 2\r\nc\n");
        assert_eq!(labelled(&s), "b");
    }

    #[test]
    fn spans_past_the_end_or_inside_a_character_are_clamped() {
        let s = snippet("é", 1..99);
        assert_eq!(s.labels[0].0, 0..2);
        let s = snippet("", 0..0);
        assert_eq!(s.labels[0].0, 0..0);
    }

    #[test]
    fn a_label_at_the_very_end_of_a_long_last_line_is_in_the_window() {
        let text = "v".repeat(70_000);
        let s = snippet(&text, text.len()..text.len());
        assert_eq!(s.labels[0].0.start, s.text.len());
        assert!(s.text.starts_with('…') && s.text.chars().count() == MAX_LINE_CHARS + 1);
    }
}

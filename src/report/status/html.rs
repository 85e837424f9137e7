//! `drover status --format html`: one self-contained page (inline CSS and a little
//! inline JavaScript, no external resource, readable offline): the problems first, a
//! tenant × host grid coloured by health, then sortable tables of the targets and of
//! the hosts.
//!
//! Hooks for tools and tests: the grid is `table#grid`, each of its cells has
//! `data-target="tenant@host"` and `data-state="ok|problem|unknown"`; the problem list
//! is `#problems li[data-subject]`; sortable tables are `table.sortable` (click a header;
//! again to reverse). A link may carry a sort: `status.html#sort=targets:7` sorts the
//! targets by their 8th column (uptime), `#sort=hosts:3:desc` the hosts by disk, fullest
//! first.

mod grid;
mod hosts;
mod targets;

use std::fmt::Write as _;

use super::{problem_list, summary_line};
use crate::engine::status::{FleetStatus, Problem, ProblemKind};

/// Escapes text for HTML content and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page's style sheet, inlined so the page needs nothing from the network.
const STYLE: &str = include_str!("html/style.css");

/// Sorting of `table.sortable` by a click on a header, or by the link's `#sort=`.
const SCRIPT: &str = include_str!("html/sort.js");

/// The whole page.
#[must_use]
pub fn render(status: &FleetStatus) -> String {
    let problems = problem_list(status);
    let mut out = String::new();
    head(problems.len(), &mut out);
    header(status, &mut out);
    problems_section(&problems, &mut out);
    section("Tenants × hosts", &mut out, |out| grid::grid(status, out));
    section("Targets", &mut out, |out| {
        targets::targets_table(status, out)
    });
    section("Hosts", &mut out, |out| hosts::hosts_table(status, out));
    footer(status, &mut out);
    out
}

/// The document's head: its title says how many problems, its style is inline.
fn head(problems: usize, out: &mut String) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>drover status — {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        if problems == 0 {
            "all healthy".to_string()
        } else {
            format!("{problems} problem{}", if problems == 1 { "" } else { "s" })
        }
    );
}

/// The heading, when the report was made, and a badge per kind of target count.
fn header(status: &FleetStatus, out: &mut String) {
    let s = &status.summary;
    let _ = write!(
        out,
        "<header>\n<h1>drover fleet status</h1>\n<p class=\"meta\">generated {} · {}</p>\n\
         <div class=\"badges\"><span class=\"b-ok\">{} ok</span>",
        escape(&status.generated_at),
        escape(&summary_line(status)),
        s.targets_ok
    );
    if s.targets_problem > 0 {
        let _ = write!(
            out,
            "<span class=\"b-problem\">{} with problems</span>",
            s.targets_problem
        );
    }
    if s.targets_unknown > 0 {
        let _ = write!(
            out,
            "<span class=\"b-unknown\">{} unknown</span>",
            s.targets_unknown
        );
    }
    if s.hosts_unreachable > 0 {
        let _ = write!(
            out,
            "<span class=\"b-unknown\">{} host{} unreachable</span>",
            s.hosts_unreachable,
            if s.hosts_unreachable == 1 { "" } else { "s" }
        );
    }
    out.push_str("</div>\n</header>\n");
}

/// Every problem, one line each with its subject, first on the page.
fn problems_section(problems: &[(String, &Problem)], out: &mut String) {
    let _ = write!(
        out,
        "<section id=\"problems\">\n<h2>Problems ({})</h2>\n",
        problems.len()
    );
    if problems.is_empty() {
        out.push_str("<p class=\"none-msg\">No problems: every target is healthy.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for (subject, p) in problems {
            let class = if p.kind == ProblemKind::Unreachable {
                "unreachable"
            } else {
                "problem"
            };
            let _ = writeln!(
                out,
                "<li class=\"{class}\" data-subject=\"{}\" data-kind=\"{}\"><span class=\"subject\">{}</span><span class=\"kind\">{}</span>{}</li>",
                escape(subject),
                escape(p.kind.word()),
                escape(subject),
                escape(p.kind.word()),
                escape(&p.message)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn section(title: &str, out: &mut String, body: impl FnOnce(&mut String)) {
    let _ = writeln!(out, "<section>\n<h2>{title}</h2>");
    body(out);
    out.push_str("</section>\n");
}

/// What the report was made with, and the sorting script.
fn footer(status: &FleetStatus, out: &mut String) {
    let _ = write!(
        out,
        "<footer>drover status · JSON schema {} · exit code {} · \
         thresholds: disk &gt; 80 % used, memory &lt; 10 % available, lock older than 30 min</footer>\n\
         <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
        status.schema_version, status.summary.exit_code
    );
}

/// A table `SCRIPT` sorts by a click on a header; `columns` are its `<th>` cells.
fn sortable_table(id: &str, columns: &str, out: &mut String, rows: impl FnOnce(&mut String)) {
    let _ = writeln!(
        out,
        "<table id=\"{id}\" class=\"sortable\"><thead><tr>{columns}</tr></thead><tbody>"
    );
    rows(out);
    out.push_str("</tbody></table>\n");
}

fn td(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

/// A cell sorted by `sort` rather than by its text.
fn td_sort(text: &str, sort: &str) -> String {
    format!("<td data-sort=\"{}\">{}</td>", escape(sort), escape(text))
}

/// The problems' kinds (and `error`, a reason the state is unknown), their messages
/// in the tooltip.
fn problems_cell(problems: &[Problem], error: Option<&str>) -> String {
    let kinds: Vec<&str> = problems
        .iter()
        .map(|p| p.kind.word())
        .chain(error)
        .collect();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    format!(
        "<td title=\"{}\"{}>{}</td>",
        escape(&messages.join("\n")),
        if problems.is_empty() {
            ""
        } else {
            " class=\"bad\""
        },
        escape(&kinds.join(", "))
    )
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_page_is_self_contained_with_problems_first_and_a_grid_cell_per_target() {
        let status = sample::status();
        let page = render(&status);
        assert!(page.starts_with("<!DOCTYPE html>"));
        for external in ["src=\"http", "href=\"http", "@import", "url(http", "<link"] {
            assert!(!page.contains(external), "external resource {external}");
        }
        let problems = page.find("id=\"problems\"").unwrap();
        let grid = page.find("id=\"grid\"").unwrap();
        let targets = page.find("id=\"targets\"").unwrap();
        assert!(problems < grid && grid < targets);
        assert!(page.contains(
            "<td class=\"cell problem\" data-target=\"acme@web-2\" data-state=\"problem\""
        ));
        assert!(page.contains("data-target=\"acme@web-1\" data-state=\"ok\""));
        assert!(page.contains("data-target=\"beta@web-3\" data-state=\"unknown\""));
        // beta is not placed on web-2: an empty cell.
        assert_eq!(page.matches("class=\"cell none\"").count(), 2);
        assert!(page.contains(
            "<li class=\"problem\" data-subject=\"acme@web-2\" data-kind=\"service down\">"
        ));
        assert!(page.contains("<li class=\"unreachable\" data-subject=\"web-3\""));
        assert!(page.contains("<title>drover status — 4 problems</title>"));
        // The problem row comes first in the targets table.
        let first_row = page[targets..].find("<tr class=").unwrap() + targets;
        assert!(page[first_row..].starts_with("<tr class=\"problem\" data-target=\"acme@web-2\""));
        // Messages are escaped.
        assert!(page.contains("&lt;connection refused&gt;"));
        assert!(!page.contains("<connection refused>"));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

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

use std::fmt::Write as _;

use super::{
    color_text, disk_text, latency, load_text, memory_text, ordered_hosts, ordered_targets,
    problem_list, summary_line, uptime_text, version_text,
};
use crate::engine::status::{
    FleetStatus, HostReport, HostState, ProblemKind, TargetReport, TargetState, human_duration,
};
use crate::plan::Color;

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

const STYLE: &str = r#"
:root { --ok: #1b7f3b; --ok-bg: #e7f5ec; --bad: #c0262d; --bad-bg: #fdeced; --unk: #8a5a00;
        --unk-bg: #fff3dc; --line: #d8dde3; --muted: #5f6b76; --head: #f4f6f8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; padding: 20px 24px 40px; color: #1d252c; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.badges span { display: inline-block; padding: 3px 10px; border-radius: 12px; margin-right: 6px;
               font-weight: 600; font-size: 13px; }
.b-ok { background: var(--ok-bg); color: var(--ok); }
.b-problem { background: var(--bad-bg); color: var(--bad); }
.b-unknown { background: var(--unk-bg); color: var(--unk); }
#problems ul { list-style: none; padding: 0; margin: 0; }
#problems li { border-left: 4px solid var(--bad); background: var(--bad-bg); padding: 6px 12px;
               margin-bottom: 6px; border-radius: 3px; }
#problems li.unreachable { border-color: var(--unk); background: var(--unk-bg); }
#problems .subject { font-weight: 700; margin-right: 8px; }
#problems .kind { text-transform: uppercase; font-size: 11px; font-weight: 700; letter-spacing: .04em;
                  margin-right: 8px; color: var(--bad); }
#problems li.unreachable .kind { color: var(--unk); }
.none-msg { color: var(--ok); font-weight: 600; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: 6px 10px; text-align: left; vertical-align: top; }
thead th { background: var(--head); font-size: 12px; text-transform: uppercase; letter-spacing: .03em;
           color: #36414b; white-space: nowrap; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th::after { content: " \2195"; color: #a0a9b2; }
table.sortable thead th[aria-sort=ascending]::after { content: " \2191"; color: #1d252c; }
table.sortable thead th[aria-sort=descending]::after { content: " \2193"; color: #1d252c; }
#grid td.cell { min-width: 150px; }
#grid tbody th { background: var(--head); white-space: nowrap; }
td.ok { background: var(--ok-bg); border-left: 4px solid var(--ok); }
td.problem { background: var(--bad-bg); border-left: 4px solid var(--bad); }
td.unknown { background: var(--unk-bg); border-left: 4px solid var(--unk); }
td.none { background: repeating-linear-gradient(45deg, #fafbfc, #fafbfc 6px, #f1f3f5 6px, #f1f3f5 12px); }
.cell .head { font-weight: 700; }
.ok .head { color: var(--ok); } .problem .head { color: var(--bad); } .unknown .head { color: var(--unk); }
.cell small { color: var(--muted); display: block; }
.st { font-weight: 700; }
.st-ok { color: var(--ok); } .st-problem { color: var(--bad); } .st-unknown { color: var(--unk); }
#targets td, #hosts td { white-space: nowrap; }
#targets td small, #hosts td small { display: block; color: var(--muted); font-size: 11px; }
#targets, #hosts { font-size: 13px; }
#targets th, #targets td, #hosts th, #hosts td { padding: 4px 7px; }
#targets thead th, #hosts thead th { text-transform: none; letter-spacing: 0; }
td.bad small { font-weight: 400; }
#targets td:last-child, #hosts td:last-child { white-space: normal; min-width: 110px; }
tr.problem td:first-child { border-left: 4px solid var(--bad); }
tr.unknown td:first-child { border-left: 4px solid var(--unk); }
td.bad { color: var(--bad); font-weight: 600; }
.legend { color: var(--muted); font-size: 12px; margin-top: 6px; }
.legend span { display: inline-block; width: 12px; height: 12px; vertical-align: -2px; margin: 0 4px 0 12px;
               border-radius: 2px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
code { font: 12px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; }
"#;

const SCRIPT: &str = r#"
(function () {
  function key(cell) {
    return cell.hasAttribute('data-sort') ? cell.getAttribute('data-sort') : cell.textContent.trim();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, i) {
      th.addEventListener('click', function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var numeric = th.getAttribute('data-type') === 'number';
        rows.sort(function (a, b) {
          var x = key(a.cells[i]), y = key(b.cells[i]), r;
          if (numeric) {
            var nx = parseFloat(x), ny = parseFloat(y);
            if (isNaN(nx) && isNaN(ny)) r = 0;
            else if (isNaN(nx)) return 1;
            else if (isNaN(ny)) return -1;
            else r = nx - ny;
          } else {
            r = x.localeCompare(y, undefined, { numeric: true });
          }
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  // A link can carry a sort: #sort=targets:7 (8th column ascending), #sort=hosts:3:desc.
  var m = /^#sort=([a-z]+):(\d+)(:desc)?$/.exec(location.hash);
  var table = m && document.getElementById(m[1]);
  if (table && table.classList.contains('sortable')) {
    var th = table.tHead.rows[0].cells[+m[2]];
    if (th) { th.click(); if (m[3]) th.click(); }
  }
})();
"#;

fn state_rank(s: TargetState) -> u8 {
    match s {
        TargetState::Problem => 0,
        TargetState::Unknown => 1,
        TargetState::Ok => 2,
    }
}

fn grid_cell(t: &TargetReport) -> String {
    let class = t.state.word();
    let title: Vec<String> = match t.state {
        TargetState::Unknown => vec![t.error.clone().unwrap_or_default()],
        _ if t.problems.is_empty() => vec!["healthy".into()],
        _ => t.problems.iter().map(|p| p.message.clone()).collect(),
    };
    let (head, detail) = match t.state {
        TargetState::Ok => {
            let live = t
                .colors
                .iter()
                .find(|c| Some(&c.color) == t.active_color.as_ref());
            (
                format!(
                    "● {} {}",
                    t.active_color.map_or("?", Color::as_str),
                    t.version
                        .as_deref()
                        .or(t.running_version.as_deref())
                        .unwrap_or("?")
                ),
                format!(
                    "{}up {}",
                    live.and_then(|c| c.health.latency_ms)
                        .map(|ms| format!("{} · ", latency(ms)))
                        .unwrap_or_default(),
                    uptime_text(t)
                ),
            )
        }
        TargetState::Problem => (
            format!(
                "✗ {}",
                t.problems.first().map_or("problem", |p| p.kind.word())
            ),
            format!(
                "{} {}",
                t.active_color.map_or("no live color", Color::as_str),
                t.version.as_deref().unwrap_or("")
            ),
        ),
        TargetState::Unknown => (
            "? unknown".to_string(),
            t.error.clone().unwrap_or_else(|| "no answer".into()),
        ),
    };
    format!(
        "<td class=\"cell {class}\" data-target=\"{}@{}\" data-state=\"{class}\" title=\"{}\"><span class=\"head\">{}</span><small>{}</small></td>",
        escape(&t.tenant),
        escape(&t.host),
        escape(&title.join("\n")),
        escape(&head),
        escape(&detail)
    )
}

fn grid(status: &FleetStatus, out: &mut String) {
    let hosts: Vec<&str> = status.hosts.iter().map(|h| h.host.as_str()).collect();
    let mut tenants: Vec<&str> = Vec::new();
    for t in ordered_targets(status) {
        if !tenants.contains(&t.tenant.as_str()) {
            tenants.push(&t.tenant);
        }
    }
    out.push_str("<table id=\"grid\"><thead><tr><th>tenant \\ host</th>");
    for h in &hosts {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for tenant in tenants {
        let _ = write!(out, "<tr><th>{}</th>", escape(tenant));
        for h in &hosts {
            match status
                .targets
                .iter()
                .find(|t| t.tenant == tenant && t.host == *h)
            {
                Some(t) => out.push_str(&grid_cell(t)),
                None => out.push_str("<td class=\"cell none\" title=\"not placed here\"></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody></table>\n<p class=\"legend\">\
        <span style=\"background:var(--ok)\"></span>healthy\
        <span style=\"background:var(--bad)\"></span>problem\
        <span style=\"background:var(--unk)\"></span>unknown (host not reached)\
        <span style=\"background:#e3e6e9\"></span>tenant not placed on the host \
        — hover a cell for details</p>\n",
    );
}

fn td(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

fn td_sort(text: &str, sort: &str) -> String {
    format!("<td data-sort=\"{}\">{}</td>", escape(sort), escape(text))
}

fn last_deploy_cell(t: &TargetReport) -> String {
    let Some(d) = &t.last_deploy else {
        return "<td data-sort=\"\">-</td>".into();
    };
    let when = d
        .age_seconds
        .map_or_else(|| d.at.clone(), |a| format!("{} ago", human_duration(a)));
    let action = match d.action.as_deref() {
        Some("deploy") | None => String::new(),
        Some(a) => format!("{a} "),
    };
    let who = d
        .operator
        .as_deref()
        .map(|o| format!(" · {o}"))
        .unwrap_or_default();
    format!(
        "<td data-sort=\"{}\" title=\"{}\">{}<small>run {}</small></td>",
        d.age_seconds.map_or_else(String::new, |v| v.to_string()),
        escape(&format!(
            "{} {} → {} ({})",
            d.at,
            d.from.as_deref().unwrap_or("?"),
            d.to.as_deref().unwrap_or("?"),
            d.result.as_deref().unwrap_or("?")
        )),
        escape(&format!("{action}{when}{who}")),
        escape(d.run.as_deref().unwrap_or("?"))
    )
}

fn lock_cell(t: &TargetReport) -> String {
    let Some(l) = &t.lock else {
        return "<td>-</td>".into();
    };
    let age = l.age_seconds.map(human_duration).unwrap_or_default();
    format!(
        "<td{} title=\"{}\">{}<small>run {}</small></td>",
        if l.stale { " class=\"bad\"" } else { "" },
        escape(&format!(
            "held by {} since {}",
            l.operator.as_deref().unwrap_or("?"),
            l.since.as_deref().unwrap_or("?")
        )),
        escape(&if l.stale {
            format!("STALE {age}")
        } else {
            format!("held {age}")
        }),
        escape(l.run.as_deref().unwrap_or("?"))
    )
}

fn targets_table(status: &FleetStatus, out: &mut String) {
    out.push_str(
        "<table id=\"targets\" class=\"sortable\"><thead><tr>\
         <th>Tenant</th><th>Host</th><th data-type=\"number\">Status</th><th>Live</th>\
         <th>Version</th><th>Blue</th><th>Green</th>\
         <th data-type=\"number\">Uptime</th><th data-type=\"number\">Restarts</th>\
         <th data-type=\"number\">Last deploy</th><th>Lock</th><th>Problems</th></tr></thead><tbody>\n",
    );
    for t in ordered_targets(status) {
        let class = t.state.word();
        let _ = write!(
            out,
            "<tr class=\"{class}\" data-target=\"{}@{}\">",
            escape(&t.tenant),
            escape(&t.host)
        );
        out.push_str(&td(&t.tenant));
        out.push_str(&td(&t.host));
        let _ = write!(
            out,
            "<td data-sort=\"{}\" class=\"st st-{class}\">{}</td>",
            state_rank(t.state),
            escape(class)
        );
        out.push_str(&td(t.active_color.map_or("-", Color::as_str)));
        if t.state == TargetState::Unknown {
            out.push_str(&td("?"));
        } else {
            let version = t
                .version
                .as_deref()
                .or(t.running_version.as_deref())
                .unwrap_or("-");
            let previous = t
                .previous_version
                .as_deref()
                .map(|p| format!("<small>prev {}</small>", escape(p)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<td title=\"{}\">{}{previous}</td>",
                escape(&version_text(t)),
                escape(version)
            );
        }
        for color in Color::ALL {
            let text = t
                .colors
                .iter()
                .find(|c| c.color == color)
                .map_or_else(|| "?".to_string(), color_text);
            let bad = text.starts_with("FAILED")
                || (t.active_color == Some(color) && t.healthy == Some(false));
            let _ = write!(
                out,
                "<td{}>{}</td>",
                if bad { " class=\"bad\"" } else { "" },
                escape(&text)
            );
        }
        out.push_str(&td_sort(
            &uptime_text(t),
            &t.uptime_seconds.map_or_else(String::new, |v| v.to_string()),
        ));
        out.push_str(&td_sort(
            &t.restarts.map_or_else(|| "-".into(), |r| r.to_string()),
            &t.restarts.map_or_else(String::new, |v| v.to_string()),
        ));
        out.push_str(&last_deploy_cell(t));
        out.push_str(&lock_cell(t));
        // Kinds here (the full messages are listed at the top, and in the tooltip).
        let kinds: Vec<&str> = t
            .problems
            .iter()
            .map(|p| p.kind.word())
            .chain(t.error.as_deref())
            .collect();
        let messages: Vec<&str> = t.problems.iter().map(|p| p.message.as_str()).collect();
        let _ = write!(
            out,
            "<td title=\"{}\"{}>{}</td>",
            escape(&messages.join("\n")),
            if t.problems.is_empty() {
                ""
            } else {
                " class=\"bad\""
            },
            escape(&kinds.join(", "))
        );
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn host_state(h: &HostReport) -> (&'static str, &'static str, u8) {
    match (h.state, h.problems.is_empty()) {
        (HostState::Unreachable, _) => ("unreachable", "unknown", 0),
        (HostState::Error, _) => ("unreadable", "problem", 1),
        (HostState::Up, false) => ("up, problem", "problem", 2),
        (HostState::Up, true) => ("up", "ok", 3),
    }
}

fn hosts_table(status: &FleetStatus, out: &mut String) {
    out.push_str(
        "<table id=\"hosts\" class=\"sortable\"><thead><tr><th>Host</th><th>Address</th>\
         <th data-type=\"number\">State</th><th data-type=\"number\">Disk</th>\
         <th data-type=\"number\">Memory</th><th data-type=\"number\">Load</th>\
         <th data-type=\"number\">Uptime</th><th>Problems</th></tr></thead><tbody>\n",
    );
    for h in ordered_hosts(status) {
        let (word, class, rank) = host_state(h);
        let _ = write!(
            out,
            "<tr class=\"{class}\" data-host=\"{}\">",
            escape(&h.host)
        );
        out.push_str(&td(&h.host));
        out.push_str(&td(&h.address));
        let _ = write!(
            out,
            "<td data-sort=\"{rank}\" class=\"st st-{class}\">{}</td>",
            escape(word)
        );
        let max_disk = h
            .disks
            .iter()
            .map(|d| d.used_ratio)
            .fold(f64::NAN, f64::max);
        let disk_bad = h.problems.iter().any(|p| p.kind == ProblemKind::DiskUsage);
        let _ = write!(
            out,
            "<td data-sort=\"{}\"{}>{}</td>",
            if max_disk.is_nan() {
                String::new()
            } else {
                max_disk.to_string()
            },
            if disk_bad { " class=\"bad\"" } else { "" },
            escape(&disk_text(h))
        );
        out.push_str(&td_sort(
            &memory_text(h),
            &h.memory
                .map_or_else(String::new, |m| m.used_ratio.to_string()),
        ));
        out.push_str(&td_sort(
            &load_text(h),
            &h.load.map_or_else(String::new, |l| l.one.to_string()),
        ));
        out.push_str(&td_sort(
            &h.uptime_seconds.map_or_else(|| "-".into(), human_duration),
            &h.uptime_seconds.map_or_else(String::new, |v| v.to_string()),
        ));
        let kinds: Vec<&str> = h.problems.iter().map(|p| p.kind.word()).collect();
        let messages: Vec<&str> = h.problems.iter().map(|p| p.message.as_str()).collect();
        let _ = write!(
            out,
            "<td title=\"{}\"{}>{}</td>",
            escape(&messages.join("\n")),
            if h.problems.is_empty() {
                ""
            } else {
                " class=\"bad\""
            },
            escape(&kinds.join(", "))
        );
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

/// The whole page.
#[must_use]
pub fn render(status: &FleetStatus) -> String {
    let s = &status.summary;
    let problems = problem_list(status);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>drover status — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        if problems.is_empty() {
            "all healthy".to_string()
        } else {
            format!(
                "{} problem{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            )
        }
    );
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
    let _ = write!(
        out,
        "<section id=\"problems\">\n<h2>Problems ({})</h2>\n",
        problems.len()
    );
    if problems.is_empty() {
        out.push_str("<p class=\"none-msg\">No problems: every target is healthy.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for (subject, p) in &problems {
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
    out.push_str("</section>\n<section>\n<h2>Tenants × hosts</h2>\n");
    grid(status, &mut out);
    out.push_str("</section>\n<section>\n<h2>Targets</h2>\n");
    targets_table(status, &mut out);
    out.push_str("</section>\n<section>\n<h2>Hosts</h2>\n");
    hosts_table(status, &mut out);
    let _ = write!(
        out,
        "</section>\n<footer>drover status · JSON schema {} · exit code {} · \
         thresholds: disk &gt; 80 % used, memory &lt; 10 % available, lock older than 30 min</footer>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        status.schema_version, s.exit_code
    );
    out
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

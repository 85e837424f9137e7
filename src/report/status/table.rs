//! `drover status --format table`: targets grouped by tenant (problems first), then the
//! hosts, then every problem on its own line and a summary line. Colour only when asked
//! (a terminal, no `NO_COLOR`); the words say everything without it.

use comfy_table::{
    Attribute, Cell, Color as Paint, ContentArrangement, Table, presets::UTF8_BORDERS_ONLY,
};

use super::{
    color_text, disk_text, last_deploy_text, load_text, lock_text, memory_text, ordered_hosts,
    ordered_targets, problem_list, summary_line, uptime_text, version_text,
};
use crate::engine::status::{FleetStatus, HostState, TargetState};
use crate::plan::Color;

/// Renders the tables. `fit_terminal`: wrap cells to the terminal's width (when the
/// output is a terminal); otherwise rows are never wrapped (pipes, files).
#[must_use]
pub fn render(status: &FleetStatus, color: bool, fit_terminal: bool) -> String {
    let width = fit_terminal;
    let mut out = String::new();
    out.push_str(&targets_table(status, color, width).to_string());
    out.push('\n');
    out.push_str(&hosts_table(status, color, width).to_string());
    out.push('\n');
    let problems = problem_list(status);
    if problems.is_empty() {
        out.push_str(&paint("no problems", "32", color));
        out.push('\n');
    } else {
        out.push_str(&format!("problems ({}):\n", problems.len()));
        for (subject, p) in problems {
            let line = format!("  ✗ {subject}: {}: {}", p.kind.word(), p.message);
            out.push_str(&paint(&line, "31", color));
            out.push('\n');
        }
    }
    out.push_str(&summary_line(status));
    out.push('\n');
    out
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn new_table(color: bool, fit_terminal: bool, header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    if color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    // Dynamic: comfy-table asks the terminal for its width.
    table.set_content_arrangement(if fit_terminal {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    table.set_header(
        header
            .iter()
            .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
    );
    table
}

fn state_cell(state: TargetState) -> Cell {
    let (text, fg) = match state {
        TargetState::Ok => ("ok", Paint::Green),
        TargetState::Problem => ("PROBLEM", Paint::Red),
        TargetState::Unknown => ("unknown", Paint::Yellow),
    };
    Cell::new(text).fg(fg)
}

fn targets_table(status: &FleetStatus, color: bool, width: bool) -> Table {
    let mut table = new_table(
        color,
        width,
        &[
            "TENANT",
            "HOST",
            "STATUS",
            "LIVE",
            "VERSION",
            "BLUE",
            "GREEN",
            "UPTIME",
            "RESTARTS",
            "LAST DEPLOY",
            "LOCK",
        ],
    );
    let mut previous: Option<&str> = None;
    for t in ordered_targets(status) {
        // The tenant's name on its first row only: the rows below belong to it.
        let tenant = if previous == Some(t.tenant.as_str()) {
            String::new()
        } else {
            t.tenant.clone()
        };
        previous = Some(&t.tenant);
        let colors: Vec<String> = Color::ALL
            .iter()
            .map(|c| {
                t.colors.iter().find(|r| r.color == *c).map_or_else(
                    || "?".to_string(),
                    |r| match &r.image {
                        Some(image) => format!("{} {image}", color_text(r)),
                        None => color_text(r),
                    },
                )
            })
            .collect();
        let live = super::live_text(t);
        let mut row = vec![
            Cell::new(tenant).add_attribute(Attribute::Bold),
            Cell::new(&t.host),
            state_cell(t.state),
            Cell::new(live),
            Cell::new(if t.state == TargetState::Unknown {
                "?".into()
            } else {
                version_text(t)
            }),
        ];
        for (c, text) in Color::ALL.iter().zip(colors) {
            let is_live = t.active_color == Some(*c);
            let bad = is_live && t.state == TargetState::Problem && t.healthy == Some(false)
                || text.starts_with("FAILED");
            let cell = Cell::new(if t.state == TargetState::Unknown {
                "?".into()
            } else {
                text
            });
            row.push(if bad { cell.fg(Paint::Red) } else { cell });
        }
        row.push(Cell::new(uptime_text(t)));
        row.push(Cell::new(
            t.restarts.map_or_else(|| "-".into(), |r| r.to_string()),
        ));
        row.push(Cell::new(last_deploy_text(t)));
        let lock = lock_text(t);
        let stale = t.lock.as_ref().is_some_and(|l| l.stale);
        row.push(if stale {
            Cell::new(lock).fg(Paint::Red)
        } else {
            Cell::new(lock)
        });
        table.add_row(row);
    }
    table
}

fn hosts_table(status: &FleetStatus, color: bool, width: bool) -> Table {
    let mut table = new_table(
        color,
        width,
        &[
            "HOST", "ADDRESS", "STATE", "DISK", "MEMORY", "LOAD", "UPTIME",
        ],
    );
    for h in ordered_hosts(status) {
        let state = match (h.state, h.problems.is_empty()) {
            (HostState::Up, true) => Cell::new("up").fg(Paint::Green),
            (HostState::Up, false) => Cell::new("up, PROBLEM").fg(Paint::Red),
            (HostState::Unreachable, _) => Cell::new("UNREACHABLE").fg(Paint::Red),
            (HostState::Error, _) => Cell::new("UNREADABLE").fg(Paint::Red),
        };
        let disk_bad = h
            .problems
            .iter()
            .any(|p| p.kind == crate::engine::status::ProblemKind::DiskUsage);
        let disk = Cell::new(disk_text(h));
        table.add_row(vec![
            Cell::new(&h.host).add_attribute(Attribute::Bold),
            Cell::new(&h.address),
            state,
            if disk_bad { disk.fg(Paint::Red) } else { disk },
            Cell::new(memory_text(h)),
            Cell::new(load_text(h)),
            Cell::new(
                h.uptime_seconds
                    .map_or_else(|| "-".into(), crate::engine::status::human_duration),
            ),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_table_groups_by_tenant_with_problems_first_and_lists_them() {
        let text = render(&sample::status(), false, false);
        assert!(!text.contains('\x1b'), "no colour when not asked:\n{text}");
        let lines: Vec<&str> = text.lines().collect();
        let row = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no line with {needle:?}:\n{text}"))
        };
        // acme (with a problem) before beta; within acme, web-2 (down) first, and the
        // tenant's name only on its first row.
        assert!(row("acme ") < row("beta "), "{text}");
        let web2 = lines[row("PROBLEM")];
        assert!(web2.contains("acme") && web2.contains("web-2"), "{web2}");
        assert!(
            web2.contains("inactive") && web2.contains("2.0.0 (prev 1.0.0)"),
            "{web2}"
        );
        let web1 = lines[row("PROBLEM") + 1];
        assert!(web1.contains("web-1") && !web1.contains("acme"), "{web1}");
        assert!(
            web1.contains("up 1.7ms") && web1.contains("ops@laptop"),
            "{web1}"
        );
        assert!(lines[row("unknown")].contains("web-3"));
        assert!(lines[row("UNREACHABLE")].contains("10.0.0.3"));
        assert!(text.contains("problems (4):"), "{text}");
        assert!(text.contains("✗ web-3: unreachable: connect to 10.0.0.3:22 timed out"));
        assert!(text.contains("✗ acme@web-2: service down: drover-acme-green.service"));
        assert!(text.ends_with(
            "4 targets: 2 ok, 1 with problems, 1 unknown — 3 hosts: 2 up, 1 unreachable — 0.84s\n"
        ));
    }

    #[test]
    fn colour_is_only_added_when_asked() {
        let text = render(&sample::status(), true, true);
        assert!(text.contains("\x1b[31m  ✗ web-3"), "{text}");
        assert!(text.contains('\x1b'));
    }
}

//! The tenant × host grid: one cell per target, coloured by its state, an empty cell
//! where a tenant is not placed.

use std::fmt::Write as _;

use super::escape;
use crate::engine::status::{FleetStatus, TargetReport, TargetState};
use crate::plan::Color;
use crate::report::status::{latency, ordered_targets, uptime_text};

/// The grid and its legend.
pub(super) fn grid(status: &FleetStatus, out: &mut String) {
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

fn grid_cell(t: &TargetReport) -> String {
    let class = t.state.word();
    let title: Vec<String> = match t.state {
        TargetState::Unknown => vec![t.error.clone().unwrap_or_default()],
        _ if t.problems.is_empty() => vec!["healthy".into()],
        _ => t.problems.iter().map(|p| p.message.clone()).collect(),
    };
    let (head, detail) = cell_text(t);
    format!(
        "<td class=\"cell {class}\" data-target=\"{}@{}\" data-state=\"{class}\" title=\"{}\"><span class=\"head\">{}</span><small>{}</small></td>",
        escape(&t.tenant),
        escape(&t.host),
        escape(&title.join("\n")),
        escape(&head),
        escape(&detail)
    )
}

/// The cell's headline and the small line under it.
fn cell_text(t: &TargetReport) -> (String, String) {
    match t.state {
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
    }
}

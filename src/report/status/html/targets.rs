//! The sortable table of targets, one row each, problems first.

use std::fmt::Write as _;

use super::{escape, problems_cell, sortable_table, td, td_sort};
use crate::engine::status::FleetStatus;
use crate::engine::status::{TargetReport, TargetState, human_duration};
use crate::plan::Color;
use crate::report::status::{color_text, live_text, ordered_targets, uptime_text, version_text};

/// One row per target, problems first.
pub(super) fn targets_table(status: &FleetStatus, out: &mut String) {
    sortable_table(
        "targets",
        "<th>Tenant</th><th>Host</th><th data-type=\"number\">Status</th><th>Live</th>\
         <th>Version</th><th>Blue</th><th>Green</th>\
         <th data-type=\"number\">Uptime</th><th data-type=\"number\">Restarts</th>\
         <th data-type=\"number\">Last deploy</th><th>Lock</th><th>Problems</th>",
        out,
        |out| {
            for t in ordered_targets(status) {
                target_row(t, out);
            }
        },
    );
}

fn target_row(t: &TargetReport, out: &mut String) {
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
    out.push_str(&td(&live_text(t)));
    out.push_str(&version_cell(t));
    for color in Color::ALL {
        out.push_str(&color_cell(t, color));
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
    out.push_str(&problems_cell(&t.problems, t.error.as_deref()));
    out.push_str("</tr>\n");
}

/// Sorts problems first, then unknowns, then the healthy.
fn state_rank(s: TargetState) -> u8 {
    match s {
        TargetState::Problem => 0,
        TargetState::Unknown => 1,
        TargetState::Ok => 2,
    }
}

/// The version running, the previous one under it; `?` when the host was not read.
fn version_cell(t: &TargetReport) -> String {
    if t.state == TargetState::Unknown {
        return td("?");
    }
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
    format!(
        "<td title=\"{}\">{}{previous}</td>",
        escape(&version_text(t)),
        escape(version)
    )
}

/// One color's unit, marked bad when it failed or is the live color and unhealthy.
fn color_cell(t: &TargetReport, color: Color) -> String {
    let text = t
        .colors
        .iter()
        .find(|c| c.color == color)
        .map_or_else(|| "?".to_string(), color_text);
    let bad =
        text.starts_with("FAILED") || (t.active_color == Some(color) && t.healthy == Some(false));
    format!(
        "<td{}>{}</td>",
        if bad { " class=\"bad\"" } else { "" },
        escape(&text)
    )
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

//! The sortable table of hosts: state, disk, memory, load, uptime.

use std::fmt::Write as _;

use super::{escape, problems_cell, sortable_table, td, td_sort};
use crate::engine::status::{FleetStatus, HostReport, HostState, ProblemKind, human_duration};
use crate::report::status::{disk_text, load_text, memory_text, ordered_hosts};

/// One row per host, the unreachable and troubled first.
pub(super) fn hosts_table(status: &FleetStatus, out: &mut String) {
    sortable_table(
        "hosts",
        "<th>Host</th><th>Address</th>\
         <th data-type=\"number\">State</th><th data-type=\"number\">Disk</th>\
         <th data-type=\"number\">Memory</th><th data-type=\"number\">Load</th>\
         <th data-type=\"number\">Uptime</th><th>Problems</th>",
        out,
        |out| {
            for h in ordered_hosts(status) {
                host_row(h, out);
            }
        },
    );
}

fn host_row(h: &HostReport, out: &mut String) {
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
    out.push_str(&disk_cell(h));
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
    out.push_str(&problems_cell(&h.problems, None));
    out.push_str("</tr>\n");
}

/// The state's word, its CSS class and its rank when sorted (worst first).
fn host_state(h: &HostReport) -> (&'static str, &'static str, u8) {
    match (h.state, h.problems.is_empty()) {
        (HostState::Unreachable, _) => ("unreachable", "unknown", 0),
        (HostState::Error, _) => ("unreadable", "problem", 1),
        (HostState::Up, false) => ("up, problem", "problem", 2),
        (HostState::Up, true) => ("up", "ok", 3),
    }
}

/// The file systems, sorted by the fullest one, bad when one is too full.
fn disk_cell(h: &HostReport) -> String {
    let max_disk = h
        .disks
        .iter()
        .map(|d| d.used_ratio)
        .fold(f64::NAN, f64::max);
    let disk_bad = h.problems.iter().any(|p| p.kind == ProblemKind::DiskUsage);
    format!(
        "<td data-sort=\"{}\"{}>{}</td>",
        if max_disk.is_nan() {
            String::new()
        } else {
            max_disk.to_string()
        },
        if disk_bad { " class=\"bad\"" } else { "" },
        escape(&disk_text(h))
    )
}

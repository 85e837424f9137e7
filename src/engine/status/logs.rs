//! `drover logs`: the script that reads (or follows) a host's tenant logs, and its lines.

use std::fmt::Write as _;
use std::time::Duration;

use super::script::{q, unit_words};
use crate::config::Host;
use crate::engine::root::as_root;
use crate::plan::{Color, TenantLayout};
use crate::transport::RemoteCommand;

/// Which source a log line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// tenant
    pub tenant: String,
    /// `journal`, `blue`, `green` (the agent's log file of that color)
    pub source: String,
    /// the line
    pub text: String,
}

/// Parses one output line of [`logs_script`]: `TENANT SOURCE TEXT`.
#[must_use]
pub fn parse_log_line(line: &str) -> Option<LogLine> {
    let (tenant, rest) = line.split_once(' ')?;
    let (source, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(LogLine {
        tenant: tenant.to_string(),
        source: source.to_string(),
        text: text.to_string(),
    })
}

/// Settings of `drover logs`.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    /// lines of history per source
    pub lines: u32,
    /// journal entries newer than this
    pub since: Option<Duration>,
    /// keep streaming
    pub follow: bool,
}

/// The logs script for a host's tenants: the journal of both color units (systemd's
/// own lines) and the agents' log files (`/var/log/drover/<tenant>/<color>.log`, where
/// the units send stdout and stderr), every line prefixed `TENANT SOURCE `.
///
/// Following, the script runs until its standard input closes (drover closes the
/// channel on Ctrl-C), then ends every follower it started: closing an SSH channel
/// alone does not end processes that have no terminal.
#[must_use]
pub fn logs_script(tenants: &[String], options: LogOptions) -> String {
    let mut s = String::from(
        "LC_ALL=C; export LC_ALL\n\
         drover_prefix() { while IFS= read -r l || [ -n \"$l\" ]; do printf '%s %s\\n' \"$1\" \"$l\"; done; }\n",
    );
    let follow = if options.follow { " -f" } else { "" };
    let since = options
        .since
        .map(|d| format!(" --since=-{}s", d.as_secs().max(1)))
        .unwrap_or_default();
    for t in tenants {
        let units = unit_words([t.as_str()], "-u");
        let _ = writeln!(
            s,
            "{{ journalctl --no-pager -q -o short-iso -n {n}{since}{follow}{units} 2>&1 | drover_prefix {p}; }} &",
            n = options.lines,
            p = q(&format!("{t} journal")),
        );
        for c in Color::ALL {
            let file = q(&TenantLayout::of(t).log_file(c));
            let p = q(&format!("{t} {c}"));
            if options.follow {
                let _ = writeln!(
                    s,
                    "{{ tail -n {n} -F {file} 2>/dev/null | drover_prefix {p}; }} &",
                    n = options.lines
                );
            } else {
                let _ = writeln!(
                    s,
                    "[ -f {file} ] && {{ tail -n {n} {file} 2>&1 | drover_prefix {p}; }} &",
                    n = options.lines
                );
            }
        }
    }
    if options.follow {
        // Until drover closes stdin (Ctrl-C, or the connection is gone), then end the
        // followers: they are in this shell's process group.
        s.push_str("cat >/dev/null\ntrap '' TERM\nkill -TERM 0 2>/dev/null\nexit 0\n");
    } else {
        s.push_str("wait\n");
    }
    s
}

/// The whole command sent for `drover logs` to a host: the script as root; when not
/// following, under `timeout(1)` like any command.
#[must_use]
pub fn logs_command(
    host: &Host,
    tenants: &[String],
    options: LogOptions,
    timeout: Duration,
) -> String {
    let script = as_root(logs_script(tenants, options), host);
    if options.follow {
        script
    } else {
        RemoteCommand::new(script, timeout).wrapped()
    }
}

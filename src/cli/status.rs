//! `drover status SELECT`: the state of every selected target and host, from one SSH
//! command per host, as a table, JSON, an HTML page or Prometheus metrics.
//!
//! Exit codes: 0 every target healthy and no host problem; 1 something flagged (a
//! target unhealthy, down, failed, locked for too long, not deployed; a disk above
//! 80 %, memory below 10 %; a host whose status could not be read); 4 a host
//! unreachable (its targets are reported unknown). 2 for bad input, as everywhere.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::reach::fit_forks;
use super::{CliError, ConnectOpts, Context, SelectOpts};
use crate::config::select::SelectError;
use crate::config::{Inventory, Selection, duration};
use crate::engine::status::{FleetStatus, HostQuery, StatusOptions, TenantQuery, status};
use crate::error::ExitCode;
use crate::report::status::{html, json, prometheus, table};

/// Output formats of `drover status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tables grouped by tenant, problems first (colour on a terminal).
    Table,
    /// One JSON document (schema in docs/status.md).
    Json,
    /// One self-contained HTML page: problems, a tenant × host grid, sortable tables.
    Html,
    /// Prometheus text exposition (node_exporter textfile collector).
    Prometheus,
}

#[derive(Debug, Args)]
pub(crate) struct Opts {
    #[command(flatten)]
    select: SelectOpts,
    #[command(flatten)]
    connect: ConnectOpts,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the report to this file (atomically: a temporary file renamed into place)
    /// instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Hosts worked on at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    forks: usize,
    /// Time the status script may take on a host.
    #[arg(long, default_value = "30s", value_parser = duration::parse, value_name = "DURATION")]
    timeout: Duration,
}

/// The hosts to ask and their selected tenants. With `--tenant`, the hosts of the
/// selected targets; otherwise every selected host (also those without a tenant, for
/// their disk, memory and load).
pub(crate) fn host_queries(
    inventory: &Inventory,
    selection: &Selection,
) -> Result<Vec<HostQuery>, SelectError> {
    let targets = match crate::plan::targets::targets(inventory, selection) {
        Ok(t) => t,
        Err(SelectError::Empty) if selection.tenants.is_empty() => Vec::new(),
        Err(e) => return Err(e),
    };
    let hosts: Vec<&crate::config::Host> = if selection.tenants.is_empty() {
        selection.hosts(inventory)?
    } else {
        inventory
            .hosts
            .iter()
            .filter(|h| targets.iter().any(|(_, th)| th.name == h.name))
            .collect()
    };
    if hosts.is_empty() {
        return Err(SelectError::Empty);
    }
    Ok(hosts
        .into_iter()
        .map(|h| HostQuery {
            host: h.clone(),
            tenants: targets
                .iter()
                .filter(|(_, th)| th.name == h.name)
                .map(|(t, _)| TenantQuery {
                    name: t.name.clone(),
                    port: t.port,
                })
                .collect(),
        })
        .collect())
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename,
/// so readers (node_exporter, a web server) never see a half-written file.
pub(crate) fn write_atomically(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "status".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Renders the report in a format.
pub(crate) fn render(status: &FleetStatus, format: Format, color: bool, terminal: bool) -> String {
    match format {
        Format::Table => table::render(status, color, terminal),
        Format::Json => json::render(status),
        Format::Html => html::render(status),
        Format::Prometheus => prometheus::render(status),
    }
}

pub(crate) fn run(cx: &Context, opts: Opts) -> Result<ExitCode, CliError> {
    let reach = cx.reach(&opts.connect)?;
    let queries = host_queries(&reach.inventory, &Selection::from(opts.select))?;
    let options = StatusOptions {
        forks: fit_forks(opts.forks),
        timeout: opts.timeout,
    };
    let report = reach.block_on(status(Arc::clone(&reach.connector), queries, options));
    let to_terminal = opts.output.is_none() && std::io::stdout().is_terminal();
    let text = render(&report, opts.format, cx.color && to_terminal, to_terminal);
    match &opts.output {
        Some(path) => {
            write_atomically(path, text.as_bytes()).map_err(|source| CliError::Write {
                path: path.clone(),
                source,
            })?;
            if !cx.quiet {
                eprintln!(
                    "wrote {}: {}",
                    path.display(),
                    crate::report::status::summary_line(&report)
                );
            }
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceFile;

    fn inventory() -> Inventory {
        Inventory::from_sources(vec![SourceFile::new(
            "f.toml",
            "[hosts.a]\naddress = \"10.0.0.1\"\n[hosts.b]\naddress = \"10.0.0.2\"\n[hosts.c]\naddress = \"10.0.0.3\"\n\
             [tenants.t1]\nhosts = [\"a\", \"b\"]\nport = 8100\n[tenants.t2]\nhosts = [\"b\"]\n",
        )])
        .unwrap()
    }

    fn shape(q: &[HostQuery]) -> Vec<String> {
        q.iter()
            .map(|q| {
                let t: Vec<&str> = q.tenants.iter().map(|t| t.name.as_str()).collect();
                format!("{}:{}", q.host.name, t.join(","))
            })
            .collect()
    }

    #[test]
    fn hosts_are_asked_about_their_selected_tenants() {
        let inv = inventory();
        let all = Selection {
            all: true,
            ..Selection::default()
        };
        assert_eq!(
            shape(&host_queries(&inv, &all).unwrap()),
            ["a:t1", "b:t1,t2", "c:"]
        );
        let t2 = Selection {
            tenants: vec!["t2".into()],
            ..Selection::default()
        };
        assert_eq!(shape(&host_queries(&inv, &t2).unwrap()), ["b:t2"]);
        let c = Selection {
            hosts: vec!["c".into()],
            ..Selection::default()
        };
        assert_eq!(shape(&host_queries(&inv, &c).unwrap()), ["c:"]);
        assert_eq!(
            host_queries(&inv, &all).unwrap()[0].tenants[0].port,
            Some(8100)
        );
        assert!(host_queries(&inv, &Selection::default()).is_err());
    }

    #[test]
    fn reports_are_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drover.prom");
        write_atomically(&path, b"one\n").unwrap();
        write_atomically(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

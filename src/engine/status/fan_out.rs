//! The fan-out over hosts (bounded like `drover run`) and one status round.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::collect::status_script;
use super::evaluate::{evaluate_host, failed_host};
use super::locks::judge_lock_holders;
use super::report::{FleetStatus, HostReport, HostState, TargetReport};
use super::script::{HostQuery, parse_status};
use crate::config::Host;
use crate::engine::fan_out::fan_out;
use crate::engine::journal;
use crate::engine::root::as_root;
use crate::transport::{Connection, Connector, ExecOutput, RemoteCommand, TransportError};

/// Settings of a status round.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// hosts worked on at once
    pub forks: usize,
    /// time the host script may take (the inventory's command_timeout when shorter)
    pub timeout: Duration,
}

/// What happened when a script ran on a host.
#[derive(Debug)]
pub enum HostRun {
    /// it ran (whatever its exit status)
    Ran(ExecOutput),
    /// no connection, or it was lost
    Unreachable(String),
    /// connected, but the command could not run
    Failed(String),
}

/// Connects to a host, runs `script` as root there, closes.
pub async fn run_on_host<C: Connector>(
    connector: &C,
    host: &Host,
    script: String,
    timeout: Duration,
) -> HostRun {
    let connection = match connector.connect(host).await {
        Ok(c) => c,
        Err(e) => return HostRun::Unreachable(e.to_string()),
    };
    let timeout = timeout
        .min(host.command_timeout)
        .max(Duration::from_secs(1));
    let result = connection
        .exec(&RemoteCommand::new(as_root(script, host), timeout))
        .await;
    connection.close().await;
    match result {
        Ok(out) => HostRun::Ran(out),
        Err(e @ TransportError::ConnectionLost { .. }) => HostRun::Unreachable(e.to_string()),
        Err(e) => HostRun::Failed(e.to_string()),
    }
}

/// Judges what a host run gave for the status script; a lock whose run this control
/// node knows has ended or died is flagged at once.
#[must_use]
pub fn judge_status_run(
    query: &HostQuery,
    run: HostRun,
    duration: Duration,
) -> (HostReport, Vec<TargetReport>) {
    match run {
        HostRun::Unreachable(why) => failed_host(
            &query.host,
            &query.tenants,
            HostState::Unreachable,
            &why,
            duration,
        ),
        HostRun::Failed(why) => failed_host(
            &query.host,
            &query.tenants,
            HostState::Error,
            &why,
            duration,
        ),
        HostRun::Ran(out) => {
            let raw = parse_status(&out.stdout.text());
            if !raw.header {
                let stderr = out.stderr.text();
                let why = if out.timed_out {
                    "the status script timed out".to_string()
                } else if stderr.trim().is_empty() {
                    format!(
                        "the status script printed nothing (exit {})",
                        out.exit_status.map_or("none".into(), |c| c.to_string())
                    )
                } else {
                    format!("the status script failed: {}", stderr.trim())
                };
                return failed_host(
                    &query.host,
                    &query.tenants,
                    HostState::Error,
                    &why,
                    duration,
                );
            }
            let (host, mut targets) = evaluate_host(&query.host, &query.tenants, &raw, duration);
            for target in &mut targets {
                judge_lock_holders(target, journal::liveness);
            }
            (host, targets)
        }
    }
}

/// One status round: the status script on every host, judged.
pub async fn status<C: Connector>(
    connector: Arc<C>,
    queries: Vec<HostQuery>,
    options: StatusOptions,
) -> FleetStatus {
    let started = Instant::now();
    let generated_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let timeout = options.timeout;
    let results = fan_out(queries, options.forks, |query, _slot| {
        let connector = Arc::clone(&connector);
        async move {
            let begun = Instant::now();
            let script = status_script(&query.tenants);
            let run = run_on_host(&*connector, &query.host, script, timeout).await;
            judge_status_run(&query, run, begun.elapsed())
        }
    })
    .await;
    let mut hosts = Vec::new();
    let mut targets = Vec::new();
    for (h, t) in results {
        hosts.push(h);
        targets.extend(t);
    }
    // Tenant then host order, as the selection lists targets.
    targets.sort_by(|a, b| {
        crate::config::inventory::natural_cmp(&a.tenant, &b.tenant)
            .then_with(|| crate::config::inventory::natural_cmp(&a.host, &b.host))
    });
    FleetStatus::new(hosts, targets, generated_at, started.elapsed())
}

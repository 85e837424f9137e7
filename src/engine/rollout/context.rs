//! What every target task of a rollout or rollback shares, and one target's task on
//! its host's connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::super::journal::Journal;
use super::super::pool::Pool;
use super::super::root::exec_root;
use crate::config::Host;
use crate::events::{Event, EventSender};
use crate::outcome::{TargetOutcome, TargetStatus};
use crate::plan::Color;
use crate::plan::bluegreen::{self, Switch, TenantState};
use crate::plan::render::TargetPlan;
use crate::transport::{Connector, ExecOutput, TransportError};

/// Who makes a change: recorded in locks and audit lines.
#[derive(Debug, Clone)]
pub struct Actor {
    /// run id (journal, locks, audit)
    pub run: String,
    /// `user@machine`
    pub operator: String,
    /// take locks held by other runs (audited)
    pub force_unlock: bool,
    /// wait this long for a lock a live run holds, instead of failing at once
    pub lock_wait: Option<Duration>,
}

/// What the target tasks of one run share.
pub(super) struct Ctx<C: Connector> {
    pub(super) pool: Pool<C>,
    hosts: HashMap<String, Host>,
    /// tenant → base port (blue), for tenants that have one
    base_ports: HashMap<String, u16>,
    pub(super) actor: Actor,
    /// per-attempt time limit of drover's own host scripts
    pub(super) script_timeout: Duration,
    pub(super) events: EventSender,
    pub(super) journal: Option<Arc<Journal>>,
}

impl<C: Connector> Ctx<C> {
    pub(super) fn new(
        connector: Arc<C>,
        hosts: HashMap<String, Host>,
        base_ports: HashMap<String, u16>,
        actor: Actor,
        script_timeout: Duration,
        events: EventSender,
        journal: Option<Arc<Journal>>,
    ) -> Self {
        Self {
            pool: Pool::new(connector),
            hosts,
            base_ports,
            actor,
            script_timeout,
            events,
            journal,
        }
    }

    /// The tenant's base port (blue's), which blue-green needs.
    pub(super) fn base_port(&self, tenant: &str) -> Option<u16> {
        self.base_ports.get(tenant).copied()
    }

    /// A target's task: its host and that host's connection, or the outcome of a target
    /// that cannot start (host unknown, unreachable).
    pub(super) async fn task<'a>(
        &'a self,
        target: &'a TargetPlan,
    ) -> Result<TargetTask<'a, C>, TargetOutcome> {
        let Some(host) = self.hosts.get(&target.host) else {
            let why = "host not in inventory".to_string();
            return Err(TargetOutcome::failed_at(
                &target.tenant,
                &target.host,
                "connect",
                why,
            ));
        };
        match self.pool.get(host).await {
            Ok(conn) => Ok(TargetTask {
                cx: self,
                host,
                conn,
                tenant: &target.tenant,
            }),
            Err(e) => Err(TargetOutcome::new(
                &target.tenant,
                &target.host,
                TargetStatus::Unreachable,
                Some(e),
            )),
        }
    }

    /// Reports that a target starts.
    pub(super) async fn started(&self, target: &TargetPlan) {
        let host = format!("{}@{}", target.tenant, target.host);
        let _ = self.events.send(Event::HostStarted { host }).await;
    }

    /// Reports a target's outcome: the run journal and the event stream.
    pub(super) async fn finished(&self, outcome: &TargetOutcome) {
        if let Some(journal) = &self.journal {
            journal.target(outcome);
        }
        let _ = self
            .events
            .send(Event::TargetFinished(Arc::new(outcome.clone())))
            .await;
    }
}

/// One target at work: the tenant on its host, over the host's shared connection.
pub(super) struct TargetTask<'a, C: Connector> {
    pub(super) cx: &'a Ctx<C>,
    pub(super) host: &'a Host,
    pub(super) conn: Arc<C::Connection>,
    pub(super) tenant: &'a str,
}

impl<C: Connector> TargetTask<'_, C> {
    /// Runs one of drover's own scripts as root on the target's host.
    pub(super) async fn root(&self, script: String) -> Result<ExecOutput, TransportError> {
        self.root_for(script, self.cx.script_timeout).await
    }

    /// Like [`TargetTask::root`], with its own time limit.
    pub(super) async fn root_for(
        &self,
        script: String,
        timeout: Duration,
    ) -> Result<ExecOutput, TransportError> {
        exec_root(&*self.conn, self.host, script, timeout).await
    }
}

/// Why one of drover's host scripts did not do its job.
#[derive(Debug, thiserror::Error)]
pub(super) enum ScriptError {
    /// It ran and failed (or ran out of time); what it printed on stderr.
    #[error("{}", .stderr.trim())]
    Said {
        /// its exit status
        status: Option<u32>,
        /// its standard error
        stderr: String,
    },
    /// The connection failed or was lost before it could answer.
    #[error(transparent)]
    Lost(#[from] TransportError),
}

impl ScriptError {
    /// Whether the host was lost (the target is unreachable, not failed).
    pub(super) fn lost(&self) -> bool {
        matches!(self, ScriptError::Lost(_))
    }

    /// The exit status the script ended with, when it ran.
    pub(super) fn status(&self) -> Option<u32> {
        match self {
            ScriptError::Said { status, .. } => *status,
            ScriptError::Lost(_) => None,
        }
    }
}

impl<C: Connector> TargetTask<'_, C> {
    /// Runs one of drover's own scripts as root and wants it to succeed.
    pub(super) async fn run(&self, script: String) -> Result<ExecOutput, ScriptError> {
        checked(self.root(script).await)
    }
}

/// An exec's result as success (exit 0 in time) or a [`ScriptError`].
pub(super) fn checked(
    result: Result<ExecOutput, TransportError>,
) -> Result<ExecOutput, ScriptError> {
    let out = result?;
    if out.exit_status == Some(0) && !out.timed_out {
        Ok(out)
    } else {
        Err(ScriptError::Said {
            status: out.exit_status,
            stderr: out.stderr.text(),
        })
    }
}

/// Why a tenant's state file could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum StateError {
    /// The script did not run to its end.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// It printed something that is not a state file.
    #[error("unreadable state file: {0}")]
    Unreadable(#[from] serde_json::Error),
}

impl<C: Connector> TargetTask<'_, C> {
    /// What the tenant's `state.json` says; `None` before its first blue-green deploy.
    pub(super) async fn state(&self) -> Result<Option<TenantState>, StateError> {
        self.state_after(String::new()).await
    }

    /// [`Self::state`], once `script` (which prints nothing on stdout) has run.
    pub(super) async fn state_after(
        &self,
        script: String,
    ) -> Result<Option<TenantState>, StateError> {
        let out = self
            .run(script + &bluegreen::read_state(self.tenant))
            .await?;
        let text = out.stdout.text();
        if text.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_str(&text)?))
    }

    /// A switch of the tenant from `before` to `to` (color, version), recorded as
    /// `action` in the audit log; `None` when the tenant has no port in the inventory.
    pub(super) fn switch(
        &self,
        before: Option<TenantState>,
        to: (Color, &str),
        revert_after: Option<Duration>,
        action: &str,
    ) -> Option<Switch> {
        let base_port = self.cx.base_port(self.tenant)?;
        let actor = &self.cx.actor;
        let after = TenantState {
            tenant: self.tenant.to_owned(),
            active: to.0,
            version: to.1.to_owned(),
            previous: before.as_ref().map(|s| s.active),
            previous_version: before.as_ref().map(|s| s.version.clone()),
            run: actor.run.clone(),
            updated: super::now_rfc3339(),
            image: None,
        };
        Some(Switch {
            tenant: self.tenant.to_owned(),
            base_port,
            before,
            after,
            run: actor.run.clone(),
            operator: actor.operator.clone(),
            revert_after,
            action: action.to_owned(),
            traffic: None,
            result: None,
        })
    }
}

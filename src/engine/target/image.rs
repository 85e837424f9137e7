//! The `image` step on one host: compare the host's image with the control node's ID
//! (tag or nothing when it is there), else send it: the archive into `podman load`, or
//! a `podman pull` from the run's registry through a reverse tunnel over this
//! connection. Counts the bytes sent.

use std::time::Instant;

use super::result::{Ran, finish, with_become};
use crate::config::Host;
use crate::engine::image::Images;
use crate::outcome::{StepOutcome, StepStatus, millis};
use crate::plan::render::PlannedStep;
use crate::plan::steps::image::{self, Probed};
use crate::plan::steps::{ImageSource, ImageVia, StepSpec};
use crate::transport::{Connection, ExecOutput, RemoteCommand, TransportError};

/// One image step on the host; a control-node failure is the step's failure (nothing
/// was done on the host).
pub(super) async fn run_image<C: Connection>(
    connection: &C,
    host: &Host,
    step: &PlannedStep,
    images: &Images,
    dry_run: bool,
) -> Result<Option<StepOutcome>, TransportError> {
    let Some(spec @ StepSpec::Image { source, name, via }) = &step.spec else {
        return Ok(None);
    };
    let ship = Ship {
        connection,
        host,
        step,
        spec,
        started: Instant::now(),
    };
    let id = match images.id(source).await {
        Ok(id) => id,
        Err(e) => return Ok(Some(ship.failed(&e.to_string()))),
    };
    let _alone = images.shipping(&host.name, &id).await;
    let probe = ship.exec(image::probe(name, &id, dry_run), None).await?;
    let answer = image::probed(&probe.stdout.text());
    let (Some(Probed::Absent), false) = (answer, dry_run) else {
        // present, tagged, a dry run, or a failed probe: all said by its output
        return Ok(Some(ship.finish(&probe, &id, Some(0))));
    };
    let wanted = Wanted {
        source,
        name,
        id: &id,
    };
    match via {
        ImageVia::Load => ship.load(images, &wanted).await,
        ImageVia::Registry => ship.pull(images, &wanted).await,
    }
    .map(Some)
}

/// The image a host lacks: where it is here, its name there, its ID.
struct Wanted<'a> {
    source: &'a ImageSource,
    name: &'a str,
    id: &'a str,
}

struct Ship<'a, C> {
    connection: &'a C,
    host: &'a Host,
    step: &'a PlannedStep,
    spec: &'a StepSpec,
    started: Instant,
}

impl<C: Connection> Ship<'_, C> {
    async fn exec(
        &self,
        script: String,
        stdin_file: Option<std::path::PathBuf>,
    ) -> Result<ExecOutput, TransportError> {
        let command = RemoteCommand {
            script: with_become(script, self.step.r#become, self.host),
            timeout: self.step.timeout.unwrap_or(self.host.command_timeout),
            stdin: None,
            stdin_file,
        };
        self.connection.exec(&command).await
    }

    /// The archive streamed into `podman load`; the bytes sent are the archive's.
    async fn load(&self, images: &Images, w: &Wanted<'_>) -> Result<StepOutcome, TransportError> {
        let archive = match images.archive(w.source, w.id).await {
            Ok(path) => path,
            Err(e) => return Ok(self.failed(&e.to_string())),
        };
        let size = std::fs::metadata(&archive).map_or(0, |m| m.len());
        let out = self.exec(image::load(w.name, w.id), Some(archive)).await?;
        let sent = if out.exit_status == Some(0) { size } else { 0 };
        Ok(self.finish(&out, w.id, Some(sent)))
    }

    /// `podman pull` through a reverse tunnel to the run's registry; the bytes sent are
    /// those the tunnel carried to the host.
    async fn pull(&self, images: &Images, w: &Wanted<'_>) -> Result<StepOutcome, TransportError> {
        let (addr, reference) = match images.pushed(w.source, w.id).await {
            Ok(pushed) => pushed,
            Err(e) => return Ok(self.failed(&e.to_string())),
        };
        let forward = match self.connection.forward_remote(addr).await {
            Ok(forward) => forward,
            Err(e @ TransportError::Forward { .. }) => return Ok(self.failed(&e.to_string())),
            Err(e) => return Err(e),
        };
        let remote = format!("127.0.0.1:{}/{reference}", forward.port());
        let out = self.exec(image::pull(w.name, w.id, &remote), None).await;
        self.connection.cancel_forward(&forward).await;
        Ok(self.finish(&out?, w.id, Some(forward.traffic().to_host())))
    }

    /// The outcome of the step's last exec; its stdout names the image ID, and the
    /// probe's answer line (a protocol line) becomes words.
    fn finish(&self, out: &ExecOutput, id: &str, bytes_sent: Option<u64>) -> StepOutcome {
        let ran = Ran {
            exit_status: out.exit_status,
            timed_out: out.timed_out,
            timeout: self.step.timeout.unwrap_or(self.host.command_timeout),
            stdout: out.stdout.text(),
            stderr: out.stderr.text(),
            attempts: 1,
            duration: self.started.elapsed(),
        };
        let mut outcome = finish(self.step, self.spec, self.host, ran, &[]);
        outcome.bytes_sent = bytes_sent;
        let said: String = outcome
            .stdout
            .lines()
            .map(|l| match l.strip_prefix(image::IMAGE_MARKER) {
                Some(answer) => format!("on the host:{answer}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        outcome.stdout = format!("image sha256:{id}\n{said}");
        outcome
    }

    fn failed(&self, reason: &str) -> StepOutcome {
        StepOutcome {
            name: self.step.name.clone(),
            kind: self.step.kind,
            status: StepStatus::Failed,
            attempts: 1,
            duration_ms: millis(self.started.elapsed()),
            exit_code: None,
            stdout: String::new(),
            stderr: format!("drover: {reason}\n"),
            diff: None,
            bytes_sent: Some(0),
        }
    }
}

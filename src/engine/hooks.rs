//! Running the playbook's `[hooks]` on the control node: `sh -c COMMAND` with the run's
//! `DROVER_*` environment, stdin closed, stdout and stderr kept (bounded), killed with
//! its whole process group at the hook timeout. Every run of a hook is recorded in the
//! run journal; callers show its output (the CLI prints it, the rollout emits it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;

use super::journal::Journal;
use crate::config::hooks::{HookPoint, Hooks};
pub use crate::outcome::HookRun;

/// Output kept per hook run; the rest is counted, not kept.
const MAX_OUTPUT: usize = 64 * 1024;

/// The hooks of one run, with the environment every hook gets.
#[derive(Debug)]
pub struct HookRunner {
    hooks: Hooks,
    dir: PathBuf,
    env: Vec<(String, String)>,
    journal: Option<Arc<Journal>>,
}

impl HookRunner {
    /// `env` is what every hook of the run sees (`DROVER_RUN_ID`, `DROVER_PLAYBOOK`,
    /// `DROVER_OPERATOR`…); each run adds its own. Hooks run in `dir` (the playbook's
    /// directory, so `./notify.sh` is found beside it).
    #[must_use]
    pub fn new(
        hooks: Hooks,
        dir: PathBuf,
        env: Vec<(String, String)>,
        journal: Option<Arc<Journal>>,
    ) -> Self {
        Self {
            hooks,
            dir,
            env,
            journal,
        }
    }

    /// The time limit of one hook run.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.hooks.timeout
    }

    /// Whether the playbook has a hook at `point`.
    #[must_use]
    pub fn has(&self, point: HookPoint) -> bool {
        self.hooks.command(point).is_some()
    }

    /// Runs the hook at `point` (if there is one) with `extra` environment, records it
    /// in the journal and returns what it did.
    pub async fn fire(
        &self,
        point: HookPoint,
        target: Option<String>,
        extra: &[(&str, String)],
    ) -> Option<HookRun> {
        let command = self.hooks.command(point)?;
        let mut env: Vec<(String, String)> = self.env.clone();
        env.push(("DROVER_HOOK".into(), point.word().into()));
        env.extend(extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        let started = Instant::now();
        let (exit_code, timed_out, output) =
            run(command, &self.dir, &env, self.hooks.timeout).await;
        let ran = HookRun {
            point: point.word().to_string(),
            target,
            command: command.to_string(),
            exit_code,
            timed_out,
            output,
            duration_ms: crate::outcome::millis(started.elapsed()),
            timeout_ms: crate::outcome::millis(self.hooks.timeout),
        };
        if let Some(journal) = &self.journal {
            journal.hook(&ran);
        }
        Some(ran)
    }
}

/// Runs `sh -c command` in its own process group: (exit code, timed out, output).
async fn run(
    command: &str,
    dir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> (Option<i32>, bool, String) {
    let mut cmd = tokio::process::Command::new("sh");
    // Secrets drover was given are not the hook's to see (a hook dumping its
    // environment to a chat must not post them).
    for (name, _) in std::env::vars_os() {
        if is_secret_var(&name.to_string_lossy()) {
            cmd.env_remove(&name);
        }
    }
    let spawned = cmd
        .arg("-c")
        .arg(command)
        .current_dir(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return (None, false, format!("cannot start sh: {e}")),
    };
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let pid = child.id();
    let work = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(s) = out.as_mut() {
                let _ = s.read_to_end(&mut a).await;
            }
        };
        let read_err = async {
            if let Some(s) = err.as_mut() {
                let _ = s.read_to_end(&mut b).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await.ok();
        (status.and_then(|s| s.code()), a, b)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok((code, a, b)) => (code, false, joined(&a, &b)),
        Err(_) => {
            if let Some(pid) = pid {
                kill_group(pid).await;
            }
            (None, true, String::new())
        }
    }
}

/// Variables carrying secrets drover reads: kept from hooks.
fn is_secret_var(name: &str) -> bool {
    name.starts_with("DROVER_SECRET_")
        || matches!(name, "DROVER_BECOME_PASS" | "DROVER_KEY_PASSPHRASE")
}

/// Ends the hook and everything it started (a `curl` left behind would hold the run).
async fn kill_group(pid: u32) {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Stdout then stderr, as text, bounded.
fn joined(out: &[u8], err: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(out).into_owned();
    if !err.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&String::from_utf8_lossy(err));
    }
    if text.len() > MAX_OUTPUT {
        let mut cut = MAX_OUTPUT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let dropped = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!("\n… {dropped} more bytes not kept\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Playbook, SourceFile};

    fn runner(hooks: &str) -> HookRunner {
        let text = format!(
            "name = \"p\"\n[[steps]]\nname = \"s\"\nrun = {{ script = \"true\" }}\n[hooks]\n{hooks}"
        );
        let playbook = Playbook::from_source(SourceFile::new("p.toml", text)).unwrap();
        HookRunner::new(
            playbook.hooks,
            PathBuf::new(),
            vec![("DROVER_RUN_ID".into(), "r1".into())],
            None,
        )
    }

    #[tokio::test]
    async fn a_hook_sees_the_run_environment_and_its_output_is_kept() {
        let r = runner("pre-deploy = \"echo $DROVER_RUN_ID $DROVER_HOOK $X; echo err >&2\"\n");
        let ran = r
            .fire(HookPoint::PreDeploy, None, &[("X", "extra".into())])
            .await
            .unwrap();
        assert!(ran.succeeded());
        assert_eq!(ran.output, "r1 pre-deploy extra\nerr\n");
        assert!(r.fire(HookPoint::OnHalt, None, &[]).await.is_none());
    }

    #[test]
    fn secrets_in_the_environment_are_kept_from_hooks() {
        assert!(is_secret_var("DROVER_SECRET_API_KEY"));
        assert!(is_secret_var("DROVER_BECOME_PASS"));
        assert!(!is_secret_var("DROVER_RUN_ID"));
    }

    #[tokio::test]
    async fn a_failing_hook_reports_its_exit_code() {
        let ran = runner("post-deploy = \"exit 7\"\n")
            .fire(HookPoint::PostDeploy, None, &[])
            .await
            .unwrap();
        assert!(!ran.succeeded());
        assert_eq!(ran.exit_code, Some(7));
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let r = runner("on-halt = \"sleep 30 & sleep 30; echo never\"\ntimeout = \"1s\"\n");
        let at = Instant::now();
        let ran = r.fire(HookPoint::OnHalt, None, &[]).await.unwrap();
        assert!(ran.timed_out && !ran.succeeded());
        assert!(at.elapsed() < Duration::from_secs(10), "{:?}", at.elapsed());
        assert_eq!(ran.ending(), "timed out after 1s");
    }
}

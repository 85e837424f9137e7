//! The run's image registry: Debian's `docker-registry` (distribution 2.x) on
//! `127.0.0.1:<free port>`, storing blobs in a cache dir that outlives the run (so a
//! second release pushes only its new layers), started on first use and stopped when
//! the run ends, however it ends: the keeper owns the child process and kills it (by
//! its PID) when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::ImageError;

/// The registry binary: `DROVER_REGISTRY_BIN`, else Debian's path.
fn binary() -> PathBuf {
    std::env::var_os("DROVER_REGISTRY_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/docker-registry"), PathBuf::from)
}

/// Where the registry keeps blobs: `DROVER_REGISTRY_DIR`, else
/// `$XDG_CACHE_HOME/drover/registry` (`~/.cache/drover/registry`).
pub(super) fn storage_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DROVER_REGISTRY_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("drover")
        .join("registry")
}

/// A running registry; dropping it stops it.
#[derive(Debug)]
pub(super) struct Registry {
    /// where it listens
    pub(super) addr: SocketAddr,
    /// killed on drop (`kill_on_drop`): the keeper
    child: tokio::process::Child,
}

impl Registry {
    /// Starts a registry on a free loopback port over `storage`, its config and log in
    /// `work` (the run's scratch dir), and waits until it answers `GET /v2/`.
    pub(super) async fn start(storage: &Path, work: &Path) -> Result<Self, ImageError> {
        let fail = |reason: String| ImageError::Registry { reason };
        std::fs::create_dir_all(storage)
            .map_err(|e| fail(format!("cannot create {}: {e}", storage.display())))?;
        // The port is free now; the registry binds it a few ms later. Another process
        // taking it in between makes the start fail clearly (it does not answer).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| fail(format!("no free loopback port: {e}")))?;
        let config = work.join("registry.yml");
        std::fs::write(&config, config_text(storage, addr))
            .map_err(|e| fail(format!("cannot write {}: {e}", config.display())))?;
        let log = std::fs::File::create(work.join("registry.log"))
            .map_err(|e| fail(format!("cannot create the registry log: {e}")))?;
        let log2 = log
            .try_clone()
            .map_err(|e| fail(format!("cannot create the registry log: {e}")))?;
        let bin = binary();
        let child = tokio::process::Command::new(&bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", bin.display())))?;
        if let Some(pid) = child.id() {
            super::keepers::started(pid);
        }
        let mut registry = Self { addr, child };
        for _ in 0..100 {
            if answers(addr).await {
                return Ok(registry);
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                let log = std::fs::read_to_string(work.join("registry.log")).unwrap_or_default();
                return Err(fail(format!(
                    "{} exited ({status}): {}",
                    bin.display(),
                    tail(&log)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(fail(format!(
            "{} did not answer on {addr} within 10 s",
            bin.display()
        )))
    }
}

impl Drop for Registry {
    /// `kill_on_drop` stops the process; it no longer needs stopping at an abort.
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            super::keepers::stopped(pid);
        }
    }
}

/// The registry's config: filesystem storage, loopback only, quiet logs, no auth (only
/// this machine and the hosts' tunnels reach it).
fn config_text(storage: &Path, addr: SocketAddr) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: \"{}\"\n  delete:\n    enabled: true\n\
         http:\n  addr: \"{addr}\"\n",
        storage
            .display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

/// Whether `GET /v2/` answers 200.
async fn answers(addr: SocketAddr) -> bool {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    let request = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut head)).await,
        Ok(Ok(_)) if head.starts_with(b"HTTP/1.") && head.ends_with(b"200")
    )
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_stores_in_the_cache_and_listens_on_loopback_only() {
        let text = config_text(
            Path::new("/c/drover/registry"),
            "127.0.0.1:40123".parse().unwrap(),
        );
        assert!(
            text.contains("rootdirectory: \"/c/drover/registry\"\n"),
            "{text}"
        );
        assert!(text.contains("addr: \"127.0.0.1:40123\"\n"), "{text}");
        assert!(!text.contains("auth"), "{text}");
    }

    /// Whether `addr` stops answering within 5 s.
    async fn goes_quiet(addr: SocketAddr) -> bool {
        for _ in 0..50 {
            if !answers(addr).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    // One test: an abort stops every registry of the process, so a second test
    // running beside it could lose its own.
    #[tokio::test]
    async fn a_registry_starts_answers_and_is_stopped_when_dropped_or_at_an_abort() {
        if !binary().is_file() {
            eprintln!("skipped: no {}", binary().display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start(&dir.path().join("store"), dir.path())
            .await
            .unwrap();
        let addr = registry.addr;
        assert!(answers(addr).await);
        drop(registry);
        assert!(
            goes_quiet(addr).await,
            "{addr} still answers after the keeper went"
        );

        let registry = Registry::start(&dir.path().join("store"), dir.path())
            .await
            .unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        super::super::keepers::made(&scratch);
        super::super::abort();
        let addr = registry.addr;
        assert!(
            goes_quiet(addr).await,
            "{addr} still answers after an abort"
        );
        assert!(!scratch.exists(), "the scratch dir went at the abort");
    }
}

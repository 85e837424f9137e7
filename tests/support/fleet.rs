//! A real test fleet for end-to-end tests: N hosts as containers from
//! `docker/` (systemd as PID 1, sshd, nginx, python3) on a private Docker
//! network, driven by `docker/fleet.sh`.
//!
//! Every [`Fleet`] is its own: its own network, subnet, containers, client
//! key and state dir, so tests running at the same time (nextest runs each
//! test in its own process) never share hosts. A test that kills or
//! partitions a host therefore disturbs no other test. Dropping the `Fleet`
//! removes all of it, also when the test panics. Fleets left behind by a test
//! process that was killed outright (no `Drop`) are removed by the next
//! [`Fleet::up`] on this machine.
//!
//! Skipping: when `DROVER_E2E` is unset (or `0`) and no Docker engine
//! answers, or the images are not built, [`Fleet::up`] prints one line
//! (`skipping: fleet e2e needs Docker ...`) and returns `None`. With
//! `DROVER_E2E=1` a missing engine fails the test, and missing images are
//! built with `docker/build.sh` first.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The host image the fleet runs (built by `docker/build.sh`).
pub(crate) const HOST_IMAGE: &str = "drover-host:latest";
/// Every test fleet's name starts with this, then `<pid>-<n>`.
const NAME_PREFIX: &str = "drover-e2e-";
/// How long `fleet.sh up` may take before the test fails.
const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// How long `docker/build.sh` may take (a cold build downloads ~170 packages).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);
/// How long any other `fleet.sh` command may take.
const CMD_TIMEOUT: Duration = Duration::from_secs(60);

static FLEETS: AtomicUsize = AtomicUsize::new(0);

fn repo_root() -> PathBuf {
    super::repo::root()
}

fn fleet_sh() -> PathBuf {
    repo_root().join("docker/fleet.sh")
}

/// True when `DROVER_E2E` asks for the fleet tests to run for sure.
pub(crate) fn e2e_required() -> bool {
    std::env::var("DROVER_E2E").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs `cmd` to its end or until `limit`, then kills it. Returns its output
/// and whether it ran out of time.
pub(crate) fn run_bounded(cmd: &mut Command, limit: Duration) -> (Output, bool) {
    let mut running = Running::start(cmd);
    let (status, timed_out) = running.wait_status(limit);
    (running.collect(status), timed_out)
}

/// A child process whose output is read on threads while it runs.
pub(crate) struct Running {
    child: Child,
    started: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> Option<JoinHandle<Vec<u8>>> {
    pipe.map(|mut p| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            buf
        })
    })
}

impl Running {
    fn new(mut child: Child, started: Instant) -> Self {
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Running {
            child,
            started,
            stdout,
            stderr,
        }
    }

    /// Waits up to `limit` (from now); kills the process when it is still
    /// running then. Returns its status and whether it was killed.
    fn wait_status(&mut self, limit: Duration) -> (ExitStatus, bool) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, false);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return (self.child.wait().expect("wait after kill"), true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn collect(&mut self, status: ExitStatus) -> Output {
        let join = |h: Option<JoinHandle<Vec<u8>>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Output {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        }
    }

    /// Wraps a child started with piped stdout and stderr.
    pub(crate) fn from_child(child: Child) -> Self {
        Self::new(child, Instant::now())
    }

    /// Starts `cmd` with no stdin and its output read while it runs.
    pub(crate) fn start(cmd: &mut Command) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Self::from_child(child)
    }

    /// Sends `signal` (`KILL`, `TERM`, `INT`...) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Time since the process was started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits for the process; fails the test (after killing it) when it runs
    /// past `limit` counted from its start.
    pub(crate) fn wait(mut self, limit: Duration) -> Finished {
        let left = limit.saturating_sub(self.started.elapsed());
        let (status, timed_out) = self.wait_status(left);
        let elapsed = self.started.elapsed();
        let output = self.collect(status);
        let finished = Finished { output, elapsed };
        assert!(
            !timed_out,
            "still running after {limit:?}, killed it\n{}",
            finished.describe()
        );
        finished
    }
}

/// `kill -SIGNAL PID`; fails the test when kill fails.
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A finished drover run: its output and how long it took.
pub(crate) struct Finished {
    pub(crate) output: Output,
    pub(crate) elapsed: Duration,
}

impl Finished {
    /// The exit code (None when killed by a signal).
    pub(crate) fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The JSON objects printed one a line on stdout (`--json`).
    pub(crate) fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}\n{}", self.describe()))
            })
            .collect()
    }

    /// The JSON line of `host`; fails the test when there is none or several.
    pub(crate) fn host(&self, host: &str) -> serde_json::Value {
        let mut found: Vec<_> = self
            .json_lines()
            .into_iter()
            .filter(|v| v["host"] == host)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "want one JSON line for {host}\n{}",
            self.describe()
        );
        found.remove(0)
    }

    /// Exit status, time and output, for assertion messages.
    pub(crate) fn describe(&self) -> String {
        format!(
            "status: {}, after {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.output.status,
            self.elapsed,
            self.stdout(),
            self.stderr()
        )
    }
}

/// One host of a fleet.
#[derive(Clone, Debug)]
pub(crate) struct FleetHost {
    /// Inventory name: `host-1`...
    pub(crate) name: String,
    /// Its fixed address on the fleet's private network.
    pub(crate) address: String,
}

/// A running fleet of N hosts; removed when dropped.
pub(crate) struct Fleet {
    name: String,
    subnet: String,
    state: PathBuf,
    hosts: Vec<FleetHost>,
    // Holds the state dir's parent; also the drover command's working dir, so
    // drover finds no inventory but the one it is given.
    tmp: tempfile::TempDir,
}

impl Fleet {
    /// Brings up `n` hosts (host-1..host-n), or returns `None` after printing
    /// one "skipping" line when Docker is not there and `DROVER_E2E` is unset.
    pub(crate) fn up(n: usize) -> Option<Fleet> {
        if let Err(reason) = docker_ready() {
            if e2e_required() {
                super::missing_prerequisite(&format!(
                    "fleet e2e is required (DROVER_E2E is set) but cannot run: {reason}"
                ));
            }
            println!("skipping: fleet e2e needs Docker (set DROVER_E2E=1 to require) — {reason}");
            return None;
        }
        reap_orphans();
        let seq = FLEETS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("{NAME_PREFIX}{pid}-{seq}");
        let tmp = tempfile::Builder::new()
            .prefix("drover-e2e-")
            .tempdir()
            .expect("tempdir");
        let state = tmp.path().join("fleet");
        // Each fleet gets its own /24 in 172.29.1-254.x (172.29.0.x is the
        // default fleet's, inventory/demo.toml). Taken ones are skipped:
        // fleet.sh exits 3 when Docker says the subnet overlaps another.
        let start = (pid as usize)
            .wrapping_mul(31)
            .wrapping_add(seq.wrapping_mul(7));
        let mut fleet = Fleet {
            name,
            subnet: String::new(),
            state,
            hosts: Vec::new(),
            tmp,
        };
        let mut last = String::new();
        for k in 0..254 {
            let octet = 1 + (start + k) % 254;
            fleet.subnet = format!("172.29.{octet}.0/24");
            let (out, timed_out) =
                run_bounded(fleet.script().arg("up").arg(n.to_string()), UP_TIMEOUT);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if !timed_out && out.status.success() {
                fleet.hosts = (1..=n)
                    .map(|i| FleetHost {
                        name: format!("host-{i}"),
                        address: format!("172.29.{octet}.{}", 10 + i),
                    })
                    .collect();
                assert!(
                    fleet.inventory().is_file(),
                    "fleet.sh up wrote no inventory.toml"
                );
                return Some(fleet);
            }
            if !timed_out && out.status.code() == Some(3) {
                last = stderr; // subnet taken; nothing of this fleet exists
                continue;
            }
            // `fleet` drops on this panic: fleet.sh down removes whatever came up.
            panic!(
                "fleet.sh up {n} failed{}:\n{stderr}\n{}",
                if timed_out {
                    format!(" (killed after {UP_TIMEOUT:?})")
                } else {
                    String::new()
                },
                fleet.ps()
            );
        }
        panic!("no free /24 in 172.29.0.0/16 for a test fleet; last error: {last}");
    }

    /// `bash docker/fleet.sh` with this fleet's environment.
    fn script(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(fleet_sh())
            .env("DROVER_FLEET_NAME", &self.name)
            .env("DROVER_FLEET_DIR", &self.state)
            .env("DROVER_FLEET_SUBNET", &self.subnet)
            .env("DROVER_HOST_IMAGE", HOST_IMAGE);
        cmd
    }

    /// Runs `fleet.sh ARGS...`; fails the test when it fails.
    fn fleet_sh(&self, args: &[&str]) -> String {
        let (out, timed_out) = run_bounded(self.script().args(args), CMD_TIMEOUT);
        assert!(
            !timed_out && out.status.success(),
            "fleet.sh {} failed ({}{}):\n{}",
            args.join(" "),
            out.status,
            if timed_out { ", timed out" } else { "" },
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The fleet's Docker network (and container name prefix).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The fleet's state dir: key pair, known_hosts, inventory.toml.
    pub(crate) fn state_dir(&self) -> &Path {
        &self.state
    }

    /// The generated inventory (drover's format) naming every host.
    pub(crate) fn inventory(&self) -> PathBuf {
        self.state.join("inventory.toml")
    }

    /// The client private key authorized for `deploy` on every host.
    pub(crate) fn identity(&self) -> PathBuf {
        self.state.join("id_ed25519")
    }

    /// known_hosts with every host's real ed25519 key, by address.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.state.join("known_hosts")
    }

    /// A scratch dir that lives as long as the fleet (drover's working dir).
    pub(crate) fn work_dir(&self) -> &Path {
        self.tmp.path()
    }

    pub(crate) fn hosts(&self) -> &[FleetHost] {
        &self.hosts
    }

    /// The address of `host` (`host-2`).
    pub(crate) fn address(&self, host: &str) -> &str {
        &self
            .hosts
            .iter()
            .find(|h| h.name == host)
            .unwrap_or_else(|| panic!("no host {host}"))
            .address
    }

    /// `docker kill`: the host is lost at once (its connections drop).
    pub(crate) fn kill(&self, host: &str) {
        self.fleet_sh(&["kill", host]);
    }

    /// Starts a killed or stopped host again (same address, same host key)
    /// and waits until sshd lets the fleet's key in.
    pub(crate) fn start(&self, host: &str) {
        self.fleet_sh(&["start", host]);
    }

    /// Cuts the host off the network: TCP to it times out (is not refused).
    pub(crate) fn partition(&self, host: &str) {
        self.fleet_sh(&["partition", host]);
    }

    /// Reconnects a partitioned host and waits until sshd answers.
    pub(crate) fn heal(&self, host: &str) {
        self.fleet_sh(&["heal", host]);
    }

    /// `fleet.sh ps`: hosts, addresses, states (for failure messages).
    pub(crate) fn ps(&self) -> String {
        let (out, _) = run_bounded(self.script().arg("ps"), CMD_TIMEOUT);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command as root inside the host's container (`docker exec`),
    /// behind drover's back: for setting up and checking what drover did.
    pub(crate) fn exec(&self, host: &str, argv: &[&str]) -> Output {
        let container = format!("{}-{host}", self.name);
        let (out, timed_out) = run_bounded(
            Command::new("docker")
                .arg("exec")
                .arg(&container)
                .args(argv),
            CMD_TIMEOUT,
        );
        assert!(!timed_out, "docker exec {container} {argv:?} timed out");
        out
    }

    /// Runs shell text on the host over plain OpenSSH as `deploy`, with the
    /// fleet's key and strict host key checking against its known_hosts.
    pub(crate) fn ssh(&self, host: &str, script: &str) -> Output {
        self.ssh_with_key(host, &self.identity(), script)
    }

    /// Like [`Fleet::ssh`], offering `identity` (a private key file) instead of
    /// the fleet's key.
    pub(crate) fn ssh_with_key(&self, host: &str, identity: &Path, script: &str) -> Output {
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=5"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            self.known_hosts().display()
        ))
        .arg("-i")
        .arg(identity)
        .arg(format!("deploy@{}", self.address(host)))
        .arg(script);
        let (out, timed_out) = run_bounded(&mut cmd, CMD_TIMEOUT);
        assert!(!timed_out, "ssh {host} {script:?} timed out");
        out
    }

    /// The drover binary with this fleet's inventory (`-i`), run in the
    /// fleet's scratch dir so no other inventory is picked up. Tests run it
    /// through [`super::drover::Drover`], which also gives it the test secret.
    pub(crate) fn drover(&self) -> Command {
        let mut cmd = super::drover::binary_in(self.work_dir());
        cmd.arg("-i").arg(self.inventory());
        cmd
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let (out, timed_out) = run_bounded(self.script().arg("down"), CMD_TIMEOUT);
        if timed_out || !out.status.success() {
            eprintln!(
                "fleet {}: fleet.sh down failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Ok when a Docker engine answers and the host image is there (with
/// `DROVER_E2E` set, a missing image is built with docker/build.sh first).
fn docker_ready() -> Result<(), String> {
    let (out, timed_out) = match Command::new("docker").arg("--version").output() {
        Ok(_) => run_bounded(
            Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
            Duration::from_secs(30),
        ),
        Err(e) => {
            return Err(format!(
                "no docker CLI ({e}); install Docker (apt-get install docker.io) and start it"
            ));
        }
    };
    if timed_out || !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no answer");
        return Err(format!(
            "no Docker engine answers (docker info: {}); start it (dockerd)",
            first.trim()
        ));
    }
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        return Err(
            "no ssh-keygen; run scripts/test, or apt-get install openssh-client".to_owned(),
        );
    }
    let have_image = || {
        Command::new("docker")
            .args(["image", "inspect", HOST_IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have_image() {
        return Ok(());
    }
    if !e2e_required() {
        return Err(format!(
            "image {HOST_IMAGE} is not built (run: bash docker/build.sh)"
        ));
    }
    eprintln!("fleet: {HOST_IMAGE} missing, running docker/build.sh");
    let (out, timed_out) = run_bounded(
        Command::new("bash").arg(repo_root().join("docker/build.sh")),
        BUILD_TIMEOUT,
    );
    if timed_out || !out.status.success() || !have_image() {
        return Err(format!(
            "docker/build.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Removes test fleets whose test process is gone (killed before its `Drop`
/// could run, e.g. by a test runner's timeout).
fn reap_orphans() {
    let Ok(out) = Command::new("docker")
        .args([
            "network",
            "ls",
            "--filter",
            "label=drover.fleet",
            "--format",
            "{{.Name}} {{.Label \"drover.fleet.dir\"}}",
        ])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (net, dir) = line.split_once(' ').unwrap_or((line, ""));
        let Some(rest) = net.strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("fleet: removing {net}, left behind by process {pid}");
        // The network's label names the state dir (in the dead process's
        // tempdir); fleet.sh removes it, then the emptied tempdir goes too.
        let dir = if dir.is_empty() {
            std::env::temp_dir().join(format!("{net}-gone"))
        } else {
            PathBuf::from(dir)
        };
        let _ = run_bounded(
            Command::new("bash")
                .arg(fleet_sh())
                .arg("down")
                .env("DROVER_FLEET_NAME", net)
                .env("DROVER_FLEET_DIR", &dir),
            CMD_TIMEOUT,
        );
        if let Some(parent) = dir.parent().filter(|p| p.starts_with(std::env::temp_dir())) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

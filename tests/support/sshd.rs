//! A real OpenSSH `sshd` on loopback, owned by one test: its own port, host key,
//! client keys, config and known_hosts, many 127.x addresses as hosts, and stopped
//! (by PID) when the value is dropped.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::missing_prerequisite;

/// Login user the harness creates when run as root.
const TEST_USER: &str = "drover-test";
/// Its home (sshd wants one that exists).
const TEST_HOME: &str = "/var/lib/drover-test";

/// sshd accepts at most 16 `ListenAddress` lines; more hosts get more sshd processes.
const ADDRESSES_PER_SSHD: usize = 16;

/// Path to the OpenSSH server; fails the test with one line naming the fix when it is
/// not installed.
pub fn sshd_binary() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            missing_prerequisite(
                "sshd not found: run scripts/test, or apt-get install openssh-server",
            )
        })
}

/// Generates a key pair with ssh-keygen; returns the private key path.
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    let status = match cmd.status() {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing_prerequisite(
            "ssh-keygen not found: run scripts/test, or apt-get install openssh-client",
        ),
        Err(e) => panic!("cannot run ssh-keygen: {e}"),
    };
    assert!(status.success(), "ssh-keygen failed");
    path
}

fn read_pub(private: &Path) -> String {
    std::fs::read_to_string(private.with_extension("pub"))
        .or_else(|_| std::fs::read_to_string(format!("{}.pub", private.display())))
        .expect("public key exists")
}

/// A loopback "fleet": `hosts` addresses on one free port, answered by real sshds.
pub struct SshdFleet {
    /// Scratch directory with keys, configs, logs; also used as the client's HOME.
    pub dir: tempfile::TempDir,
    /// The port every host answers on.
    pub port: u16,
    /// Host addresses, `127.<a>.<b>.<c>`.
    pub addresses: Vec<String>,
    /// Client private key authorized on every host (ed25519, no passphrase).
    pub client_key: PathBuf,
    /// The host public key line (`ssh-ed25519 AAAA…`).
    pub host_key_pub: String,
    children: Vec<Child>,
}

/// Picks a port that is free right now on 127.0.0.1 (tests run in parallel processes).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

impl SshdFleet {
    /// Starts sshds answering on `hosts` loopback addresses. The second octet is derived
    /// from the port so fleets of parallel tests never share addresses.
    pub fn start(hosts: usize) -> Self {
        // First: a missing sshd fails the test with its one line, before any work.
        let sshd = sshd_binary();
        let dir = tempfile::Builder::new()
            .prefix("drover-sshd-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let second = 100 + (port % 100) as usize;
        let addresses: Vec<String> = (0..hosts)
            .map(|i| format!("127.{second}.{}.{}", i / 250, 1 + i % 250))
            .collect();
        let host_key = keygen(dir.path(), "host_ed25519", "ed25519", "");
        let client_key = keygen(dir.path(), "client_ed25519", "ed25519", "");
        std::fs::write(dir.path().join("authorized_keys"), read_pub(&client_key)).unwrap();
        std::fs::create_dir_all("/run/sshd").ok();
        let mut fleet = SshdFleet {
            host_key_pub: read_pub(&host_key)
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
            dir,
            port,
            addresses,
            client_key,
            children: Vec::new(),
        };
        let chunks: Vec<Vec<String>> = fleet
            .addresses
            .chunks(ADDRESSES_PER_SSHD)
            .map(<[String]>::to_vec)
            .collect();
        for (n, chunk) in chunks.iter().enumerate() {
            let child = fleet.spawn_sshd(&sshd, n, chunk, &host_key);
            fleet.children.push(child);
        }
        for address in fleet.addresses.clone() {
            fleet.wait_listening(&address);
        }
        fleet
    }

    fn spawn_sshd(&self, sshd: &Path, n: usize, addresses: &[String], host_key: &Path) -> Child {
        let d = self.dir.path();
        let mut config = format!("Port {}\n", self.port);
        for a in addresses {
            let _ = writeln!(config, "ListenAddress {a}");
        }
        let _ = write!(
            config,
            "HostKey {hk}\nPidFile {d}/sshd-{n}.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nMaxStartups 500:30:1000\n\
             MaxSessions 50\nAllowTcpForwarding yes\nUseDNS no\nLogLevel ERROR\nPrintMotd no\n\
             Subsystem sftp internal-sftp\n",
            hk = host_key.display(),
            d = d.display(),
        );
        let path = d.join(format!("sshd-{n}.config"));
        std::fs::write(&path, config).unwrap();
        Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(&path)
            .arg("-E")
            .arg(d.join(format!("sshd-{n}.log")))
            .stdin(Stdio::null())
            .spawn()
            .expect("sshd starts")
    }

    fn wait_listening(&self, address: &str) {
        let target: SocketAddr = format!("{address}:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {target}; see {}",
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Authorizes another public key (for auth tests).
    pub fn authorize(&self, private: &Path) {
        let mut keys = std::fs::read_to_string(self.dir.path().join("authorized_keys")).unwrap();
        keys.push_str(&read_pub(private));
        std::fs::write(self.dir.path().join("authorized_keys"), keys).unwrap();
    }

    /// known_hosts lines recording the real host key for every address.
    pub fn known_hosts_text(&self) -> String {
        self.addresses
            .iter()
            .map(|a| format!("[{a}]:{} {}\n", self.port, self.host_key_pub))
            .collect()
    }

    /// Path of the known_hosts file the standard inventory names.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The login user. As root (CI) a dedicated `drover-test` user with `/bin/sh` as
    /// its shell, so the machine's own shell start-up files (which may print noise on
    /// stderr) never leak into the outputs tests compare; otherwise the current user.
    pub fn user() -> String {
        static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        USER.get_or_init(|| {
            let uid = Command::new("id")
                .arg("-u")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            if uid.ok().as_deref() != Some("0") {
                return std::env::var("USER").unwrap_or_else(|_| "root".into());
            }
            let exists = || {
                Command::new("id")
                    .arg(TEST_USER)
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            if !exists() {
                // Parallel test processes may race here; whoever loses sees it exist.
                let _ = Command::new("useradd")
                    .args([
                        "--system",
                        "--shell",
                        "/bin/sh",
                        "--home-dir",
                        TEST_HOME,
                        "--no-create-home",
                        TEST_USER,
                    ])
                    .output();
            }
            assert!(exists(), "could not create the test login user {TEST_USER}");
            // sshd without PAM refuses locked ('!') accounts; '*' = no password, not locked.
            let _ = Command::new("usermod")
                .args(["-p", "*", "-d", TEST_HOME, TEST_USER])
                .output();
            let _ = std::fs::create_dir_all(TEST_HOME);
            let _ = Command::new("chown").args([TEST_USER, TEST_HOME]).output();
            TEST_USER.to_string()
        })
        .clone()
    }

    /// An inventory with one host per address (`h1`, `h2`, …), strict known_hosts
    /// written beside it, and `extra` appended verbatim.
    pub fn write_inventory(&self, extra: &str) -> PathBuf {
        std::fs::write(self.known_hosts_path(), self.known_hosts_text()).unwrap();
        let mut text = format!(
            "[defaults]\nuser = \"{}\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\nport = {}\nbecome = \"none\"\nconnect_timeout = \"20s\"\n\n",
            Self::user(),
            self.client_key.display(),
            self.known_hosts_path().display(),
            self.port
        );
        for (i, a) in self.addresses.iter().enumerate() {
            let _ = write!(text, "[hosts.h{}]\naddress = \"{a}\"\n", i + 1);
            if i % 2 == 0 {
                text.push_str("groups = [\"odd\"]\n");
            }
        }
        text.push_str(extra);
        let path = self.dir.path().join("inventory.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for SshdFleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! Test helpers: run a step script locally the way a host would (`sh -c`, stdin piped).

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::{CHANGED_MARKER, StepScript};

/// What a script did.
#[derive(Debug)]
pub(super) struct Out {
    pub(super) code: i32,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl Out {
    /// The script reported a change.
    pub(super) fn changed(&self) -> bool {
        self.stdout.lines().any(|l| l == CHANGED_MARKER)
    }

    /// Exit 0, or panic with the output.
    pub(super) fn ok(self) -> Self {
        assert_eq!(self.code, 0, "script failed: {self:#?}");
        self
    }
}

/// Runs the script with `sh -c`, its stdin piped.
pub(super) fn run(s: &StepScript) -> Out {
    run_with_path(s, None)
}

/// Runs the script with `PATH` replaced.
pub(super) fn run_with_path(s: &StepScript, path: Option<&str>) -> Out {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(&s.script);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.stdin(if s.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn sh");
    let writer = s.stdin.clone().map(|bytes| {
        let mut stdin = child.stdin.take().expect("stdin");
        // The script may stop reading early; a broken pipe is not an error here.
        std::thread::spawn(move || drop(stdin.write_all(&bytes)))
    });
    let out = child.wait_with_output().expect("wait sh");
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A name for a file that an injection would create, unique per test.
pub(super) fn pwned_path(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("drover-pwned-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// A value full of shell metacharacters that creates `pwned` when evaluated.
pub(super) fn hostile(pwned: &std::path::Path) -> String {
    let p = pwned.display();
    format!("x'y\"z; touch {p}; $(touch {p}) `touch {p}` a\nb -c")
}

#[test]
#[ignore = "prints sample scripts"]
fn print_samples() {
    use super::*;
    let own = Ownership { owner: Some("nobody".into()), group: Some("nogroup".into()), mode: Some("0640".into()) };
    let specs = vec![
        StepSpec::User { name: "drover-acme".into(), home: "/var/lib/drover/acme".into() },
        StepSpec::Dir { path: "/opt/drover/acme".into(), ownership: own.clone() },
        StepSpec::Upload { dest: "/opt/x/v1".into(), files: vec![UploadFile { path: "a".into(), bytes: vec![], executable: false }], ownership: own.clone() },
        StepSpec::File { dest: "/etc/x".into(), content: vec![], ownership: own.clone(), secret: false, on_change: Some("systemctl daemon-reload".into()) },
        StepSpec::Service { name: "a.service".into(), state: ServiceState::Started, enabled: Some(true) },
        StepSpec::Health { probe: HealthProbe::Http { url: "http://127.0.0.1:8100/health".into(), status: 200, body: Some("ok".into()) }, retries: 3, interval: std::time::Duration::from_millis(1500) },
        StepSpec::Health { probe: HealthProbe::Tcp { host: "127.0.0.1".into(), port: 22 }, retries: 3, interval: std::time::Duration::from_secs(1) },
        StepSpec::Run { script: "echo hi".into(), creates: Some("/x".into()), unless: Some("true".into()) },
    ];
    for (i, s) in specs.iter().enumerate() {
        std::fs::write(format!("/tmp/drover-sample-{i}.sh"), script(s, false, true).script).unwrap();
    }
}

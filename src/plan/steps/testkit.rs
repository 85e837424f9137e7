//! Test helpers: run a step script locally the way a host would (`sh -c`, stdin piped).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{
    CHANGED_MARKER, HealthProbe, Ownership, ServiceState, StepScript, StepSpec, UploadFile,
};

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

/// One spec of every kind (SC2089/SC2090 flag quotes inside values: that is the point; SC2034: `DRY` is set even where unused, it is the protocol), with hostile values where a value may be anything.
pub(super) fn every_kind() -> Vec<StepSpec> {
    let evil = hostile(Path::new("/tmp/drover-pwned-never"));
    let mut specs = user_and_files(&evil);
    specs.extend(services());
    specs.extend(health_checks(&evil));
    specs.push(StepSpec::Run {
        script: evil.clone(),
        creates: Some(format!("/{evil}")),
        unless: Some(evil.clone()),
    });
    specs.push(StepSpec::Dir {
        path: "relative".into(),
        ownership: Ownership::default(),
    });
    specs
}

/// A user, then a directory, an upload and files (one secret) named and owned by `evil`.
fn user_and_files(evil: &str) -> Vec<StepSpec> {
    let own = Ownership {
        owner: Some(evil.to_owned()),
        group: Some("nogroup".into()),
        mode: Some("0640".into()),
    };
    vec![
        StepSpec::User {
            name: "drover-acme".into(),
            home: format!("/var/lib/{evil}"),
        },
        StepSpec::Dir {
            path: format!("/opt/{evil}"),
            ownership: own.clone(),
        },
        StepSpec::Upload {
            dest: format!("/opt/{evil}"),
            files: vec![UploadFile {
                path: evil.to_owned(),
                bytes: evil.as_bytes().to_vec(),
                executable: true,
            }]
            .into(),
            ownership: own.clone(),
        },
        StepSpec::File {
            dest: format!("/etc/{evil}"),
            content: vec![],
            ownership: own,
            secret: false,
            on_change: Some(evil.to_owned()),
        },
        StepSpec::File {
            dest: "/etc/drover/env".into(),
            content: b"K=v".to_vec(),
            ownership: Ownership::default(),
            secret: true,
            on_change: None,
        },
    ]
}

/// A service in each state.
fn services() -> Vec<StepSpec> {
    vec![
        StepSpec::Service {
            name: "a@b.service".into(),
            state: ServiceState::Started,
            enabled: Some(true),
        },
        StepSpec::Service {
            name: "a.service".into(),
            state: ServiceState::Stopped,
            enabled: Some(false),
        },
        StepSpec::Service {
            name: "a.service".into(),
            state: ServiceState::Reloaded,
            enabled: None,
        },
    ]
}

/// An HTTP probe expecting the body `evil`, and a TCP probe.
fn health_checks(evil: &str) -> Vec<StepSpec> {
    let interval = Duration::from_millis(1500);
    vec![
        StepSpec::Health {
            probe: HealthProbe::Http {
                url: "http://127.0.0.1:8100/h?a=$(x)".into(),
                status: 200,
                body: Some(evil.to_owned()),
            },
            retries: 3,
            interval,
        },
        StepSpec::Health {
            probe: HealthProbe::Tcp {
                host: "::1".into(),
                port: 22,
            },
            retries: 3,
            interval,
        },
        StepSpec::Health {
            probe: HealthProbe::Command {
                command: evil.to_owned(),
                user: "agent-acme".into(),
                record: Some("/var/lib/drover/.health/acme.blue.sh".into()),
                container: None,
            },
            retries: 3,
            interval,
        },
    ]
}

#[test]
fn generated_scripts_pass_shellcheck() {
    if Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: shellcheck is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, spec) in every_kind().iter().enumerate() {
        for (dry, diff) in [(false, false), (true, true), (false, true)] {
            let p = dir.path().join(format!("{i}-{dry}-{diff}.sh"));
            std::fs::write(&p, super::script(spec, dry, diff).script).unwrap();
            files.push(p);
        }
    }
    let out = Command::new("shellcheck")
        .args([
            "--shell=sh",
            "--severity=warning",
            "--exclude=SC2089,SC2090,SC2034",
        ])
        .args(&files)
        .output()
        .expect("shellcheck");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

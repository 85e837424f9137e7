//! `health` (HTTP, TCP or command probe from the host, with retries) and `run` (a guarded script).

use std::fmt::Write as _;
use std::time::Duration;

use super::shell::{prelude, q};
use super::{HealthProbe, StepScript};

/// Marks the status code at the end of a probe's output.
const STATUS: &str = "__drover_status__";

/// HTTP GET without following redirects; prints the body, then STATUS and the code.
const PY_HTTP: &str = r#"import sys, urllib.request, urllib.error
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args): return None
out = sys.stdout.buffer
try:
    r = urllib.request.build_opener(NoRedirect).open(sys.argv[1], timeout=float(sys.argv[2]))
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except Exception as e:
    out.write(("python3: %s\n__drover_status__000" % e).encode()); sys.exit(1)
out.write(body + b"\n__drover_status__" + str(code).encode())"#;

const PY_TCP: &str = r#"import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except Exception as e:
    print("python3: %s" % e); sys.exit(1)"#;

/// perl-base (Essential on Debian) ships IO::Socket::IP.
const PL_TCP: &str = r#"IO::Socket::IP->new(PeerHost => $ARGV[0], PeerPort => $ARGV[1], Timeout => $ARGV[2]) or die "perl: $@\n""#;

/// How often a health check looks again while it waits, at most.
const POLL: Duration = Duration::from_millis(100);

/// Seconds as `sleep`, `curl --max-time` and python take them: `0.25`, `2`.
fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

/// Waits until the probe passes, for as long as `retries` attempts `interval` apart
/// would, but checking every [`POLL`] when `interval` is longer: a service that comes
/// up 150 ms after its start is seen then, not half a second later (a rollout waits on
/// this once per target). Each attempt is bounded by `interval` clamped to 2..=10 s.
/// Never reports a change; skipped in dry-run.
pub(super) fn health(
    probe: &HealthProbe,
    retries: u32,
    interval: Duration,
    dry_run: bool,
) -> StepScript {
    let attempt = interval.clamp(Duration::from_secs(2), Duration::from_secs(10));
    // A command may be costly (and its runtime stretches the wait): it keeps its interval.
    let poll = match probe {
        HealthProbe::Command { .. } => interval,
        _ => interval.min(POLL),
    };
    let per_interval = interval
        .as_millis()
        .div_ceil(poll.as_millis().max(1))
        .max(1);
    let polls = u128::from(retries.max(1)).saturating_mul(per_interval);
    let t = secs(attempt);
    let mut s = prelude(dry_run);
    let (what, check) = match probe {
        HealthProbe::Http { url, status, body } => http_check(url, *status, body.as_deref(), &t),
        HealthProbe::Tcp { host, port } => tcp_check(host, *port, &t, attempt.as_secs().max(1)),
        HealthProbe::Command {
            command,
            user,
            record,
            container,
        } => (
            super::command_probe::setup(user, command, record.as_deref(), container.as_deref()),
            super::command_probe::attempt(&t),
        ),
    };
    let _ = write!(
        s,
        "{what}\
         if [ \"$DRY\" = 1 ]; then echo \"health check of $url skipped in dry-run\"; exit 0; fi\n\
         snippet() {{ printf '%s' \"$body\" | tr '\\n\\r\\t' '   ' | head -c 300; }}\n\
         n=0; why=''\n\
         while :; do\n\
         n=$((n + 1))\n\
         {check}\
         if [ \"$ok\" = 1 ]; then exit 0; fi\n\
         if [ \"$n\" -ge {polls} ]; then break; fi\n\
         sleep {poll}\n\
         done\n\
         fail \"health check of $url failed after $(( (n + {per_interval} - 1) / {per_interval} )) attempt(s): $why\"\n",
        poll = secs(poll),
    );
    StepScript {
        script: s,
        stdin: None,
    }
}

/// One HTTP attempt (curl, else python3): sets `ok`, `body` and `why`; and the setup
/// that names `url`.
fn http_check(url: &str, status: u16, body: Option<&str>, t: &str) -> (String, String) {
    let body_check = body.as_ref().map_or_else(String::new, |b| {
        format!(
            "want={b}\n\
             if [ \"$ok\" = 1 ]; then case \"$body\" in *\"$want\"*) ;; \
             *) ok=0; why=\"status $code but the body does not contain \\\"$want\\\": $(snippet)\" ;; esac; fi\n",
            b = q(b),
        )
    });
    let check = format!(
        "if command -v curl >/dev/null 2>&1; then\n\
         out=$(curl -sS --max-time {t} -w '\\n{STATUS}%{{http_code}}' -- \"$url\" 2>&1); rc=$?\n\
         elif command -v python3 >/dev/null 2>&1; then\n\
         out=$(python3 -c {py} \"$url\" {t}); rc=$?\n\
         else fail \"health check needs curl or python3 on the host\"; fi\n\
         code=${{out##*{STATUS}}}; body=${{out%?{STATUS}*}}\n\
         if [ \"$rc\" != 0 ]; then ok=0; why=\"no answer: $(snippet)\"\n\
         elif [ \"$code\" != {status} ]; then ok=0; why=\"status $code (want {status}): $(snippet)\"\n\
         else ok=1; fi\n\
         {body_check}",
        py = q(PY_HTTP),
    );
    (format!("url={}\n", q(url)), check)
}

/// One TCP attempt (python3, perl, nc or curl): sets `ok`, `body` and `why`; and the
/// setup that names `host` and `url`.
fn tcp_check(host: &str, port: u16, t: &str, nc_t: u64) -> (String, String) {
    let check = format!(
        "if command -v python3 >/dev/null 2>&1; then\n\
         body=$(python3 -c {py} \"$host\" {port} {t} 2>&1); rc=$?\n\
         elif command -v perl >/dev/null 2>&1; then\n\
         body=$(perl -MIO::Socket::IP -e {pl} \"$host\" {port} {t} 2>&1); rc=$?\n\
         elif command -v nc >/dev/null 2>&1; then\n\
         body=$(nc -z -w {nc_t} \"$host\" {port} </dev/null 2>&1); rc=$?\n\
         elif command -v curl >/dev/null 2>&1; then\n\
         n_conn=$(curl -s --max-time 1 -o /dev/null -w '%{{num_connects}}' \"telnet://$host:{port}\" </dev/null)\n\
         if [ \"$n_conn\" = 1 ]; then rc=0; else rc=1; body='curl could not connect'; fi\n\
         else fail \"TCP health check needs python3, perl, nc or curl on the host\"; fi\n\
         if [ \"$rc\" = 0 ]; then ok=1; else ok=0; why=\"cannot connect: $(snippet)\"; fi\n",
        py = q(PY_TCP),
        pl = q(PL_TCP),
    );
    (format!("host={}\nurl=\"$host:{port}\"\n", q(host)), check)
}

/// Skipped when `creates` exists or `unless` succeeds; else runs `script` and reports
/// a change. Dry-run evaluates the guards but never runs the script.
pub(super) fn run(
    script: &str,
    creates: Option<&str>,
    unless: Option<&str>,
    dry_run: bool,
) -> StepScript {
    let mut s = prelude(dry_run);
    if let Some(c) = creates {
        let _ = writeln!(
            s,
            "c={}\nif [ -e \"$c\" ] || [ -L \"$c\" ]; then exit 0; fi",
            q(c)
        );
    }
    if let Some(u) = unless {
        let _ = writeln!(s, "if sh -c {} </dev/null >&2; then exit 0; fi", q(u));
    }
    let _ = write!(
        s,
        "changed\n\
         if [ \"$DRY\" = 1 ]; then exit 0; fi\n\
         sh -c {script} </dev/null; rc=$?\n\
         if [ \"$rc\" != 0 ]; then fail \"script exited with status $rc\"; fi\n",
        script = q(script),
    );
    StepScript {
        script: s,
        stdin: None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::TcpListener;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::plan::steps::testkit::{hostile, pwned_path, run, run_with_path};
    use crate::plan::steps::{StepSpec, script};

    /// An HTTP server on 127.0.0.1 answering every request with `status` and `body`.
    fn serve(status: u16, body: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn http(port: u16, status: u16, body: Option<&str>, retries: u32) -> StepSpec {
        StepSpec::Health {
            probe: HealthProbe::Http {
                url: format!("http://127.0.0.1:{port}/health"),
                status,
                body: body.map(Into::into),
            },
            retries,
            interval: Duration::from_millis(100),
        }
    }

    fn tcp(port: u16) -> StepSpec {
        StepSpec::Health {
            probe: HealthProbe::Tcp {
                host: "127.0.0.1".into(),
                port,
            },
            retries: 2,
            interval: Duration::from_millis(50),
        }
    }

    /// A PATH holding only the given tools (plus the basics a script needs).
    fn only_tools(dir: &Path, tools: &[&str]) -> Option<String> {
        for tool in ["sh", "tr", "head", "sleep", "cat"].iter().chain(tools) {
            let found = std::process::Command::new("/bin/sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .ok()?;
            let mut p = String::from_utf8(found.stdout).ok()?.trim().to_owned();
            if *tool == "python3" {
                // pyenv shims need pyenv on PATH: link the real interpreter.
                let real = std::process::Command::new(&p)
                    .args(["-c", "import sys; print(sys.executable)"])
                    .output()
                    .ok()?;
                p = String::from_utf8(real.stdout).ok()?.trim().to_owned();
            }
            if p.is_empty() {
                return None;
            }
            std::os::unix::fs::symlink(p, dir.join(tool)).ok()?;
        }
        Some(dir.to_str()?.to_owned())
    }

    #[test]
    fn http_health_passes_on_the_status_and_body() {
        let port = serve(200, "{\"status\":\"ok\"}");
        let out = run(&script(&http(port, 200, Some("\"ok\""), 3), false, false)).ok();
        assert!(!out.changed(), "a health check never changes anything");
        let port = serve(204, "");
        run(&script(&http(port, 204, None, 1), false, false)).ok();
    }

    /// An HTTP server answering 503 until `ready_after` has passed, then 200; and
    /// how many requests it has had.
    fn serve_ready_after(ready_after: Duration) -> (u16, std::sync::Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let start = Instant::now();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let status = if start.elapsed() < ready_after {
                    503
                } else {
                    200
                };
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        (port, seen)
    }

    #[test]
    fn http_health_with_a_long_interval_looks_again_every_poll_until_the_service_answers() {
        let (port, seen) = serve_ready_after(Duration::from_millis(400));
        let spec = StepSpec::Health {
            probe: HealthProbe::Http {
                url: format!("http://127.0.0.1:{port}/health"),
                status: 200,
                body: None,
            },
            retries: 3,
            interval: Duration::from_secs(1),
        };
        run(&script(&spec, false, false)).ok();
        // One attempt per interval would have asked twice (at 0 and at 1 s).
        assert!(seen.load(Ordering::SeqCst) >= 3, "{seen:?}");
    }

    #[test]
    fn http_health_fails_after_its_retries_on_a_wrong_status() {
        let port = serve(503, "warming up\nplease wait");
        let start = Instant::now();
        let out = run(&script(&http(port, 200, None, 4), false, false));
        let took = start.elapsed();
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains(
                "failed after 4 attempt(s): status 503 (want 200): warming up please wait"
            ),
            "{out:?}"
        );
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn http_health_fails_when_the_body_lacks_the_substring() {
        let port = serve(200, "status: degraded");
        let out = run(&script(
            &http(port, 200, Some("status: ok"), 2),
            false,
            false,
        ));
        assert_eq!(out.code, 1);
        assert!(
            out.stderr
                .contains("body does not contain \"status: ok\": status: degraded"),
            "{out:?}"
        );
    }

    #[test]
    fn http_health_on_a_closed_port_fails_with_the_error() {
        let out = run(&script(&http(closed_port(), 200, None, 2), false, false));
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("no answer:"), "{out:?}");
    }

    #[test]
    fn tcp_health_passes_on_an_open_port_and_fails_on_a_closed_one() {
        run(&script(&tcp(serve(200, "")), false, false)).ok();
        let out = run(&script(&tcp(closed_port()), false, false));
        assert_eq!(out.code, 1);
        assert!(out.stderr.contains("cannot connect:"), "{out:?}");
    }

    #[test]
    fn health_falls_back_to_python_for_http_and_to_perl_or_curl_for_tcp() {
        let t = tempfile::tempdir().unwrap();
        let Some(path) = only_tools(t.path(), &["python3"]) else {
            eprintln!("skipped: no python3 here");
            return;
        };
        let port = serve(200, "fine");
        run_with_path(
            &script(&http(port, 200, Some("fine"), 1), false, false),
            Some(&path),
        )
        .ok();
        let out = run_with_path(
            &script(&http(port, 201, None, 1), false, false),
            Some(&path),
        );
        assert!(
            out.stderr.contains("status 200 (want 201): fine"),
            "{out:?}"
        );
        let out = run_with_path(
            &script(&http(closed_port(), 200, None, 1), false, false),
            Some(&path),
        );
        assert!(out.stderr.contains("no answer: python3:"), "{out:?}");

        for tool in ["perl", "curl"] {
            let t = tempfile::tempdir().unwrap();
            let path = only_tools(t.path(), &[tool]).expect(tool);
            run_with_path(&script(&tcp(serve(200, "")), false, false), Some(&path)).ok();
            let out = run_with_path(&script(&tcp(closed_port()), false, false), Some(&path));
            assert_eq!(out.code, 1, "{out:?}");
            assert!(
                out.stderr.contains(&format!("cannot connect: {tool}")),
                "{out:?}"
            );
        }
    }

    #[test]
    fn health_is_skipped_in_dry_run() {
        let out = run(&script(&http(closed_port(), 200, None, 5), true, false)).ok();
        assert!(out.stdout.contains("skipped in dry-run") && !out.changed());
    }

    #[test]
    fn health_values_are_quoted() {
        let pwned = pwned_path("health");
        let spec = StepSpec::Health {
            probe: HealthProbe::Http {
                url: format!(
                    "http://127.0.0.1:{}/?a=$(touch${{IFS}}{})&b=`x`",
                    closed_port(),
                    pwned.display()
                ),
                status: 200,
                body: Some(hostile(&pwned)),
            },
            retries: 1,
            interval: Duration::from_millis(10),
        };
        assert_eq!(run(&script(&spec, false, false)).code, 1);
        assert!(!pwned.exists(), "injection executed");
    }

    fn run_step(script_text: &str, creates: Option<&Path>, unless: Option<&str>) -> StepSpec {
        StepSpec::Run {
            script: script_text.into(),
            creates: creates.map(|p| p.to_str().unwrap().into()),
            unless: unless.map(Into::into),
        }
    }

    #[test]
    fn run_executes_once_then_is_skipped_by_creates() {
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("done");
        let log = t.path().join("log");
        let body = format!(
            "echo ran >> '{}'; touch '{}'",
            log.display(),
            marker.display()
        );
        let spec = run_step(&body, Some(&marker), None);
        assert!(run(&script(&spec, false, false)).ok().changed());
        let out = run(&script(&spec, false, false)).ok();
        assert!(!out.changed());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");
    }

    #[test]
    fn run_is_skipped_when_unless_succeeds() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        let body = format!("echo ran >> '{}'", log.display());
        let guard = format!("grep -q ran '{}'", log.display());
        let spec = run_step(&body, None, Some(&guard));
        assert!(run(&script(&spec, false, false)).ok().changed());
        assert!(!run(&script(&spec, false, false)).ok().changed());
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");
    }

    #[test]
    fn run_dry_run_reports_a_change_without_running() {
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("m");
        let spec = run_step(
            &format!("touch '{}'", marker.display()),
            Some(&marker),
            Some("false"),
        );
        assert!(run(&script(&spec, true, false)).ok().changed());
        assert!(!marker.exists());
    }

    #[test]
    fn run_failure_reports_the_status() {
        let out = run(&script(
            &run_step("echo oops >&2; exit 7", None, None),
            false,
            false,
        ));
        assert_eq!(out.code, 1);
        assert!(
            out.stderr.contains("oops") && out.stderr.contains("script exited with status 7"),
            "{out:?}"
        );
    }

    #[test]
    fn run_guards_with_hostile_values_stay_inert() {
        let t = tempfile::tempdir().unwrap();
        let pwned = pwned_path("run");
        let creates = t.path().join(hostile(&pwned));
        std::fs::create_dir_all(&creates).unwrap();
        let spec = run_step("exit 9", Some(&creates), None);
        assert!(
            !run(&script(&spec, false, false)).ok().changed(),
            "the literal path exists: skipped"
        );
        let spec = run_step(
            "printf '%s' \"$1\"",
            Some(&t.path().join(format!("{}-missing", hostile(&pwned)))),
            None,
        );
        assert!(run(&script(&spec, false, false)).ok().changed());
        assert!(!pwned.exists(), "injection executed");
    }
}

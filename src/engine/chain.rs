//! Step chains: consecutive steps of a target sent to the host as one script.
//!
//! Every exec costs a channel, a login shell and (with `become`) a `sudo` on the host,
//! which is most of a step's time and of the host's CPU. Steps that read no stdin and
//! have no retries are therefore run back to back by one script, each still in its own
//! `sh -c` under its own `timeout`, and the script stops at the first failure exactly as
//! separate execs would. A step's stdin travels in the chain's stdin, and `dd` hands
//! each step exactly its own bytes (the others read `/dev/null`). After each step it writes a marker line, carrying the step's
//! exit status and the host's uptime, to stdout and to stderr; [`split`] cuts the
//! captured streams back into one result per step.
//!
//! A chain may carry a `finally` script (the tenant's unlock) that runs once the steps
//! are over, however they ended, so a guarded target needs no exec of its own for it.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

/// One step of a chain: its script and time limit.
#[derive(Debug, Clone)]
pub(crate) struct Link<'a> {
    /// shell text for `sh -c`
    pub(crate) script: &'a str,
    /// time limit for this step
    pub(crate) timeout: Duration,
    /// bytes for its stdin
    pub(crate) stdin: Option<&'a [u8]>,
}

/// A chain ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// the script that runs every link
    pub(crate) script: String,
    /// time limit for the whole chain: the links' limits and their kill grace
    pub(crate) timeout: Duration,
    /// every link's stdin, in order
    pub(crate) stdin: Option<Vec<u8>>,
    marker: String,
}

/// What one link did, cut out of the chain's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkOutput {
    /// its exit status; `None` when the chain ended while it ran
    pub(crate) exit_status: Option<u32>,
    /// its standard output
    pub(crate) stdout: String,
    /// its standard error
    pub(crate) stderr: String,
    /// wall time on the host, when the host's uptime could be read
    pub(crate) duration: Option<Duration>,
}

/// Status word of the marker line `finally` prints when it is done.
const FINALLY_RAN: &str = "finally";

/// The grace `timeout -k` gives a step between TERM and KILL.
const KILL_GRACE_SECS: u64 = 2;

impl Chain {
    /// Builds the script for `links`, in order.
    pub(crate) fn new(links: &[Link<'_>]) -> Self {
        Self::build(links, None)
    }

    /// Like [`Chain::new`], and `finally` runs after the links whatever their outcome
    /// (its output is discarded; [`Chain::finally_ran`] tells whether it ran).
    pub(crate) fn with_finally(links: &[Link<'_>], finally: &Link<'_>) -> Self {
        Self::build(links, Some(finally))
    }

    fn build(links: &[Link<'_>], finally: Option<&Link<'_>>) -> Self {
        // A marker no step prints by accident: fixed prefix, random per chain.
        let nonce = std::hash::RandomState::new().build_hasher().finish();
        let marker = format!("__drover_step_{nonce:016x}__");
        let mut script = format!(
            "__drover_m={marker}\n\
             if command -v timeout >/dev/null 2>&1; then\n  \
               __drover_step() {{ timeout -k {KILL_GRACE_SECS} \"$1\" sh -c \"$2\"; }}\n\
             else\n  \
               __drover_step() {{ sh -c \"$2\"; }}\n\
             fi\n\
             __drover_end() {{\n  \
               __drover_t=; read -r __drover_t __drover_idle </proc/uptime 2>/dev/null\n  \
               printf '\\n%s %s %s\\n' \"$__drover_m\" \"$1\" \"$__drover_t\"\n  \
               printf '\\n%s %s\\n' \"$__drover_m\" \"$1\" >&2\n\
             }}\n\
             __drover_end start\n"
        );
        let mut total = 0;
        match finally {
            Some(link) => {
                let secs = link.timeout.as_secs().max(1);
                total += secs + KILL_GRACE_SECS;
                script.push_str(&format!(
                    "__drover_exit() {{\n  \
                       __drover_step {secs} {} </dev/null >/dev/null 2>&1\n  \
                       printf '\\n%s {FINALLY_RAN}\\n' \"$__drover_m\"\n  \
                       exit \"$1\"\n\
                     }}\n",
                    shell_escape::unix::escape(link.script.into())
                ));
            }
            None => script.push_str("__drover_exit() { exit \"$1\"; }\n"),
        }
        let mut stdin: Option<Vec<u8>> = None;
        for link in links {
            let secs = link.timeout.as_secs().max(1);
            total += secs + KILL_GRACE_SECS;
            let quoted = shell_escape::unix::escape(link.script.into());
            // `dd` reads its whole block before it writes, so a step that stops reading
            // early still leaves the next step's bytes aligned.
            let run = match link.stdin {
                Some(bytes) if !bytes.is_empty() => {
                    stdin.get_or_insert_with(Vec::new).extend_from_slice(bytes);
                    format!(
                        "dd bs={} count=1 iflag=fullblock 2>/dev/null | __drover_step {secs} {quoted}",
                        bytes.len()
                    )
                }
                _ => format!("__drover_step {secs} {quoted} </dev/null"),
            };
            script.push_str(&format!(
                "{run}; __drover_rc=$?; __drover_end \"$__drover_rc\"; \
                 [ \"$__drover_rc\" -eq 0 ] || __drover_exit \"$__drover_rc\"\n"
            ));
        }
        script.push_str("__drover_exit 0\n");
        Self {
            script,
            timeout: Duration::from_secs(total.max(1)),
            stdin,
            marker,
        }
    }

    /// Whether the chain's `finally` ran to its end, judged from the chain's stdout.
    pub(crate) fn finally_ran(&self, stdout: &str) -> bool {
        stdout.contains(&format!("\n{} {FINALLY_RAN}\n", self.marker))
    }

    /// Cuts a chain's captured output into one result per link that ran, in order.
    /// The link that was running when the chain ended (timeout, lost output) comes last
    /// with no exit status and whatever it printed; links never started are absent.
    pub(crate) fn split(&self, stdout: &str, stderr: &str, links: usize) -> Vec<LinkOutput> {
        let out = sections(stdout, &self.marker);
        let err = sections(stderr, &self.marker);
        // The first section is what ran before the first step: the start marker's line.
        let start = out.first().and_then(|s| s.uptime);
        let mut previous = start;
        let mut results = Vec::new();
        for i in 0..links {
            // Section i + 1 ends with step i's marker.
            let Some(o) = out.get(i + 1) else { break };
            let e = err.get(i + 1);
            let duration = match (previous, o.uptime) {
                (Some(a), Some(b)) if b >= a => Some(Duration::from_secs_f64(b - a)),
                _ => None,
            };
            previous = o.uptime;
            let exit_status = o.status.as_deref().and_then(|s| s.parse().ok());
            results.push(LinkOutput {
                exit_status,
                stdout: o.text.clone(),
                stderr: e.map(|e| e.text.clone()).unwrap_or_default(),
                duration,
            });
            // The chain stops at a failure; a missing status means it ended here.
            if exit_status != Some(0) {
                break;
            }
        }
        results
    }
}

/// Text up to one marker line, and what that line said.
#[derive(Debug)]
struct Section {
    text: String,
    /// the exit status on the marker line; `None` for the unterminated tail
    status: Option<String>,
    uptime: Option<f64>,
}

/// Splits at marker lines. Each marker line is preceded by a newline the chain added,
/// which is not part of the step's output. The last section is the unterminated tail.
fn sections(text: &str, marker: &str) -> Vec<Section> {
    let needle = format!("\n{marker} ");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let line_start = at + needle.len();
        let line_end = rest[line_start..]
            .find('\n')
            .map_or(rest.len(), |n| line_start + n);
        let mut fields = rest[line_start..line_end].split_whitespace();
        let status = fields.next().map(str::to_string);
        let uptime = fields.next().and_then(|t| t.parse().ok());
        out.push(Section {
            text: rest[..at].to_string(),
            status,
            uptime,
        });
        rest = rest.get(line_end + 1..).unwrap_or("");
    }
    out.push(Section {
        text: rest.to_string(),
        status: None,
        uptime: None,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    fn run(chain: &Chain) -> (i32, String, String) {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&chain.script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut input = child.stdin.take().expect("stdin");
        let bytes = chain.stdin.clone().unwrap_or_default();
        let writer = std::thread::spawn(move || drop(input.write_all(&bytes)));
        let out = child.wait_with_output().expect("sh");
        writer.join().expect("writer");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn link(script: &str) -> Link<'_> {
        Link {
            script,
            timeout: Duration::from_secs(10),
            stdin: None,
        }
    }

    #[test]
    fn each_step_reads_exactly_its_own_stdin() {
        let big = vec![b'x'; 200_000];
        let links = [
            Link {
                stdin: Some(b"first\n"),
                ..link("cat")
            },
            link("cat; echo no-input"),
            Link {
                stdin: Some(&big),
                ..link("head -c 10 >/dev/null; echo stopped-early")
            },
            Link {
                stdin: Some(b"third"),
                ..link("cat")
            },
        ];
        let chain = Chain::new(&links);
        let (code, out, err) = run(&chain);
        assert_eq!(code, 0, "{err}");
        let parts = chain.split(&out, &err, links.len());
        let outs: Vec<&str> = parts.iter().map(|p| p.stdout.as_str()).collect();
        assert_eq!(outs, ["first\n", "no-input\n", "stopped-early\n", "third"]);
    }

    #[test]
    fn each_step_gets_its_own_output_and_status() {
        let links = [
            link("echo one; echo err-one >&2"),
            link("printf 'no newline'"),
            link("echo three"),
        ];
        let chain = Chain::new(&links);
        let (code, out, err) = run(&chain);
        assert_eq!(code, 0, "{out}\n{err}");
        let parts = chain.split(&out, &err, links.len());
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].stdout, "one\n");
        assert_eq!(parts[0].stderr, "err-one\n");
        assert_eq!(parts[1].stdout, "no newline");
        assert_eq!(parts[1].stderr, "");
        assert_eq!(parts[2].stdout, "three\n");
        assert!(parts.iter().all(|p| p.exit_status == Some(0)));
        assert!(parts.iter().all(|p| p.duration.is_some()));
    }

    #[test]
    fn the_chain_stops_at_the_first_failing_step() {
        let links = [
            link("echo ok"),
            link("echo bad >&2; exit 7"),
            link("echo never"),
        ];
        let chain = Chain::new(&links);
        let (code, out, err) = run(&chain);
        assert_eq!(code, 7);
        let parts = chain.split(&out, &err, links.len());
        assert_eq!(parts.len(), 2, "the third step never ran: {parts:?}");
        assert_eq!(parts[1].exit_status, Some(7));
        assert_eq!(parts[1].stderr, "bad\n");
        assert!(!out.contains("never"));
    }

    #[test]
    fn steps_run_in_their_own_shell_so_exit_and_variables_do_not_leak() {
        let links = [link("x=1; exit 0"), link("echo \"x=${x:-unset}\"")];
        let chain = Chain::new(&links);
        let (code, out, err) = run(&chain);
        assert_eq!(code, 0);
        let parts = chain.split(&out, &err, links.len());
        assert_eq!(parts[1].stdout, "x=unset\n");
    }

    #[test]
    fn hostile_step_text_stays_inside_its_step() {
        let evil = "echo \"'; echo PWNED; '\" ; echo $((1+1)) `echo tick`";
        let links = [link(evil), link("echo after")];
        let chain = Chain::new(&links);
        let (code, out, err) = run(&chain);
        assert_eq!(code, 0, "{err}");
        let parts = chain.split(&out, &err, links.len());
        assert_eq!(parts[0].stdout, "'; echo PWNED; '\n2 tick\n");
        assert_eq!(parts[1].stdout, "after\n");
    }

    #[test]
    fn a_step_past_its_time_limit_is_ended_and_the_chain_stops() {
        let links = [
            Link {
                timeout: Duration::from_secs(1),
                ..link("sleep 5")
            },
            link("echo never"),
        ];
        let chain = Chain::new(&links);
        let started = std::time::Instant::now();
        let (code, out, err) = run(&chain);
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(code, 124);
        let parts = chain.split(&out, &err, links.len());
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].exit_status, Some(124));
        assert!(parts[0].duration.unwrap() >= Duration::from_millis(900));
    }

    #[test]
    fn output_cut_short_leaves_the_running_step_without_a_status() {
        let links = [link("echo a"), link("echo b")];
        let chain = Chain::new(&links);
        let (_, out, err) = run(&chain);
        // As if the connection dropped while the second step ran.
        let cut = &out[..out.find("b\n").unwrap() + 2];
        let parts = chain.split(cut, &err, links.len());
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].exit_status, None);
        assert_eq!(parts[1].stdout, "b\n");
    }

    #[test]
    fn finally_runs_after_the_steps_whether_they_fail_or_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let flag = dir.path().join("released");
        let release = format!("echo released >> {}; echo hidden", flag.display());
        let finally = link(&release);
        for (steps, code) in [
            (vec![link("echo a"), link("echo b")], 0),
            (vec![link("echo a"), link("exit 3"), link("echo never")], 3),
        ] {
            let _ = std::fs::remove_file(&flag);
            let chain = Chain::with_finally(&steps, &finally);
            let (exit, out, err) = run(&chain);
            assert_eq!(exit, code, "{err}");
            assert!(chain.finally_ran(&out), "{out}");
            assert!(
                !out.contains("hidden"),
                "finally's output is discarded: {out}"
            );
            assert_eq!(std::fs::read_to_string(&flag).expect("flag"), "released\n");
            let parts = chain.split(&out, &err, steps.len());
            assert_eq!(parts.last().map(|p| p.exit_status), Some(Some(code as u32)));
            assert!(!Chain::new(&steps).finally_ran(&out));
        }
    }

    #[test]
    fn the_chain_time_limit_covers_every_step_and_its_grace() {
        let links = [link("true"), link("true")];
        assert_eq!(Chain::new(&links).timeout, Duration::from_secs(24));
    }
}

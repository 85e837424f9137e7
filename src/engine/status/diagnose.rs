//! `drover diagnose`: the script that gathers a host's bundle, its sections, and the
//! diagnosis of every host.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::collect::status_script;
use super::fan_out::{HostRun, judge_status_run, run_on_host};
use super::report::{HostReport, TargetReport};
use super::script::unit_words;
use super::script::{HostQuery, TenantQuery, q};
use super::verdict::{Verdict, verdict};
use crate::engine::fan_out::fan_out;
use crate::plan::layout::AUDIT_LOG;
use crate::plan::{Color, TenantLayout};
use crate::transport::Connector;

/// Settings of `drover diagnose`.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// hosts worked on at once
    pub forks: usize,
    /// time the host script may take
    pub timeout: Duration,
    /// journal lines per host
    pub lines: u32,
}

/// The section marker of the diagnose script: unlikely in any real output.
const SECTION: &str = "@@drover-diagnose-section-7f3a9c";

/// The diagnose script: the status script (section `status`), then the files of the
/// bundle, each after a marker line `@@drover-diagnose-section-… NAME`.
#[must_use]
pub fn diagnose_script(tenants: &[TenantQuery], lines: u32) -> String {
    let mut s = format!(
        "echo '{SECTION} status'\n(\n{}\n)\n",
        status_script(tenants)
    );
    let names = || tenants.iter().map(|t| t.name.as_str());
    let units = unit_words(names(), "");
    let unit_args = unit_words(names(), "-u");
    section(
        &mut s,
        "units.txt",
        &format!("systemctl status --no-pager -l -n 0{units}; echo; systemctl --failed --no-pager"),
    );
    section(
        &mut s,
        "journal.txt",
        &format!("journalctl --no-pager -o short-iso -n {lines}{unit_args}"),
    );
    section(&mut s, "agent-logs.txt", &agent_logs(tenants, lines));
    section(&mut s, "df.txt", "df -h; echo; df -i");
    section(&mut s, "free.txt", "free -h");
    section(
        &mut s,
        "top.txt",
        "uptime; echo; ps -eo pid,user,%cpu,%mem,rss,etime,comm --sort=-%cpu | head -n 25; echo; ps -eo pid,user,%cpu,%mem,rss,etime,comm --sort=-rss | head -n 15",
    );
    section(
        &mut s,
        "oom.txt",
        "{ journalctl -k --no-pager -q -n 5000 2>/dev/null; dmesg 2>/dev/null; } | grep -iE 'out of memory|oom-kill|oom_reaper|killed process' | tail -n 100; true",
    );
    section(
        &mut s,
        "audit.txt",
        &format!("tail -n 100 {AUDIT_LOG} 2>/dev/null || echo 'no audit log'"),
    );
    for t in tenants {
        tenant_sections(&mut s, &t.name);
    }
    let _ = writeln!(s, "echo '{SECTION} end'");
    s
}

/// Appends a section: its marker line, then `body`'s output (stderr included).
fn section(s: &mut String, name: &str, body: &str) {
    let _ = write!(s, "echo '{SECTION} {name}'\n( {body} ) 2>&1\n");
}

/// The last `lines` lines of each color's agent log, for every tenant.
fn agent_logs(tenants: &[TenantQuery], lines: u32) -> String {
    let mut out = String::new();
    for t in tenants {
        for c in Color::ALL {
            let file = TenantLayout::of(&t.name).log_file(c);
            let _ = write!(
                out,
                "[ -f {f} ] && {{ echo '==> {file} <=='; tail -n {lines} {f}; echo; }}; ",
                f = q(&file)
            );
        }
    }
    out.push_str("true");
    out
}

/// A tenant's state file, lock and nginx config, one section each.
fn tenant_sections(s: &mut String, tenant: &str) {
    let layout = TenantLayout::of(tenant);
    section(
        s,
        &format!("state-{tenant}.json"),
        &format!(
            "cat {} 2>/dev/null || echo 'no state file'",
            q(&layout.state)
        ),
    );
    section(
        s,
        &format!("lock-{tenant}.txt"),
        &format!(
            "if [ -d {l} ]; then cat {l}/owner 2>/dev/null; echo \"age=$(( $(date +%s) - $(stat -c %Y {l}) ))s\"; else echo 'not locked'; fi",
            l = q(&layout.lock)
        ),
    );
    section(
        s,
        &format!("nginx-{tenant}.conf"),
        &format!(
            "cat {} 2>/dev/null || echo 'no nginx config'",
            q(&layout.nginx)
        ),
    );
}

/// Splits the diagnose script's output into its sections (name → text), in order.
#[must_use]
pub fn split_sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end().strip_prefix(&format!("{SECTION} ")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
        }
    }
    out
}

/// One host's diagnosis: the bundle's files, its status, the verdicts of its targets.
#[derive(Debug)]
pub struct HostDiagnosis {
    /// the host's status
    pub host: HostReport,
    /// its targets' status
    pub targets: Vec<TargetReport>,
    /// files of the bundle (name, content)
    pub files: Vec<(String, String)>,
    /// one per target
    pub verdicts: Vec<Verdict>,
}

/// True for names that can be files of a bundle.
#[must_use]
pub fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Diagnoses every host: one SSH command each, bounded like `drover run`.
pub async fn diagnose<C: Connector>(
    connector: Arc<C>,
    queries: Vec<HostQuery>,
    options: DiagnoseOptions,
) -> Vec<HostDiagnosis> {
    let (timeout, lines) = (options.timeout, options.lines);
    fan_out(queries, options.forks, |query, _slot| {
        let connector = Arc::clone(&connector);
        async move {
            let begun = Instant::now();
            let script = diagnose_script(&query.tenants, lines);
            let run = run_on_host(&*connector, &query.host, script, timeout).await;
            let (files, run) = match run {
                HostRun::Ran(mut out) => {
                    let text = out.stdout.text();
                    let sections = split_sections(&text);
                    let status_text = sections
                        .iter()
                        .find(|(n, _)| n == "status")
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default();
                    let mut files: Vec<(String, String)> = sections
                        .into_iter()
                        .filter(|(n, _)| n != "end" && n != "status" && is_safe_file_name(n))
                        .collect();
                    files.push(("status-raw.txt".into(), status_text.clone()));
                    let stderr = out.stderr.text();
                    if !stderr.trim().is_empty() {
                        files.push(("stderr.txt".into(), stderr));
                    }
                    out.stdout = crate::transport::Captured::default();
                    out.stdout.push(status_text.as_bytes(), usize::MAX);
                    (files, HostRun::Ran(out))
                }
                HostRun::Unreachable(why) => (
                    vec![("unreachable.txt".into(), format!("{why}\n"))],
                    HostRun::Unreachable(why),
                ),
                HostRun::Failed(why) => (
                    vec![("error.txt".into(), format!("{why}\n"))],
                    HostRun::Failed(why),
                ),
            };
            let (host, targets) = judge_status_run(&query, run, begun.elapsed());
            let oom = files
                .iter()
                .find(|(n, _)| n == "oom.txt")
                .map(|(_, t)| t.as_str())
                .unwrap_or("");
            let verdicts = targets.iter().map(|t| verdict(&host, t, oom)).collect();
            HostDiagnosis {
                host,
                targets,
                files,
                verdicts,
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::super::{LogLine, parse_log_line};
    use super::*;

    #[test]
    fn log_lines_and_diagnose_sections_split() {
        assert_eq!(
            parse_log_line("acme blue agent 1.0.0: listening"),
            Some(LogLine {
                tenant: "acme".into(),
                source: "blue".into(),
                text: "agent 1.0.0: listening".into()
            })
        );
        let text = format!(
            "junk\n{SECTION} status\n@drover-status 1\n{SECTION} df.txt\na\nb\n{SECTION} end\n"
        );
        let s = split_sections(&text);
        assert_eq!(
            s,
            [
                ("status".to_string(), "@drover-status 1\n".to_string()),
                ("df.txt".to_string(), "a\nb\n".to_string()),
                ("end".to_string(), String::new()),
            ]
        );
        assert!(is_safe_file_name("state-acme.json"));
        assert!(!is_safe_file_name("../x") && !is_safe_file_name(".x"));
    }
}

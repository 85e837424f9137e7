//! `drover status --format prometheus`: the text exposition format, for node_exporter's
//! textfile collector (write it with `--output /var/lib/node_exporter/drover.prom`:
//! drover writes a temporary file and renames it, as the collector requires). No
//! sample timestamps (the collector refuses them); `drover_status_timestamp_seconds`
//! says when the report was made.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `drover_status_timestamp_seconds` | | when the report was made |
//! | `drover_status_duration_seconds` | | how long the status round took |
//! | `drover_host_up` | host | 1 reachable and readable, 0 not |
//! | `drover_host_disk_used_ratio` | host, mount | used / (used + available) |
//! | `drover_host_memory_total_bytes`, `drover_host_memory_available_bytes` | host | /proc/meminfo |
//! | `drover_host_load1`, `drover_host_load5`, `drover_host_load15` | host | load averages |
//! | `drover_host_problems` | host | problems flagged on the host |
//! | `drover_target_healthy` | tenant, host | 1 the live color answers healthy, else 0 (also unknown) |
//! | `drover_target_up` | tenant, host | 1 the target's host was read, 0 unknown |
//! | `drover_target_problems` | tenant, host | problems flagged on the target |
//! | `drover_target_info` | tenant, host, version, color, previous_version | always 1 |
//! | `drover_target_uptime_seconds` | tenant, host | since the live unit (re)started |
//! | `drover_target_restarts_total` | tenant, host, color | systemd's NRestarts of the unit |
//! | `drover_target_unit_active` | tenant, host, color | 1 when the unit is active |
//! | `drover_target_health_latency_seconds` | tenant, host, color | /health request time |
//! | `drover_target_lock_held`, `drover_target_lock_age_seconds` | tenant, host | deploy lock |
//! | `drover_target_last_deploy_timestamp_seconds` | tenant, host | the last audit line's time |

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::status::{FleetStatus, HostState, TargetState};

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Collects samples per metric so each metric's HELP/TYPE appears once, its samples
/// together (the exposition format requires it).
#[derive(Default)]
struct Metrics {
    order: Vec<&'static str>,
    meta: BTreeMap<&'static str, (&'static str, &'static str)>,
    samples: BTreeMap<&'static str, Vec<String>>,
}

impl Metrics {
    fn declare(&mut self, name: &'static str, kind: &'static str, help: &'static str) {
        if !self.meta.contains_key(name) {
            self.order.push(name);
            self.meta.insert(name, (kind, help));
        }
    }

    fn add(&mut self, name: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.samples.entry(name).or_default().push(format!(
            "{name}{} {}",
            labels(pairs),
            number(value)
        ));
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            let Some(samples) = self.samples.get(name) else {
                continue;
            };
            let (kind, help) = self.meta[name];
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

fn unix(text: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The exposition text.
#[must_use]
pub fn render(status: &FleetStatus) -> String {
    let mut m = Metrics::default();
    m.declare(
        "drover_status_timestamp_seconds",
        "gauge",
        "When drover status made this report (Unix time).",
    );
    m.declare(
        "drover_status_duration_seconds",
        "gauge",
        "How long the status round over the hosts took.",
    );
    m.declare(
        "drover_host_up",
        "gauge",
        "1 when drover could reach and read the host, else 0.",
    );
    m.declare(
        "drover_host_problems",
        "gauge",
        "Problems flagged on the host (disk, memory, unreachable).",
    );
    m.declare(
        "drover_host_disk_used_ratio",
        "gauge",
        "Used share of the file system (used / (used + available)).",
    );
    m.declare(
        "drover_host_memory_total_bytes",
        "gauge",
        "MemTotal of the host.",
    );
    m.declare(
        "drover_host_memory_available_bytes",
        "gauge",
        "MemAvailable of the host.",
    );
    m.declare(
        "drover_host_load1",
        "gauge",
        "1-minute load average of the host.",
    );
    m.declare(
        "drover_host_load5",
        "gauge",
        "5-minute load average of the host.",
    );
    m.declare(
        "drover_host_load15",
        "gauge",
        "15-minute load average of the host.",
    );
    m.declare(
        "drover_target_up",
        "gauge",
        "1 when the target's host was read, 0 when its state is unknown.",
    );
    m.declare(
        "drover_target_healthy",
        "gauge",
        "1 when the target's live color answers healthy, else 0.",
    );
    m.declare(
        "drover_target_problems",
        "gauge",
        "Problems flagged on the target.",
    );
    m.declare(
        "drover_target_info",
        "gauge",
        "The release and color a target runs (always 1).",
    );
    m.declare(
        "drover_target_uptime_seconds",
        "gauge",
        "Seconds since the live color's unit last (re)started.",
    );
    m.declare(
        "drover_target_restarts_total",
        "counter",
        "Automatic restarts of a color's unit (systemd NRestarts).",
    );
    m.declare(
        "drover_target_unit_active",
        "gauge",
        "1 when the color's systemd unit is active.",
    );
    m.declare(
        "drover_target_health_latency_seconds",
        "gauge",
        "Time of the color's GET /health on the host.",
    );
    m.declare(
        "drover_target_lock_held",
        "gauge",
        "1 when the tenant's deploy lock on the host is held.",
    );
    m.declare(
        "drover_target_lock_age_seconds",
        "gauge",
        "Age of the held deploy lock.",
    );
    m.declare(
        "drover_target_last_deploy_timestamp_seconds",
        "gauge",
        "Time of the tenant's last audit line on the host (Unix time).",
    );

    if let Some(t) = unix(&status.generated_at) {
        m.add("drover_status_timestamp_seconds", &[], t);
    }
    m.add(
        "drover_status_duration_seconds",
        &[],
        status.duration_ms as f64 / 1000.0,
    );
    for h in &status.hosts {
        let host = [("host", h.host.as_str())];
        m.add("drover_host_up", &host, flag(h.state == HostState::Up));
        m.add("drover_host_problems", &host, h.problems.len() as f64);
        let mut mounts: Vec<&str> = Vec::new();
        for d in &h.disks {
            if mounts.contains(&d.mount.as_str()) {
                continue;
            }
            mounts.push(&d.mount);
            m.add(
                "drover_host_disk_used_ratio",
                &[("host", &h.host), ("mount", &d.mount)],
                d.used_ratio,
            );
        }
        if let Some(mem) = h.memory {
            m.add(
                "drover_host_memory_total_bytes",
                &host,
                mem.total_bytes as f64,
            );
            m.add(
                "drover_host_memory_available_bytes",
                &host,
                mem.available_bytes as f64,
            );
        }
        if let Some(l) = h.load {
            m.add("drover_host_load1", &host, l.one);
            m.add("drover_host_load5", &host, l.five);
            m.add("drover_host_load15", &host, l.fifteen);
        }
    }
    for t in &status.targets {
        let target = [("tenant", t.tenant.as_str()), ("host", t.host.as_str())];
        let known = t.state != TargetState::Unknown;
        m.add("drover_target_up", &target, flag(known));
        m.add(
            "drover_target_healthy",
            &target,
            flag(t.healthy == Some(true)),
        );
        if !known {
            continue;
        }
        m.add("drover_target_problems", &target, t.problems.len() as f64);
        if let Some(color) = &t.active_color {
            let version = t
                .version
                .as_deref()
                .or(t.running_version.as_deref())
                .unwrap_or("");
            m.add(
                "drover_target_info",
                &[
                    ("tenant", &t.tenant),
                    ("host", &t.host),
                    ("version", version),
                    ("color", color.as_str()),
                    (
                        "previous_version",
                        t.previous_version.as_deref().unwrap_or(""),
                    ),
                ],
                1.0,
            );
        }
        if let Some(up) = t.uptime_seconds {
            m.add("drover_target_uptime_seconds", &target, up as f64);
        }
        for c in &t.colors {
            if c.load_state.as_deref() == Some("not-found") {
                continue;
            }
            let color = [
                ("tenant", t.tenant.as_str()),
                ("host", t.host.as_str()),
                ("color", c.color.as_str()),
            ];
            if let Some(r) = c.restarts {
                m.add("drover_target_restarts_total", &color, f64::from(r));
            }
            m.add(
                "drover_target_unit_active",
                &color,
                flag(c.active_state.as_deref() == Some("active")),
            );
            if let (true, Some(ms)) = (c.health.healthy, c.health.latency_ms) {
                m.add("drover_target_health_latency_seconds", &color, ms / 1000.0);
            }
        }
        m.add("drover_target_lock_held", &target, flag(t.lock.is_some()));
        if let Some(age) = t.lock.as_ref().and_then(|l| l.age_seconds) {
            m.add("drover_target_lock_age_seconds", &target, age as f64);
        }
        if let Some(at) = t.last_deploy.as_ref().and_then(|d| unix(&d.at)) {
            m.add("drover_target_last_deploy_timestamp_seconds", &target, at);
        }
    }
    m.render()
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    /// A small parser of the text format: (name, labels, value) per sample; checks that
    /// every sample's metric was declared with HELP and TYPE before it.
    fn parse(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
        let mut declared: Vec<String> = Vec::new();
        let mut typed: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                declared.push(rest.split_whitespace().next().unwrap().to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut w = rest.split_whitespace();
                let name = w.next().unwrap().to_string();
                let kind = w.next().unwrap();
                assert!(["gauge", "counter"].contains(&kind), "{line}");
                assert!(kind != "counter" || name.ends_with("_total"), "{line}");
                assert!(!typed.contains(&name), "TYPE twice: {line}");
                typed.push(name);
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, label_text) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            assert_eq!(
                typed.last().map(String::as_str),
                Some(name),
                "samples grouped: {line}"
            );
            assert!(declared.contains(&name.to_string()));
            let mut labels = BTreeMap::new();
            let mut rest = label_text;
            while !rest.is_empty() {
                let (k, after) = rest.split_once("=\"").unwrap();
                let mut value = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => {
                            let (_, c) = chars.next().unwrap();
                            value.push(if c == 'n' { '\n' } else { c });
                        }
                        Some((i, '"')) => break i,
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated label: {line}"),
                    }
                };
                labels.insert(k.to_string(), value);
                rest = after[end + 1..].trim_start_matches(',');
            }
            out.push((name.to_string(), labels, value.parse::<f64>().unwrap()));
        }
        out
    }

    fn sample<'a>(
        samples: &'a [(String, BTreeMap<String, String>, f64)],
        name: &str,
        want: &[(&str, &str)],
    ) -> Option<&'a f64> {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
    }

    #[test]
    fn the_exposition_parses_and_says_what_is_healthy() {
        let text = render(&sample::status());
        let s = parse(&text);
        assert_eq!(
            sample(
                &s,
                "drover_target_healthy",
                &[("tenant", "acme"), ("host", "web-1")]
            ),
            Some(&1.0)
        );
        assert_eq!(
            sample(
                &s,
                "drover_target_healthy",
                &[("tenant", "acme"), ("host", "web-2")]
            ),
            Some(&0.0)
        );
        assert_eq!(
            sample(
                &s,
                "drover_target_up",
                &[("tenant", "beta"), ("host", "web-3")]
            ),
            Some(&0.0)
        );
        assert_eq!(
            sample(
                &s,
                "drover_target_info",
                &[
                    ("tenant", "acme"),
                    ("host", "web-1"),
                    ("version", "2.0.0"),
                    ("color", "green")
                ]
            ),
            Some(&1.0)
        );
        assert_eq!(
            sample(
                &s,
                "drover_target_restarts_total",
                &[("host", "web-1"), ("color", "blue")]
            ),
            Some(&1.0)
        );
        assert_eq!(
            sample(
                &s,
                "drover_host_disk_used_ratio",
                &[("host", "web-1"), ("mount", "/")]
            ),
            Some(&0.85)
        );
        assert_eq!(
            sample(&s, "drover_host_up", &[("host", "web-3")]),
            Some(&0.0)
        );
        assert_eq!(
            sample(&s, "drover_host_up", &[("host", "web-1")]),
            Some(&1.0)
        );
        assert_eq!(
            sample(&s, "drover_status_duration_seconds", &[]),
            Some(&0.84)
        );
        // One disk series per mount, although two paths were asked about.
        assert_eq!(
            s.iter()
                .filter(|(n, l, _)| n == "drover_host_disk_used_ratio" && l["host"] == "web-1")
                .count(),
            1
        );
        assert!(!text.contains("drover_target_info{tenant=\"beta\",host=\"web-3\""));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\nw")]), "{a=\"x\\\"y\\\\z\\nw\"}");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }
}

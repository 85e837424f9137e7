//! The status script run on each host, and its line-based output parsed back into raw
//! facts (not judged yet).
//!
//! # The status script's output
//!
//! One SSH command per host, run as root (`sudo -n` unless `become = "none"`), prints
//! simple lines, one fact per line, so parsing is trivial and robust to odd hosts:
//!
//! ```text
//! @drover-status 1                          header (format version)
//! H now 1732300000                          host clock, Unix seconds
//! H uptime 12345.67                         /proc/uptime
//! H cpus 2
//! H load 0.10 0.20 0.30                     /proc/loadavg
//! H mem TOTAL_KB AVAILABLE_KB               /proc/meminfo
//! H df PATH SIZE_KB USED_KB AVAIL_KB MOUNT  df -P -k of /, /opt/drover, /var/lib/drover
//! U Key=Value                             `systemctl show` of every drover-TENANT-COLOR
//! U                                       .service unit in one call; a bare `U` ends a unit
//! T TENANT port.COLOR PORT
//! T TENANT health.COLOR CURL_EXIT HTTP_CODE SECONDS
//! T TENANT body.COLOR BODY                  /health body, newlines removed
//! T TENANT image.COLOR REF ID               a container target: its image reference and ID
//! T TENANT error.COLOR TEXT                 curl's error text (a command: its output)
//! T TENANT probe.COLOR command              health is the recorded health command
//!                                           (its exit status in health.COLOR)
//! T TENANT state JSON                       /var/lib/drover/TENANT/state.json, one line
//! T TENANT lock.age SECONDS                 lock.d exists (deploy lock held)
//! T TENANT lock key=value                   lock.d/owner lines
//! T TENANT audit LINE                       last audit.log line of the tenant
//! T TENANT route PORT                       the port nginx sends the tenant to
//! T TENANT done                             the tenant's section is complete
//! @end                                      the whole script ran to its end
//! ```
//!
//! Lines that are not understood are ignored, so newer scripts stay readable.

use std::collections::{BTreeMap, HashMap};
use std::time::UNIX_EPOCH;

use super::report::{Deploy, Disk, Load};
use crate::config::Host;
use crate::plan::{Color, TenantLayout};

/// Quotes a word for the shell.
pub(super) fn q(value: &str) -> String {
    crate::shell::quote(value).into_owned()
}

/// Both color units of every tenant as shell words, each after `flag` when one is
/// given (` -u 'drover-acme-blue.service' -u …`).
pub(super) fn unit_words<'a>(tenants: impl IntoIterator<Item = &'a str>, flag: &str) -> String {
    let flag = if flag.is_empty() {
        String::new()
    } else {
        format!(" {flag}")
    };
    tenants
        .into_iter()
        .flat_map(|t| {
            let layout = TenantLayout::of(t);
            Color::ALL.map(|c| format!("{flag} {}", q(&layout.unit(c))))
        })
        .collect()
}

fn unix_of(text: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

// ---------------------------------------------------------------------------------
// The status script

/// A tenant to look at on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantQuery {
    /// tenant name (a validated identifier)
    pub name: String,
    /// base port (blue); without one, health is not checked
    pub port: Option<u16>,
}

/// What to ask one host.
#[derive(Debug, Clone)]
pub struct HostQuery {
    /// the host
    pub host: Host,
    /// its selected tenants
    pub tenants: Vec<TenantQuery>,
}

// ---------------------------------------------------------------------------------
// Parsing the script's output

/// A host's answer, parsed but not judged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawHost {
    /// the header was seen
    pub header: bool,
    /// `@end` was seen
    pub complete: bool,
    /// host clock
    pub now: Option<u64>,
    /// /proc/uptime seconds
    pub uptime: Option<f64>,
    /// CPUs
    pub cpus: Option<u32>,
    /// load averages
    pub load: Option<Load>,
    /// (total, available) in KiB
    pub mem_kb: Option<(u64, u64)>,
    /// disks
    pub disks: Vec<Disk>,
    /// per tenant
    pub tenants: BTreeMap<String, RawTenant>,
}

/// A tenant's lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTenant {
    /// systemctl show properties per color
    pub units: BTreeMap<String, BTreeMap<String, String>>,
    /// port per color
    pub ports: BTreeMap<String, u16>,
    /// (curl exit, http code, seconds) per color
    pub health: BTreeMap<String, (i32, u16, f64)>,
    /// /health body per color
    pub bodies: BTreeMap<String, String>,
    /// curl error per color
    pub errors: BTreeMap<String, String>,
    /// how health was checked per color, when not over HTTP (`command`)
    pub probes: BTreeMap<String, String>,
    /// a container color's image: (reference, image ID)
    pub images: BTreeMap<String, (String, String)>,
    /// state.json text
    pub state: Option<String>,
    /// lock age, when the lock is held
    pub lock_age: Option<u64>,
    /// lock owner lines
    pub lock: BTreeMap<String, String>,
    /// last audit line
    pub audit: Option<String>,
    /// nginx upstream port
    pub route: Option<u16>,
    /// share of the tenant's traffic that port gets, percent (below 100 mid-shift)
    pub weight: Option<u8>,
    /// the section ran to its end
    pub done: bool,
}

/// Parses the status script's output (see the module docs for the format).
#[must_use]
pub fn parse_status(text: &str) -> RawHost {
    let mut raw = RawHost::default();
    let mut unit: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("@drover-status ") {
            raw.header = true;
            continue;
        }
        if line == "@end" {
            raw.complete = true;
            continue;
        }
        if line == "U" || line == "U " {
            add_unit(&mut raw, std::mem::take(&mut unit));
        } else if let Some(rest) = line.strip_prefix("U ") {
            if let Some((k, v)) = rest.split_once('=') {
                unit.insert(k.to_string(), v.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("H ") {
            parse_host_line(&mut raw, rest);
        } else if let Some(rest) = line.strip_prefix("T ") {
            let Some((tenant, rest)) = rest.split_once(' ') else {
                continue;
            };
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let t = raw.tenants.entry(tenant.to_string()).or_default();
            parse_tenant_line(t, key, value);
        }
    }
    add_unit(&mut raw, unit);
    raw
}

/// Files one unit's `systemctl show` properties under its tenant and color, by `Id`.
fn add_unit(raw: &mut RawHost, unit: BTreeMap<String, String>) {
    let Some(id) = unit.get("Id") else {
        return;
    };
    let Some(rest) = id.strip_prefix("drover-") else {
        return;
    };
    for color in Color::ALL.map(Color::as_str) {
        if let Some(tenant) = rest.strip_suffix(&format!("-{color}.service")) {
            raw.tenants
                .entry(tenant.to_string())
                .or_default()
                .units
                .insert(color.to_string(), unit);
            return;
        }
    }
}

fn parse_host_line(raw: &mut RawHost, rest: &str) {
    let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
    let words: Vec<&str> = value.split_whitespace().collect();
    match key {
        "now" => raw.now = value.trim().parse().ok(),
        "uptime" => raw.uptime = value.trim().parse().ok(),
        "cpus" => raw.cpus = value.trim().parse().ok(),
        "load" if words.len() >= 3 => {
            if let (Ok(one), Ok(five), Ok(fifteen)) =
                (words[0].parse(), words[1].parse(), words[2].parse())
            {
                raw.load = Some(Load { one, five, fifteen });
            }
        }
        "mem" if words.len() >= 2 => {
            if let (Ok(total), Ok(available)) = (words[0].parse(), words[1].parse()) {
                raw.mem_kb = Some((total, available));
            }
        }
        "df" if words.len() >= 5 => {
            let numbers: Option<Vec<u64>> = words[1..4].iter().map(|w| w.parse().ok()).collect();
            if let Some(n) = numbers {
                let (size, used, avail) = (n[0], n[1], n[2]);
                let ratio = if used + avail == 0 {
                    0.0
                } else {
                    used as f64 / (used + avail) as f64
                };
                raw.disks.push(Disk {
                    path: words[0].to_string(),
                    mount: words[4..].join(" "),
                    size_bytes: size * 1024,
                    used_bytes: used * 1024,
                    available_bytes: avail * 1024,
                    used_ratio: ratio,
                });
            }
        }
        _ => {}
    }
}

fn parse_tenant_line(t: &mut RawTenant, key: &str, value: &str) {
    let (what, color) = key.split_once('.').unwrap_or((key, ""));
    match what {
        "unit" => {
            if let Some((k, v)) = value.split_once('=') {
                t.units
                    .entry(color.to_string())
                    .or_default()
                    .insert(k.to_string(), v.to_string());
            }
        }
        "port" => {
            if let Ok(p) = value.trim().parse() {
                t.ports.insert(color.to_string(), p);
            }
        }
        "health" => {
            let w: Vec<&str> = value.split_whitespace().collect();
            let rc = w.first().and_then(|x| x.parse().ok()).unwrap_or(-1);
            let code = w.get(1).and_then(|x| x.parse().ok()).unwrap_or(0);
            let secs = w.get(2).and_then(|x| x.parse().ok()).unwrap_or(0.0);
            t.health.insert(color.to_string(), (rc, code, secs));
        }
        "body" => {
            t.bodies.insert(color.to_string(), value.to_string());
        }
        "error" => {
            t.errors.insert(color.to_string(), value.trim().to_string());
        }
        "probe" => {
            t.probes.insert(color.to_string(), value.trim().to_string());
        }
        "image" => {
            let mut w = value.split_whitespace();
            if let (Some(reference), Some(id)) = (w.next(), w.next()) {
                t.images
                    .insert(color.to_string(), (reference.to_string(), id.to_string()));
            }
        }
        "state" if !value.trim().is_empty() => t.state = Some(value.to_string()),
        "lock" if color == "age" => t.lock_age = value.trim().parse().ok(),
        "lock" => {
            if let Some((k, v)) = value.split_once('=') {
                t.lock.insert(k.to_string(), v.to_string());
            }
        }
        "audit" => t.audit = Some(value.to_string()),
        "route" => t.route = value.trim().parse().ok(),
        "weight" => t.weight = value.trim().parse().ok(),
        "done" => t.done = true,
        _ => {}
    }
}

/// Parses an audit line: `TIME run=R operator=O tenant=T action=A from=F to=T result=R`.
#[must_use]
pub fn parse_audit(line: &str, now: Option<u64>) -> Option<Deploy> {
    let mut words = line.split_whitespace();
    let at = words.next()?.to_string();
    let fields: HashMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
    let get = |k: &str| fields.get(k).map(|v| (*v).to_string());
    let age_seconds = match (now, unix_of(&at)) {
        (Some(now), Some(then)) => Some(now.saturating_sub(then)),
        _ => None,
    };
    Some(Deploy {
        at,
        age_seconds,
        run: get("run"),
        operator: get("operator"),
        action: get("action"),
        from: get("from"),
        to: get("to"),
        result: get("result"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::fixtures::{HEALTHY, tenants};
    use super::super::{LogOptions, diagnose_script, logs_script, status_script};
    use super::*;

    #[test]
    fn the_captured_output_of_a_healthy_host_parses_line_by_line() {
        let raw = parse_status(HEALTHY);
        assert!(raw.header && raw.complete);
        assert_eq!(raw.now, Some(1_795_312_171));
        assert_eq!(raw.cpus, Some(2));
        assert_eq!(
            raw.load,
            Some(Load {
                one: 6.6,
                five: 12.66,
                fifteen: 15.15
            })
        );
        assert_eq!(raw.mem_kb, Some((24_684_092, 23_341_816)));
        let paths: Vec<&str> = raw.disks.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/", "/opt/drover", "/var/lib/drover"]);
        assert!(raw.disks.iter().all(|d| d.mount == "/"));
        assert!((raw.disks[0].used_ratio - 22_993_864.0 / 95_285_888.0).abs() < 1e-9);
        assert_eq!(raw.tenants.len(), 3);
        let acme = &raw.tenants["acme"];
        assert!(acme.done);
        // One systemctl call for all units; each block filed under its tenant and color.
        assert_eq!(acme.units["blue"]["ActiveState"], "active");
        assert_eq!(acme.units["green"]["MainPID"], "930");
        assert_eq!(
            raw.tenants["hooli"].units["green"]["LoadState"],
            "not-found"
        );
        assert_eq!(acme.ports["green"], 8101);
        assert_eq!(acme.health["green"], (0, 200, 0.004_422));
        let hooli = &raw.tenants["hooli"];
        assert_eq!(hooli.health["green"].0, 7);
        assert!(hooli.errors["green"].contains("Couldn't connect"));
        assert_eq!(acme.route, Some(8101));
        assert!(acme.audit.as_deref().unwrap().contains("action=deploy"));
        assert!(acme.lock_age.is_none());
    }

    #[test]
    fn a_container_colors_image_line_parses_into_reference_and_id() {
        let raw = parse_status(
            "@drover-status 1\nT acme port.blue 8100\nT acme image.blue localhost/drover-agent:1.0.0 1a5ea43b9d7b00ff\nT acme image.green broken\nT acme done\n@end\n",
        );
        let t = &raw.tenants["acme"];
        assert_eq!(
            t.images.get("blue"),
            Some(&(
                "localhost/drover-agent:1.0.0".to_string(),
                "1a5ea43b9d7b00ff".to_string()
            ))
        );
        assert!(
            !t.images.contains_key("green"),
            "a line without an ID is ignored"
        );
    }

    #[test]
    fn audit_lines_parse_into_their_fields() {
        let d = parse_audit(
            "2026-11-22T01:05:15Z run=r1 operator=ops@laptop tenant=acme action=rollback from=green@2.0.0 to=blue@1.0.0 result=ok",
            Some(1_795_309_575),
        )
        .unwrap();
        assert_eq!(d.action.as_deref(), Some("rollback"));
        assert_eq!(d.from.as_deref(), Some("green@2.0.0"));
        assert_eq!(d.age_seconds, Some(60));
        assert!(parse_audit("", None).is_none());
    }

    fn shell_ok(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("sh runs")
    }

    #[test]
    fn the_scripts_are_valid_shell_and_quote_tenant_names() {
        let t = tenants();
        for script in [
            status_script(&t),
            diagnose_script(&t, 50),
            logs_script(
                &["acme".into()],
                LogOptions {
                    lines: 5,
                    since: Some(Duration::from_secs(600)),
                    follow: true,
                },
            ),
        ] {
            // shellcheck too, when installed (CI installs it).
            let check = shell_ok(&format!(
                "command -v shellcheck >/dev/null || exit 0; printf '%s' {} | shellcheck -s sh -",
                q(&script)
            ));
            assert!(
                check.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&check.stdout)
            );
            let out = shell_ok(&format!("sh -n -c {}", q(&script)));
            assert!(
                out.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let s = status_script(&[TenantQuery {
            name: "a b".into(),
            port: None,
        }]);
        assert!(s.contains("drover_tenant 'a b' -"));
        let l = logs_script(
            &["acme".into()],
            LogOptions {
                lines: 5,
                since: Some(Duration::from_secs(600)),
                follow: false,
            },
        );
        assert!(l.contains(
            "-n 5 --since=-600s -u drover-acme-blue.service -u drover-acme-green.service"
        ));
        assert!(l.ends_with("wait\n"));
    }

    #[test]
    fn the_status_script_runs_here_and_its_output_parses() {
        // No systemd and nothing on the port here: the host part and an undeployed tenant.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let q = TenantQuery {
            name: "acme".into(),
            port: Some(port),
        };
        let out = shell_ok(&status_script(std::slice::from_ref(&q)));
        let text = String::from_utf8_lossy(&out.stdout);
        let raw = parse_status(&text);
        assert!(raw.header && raw.complete, "{text}");
        assert!(
            raw.now.is_some() && raw.load.is_some() && !raw.disks.is_empty(),
            "{text}"
        );
        let t = &raw.tenants["acme"];
        assert!(t.done);
        assert_ne!(t.health["blue"].0, 0, "{text}");
    }
}

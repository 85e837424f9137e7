//! The tenant's nginx config (`/etc/nginx/conf.d/drover-<tenant>.conf`) as drover
//! writes it: the live color, and while a switch is not final the old color behind it.
//!
//! While a target is in canary, soak or within its revert window, the old color stays
//! in the upstream as `backup`: a request that meets a new color that refuses, resets,
//! times out or answers 502/503 is tried once more on the old color
//! (`proxy_next_upstream`, at most [`TRIES`] tries, a short connect timeout). nginx
//! never re-sends a non-idempotent request (POST, PATCH, LOCK) that already reached
//! the first server, unless the playbook says so (`retry_non_idempotent`); one that
//! was never sent (connection refused) is retried whatever its method.
//!
//! During a weighted canary step both colors are primary servers with weights; the
//! retry still goes to the other color. Every request is logged in a per-tenant format
//! that the canary analysis reads ([`ACCESS_FIELDS`]).
//! Pure: values in, text out; tenants are validated identifiers, ports numbers.

use std::fmt::Write as _;

pub use crate::config::progressive::Sticky;

/// Tries of one request across the two colors (the new one, then the old one).
pub const TRIES: u32 = 2;

/// How long nginx waits to connect to a color before trying the other one.
pub const CONNECT_TIMEOUT: &str = "1s";

/// The fields of one access-log line, `|`-separated, in order.
pub const ACCESS_FIELDS: &str = "$msec|$status|$request_method|$upstream_addr|$upstream_status|$upstream_response_time|$request_time";

/// Where nginx logs the tenant's requests for the analysis.
#[must_use]
pub fn access_log(tenant: &str) -> String {
    format!("/var/log/drover/{tenant}/access.log")
}

/// How a switch that is not final yet routes: the playbook's choices, the step's weight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// share (1..=99 %) of the traffic to the new color; `None`: all of it
    pub weight: Option<u8>,
    /// whether nginx may re-send non-idempotent requests to the other color
    pub retry_non_idempotent: bool,
    /// stickiness of a weighted step
    pub sticky: Option<Sticky>,
}

/// What the upstream of a tenant routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// tenant (a validated identifier)
    pub tenant: String,
    /// port of the color that takes the traffic (the new one during a canary)
    pub live: u16,
    /// port of the old color kept behind it; `None` once the switch is final
    pub fallback: Option<u16>,
    /// share (1..=99 %) of the traffic to `live` during a weighted step; the rest goes
    /// to `fallback`. `None`: all of it (the fallback is a `backup`)
    pub weight: Option<u8>,
    /// whether nginx may re-send non-idempotent requests to the other color
    pub retry_non_idempotent: bool,
    /// stickiness of a weighted step
    pub sticky: Option<Sticky>,
}

impl Route {
    /// The final route: all traffic to `live`, nothing behind it.
    #[must_use]
    pub fn only(tenant: &str, live: u16) -> Self {
        Self {
            tenant: tenant.to_owned(),
            live,
            fallback: None,
            weight: None,
            retry_non_idempotent: false,
            sticky: None,
        }
    }

    /// `live` with the old color behind it, as `traffic` says.
    #[must_use]
    pub fn pending(tenant: &str, live: u16, old: u16, traffic: Traffic) -> Self {
        Self {
            tenant: tenant.to_owned(),
            live,
            fallback: Some(old),
            weight: traffic.weight,
            retry_non_idempotent: traffic.retry_non_idempotent,
            sticky: traffic.sticky,
        }
    }

    /// The share of the traffic `live` gets, in percent.
    #[must_use]
    pub fn live_percent(&self) -> u8 {
        match (self.fallback, self.weight) {
            (Some(_), Some(w)) => w.clamp(1, 99),
            _ => 100,
        }
    }

    fn servers(&self) -> String {
        let (live, w) = (self.live, self.live_percent());
        match self.fallback {
            None => format!("    server 127.0.0.1:{live};\n"),
            // The first `server` line is the live color (drover status reads it).
            Some(old) if w == 100 => {
                format!("    server 127.0.0.1:{live};\n    server 127.0.0.1:{old} backup;\n")
            }
            Some(old) => format!(
                "    server 127.0.0.1:{live} weight={w};\n    server 127.0.0.1:{old} weight={};\n",
                100 - w
            ),
        }
    }

    fn balance(&self) -> Option<String> {
        let sticky = self.sticky?;
        if self.fallback.is_none() || self.weight.is_none() {
            // `hash` does not allow a `backup` server, and one server needs no balance.
            return None;
        }
        let key = match sticky {
            Sticky::Ip => "$remote_addr".to_owned(),
            Sticky::Cookie => format!("$cookie_drover_{}$remote_addr", ident(&self.tenant)),
        };
        Some(format!("    hash {key} consistent;\n"))
    }
}

fn ident(tenant: &str) -> String {
    tenant.replace('-', "_")
}

/// The nginx config of a tenant for `route`.
#[must_use]
pub fn nginx_conf(route: &Route) -> String {
    let (t, u) = (&route.tenant, ident(&route.tenant));
    let mut s = format!(
        "# Managed by drover: tenant {t}, live port {live}, {pct}% of traffic.\n\
         log_format drover_{u} '{ACCESS_FIELDS}';\n\
         upstream drover_{u} {{\n",
        live = route.live,
        pct = route.live_percent(),
    );
    if let Some(balance) = route.balance() {
        s.push_str(&balance);
    }
    s.push_str(&route.servers());
    s.push_str("    keepalive 16;\n}\n");
    let mut retry = String::from("error timeout http_502 http_503");
    if route.retry_non_idempotent {
        retry.push_str(" non_idempotent");
    }
    let _ = write!(
        s,
        "server {{\n    listen 80;\n    server_name {t};\n    \
         access_log {log} drover_{u};\n    location / {{\n        \
         proxy_pass http://drover_{u};\n        proxy_http_version 1.1;\n        \
         proxy_set_header Connection \"\";\n        proxy_set_header Host $host;\n        \
         proxy_connect_timeout {CONNECT_TIMEOUT};\n        \
         proxy_next_upstream {retry};\n        proxy_next_upstream_tries {TRIES};\n",
        log = access_log(t),
    );
    if let (Some(Sticky::Cookie), Some(_)) = (route.sticky, route.weight) {
        // A client without the cookie gets one, so it stays on its color from then on.
        let _ = writeln!(
            s,
            "        add_header Set-Cookie \"drover_{u}=$remote_addr$msec; Path=/; HttpOnly\";"
        );
    }
    s.push_str("    }\n}\n");
    s
}

/// Most bytes of access log one check reads; the next check goes on from there.
pub const WATCH_CHUNK: u64 = 512 * 1024;

/// One check of a canary, for the analysis: the state of the new color's unit
/// (`@U ACTIVE RESTARTS`), then at most [`WATCH_CHUNK`] bytes of the tenant's access
/// log from byte `offset` on (`@S START`, the bytes, a newline, `@E`). Without an
/// offset (the first check) it only says where the log ends now. A log shorter than
/// the offset was rotated: read from its start.
#[must_use]
pub fn watch(tenant: &str, unit: &str, offset: Option<u64>) -> String {
    let q = |v: &str| crate::shell::quote(v).into_owned();
    format!(
        "svc={svc}; log={log}\n\
         a=$(systemctl show -p ActiveState --value \"$svc\" 2>/dev/null); n=$(systemctl show -p NRestarts --value \"$svc\" 2>/dev/null)\n\
         echo \"@U ${{a:-unknown}} ${{n:-0}}\"\n\
         size=$(stat -c %s \"$log\" 2>/dev/null || echo 0)\n\
         off={offset}\n\
         if [ \"$off\" -lt 0 ]; then off=$size; elif [ \"$size\" -lt \"$off\" ]; then off=0; fi\n\
         n=$((size - off)); [ \"$n\" -le {WATCH_CHUNK} ] || n={WATCH_CHUNK}\n\
         echo \"@S $off\"\n\
         if [ \"$n\" -gt 0 ]; then tail -c +$((off + 1)) \"$log\" | head -c \"$n\"; fi\n\
         printf '\\n@E\\n'\n",
        svc = q(unit),
        log = q(&access_log(tenant)),
        offset = offset.map_or(-1, |o| i64::try_from(o).unwrap_or(i64::MAX)),
    )
}

/// What one [`watch`] printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// systemd's ActiveState of the unit
    pub active: String,
    /// its automatic restarts
    pub restarts: u32,
    /// whole lines read
    pub lines: String,
    /// where the next check reads from
    pub next_offset: u64,
}

/// Parses the output of [`watch`]; `None` when it is not that.
#[must_use]
pub fn parse_watch(out: &str) -> Option<Watched> {
    let unit = out.lines().find_map(|l| l.strip_prefix("@U "))?;
    let (active, restarts) = unit.split_once(' ')?;
    let at = out.find("@S ")?;
    let rest = &out[at + 3..];
    let (start, rest) = rest.split_once('\n')?;
    let start: u64 = start.trim().parse().ok()?;
    let body = rest
        .strip_suffix("\n@E\n")
        .or_else(|| rest.strip_suffix("\n@E"))?;
    // A line cut at the end of the chunk is read again, whole, by the next check.
    let whole = body.rfind('\n').map_or(0, |i| i + 1);
    Some(Watched {
        active: active.to_owned(),
        restarts: restarts.trim().parse().unwrap_or(0),
        lines: body[..whole].to_owned(),
        next_offset: start + whole as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary() -> Route {
        Route {
            fallback: Some(8100),
            ..Route::only("acme-eu", 8101)
        }
    }

    #[test]
    fn a_final_route_has_one_server_and_no_fallback() {
        let conf = nginx_conf(&Route::only("acme-eu", 8101));
        assert!(
            conf.contains("    server 127.0.0.1:8101;\n    keepalive"),
            "{conf}"
        );
        assert!(!conf.contains("backup"));
        assert!(conf.contains("server_name acme-eu;"));
        assert!(conf.contains("upstream drover_acme_eu"));
        assert!(conf.contains("access_log /var/log/drover/acme-eu/access.log drover_acme_eu;"));
    }

    #[test]
    fn during_a_canary_the_old_color_is_the_backup_tried_once_more() {
        let conf = nginx_conf(&canary());
        assert!(
            conf.contains("server 127.0.0.1:8101;\n    server 127.0.0.1:8100 backup;"),
            "{conf}"
        );
        assert!(conf.contains("proxy_next_upstream error timeout http_502 http_503;"));
        assert!(conf.contains("proxy_next_upstream_tries 2;"));
        assert!(conf.contains("proxy_connect_timeout 1s;"));
    }

    #[test]
    fn non_idempotent_requests_are_retried_only_when_the_playbook_says_so() {
        let conf = nginx_conf(&Route {
            retry_non_idempotent: true,
            ..canary()
        });
        assert!(conf.contains("http_503 non_idempotent;"), "{conf}");
    }

    #[test]
    fn a_weighted_step_splits_the_traffic_between_both_colors() {
        let route = Route {
            weight: Some(5),
            sticky: Some(Sticky::Ip),
            ..canary()
        };
        let conf = nginx_conf(&route);
        assert!(conf.contains("server 127.0.0.1:8101 weight=5;"), "{conf}");
        assert!(conf.contains("server 127.0.0.1:8100 weight=95;"), "{conf}");
        assert!(conf.contains("hash $remote_addr consistent;"), "{conf}");
        assert!(conf.contains("5% of traffic"));
        assert_eq!(route.live_percent(), 5);
    }

    #[test]
    fn a_watch_reads_whole_lines_and_goes_on_after_the_last_one() {
        let out = "@U active 0\n@S 100\n1|200|GET|a|200|0.001|0.001\n2|200|GE\n@E\n";
        let w = parse_watch(out).expect("parsed");
        assert_eq!((w.active.as_str(), w.restarts), ("active", 0));
        assert_eq!(w.lines, "1|200|GET|a|200|0.001|0.001\n");
        assert_eq!(w.next_offset, 100 + 28);
        let first = parse_watch("@U activating 2\n@S 4096\n\n@E\n").expect("parsed");
        assert_eq!(
            (first.restarts, first.next_offset, first.lines.as_str()),
            (2, 4096, "")
        );
        assert!(parse_watch("garbage").is_none());
    }

    #[test]
    fn a_watch_script_runs_in_sh_and_reads_from_the_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = watch("acme", "drover-none.service", Some(3)).replace(
            "/var/log/drover/acme/access.log",
            &dir.path().join("a.log").display().to_string(),
        );
        std::fs::write(dir.path().join("a.log"), "ab\ncd\nef").expect("log");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh");
        let w = parse_watch(&String::from_utf8_lossy(&out.stdout)).expect("parsed");
        assert_eq!((w.lines.as_str(), w.next_offset), ("cd\n", 6));
    }

    #[test]
    fn stickiness_is_left_out_where_nginx_would_refuse_it() {
        let route = Route {
            sticky: Some(Sticky::Cookie),
            ..canary()
        };
        let conf = nginx_conf(&route);
        assert!(
            !conf.contains("hash"),
            "hash forbids backup servers: {conf}"
        );
        assert!(!conf.contains("Set-Cookie"));
        assert!(Sticky::parse("cookies").unwrap_err().contains("\"cookie\""));
    }
}

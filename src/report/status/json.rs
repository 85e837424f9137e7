//! `drover status --format json`: one JSON document, schema version 1.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "generated_at": "2026-11-22T01:05:30Z",      control node clock, RFC 3339 UTC
//!   "duration_ms": 840,
//!   "summary": { "hosts", "hosts_up", "hosts_unreachable", "hosts_error",
//!                "targets", "targets_ok", "targets_problem", "targets_unknown",
//!                "problems", "exit_code" },               exit_code: 0 | 1 | 4
//!   "hosts": [ {
//!     "host", "address",
//!     "state": "up" | "unreachable" | "error",
//!     "error": string | null,
//!     "uptime_seconds", "cpus",                            null when unknown
//!     "load": { "one", "five", "fifteen" } | null,
//!     "memory": { "total_bytes", "available_bytes", "used_ratio" } | null,
//!     "disks": [ { "path", "mount", "size_bytes", "used_bytes", "available_bytes",
//!                  "used_ratio" } ],                       /, /opt/drover, /var/lib/drover
//!     "problems": [ { "kind", "message" } ],
//!     "duration_ms"
//!   } ],
//!   "targets": [ {
//!     "tenant", "host",
//!     "state": "ok" | "problem" | "unknown",
//!     "healthy": bool | null,                              the live color answers healthy
//!     "active_color", "routed_color": "blue" | "green" | null,
//!     "traffic_percent": 0..=100 | null,                  share of traffic the routed color gets
//!     "version", "running_version", "previous_color", "previous_version",
//!     "uptime_seconds", "started_at", "restarts",          of the live color's unit
//!     "last_deploy": { "at", "age_seconds", "run", "operator", "action", "from", "to",
//!                      "result" } | null,
//!     "lock": { "run", "operator", "since", "age_seconds", "stale", "holder" } | null,
//!     "colors": [ { "color", "port", "unit", "load_state", "active_state", "sub_state",
//!                   "result", "restarts", "uptime_seconds", "started_at", "main_pid", "image" (containers),
//!                   "health": { "healthy", "http_status", "latency_ms", "status",
//!                               "version", "error" } } ],
//!     "problems": [ { "kind", "message" } ],
//!     "error": string | null                               why the state is unknown
//!   } ]
//! }
//! ```
//!
//! Problem kinds: `unreachable`, `status_failed`, `not_deployed`, `unit_failed`,
//! `service_down`, `unhealthy`, `version_mismatch`, `route_mismatch`, `stale_lock`,
//! `disk_usage`, `memory_low`. Within one schema version fields are only added; every
//! field is always present (null when unknown). Hosts are in inventory order, targets in
//! tenant then host order. The full description is in docs/status.md.

use crate::engine::status::FleetStatus;

/// The JSON document, pretty-printed, with a final newline.
#[must_use]
pub fn render(status: &FleetStatus) -> String {
    let mut text = serde_json::to_string_pretty(status).unwrap_or_else(|e| {
        format!(
            "{{\"schema_version\":{},\"error\":\"{e}\"}}",
            status.schema_version
        )
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn the_document_round_trips_and_keeps_every_field() {
        let status = sample::status();
        let text = render(&status);
        let back: FleetStatus = serde_json::from_str(&text).unwrap();
        assert_eq!(back, status);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["summary"]["exit_code"], 4);
        let down = &v["targets"][1];
        assert_eq!(down["state"], "problem");
        assert_eq!(down["healthy"], false);
        assert_eq!(down["problems"][0]["kind"], "service_down");
        assert_eq!(
            down["colors"][1]["health"]["error"],
            "curl: (7) Failed to connect"
        );
        let unknown = &v["targets"][3];
        assert_eq!(unknown["state"], "unknown");
        assert!(unknown["healthy"].is_null() && unknown["lock"].is_null());
        assert_eq!(v["hosts"][2]["state"], "unreachable");
        assert_eq!(v["hosts"][0]["disks"][0]["used_ratio"], 0.85);
        // Every documented key is present, null or not.
        for key in [
            "tenant",
            "host",
            "state",
            "healthy",
            "active_color",
            "routed_color",
            "traffic_percent",
            "version",
            "running_version",
            "previous_color",
            "previous_version",
            "uptime_seconds",
            "started_at",
            "restarts",
            "last_deploy",
            "lock",
            "colors",
            "problems",
            "error",
        ] {
            assert!(unknown.get(key).is_some(), "missing {key}");
        }
    }
}

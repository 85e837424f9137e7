//! One color of a target, from the status script's lines: its unit's state, uptime
//! and restarts, and its `/health` answer.

use super::report::{ColorReport, Health, rfc3339};
use super::script::RawTenant;
use crate::plan::Color;
use crate::plan::layout::unit_name;

pub(super) fn health_of(raw: &RawTenant, color: Color) -> Health {
    let color = color.as_str();
    let Some(&(rc, code, secs)) = raw.health.get(color) else {
        return Health {
            error: Some("not checked (the tenant has no port)".into()),
            ..Health::default()
        };
    };
    if raw.probes.get(color).is_some_and(|p| p == "command") {
        return command_health(raw, color, rc, secs);
    }
    let body: Option<serde_json::Value> = raw
        .bodies
        .get(color)
        .and_then(|b| serde_json::from_str(b).ok());
    let field = |k: &str| {
        body.as_ref()
            .and_then(|v| v.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let status = field("status");
    let version = field("version");
    let http_status = (code != 0).then_some(code);
    let healthy = rc == 0 && code == 200 && status.as_deref().is_none_or(|s| s == "healthy");
    let error = if healthy {
        None
    } else if rc != 0 && rc != 22 {
        Some(
            raw.errors
                .get(color)
                .filter(|e| !e.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("curl exited {rc}")),
        )
    } else if code != 200 {
        Some(format!("HTTP {code}"))
    } else {
        Some(format!(
            "status {:?}",
            status.as_deref().unwrap_or("unknown")
        ))
    };
    Health {
        healthy,
        http_status,
        latency_ms: (rc == 0 || code != 0).then_some((secs * 1000.0 * 100.0).round() / 100.0),
        status,
        version,
        error,
    }
}

/// A worker's health: its recorded health command exited 0.
fn command_health(raw: &RawTenant, color: &str, rc: i32, secs: f64) -> Health {
    let output = raw.errors.get(color).filter(|e| !e.is_empty());
    let error = match (rc, output) {
        (0, _) => None,
        (124, _) => Some("health command timed out after 5 s".to_string()),
        (_, Some(out)) => Some(format!("health command exited {rc}: {out}")),
        (_, None) => Some(format!("health command exited {rc}")),
    };
    Health {
        healthy: rc == 0,
        latency_ms: Some((secs * 1000.0 * 100.0).round() / 100.0),
        error,
        ..Health::default()
    }
}

pub(super) fn color_report(
    raw: &RawTenant,
    tenant: &str,
    color: Color,
    host_now: Option<u64>,
    host_uptime: Option<f64>,
) -> ColorReport {
    let props = raw.units.get(color.as_str());
    let prop = |k: &str| {
        props
            .and_then(|p| p.get(k))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let active_state = prop("ActiveState");
    let since_boot_us: Option<u64> = prop("ActiveEnterTimestampMonotonic")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0);
    let uptime_seconds = match (active_state.as_deref(), since_boot_us, host_uptime) {
        (Some("active" | "reloading" | "deactivating"), Some(us), Some(up)) => {
            let secs = up - us as f64 / 1e6;
            (secs >= 0.0).then_some(secs as u64)
        }
        _ => None,
    };
    ColorReport {
        color,
        port: raw.ports.get(color.as_str()).copied(),
        unit: unit_name(tenant, color),
        load_state: prop("LoadState"),
        active_state,
        sub_state: prop("SubState"),
        result: prop("Result"),
        restarts: prop("NRestarts").and_then(|v| v.parse().ok()),
        uptime_seconds,
        started_at: match (host_now, uptime_seconds) {
            (Some(now), Some(up)) => Some(rfc3339(now.saturating_sub(up))),
            _ => None,
        },
        main_pid: prop("MainPID")
            .and_then(|v| v.parse().ok())
            .filter(|p| *p > 0),
        health: health_of(raw, color),
        image: raw.images.get(color.as_str()).map(|(reference, id)| {
            let id = id.strip_prefix("sha256:").unwrap_or(id);
            format!("{reference} ({})", id.get(..12).unwrap_or(id))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::parse_status;
    use super::*;

    #[test]
    fn a_container_color_names_its_image_with_a_short_id_and_a_unit_color_none() {
        let raw = parse_status(
            "@drover-status 1\nT a port.blue 8100\nT a image.blue localhost/drover-agent:2.0.0 sha256:1a5ea43b9d7b0123456789\nT a port.green 8101\nT a done\n@end\n",
        );
        let a = &raw.tenants["a"];
        let blue = color_report(a, "a", Color::Blue, None, None);
        assert_eq!(
            blue.image.as_deref(),
            Some("localhost/drover-agent:2.0.0 (1a5ea43b9d7b)")
        );
        let json = serde_json::to_value(&blue).unwrap();
        assert_eq!(json["image"], "localhost/drover-agent:2.0.0 (1a5ea43b9d7b)");
        let green = color_report(a, "a", Color::Green, None, None);
        assert_eq!(green.image, None);
        assert!(serde_json::to_value(&green).unwrap().get("image").is_none());
    }

    #[test]
    fn a_workers_health_is_its_recorded_commands_exit_status() {
        let raw = parse_status(
            "@drover-status 1\nT w port.blue 8200\nT w probe.blue command\nT w health.blue 0 000 0.042\n\
             T w error.blue \nT w port.green 8201\nT w probe.green command\n\
             T w health.green 3 000 0.010\nT w error.green queue lag 912 s\nT w done\n@end\n",
        );
        let w = &raw.tenants["w"];
        let blue = health_of(w, Color::Blue);
        assert!(blue.healthy && blue.error.is_none() && blue.http_status.is_none());
        assert_eq!(blue.latency_ms, Some(42.0));
        let green = health_of(w, Color::Green);
        assert!(!green.healthy);
        assert_eq!(
            green.error.as_deref(),
            Some("health command exited 3: queue lag 912 s")
        );
    }
}

//! Where drover keeps things on a host (DESIGN.md, "Host side"), named once:
//!
//! ```text
//! /opt/drover/<tenant>/releases/<version>/     code (the playbook puts it there)
//! /etc/systemd/system/drover-<tenant>-<color>.service
//! /etc/nginx/conf.d/drover-<tenant>.conf       the tenant's upstream: its live color
//! /var/lib/drover/<tenant>/state.json          live color, versions, last run
//! /var/lib/drover/<tenant>/lock.d/             deploy lock (owner file inside)
//! /var/lib/drover/<tenant>/revert.{sh,pending} the self-reverting switch
//! /var/lib/drover/.health/<tenant>.<color>.sh  a command health check (root-owned)
//! /var/log/drover/<tenant>/<color>.log         the agent's own output
//! /var/log/drover/audit.log                    one line per change
//! ```

use super::color::Color;

/// The audit log every change appends to.
pub const AUDIT_LOG: &str = "/var/log/drover/audit.log";

/// drover's state on a host, one folder per tenant.
pub const STATE_ROOT: &str = "/var/lib/drover";

/// Where tenants' code lives.
pub const CODE_ROOT: &str = "/opt/drover";

/// Recorded command health checks: root-owned, outside the tenant's own (tenant-owned)
/// state folder, since drover runs them as root. `.` keeps it clear of tenant names.
pub const HEALTH_ROOT: &str = "/var/lib/drover/.health";

/// The host-side names of one tenant. Fields rather than methods, so a test can point
/// a tenant's state at a scratch directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLayout {
    /// the tenant (a validated identifier)
    pub tenant: String,
    /// `/var/lib/drover/<tenant>`
    pub state_dir: String,
    /// `…/state.json`: the live color and versions
    pub state: String,
    /// `…/lock.d`: the deploy lock
    pub lock: String,
    /// `…/revert.sh`: what the revert timer runs
    pub revert: String,
    /// `…/revert.pending`: exists while a revert timer is armed and neither it nor the
    /// control node's confirmation has claimed it
    pub revert_pending: String,
    /// the transient systemd unit of the revert timer
    pub revert_unit: String,
    /// `/etc/nginx/conf.d/drover-<tenant>.conf`
    pub nginx: String,
}

impl TenantLayout {
    /// The layout of `tenant`.
    #[must_use]
    pub fn of(tenant: &str) -> Self {
        let state_dir = format!("{STATE_ROOT}/{tenant}");
        Self {
            tenant: tenant.to_owned(),
            state: format!("{state_dir}/state.json"),
            lock: format!("{state_dir}/lock.d"),
            revert: format!("{state_dir}/revert.sh"),
            revert_pending: format!("{state_dir}/revert.pending"),
            revert_unit: format!("drover-revert-{tenant}"),
            nginx: format!("/etc/nginx/conf.d/drover-{tenant}.conf"),
            state_dir,
        }
    }

    /// `drover-<tenant>-<color>.service`
    #[must_use]
    pub fn unit(&self, color: Color) -> String {
        unit_name(&self.tenant, color)
    }

    /// `drover-<tenant>-<color>`: the podman container of a color (container step).
    #[must_use]
    pub fn container(&self, color: Color) -> String {
        format!("drover-{}-{color}", self.tenant)
    }

    /// `/var/log/drover/<tenant>/<color>.log`: the agent's own output.
    #[must_use]
    pub fn log_file(&self, color: Color) -> String {
        format!("/var/log/drover/{}/{color}.log", self.tenant)
    }

    /// `/var/lib/drover/.health/<tenant>.<color>.sh`: the color's command health check,
    /// recorded by its health step.
    #[must_use]
    pub fn health_command(&self, color: Color) -> String {
        format!("{HEALTH_ROOT}/{}.{color}.sh", self.tenant)
    }

    /// `/opt/drover/<tenant>/releases`
    #[must_use]
    pub fn releases_dir(&self) -> String {
        format!("{CODE_ROOT}/{}/releases", self.tenant)
    }
}

/// `drover-<tenant>-<color>.service`: the unit of a tenant's color.
#[must_use]
pub fn unit_name(tenant: &str, color: Color) -> String {
    format!("drover-{tenant}-{color}.service")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_names_follow_the_documented_layout() {
        let l = TenantLayout::of("acme");
        assert_eq!(l.state, "/var/lib/drover/acme/state.json");
        assert_eq!(l.lock, "/var/lib/drover/acme/lock.d");
        assert_eq!(l.nginx, "/etc/nginx/conf.d/drover-acme.conf");
        assert_eq!(l.unit(Color::Green), "drover-acme-green.service");
        assert_eq!(l.log_file(Color::Blue), "/var/log/drover/acme/blue.log");
        assert_eq!(l.revert_unit, "drover-revert-acme");
        assert_eq!(l.releases_dir(), "/opt/drover/acme/releases");
        assert_eq!(
            l.health_command(Color::Green),
            "/var/lib/drover/.health/acme.green.sh"
        );
    }
}

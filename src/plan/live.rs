//! Is a tenant's color live and healthy? Through nginx for tenants that serve HTTP;
//! with the recorded health command (see [`TenantLayout::health_command`]) for workers
//! that serve none. The record is trusted only when root owns it: drover runs it as
//! root (it switches to the tenant's user itself).

use super::bluegreen::verify_through_proxy;
use super::color::Color;
use super::layout::TenantLayout;
use crate::shell::quote;

/// Runs the color's recorded health command up to `attempts` times, half a second
/// apart, each bounded to 10 s, when there is one; otherwise runs `fallback`.
#[must_use]
pub fn command_health_or(tenant: &str, color: Color, attempts: u32, fallback: &str) -> String {
    format!(
        "f={f}\n\
         if [ -f \"$f\" ] && [ \"$(stat -c %u \"$f\")\" = 0 ]; then\n  \
           i=0\n  \
           while [ $i -lt {attempts} ]; do\n    \
             out=$(timeout -k 1 10 sh \"$f\" 2>&1) && exit 0\n    \
             i=$((i+1)); sleep 0.5\n  \
           done\n  \
           printf 'health command of the {color} color failed after %s attempt(s): %s\\n' \"$i\" \"$(printf '%s' \"$out\" | tr '\\n' ' ' | head -c 300)\" >&2\n  \
           exit 1\n\
         fi\n\
         {fallback}",
        f = quote(&TenantLayout::of(tenant).health_command(color)),
    )
}

/// The check after a switch (and of a resumed target): the new color's recorded health
/// command, or `version` answering healthy through nginx.
#[must_use]
pub fn verify_live(tenant: &str, color: Color, version: &str, attempts: u32) -> String {
    command_health_or(
        tenant,
        color,
        attempts,
        &verify_through_proxy(tenant, version, attempts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_recorded_command_the_check_goes_through_nginx() {
        let s = verify_live("acme", Color::Green, "2.0.0", 5);
        assert!(s.contains("/var/lib/drover/.health/acme.green.sh"), "{s}");
        assert!(s.contains("Host: acme") && s.contains("2.0.0"), "{s}");
    }

    #[test]
    fn a_recorded_command_not_owned_by_root_is_ignored() {
        // Run with a file owned by the (non-root) test user: the fallback answers.
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("check.sh");
        std::fs::write(&f, "exit 0\n").unwrap();
        let s = command_health_or("acme", Color::Blue, 2, "echo fallback; exit 7")
            .replace("/var/lib/drover/.health/acme.blue.sh", f.to_str().unwrap());
        let out = std::process::Command::new("sh")
            .args(["-c", &s])
            .output()
            .unwrap();
        let root = std::process::Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&root.stdout).trim() == "0" {
            assert_eq!(out.status.code(), Some(0), "root owns it here: it runs");
        } else {
            assert_eq!(out.status.code(), Some(7));
            assert!(String::from_utf8_lossy(&out.stdout).contains("fallback"));
        }
    }
}

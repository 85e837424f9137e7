//! Blue-green on a host, as shell scripts: the per-tenant deploy lock, the state file,
//! the nginx upstream switch (checked with `nginx -t`, applied with a graceful reload),
//! verification through the proxy, the self-reverting switch timer, the audit line.
//! Pure: values in, scripts out. Every value is validated upstream (identifiers, ports,
//! versions) and quoted here anyway.
//!
//! Host layout (DESIGN.md): `/var/lib/drover/<tenant>/state.json`, `…/lock.d/`,
//! `/etc/nginx/conf.d/drover-<tenant>.conf`, `/var/log/drover/audit.log`.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::color::Color;
use super::layout::{AUDIT_LOG, TenantLayout};
use super::upstream::{self, Route, Traffic};
use crate::shell::quote;

mod lock;
pub use lock::{LOCK_HELD, LockOwner, lock, parse_lock_owner, unlock};
#[cfg(test)]
use lock::{lock_in, unlock_in};

fn q(value: &str) -> String {
    quote(value).into_owned()
}

/// True for version strings drover puts in paths, unit environments and state files.
#[must_use]
pub fn is_safe_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 64
        && !version.starts_with(['.', '-'])
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

/// What `/var/lib/drover/<tenant>/state.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantState {
    /// tenant name
    pub tenant: String,
    /// the color nginx sends traffic to
    pub active: Color,
    /// its release
    pub version: String,
    /// the color before the last switch (kept warm for rollback)
    #[serde(default)]
    pub previous: Option<Color>,
    /// its release
    #[serde(default)]
    pub previous_version: Option<String>,
    /// run that made the last switch
    #[serde(default)]
    pub run: String,
    /// when (RFC 3339, UTC)
    #[serde(default)]
    pub updated: String,
    /// a container color's image as the host runs it, `REFERENCE@ID`: the host adds
    /// it when it writes the file (see `write_state`), so it is read, never written
    #[serde(default, skip_serializing)]
    pub image: Option<String>,
}

/// Reads the state file (prints nothing when there is none yet).
#[must_use]
pub fn read_state(tenant: &str) -> String {
    let p = TenantLayout::of(tenant);
    format!("cat {} 2>/dev/null || true", q(&p.state))
}

/// The nginx config routing `Host: <tenant>` to the color's port alone (final).
#[must_use]
pub fn nginx_conf(tenant: &str, port: u16) -> String {
    upstream::nginx_conf(&Route::only(tenant, port))
}

/// Script body that writes the tenant's nginx config for `route`: write it aside,
/// `nginx -t`, and only then keep it and reload gracefully (in-flight requests finish
/// on the old workers). On a failed test the old config stays.
pub(crate) fn switch_body(route: &Route) -> String {
    let p = TenantLayout::of(&route.tenant);
    format!(
        "conf={conf}\n\
         mkdir -p {logdir}\n\
         cp -p \"$conf\" \"$conf.bak\" 2>/dev/null || rm -f \"$conf.bak\"\n\
         printf '%s' {content} > \"$conf.new\"\n\
         mv -f \"$conf.new\" \"$conf\"\n\
         if ! nginx -t -q 2>/tmp/drover-nginx-test.$$; then\n  \
           if [ -f \"$conf.bak\" ]; then mv -f \"$conf.bak\" \"$conf\"; else rm -f \"$conf\"; fi\n  \
           cat /tmp/drover-nginx-test.$$ >&2; rm -f /tmp/drover-nginx-test.$$; echo 'nginx -t refused the new config; the old one stays' >&2; exit 1\n\
         fi\n\
         rm -f /tmp/drover-nginx-test.$$\n\
         systemctl reload nginx 2>/dev/null || nginx -s reload\n",
        conf = q(&p.nginx),
        logdir = q(&format!("/var/log/drover/{}", route.tenant)),
        content = q(&upstream::nginx_conf(route)),
    )
}

/// An audit line appended on the host.
fn audit(
    run: &str,
    operator: &str,
    tenant: &str,
    action: &str,
    from: &str,
    to: &str,
    result: &str,
) -> String {
    format!(
        "mkdir -p /var/log/drover && printf '%s run=%s operator=%s tenant=%s action=%s from=%s to=%s result=%s%s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" {} {} {} {} {} {} {} \"${{drover_img:+ image=$drover_img}}\" >> {AUDIT_LOG}\n",
        q(run),
        q(operator),
        q(tenant),
        q(action),
        q(from),
        q(to),
        q(result)
    )
}

fn state_json(state: &TenantState) -> String {
    serde_json::to_string_pretty(state).unwrap_or_default() + "\n"
}

/// Writes the state file aside and renames it into place: never half written. When
/// the active color runs a container, the host adds its image (`REFERENCE@ID`, from
/// podman) to the file, and to the audit line that follows (`$drover_img`).
fn write_state(p: &TenantLayout, state: &TenantState) -> String {
    let json = state_json(state);
    let head = json
        .trim_end()
        .strip_suffix('}')
        .unwrap_or(&json)
        .trim_end();
    format!(
        "{probe}if [ -n \"$drover_img\" ]; then printf '%s,\\n  \"image\": \"%s\"\\n}}\\n' {head} \"$drover_img\"; \
         else printf '%s' {json}; fi > {file}.new && mv -f {file}.new {file}\n",
        probe = image_probe(p, state.active),
        head = q(head),
        json = q(&json),
        file = q(&p.state),
    )
}

/// Sets `drover_img` to the image of the color's container (`REFERENCE@ID`), or to
/// nothing when the color's unit runs none; once per script (a script switches one
/// tenant to one color). Only a unit that mentions podman costs a podman call.
fn image_probe(p: &TenantLayout, color: Color) -> String {
    format!(
        "if [ -z \"${{drover_img+set}}\" ]; then\n  drover_img=\n  \
         if grep -qs podman {unit}; then\n    \
         drover_img=$(podman container inspect --format '{{{{.ImageName}}}}@{{{{.Image}}}}' {name} 2>/dev/null | head -n 1 | tr -cd 'A-Za-z0-9._:/@-') || drover_img=\n  \
         fi\nfi\n",
        unit = q(&format!("/etc/systemd/system/{}", p.unit(color))),
        name = q(&p.container(color)),
    )
}

/// Everything a switch needs.
#[derive(Debug, Clone)]
pub struct Switch {
    /// tenant
    pub tenant: String,
    /// tenant base port
    pub base_port: u16,
    /// state before (None on a first deploy)
    pub before: Option<TenantState>,
    /// state after
    pub after: TenantState,
    /// run id
    pub run: String,
    /// operator
    pub operator: String,
    /// deadline of the self-reverting timer (None: no timer)
    pub revert_after: Option<Duration>,
    /// audit action word: deploy or rollback
    pub action: String,
    /// while the switch is not final, the old color stays behind the new one, routed
    /// as this says; `None`: the switch is final at once
    pub traffic: Option<Traffic>,
    /// the audit result of a final switch (`ok` when `None`), e.g. why a canary was
    /// aborted
    pub result: Option<String>,
}

impl Switch {
    fn label(color: Option<Color>, version: Option<&str>) -> String {
        match (color, version) {
            (Some(c), Some(v)) => format!("{c}@{v}"),
            _ => "none".to_string(),
        }
    }

    fn before_label(&self) -> String {
        Self::label(
            self.before.as_ref().map(|s| s.active),
            self.before.as_ref().map(|s| s.version.as_str()),
        )
    }

    fn after_label(&self) -> String {
        Self::label(Some(self.after.active), Some(&self.after.version))
    }

    /// The script the revert timer runs (and drover itself, to switch back after a
    /// failed verification): back to the previous color, state and audit updated.
    /// `None` on a first deploy, where there is nothing to go back to.
    #[must_use]
    pub fn revert_script(&self, why: &str) -> Option<String> {
        let before = self.before.as_ref()?;
        let p = TenantLayout::of(&self.tenant);
        let mut s = String::from("set -eu\n");
        s.push_str(&switch_body(&Route::only(
            &self.tenant,
            before.active.port(self.base_port),
        )));
        s.push_str(&write_state(&p, before));
        s.push_str(&audit(
            &self.run,
            &self.operator,
            &self.tenant,
            why,
            &self.after_label(),
            &self.before_label(),
            "reverted",
        ));
        Some(s)
    }

    /// Aborts a canary: back to the previous color alone (its revert timer disarmed
    /// first, so it does not switch again later), state and audit
    /// (`result=aborted reason="…"`). `None` on a first deploy.
    #[must_use]
    pub fn abort_script(&self, reason: &str) -> Option<String> {
        let before = self.before.as_ref()?;
        let p = TenantLayout::of(&self.tenant);
        let mut s = format!(
            "set -eu\nmv -f {pending} {pending}.fired 2>/dev/null || true\n\
             systemctl stop {unit}.timer 2>/dev/null || true\n",
            pending = q(&p.revert_pending),
            unit = q(&p.revert_unit),
        );
        let old = before.active.port(self.base_port);
        s.push_str(&switch_body(&Route::only(&self.tenant, old)));
        s.push_str(&write_state(&p, before));
        // No `=` in the reason: an audit line is read as `key=value` words.
        let reason = reason.replace('=', ":");
        let result = format!("aborted reason=\"{reason}\"");
        s.push_str(&audit(
            &self.run,
            &self.operator,
            &self.tenant,
            "abort",
            &self.after_label(),
            &self.before_label(),
            &result,
        ));
        Some(s)
    }

    /// Arms the self-reverting timer: unless confirmed within the deadline, the host
    /// switches back by itself (the control node may lose the host right after).
    #[must_use]
    pub fn arm(&self) -> Option<String> {
        let deadline = self.revert_after?;
        let p = TenantLayout::of(&self.tenant);
        // The timer's script and the confirmation race for one token: whichever renames
        // `revert.pending` first wins, so a confirmation never reports a switch that the
        // timer is undoing at the same moment.
        let revert = format!("{}{}", claim_revert(&p), self.revert_script("auto-revert")?);
        Some(format!(
            "set -eu\nprintf '%s' {body} > {path}\nchmod 700 {path}\n\
             systemctl stop {unit}.timer {unit}.service 2>/dev/null || true\n\
             systemctl reset-failed {unit}.timer {unit}.service 2>/dev/null || true\n\
             rm -f {pending}.fired {pending}.confirmed\n: > {pending}\n\
             systemd-run --quiet --unit={unit} --on-active={secs} --timer-property=AccuracySec=1s /bin/sh {path}\n",
            body = q(&revert),
            path = q(&p.revert),
            unit = q(&p.revert_unit),
            pending = q(&p.revert_pending),
            secs = deadline.as_secs().max(1),
        ))
    }

    /// Disarms the timer: the control node confirmed over a fresh connection. Exits
    /// [`REVERT_FIRED`] when the timer claimed the switch first (the host switched back
    /// by itself).
    #[must_use]
    pub fn confirm(&self) -> String {
        disarm(&self.tenant)
    }

    /// Switches nginx to the new color and records the new state and the audit line.
    #[must_use]
    pub fn switch(&self) -> String {
        let p = TenantLayout::of(&self.tenant);
        let mut s = String::from("set -eu\n");
        // A timer of this run that fired before the switch reverted nothing; one of an
        // earlier switch is history. Either way this switch is the one in force.
        let _ = writeln!(s, "rm -f {}.fired", q(&p.revert_pending));
        let (route, result) = match self.pending_route(self.traffic.and_then(|t| t.weight)) {
            Some(route) => (route, "switched,awaiting-confirmation"),
            None => (
                Route::only(&self.tenant, self.after.active.port(self.base_port)),
                self.result.as_deref().unwrap_or("ok"),
            ),
        };
        s.push_str(&switch_body(&route));
        s.push_str(&write_state(&p, &self.after));
        s.push_str(&self.audit_line(&self.action, result));
        s
    }

    /// The route while the switch is not final: the new color first, the old one behind
    /// it, `weight` % to the new one (`None`: all). `None` when the switch is final at
    /// once (no fallback asked for, or a first deploy).
    #[must_use]
    pub fn pending_route(&self, weight: Option<u8>) -> Option<Route> {
        let (traffic, before) = (self.traffic?, self.before.as_ref()?);
        Some(Route::pending(
            &self.tenant,
            self.after.active.port(self.base_port),
            before.active.port(self.base_port),
            Traffic { weight, ..traffic },
        ))
    }

    fn audit_line(&self, action: &str, result: &str) -> String {
        let p = TenantLayout::of(&self.tenant);
        image_probe(&p, self.after.active)
            + &audit(
                &self.run,
                &self.operator,
                &self.tenant,
                action,
                &self.before_label(),
                &self.after_label(),
                result,
            )
    }

    /// Makes the switch final: the new color alone in the upstream, the old one no
    /// longer behind it; audited `confirmed`. Nothing when the switch was final at once.
    #[must_use]
    pub fn finalize(&self) -> Option<String> {
        self.pending_route(None)?;
        let mut s = String::from("set -eu\n");
        let live = self.after.active.port(self.base_port);
        s.push_str(&switch_body(&Route::only(&self.tenant, live)));
        s.push_str(&self.audit_line("confirm", "confirmed"));
        Some(s)
    }

    /// Moves a weighted canary to its next step: `weight` % of the traffic to the new
    /// color (100: all of it, the old one as backup), audited.
    #[must_use]
    pub fn reweigh(&self, weight: u8) -> Option<String> {
        let w = (weight < 100).then_some(weight);
        let route = self.pending_route(w)?;
        let mut s = String::from("set -eu\n");
        s.push_str(&switch_body(&route));
        s.push_str(&self.audit_line("weight", &format!("{}%", route.live_percent())));
        Some(s)
    }
}

/// A canary caught between two weights by a killed run goes back to its old color at
/// once (its armed revert script runs now rather than at its deadline), so a resumed
/// run starts it over from a known weight. Says so on stderr; prints nothing on stdout.
#[must_use]
pub fn settle_weighted(tenant: &str) -> String {
    let p = TenantLayout::of(tenant);
    format!(
        "if [ -e {pending} ] && [ -f {revert} ] && grep -q ' weight=' {conf} 2>/dev/null; then /bin/sh {revert} >&2 && echo 'a canary left between two weights went back to its old color' >&2; fi\n",
        pending = q(&p.revert_pending),
        revert = q(&p.revert),
        conf = q(&p.nginx),
    )
}

/// A confirmed switch whose nginx config still has the old color behind the new one
/// (a run killed before it finalized) gets the final config: `port` alone.
#[must_use]
pub fn settle_final(tenant: &str, port: u16) -> String {
    let p = TenantLayout::of(tenant);
    format!(
        "if grep -q ' backup;\\| weight=' {conf} 2>/dev/null; then\n{body}fi\n",
        conf = q(&p.nginx),
        body = switch_body(&Route::only(tenant, port)),
    )
}

/// Exit status of [`disarm`] when the revert timer fired first.
pub const REVERT_FIRED: u32 = 76;

/// Disarms a pending revert timer of the tenant (a confirmed switch, or a resumed run
/// finding its switch already live). Exits [`REVERT_FIRED`] when the timer claimed the
/// switch first: the host switched back, or is switching back, by itself.
#[must_use]
pub fn disarm(tenant: &str) -> String {
    disarm_in(&TenantLayout::of(tenant))
}

fn disarm_in(p: &TenantLayout) -> String {
    format!(
        "if mv -f {pending} {pending}.confirmed 2>/dev/null || [ ! -e {pending}.fired ]; then\n  \
           systemctl stop {unit}.timer 2>/dev/null || true\n  \
           systemctl reset-failed {unit}.timer {unit}.service 2>/dev/null || true\n  \
           rm -f {path} {pending}.confirmed\n  \
           exit 0\n\
         fi\n\
         echo 'the revert timer fired first: the host switched back by itself' >&2\n\
         exit {REVERT_FIRED}\n",
        unit = q(&p.revert_unit),
        path = q(&p.revert),
        pending = q(&p.revert_pending),
    )
}

/// The first line of the timer's revert script: it goes on only if it claims the
/// pending token before a confirmation does.
fn claim_revert(p: &TenantLayout) -> String {
    format!(
        "mv -f {pending} {pending}.fired 2>/dev/null || exit 0\n",
        pending = q(&p.revert_pending)
    )
}

/// After a canary soak: the live color's unit must still be active with no automatic
/// restart since it was (re)started by the deploy — a release that crashes and is
/// restarted by systemd may answer now and then, but it is not healthy.
#[must_use]
pub fn soak_check(tenant: &str, color: Color) -> String {
    let service = TenantLayout::of(tenant).unit(color);
    format!(
        "svc={svc}
if [ \"$(systemctl show -p LoadState --value \"$svc\")\" = loaded ]; then
             a=$(systemctl show -p ActiveState --value \"$svc\"); n=$(systemctl show -p NRestarts --value \"$svc\")
             if [ \"$a\" != active ] || [ \"${{n:-0}}\" != 0 ]; then echo \"$svc is $a after ${{n:-0}} automatic restart(s) during the soak\" >&2; exit 1; fi
fi
",
        svc = q(&service)
    )
}

/// Checks the tenant through nginx (`Host: <tenant>` on port 80) until the expected
/// version answers healthy: after a reload, old workers may still answer for a moment.
#[must_use]
pub fn verify_through_proxy(tenant: &str, version: &str, attempts: u32) -> String {
    // `attempts` half-seconds of patience, looking every 100 ms: the reload's old
    // workers answer for a moment, and a rollout waits on this once per target.
    let polls = attempts.saturating_mul(5);
    format!(
        "i=0\nwhile [ $i -lt {polls} ]; do\n  \
           body=$(curl -fsS -m 3 -H {host} http://127.0.0.1/health 2>&1) && case \"$body\" in *{v1}*|*{v2}*) echo \"$body\"; exit 0;; esac\n  \
           i=$((i+1)); sleep 0.1\ndone\n\
         echo \"through nginx: expected version {vt} healthy, got: $body\" >&2\nexit 1\n",
        host = q(&format!("Host: {tenant}")),
        v1 = q(&format!("\"version\": \"{version}\"")),
        v2 = q(&format!("\"version\":\"{version}\"")),
        vt = version.escape_default(),
    )
}

/// Stops a color's service after a drain period (used when old colors are not kept warm).
#[must_use]
pub fn stop_after_drain(service: &str, drain: Duration) -> String {
    format!("sleep {}\nsystemctl stop {}\n", drain.as_secs(), q(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(color: Color, version: &str) -> TenantState {
        TenantState {
            tenant: "acme".into(),
            active: color,
            version: version.into(),
            previous: None,
            previous_version: None,
            run: String::new(),
            updated: String::new(),
            image: None,
        }
    }

    #[test]
    fn versions_are_limited_to_safe_characters() {
        assert!(is_safe_version("1.0.0"));
        assert!(is_safe_version("3.0.0-broken"));
        assert!(!is_safe_version("1.0;rm"));
        assert!(!is_safe_version("../x"));
        assert!(!is_safe_version(""));
    }

    #[test]
    fn the_nginx_config_routes_the_tenant_host_header_to_the_color_port() {
        let conf = nginx_conf("acme-eu", 8101);
        assert!(conf.contains("server 127.0.0.1:8101;"));
        assert!(conf.contains("server_name acme-eu;"));
        assert!(conf.contains("upstream drover_acme_eu"));
    }

    #[test]
    fn a_refused_lock_reports_its_owner() {
        let (owner, age) =
            parse_lock_owner("run=r1\noperator=ops@laptop\nsince=2026-11-22T00:00:00Z\nage=42\n");
        assert_eq!(owner.run, "r1");
        assert_eq!(owner.operator, "ops@laptop");
        assert_eq!(age, Some(42));
        let script = lock("acme", &owner, false);
        assert!(script.contains("mv -T \"$new\" /var/lib/drover/acme/lock.d"));
        assert!(script.contains(&format!("exit {LOCK_HELD}")));
    }

    /// A tenant's paths under a scratch directory instead of `/var/lib/drover`.
    fn scratch_paths(dir: &std::path::Path) -> TenantLayout {
        let mut p = TenantLayout::of("acme");
        p.state_dir = dir.join("acme").display().to_string();
        p.lock = format!("{}/lock.d", p.state_dir);
        p.revert = format!("{}/revert.sh", p.state_dir);
        p.revert_pending = format!("{}/revert.pending", p.state_dir);
        // No unit of that name exists: `systemctl stop` of it changes nothing here.
        p.revert_unit = format!("drover-revert-test-{}", std::process::id());
        p
    }

    fn owner(run: &str) -> LockOwner {
        LockOwner {
            run: run.into(),
            operator: "ops@laptop".into(),
            since: "2026-11-22T00:00:00Z".into(),
        }
    }

    /// Runs scripts with the local `sh`, all at once; (exit code, stdout) of each.
    fn run_together(scripts: Vec<String>) -> Vec<(i32, String)> {
        let children: Vec<_> = scripts
            .iter()
            .map(|s| {
                std::process::Command::new("/bin/sh")
                    .arg("-c")
                    .arg(s)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("sh")
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("sh");
                (
                    out.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn of_many_runs_racing_for_a_lock_one_gets_it_and_the_others_are_told_who() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = scratch_paths(dir.path());
        let scripts = (0..16)
            .map(|i| lock_in(&p, "acme", &owner(&format!("r{i}")), false))
            .collect();
        let results = run_together(scripts);
        let winners: Vec<_> = results.iter().filter(|(code, _)| *code == 0).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let holder = std::fs::read_to_string(format!("{}/owner", p.lock)).expect("owner");
        for (code, stdout) in results.iter().filter(|(code, _)| *code != 0) {
            assert_eq!(*code, LOCK_HELD as i32, "{stdout}");
            let (seen, age) = parse_lock_owner(stdout);
            assert!(holder.contains(&format!("run={}\n", seen.run)), "{stdout}");
            assert!(age.is_some(), "{stdout}");
        }
    }

    #[test]
    fn one_run_racing_itself_for_its_lock_always_gets_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = scratch_paths(dir.path());
        let scripts = (0..16)
            .map(|_| lock_in(&p, "acme", &owner("r1"), false))
            .collect();
        for (code, stdout) in run_together(scripts) {
            assert_eq!(code, 0, "{stdout}");
        }
        // Nothing is left beside the lock.
        let names: Vec<_> = std::fs::read_dir(&p.state_dir)
            .expect("state dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["lock.d"]);
    }

    #[test]
    fn a_confirmation_and_the_revert_timer_never_both_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = scratch_paths(dir.path());
        std::fs::create_dir_all(&p.state_dir).expect("state dir");
        let fire = format!("{}echo reverted", claim_revert(&p));
        let (mut confirmed, mut fired) = (0, 0);
        for _ in 0..40 {
            std::fs::write(&p.revert_pending, "").expect("arm");
            let _ = std::fs::remove_file(format!("{}.fired", p.revert_pending));
            let results = run_together(vec![fire.clone(), disarm_in(&p)]);
            let timer_reverted = results[0].1.contains("reverted");
            match results[1].0 {
                0 => {
                    assert!(!timer_reverted, "confirmed, and the timer reverted too");
                    confirmed += 1;
                }
                code => {
                    assert_eq!(code, REVERT_FIRED as i32);
                    assert!(timer_reverted, "refused to confirm, yet nothing reverted");
                    fired += 1;
                }
            }
            // Once decided, asking again gives the same answer.
            let again = run_together(vec![disarm_in(&p)])[0].0;
            assert_eq!(again == 0, results[1].0 == 0);
        }
        assert_eq!(confirmed + fired, 40);
    }

    #[test]
    fn with_nothing_armed_a_confirmation_succeeds_and_a_late_timer_does_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = scratch_paths(dir.path());
        std::fs::create_dir_all(&p.state_dir).expect("state dir");
        assert_eq!(run_together(vec![disarm_in(&p)])[0].0, 0);
        let fire = format!("{}echo reverted", claim_revert(&p));
        let (code, out) = run_together(vec![fire]).remove(0);
        assert_eq!((code, out.as_str()), (0, ""));
    }

    #[test]
    fn only_the_holder_releases_a_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = scratch_paths(dir.path());
        let take = |run: &str| run_together(vec![lock_in(&p, "acme", &owner(run), false)])[0].0;
        let release = |run: &str| drop(run_together(vec![unlock_in(&p, run)]));
        assert_eq!(take("r1"), 0);
        assert_eq!(take("r2"), LOCK_HELD as i32);
        release("r2");
        assert_eq!(take("r2"), LOCK_HELD as i32);
        release("r1");
        assert!(!std::path::Path::new(&p.lock).exists());
        assert_eq!(take("r2"), 0);
    }

    #[test]
    fn a_first_deploy_has_nothing_to_revert_to() {
        let sw = Switch {
            tenant: "acme".into(),
            base_port: 8100,
            before: None,
            after: state(Color::Blue, "1.0.0"),
            run: "r".into(),
            operator: "o".into(),
            revert_after: Some(Duration::from_secs(30)),
            action: "deploy".into(),
            traffic: None,
            result: None,
        };
        assert!(sw.revert_script("x").is_none());
        assert!(sw.arm().is_none());
        let sw = Switch {
            before: Some(state(Color::Blue, "1.0.0")),
            after: state(Color::Green, "2.0.0"),
            ..sw
        };
        let revert = sw.revert_script("auto-revert").unwrap();
        assert!(revert.contains("127.0.0.1:8100"), "{revert}");
        assert!(revert.contains("green@2.0.0") && revert.contains("blue@1.0.0"));
        assert!(sw.arm().unwrap().contains("--on-active=30"));
        assert!(sw.switch().contains("127.0.0.1:8101"));
        assert!(
            sw.finalize().is_none(),
            "final at once: nothing to finalize"
        );
    }

    fn pending(weight: Option<u8>) -> Switch {
        Switch {
            tenant: "acme".into(),
            base_port: 8100,
            before: Some(state(Color::Blue, "1.0.0")),
            after: state(Color::Green, "2.0.0"),
            run: "r".into(),
            operator: "o".into(),
            revert_after: Some(Duration::from_secs(30)),
            action: "deploy".into(),
            traffic: Some(Traffic {
                weight,
                ..Traffic::default()
            }),
            result: None,
        }
    }

    #[test]
    fn a_switch_awaits_confirmation_with_the_old_color_behind_the_new_one() {
        let sw = pending(None);
        let script = sw.switch();
        assert!(script.contains("server 127.0.0.1:8100 backup;"), "{script}");
        assert!(script.contains("result=%s"));
        assert!(
            script.contains("switched,awaiting-confirmation"),
            "{script}"
        );
        assert!(!script.contains(" ok"), "never ok before confirmation");
        let fin = sw.finalize().expect("a pending switch is finalized");
        assert!(!fin.contains("backup"), "{fin}");
        assert!(fin.contains("confirmed"));
    }

    #[test]
    fn a_weighted_canary_starts_at_its_first_weight_and_moves_step_by_step() {
        let sw = pending(Some(5));
        assert!(sw.switch().contains("server 127.0.0.1:8101 weight=5;"));
        let step = sw.reweigh(25).expect("weighted");
        assert!(
            step.contains("weight=25;") && step.contains("weight=75;"),
            "{step}"
        );
        let full = sw.reweigh(100).expect("to 100");
        assert!(full.contains("server 127.0.0.1:8100 backup;"), "{full}");
    }

    #[test]
    fn an_aborted_canary_is_audited_with_the_numbers_that_decided() {
        let script = pending(Some(5))
            .abort_script("analysis: error rate 21.0% > 1.0%")
            .expect("there is an old color");
        assert!(
            script.contains("aborted reason=\"analysis: error rate 21.0% > 1.0%\""),
            "{script}"
        );
        assert!(script.contains("action=%s") && script.contains("abort"));
        assert!(script.contains("server 127.0.0.1:8100;"), "{script}");
        assert!(!script.contains("8101"), "the new color is out: {script}");
    }
}

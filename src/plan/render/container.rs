//! `container`: a release as an image, run by a systemd unit (see `container_unit`).
//! The templated values are checked here once rendered, each reported at its field.

use toml::Spanned;

use super::container_unit::{UnitValues, unit_text};
use super::{Ctx, Renderer};
use crate::config::diagnostic::Diagnostic;
use crate::config::playbook::{Container, ContainerSpec, Text};
use crate::plan::TenantLayout;
use crate::plan::steps::StepSpec;

/// An image reference: `[registry/]path[:tag][@digest]` in the characters a
/// reference may hold; never starting with `-` (it would read as an option).
fn is_image_ref(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.starts_with(|c: char| c.is_ascii_alphanumeric())
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c))
}

/// `/a/b`: absolute, no empty, `.` or `..` component, not `/` itself.
fn is_clean_abs(p: &str) -> bool {
    p.strip_prefix('/').is_some_and(|rest| {
        !rest.is_empty()
            && rest.split('/').all(|c| !matches!(c, "" | "." | ".."))
            && !p.contains([':', ',', '\n', '\r', '\0'])
    })
}

/// `host:container[:ro|:rw]` with both paths absolute and clean.
fn is_volume(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [h, c] => is_clean_abs(h) && is_clean_abs(c),
        [h, c, m] => is_clean_abs(h) && is_clean_abs(c) && matches!(*m, "ro" | "rw"),
        _ => false,
    }
}

/// systemd's MemoryMax: bytes with an optional K/M/G/T suffix, or `infinity`.
fn is_memory(m: &str) -> bool {
    let digits = m.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(m);
    m == "infinity" || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// systemd's CPUQuota: a whole percentage, at least 1%.
fn is_cpu_quota(q: &str) -> bool {
    q.strip_suffix('%')
        .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 1))
}

impl Renderer<'_> {
    /// Renders `field` (or takes `default`) and checks it with `ok`; a value that fails
    /// is reported at the field with `expected`.
    fn checked_value(
        &mut self,
        field: Option<&Text>,
        default: &str,
        (ctx, target): (&Ctx, &str),
        ok: fn(&str) -> bool,
        expected: &str,
    ) -> Result<String, Diagnostic> {
        let Some(field) = field else {
            return Ok(default.to_string());
        };
        let value = self.render(field, ctx, target)?;
        if ok(&value) {
            return Ok(value);
        }
        Err(self.diag(
            field.span(),
            "playbook::container-value",
            format!("`{value}` is not allowed here (for {target})"),
            expected.into(),
        ))
    }

    fn checked_list(
        &mut self,
        fields: &[Text],
        at: (&Ctx, &str),
        ok: fn(&str) -> bool,
        expected: &str,
    ) -> Result<Vec<String>, Diagnostic> {
        fields
            .iter()
            .map(|f| self.checked_value(Some(f), "", at, ok, expected))
            .collect()
    }

    /// [`Self::checked_value`] of a field that may be absent (then `None`).
    fn checked_opt(
        &mut self,
        field: Option<&Text>,
        at: (&Ctx, &str),
        ok: fn(&str) -> bool,
        expected: &str,
    ) -> Result<Option<String>, Diagnostic> {
        field
            .map(|f| self.checked_value(Some(f), "", at, ok, expected))
            .transpose()
    }

    /// The container's port: the step's `port`, else the color's.
    fn container_port(
        &mut self,
        spec: &ContainerSpec,
        ctx: &Ctx,
        target: &str,
    ) -> Result<u16, Diagnostic> {
        let port_text = match &spec.port {
            Some(p) => self.render(p, ctx, target)?,
            None => ctx
                .get_attr("port")
                .map(|v| v.to_string())
                .unwrap_or_default(),
        };
        let port = port_text.parse::<u16>().ok().filter(|p| *p != 0);
        let Some(port) = port else {
            let span = spec.port.as_ref().map_or(spec.name.span(), Spanned::span);
            return Err(self.diag(
                span,
                "playbook::container-value",
                format!("`{port_text}` is not a port (for {target})"),
                "expected 1-65535 (default: the color's port)".into(),
            ));
        };
        Ok(port)
    }

    /// The unit of a `container = { … }` step for this target's color.
    pub(super) fn container_step(
        &mut self,
        c: &Container,
        ctx: &Ctx,
        target: &str,
    ) -> Result<StepSpec, Diagnostic> {
        let spec = &c.spec;
        let at = (ctx, target);
        let name = self.checked_file_name(&spec.name, ctx, target, true)?;
        let image = self.checked_value(
            Some(&spec.image),
            "",
            at,
            is_image_ref,
            "expected an image reference, e.g. \"localhost/drover-agent:1.0.0\"",
        )?;
        let user = self
            .checked_name(Some(&spec.user), ctx, target)?
            .unwrap_or_default();
        let port = self.container_port(spec, ctx, target)?;
        let env_file = self.checked_opt(
            spec.env_file.as_ref(),
            at,
            is_clean_abs,
            "expected an absolute path",
        )?;
        let volumes = self.checked_list(
            &spec.volumes,
            at,
            is_volume,
            "expected \"/host/path:/container/path\" with `:ro` or `:rw` optional",
        )?;
        let tmpfs = match &spec.tmpfs {
            Some(t) => self.checked_list(t, at, is_clean_abs, "expected an absolute path")?,
            None => vec!["/tmp".to_string()],
        };
        let args = self.checked_list(
            &spec.args,
            at,
            |a| !a.contains(['\n', '\r', '\0']),
            "expected one line",
        )?;
        let entrypoint = self.checked_opt(
            spec.entrypoint.as_ref(),
            at,
            is_clean_abs,
            "expected the absolute path of a program in the image",
        )?;
        let memory_max = self.checked_value(
            spec.memory_max.as_ref(),
            "512M",
            at,
            is_memory,
            "expected bytes with K, M, G or T, e.g. \"256M\", or \"infinity\"",
        )?;
        let cpu_quota = self.checked_value(
            spec.cpu_quota.as_ref(),
            "100%",
            at,
            is_cpu_quota,
            "expected a percentage, e.g. \"50%\"",
        )?;
        let tenant = target.split('@').next().unwrap_or(target);
        let color = self.options.color;
        let unit = unit_text(&UnitValues {
            tenant,
            color: color.as_str(),
            container: &TenantLayout::of(tenant).container(color),
            image: &image,
            port,
            env_file: env_file.as_deref(),
            env_names: &c.env_names,
            volumes: &volumes,
            args: &args,
            entrypoint: entrypoint.as_deref(),
            read_only: spec.read_only.unwrap_or(true),
            tmpfs: &tmpfs,
            cap_add: &c.cap_add,
            no_new_privileges: spec.no_new_privileges.unwrap_or(true),
            stop_signal: &c.stop_signal,
            stop_timeout: c.stop_timeout.as_secs(),
            memory_max: &memory_max,
            cpu_quota: &cpu_quota,
            restart: &c.restart,
            log_driver: &c.log_driver,
        });
        Ok(StepSpec::Container { name, unit, user })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PlanOptions, plan};
    use super::*;
    use crate::config::diagnostic::Diagnostics;
    use crate::config::playbook::Playbook;
    use crate::config::{Host, Inventory, SourceFile, Tenant};
    use crate::plan::Color;

    /// Plans `step` (a container table's body) for acme on h1 in `color`.
    fn plan_container(step: &str, color: Color) -> Result<StepSpec, String> {
        let inv = Inventory::from_sources(vec![SourceFile::new(
            "inv.toml",
            "[hosts.h1]\naddress = \"10.0.0.1\"\n[tenants.acme]\nhosts = [\"h1\"]\nport = 8100\n",
        )])
        .unwrap();
        let text = format!(
            "name = \"c\"\n[vars]\nversion = \"1.0.0\"\n[[steps]]\nname = \"env\"\nenv = {{ dest = \"/etc/drover/{{{{ tenant }}}}.env\", vars = {{ STATE_DIR = \"/state\" }}, secrets = [\"API_KEY\"] }}\n[[steps]]\nname = \"c\"\ncontainer = {{ {step} }}\n"
        );
        let p = Playbook::from_source(SourceFile::new("playbooks/c.toml", text))
            .map_err(|e: Diagnostics| e.render(false))?;
        let tenant = inv.tenant("acme").unwrap();
        let targets: Vec<(&Tenant, &Host)> = vec![(tenant, inv.host("h1").unwrap())];
        let options = PlanOptions {
            color,
            ..PlanOptions::default()
        };
        let planned = plan(&inv, &p, &targets, &options).map_err(|e| e.render(false))?;
        Ok(planned.targets[0].steps[1].spec.clone().unwrap())
    }

    const BASE: &str = "name = \"drover-{{ tenant }}-{{ color }}.service\", image = \"localhost/drover-agent:{{ version }}\", user = \"agent-{{ tenant }}\", env_file = \"/etc/drover/{{ tenant }}.env\"";

    #[test]
    fn each_color_gets_its_own_container_port_and_the_env_steps_names() {
        let spec = plan_container(
            &format!("{BASE}, volumes = [\"/var/lib/drover/{{{{ tenant }}}}:/state\"]"),
            Color::Green,
        )
        .unwrap();
        let StepSpec::Container { name, unit, user } = spec else {
            panic!("not a container spec: {spec:?}")
        };
        assert_eq!(name, "drover-acme-green.service");
        assert_eq!(user, "agent-acme");
        for part in [
            "--name=drover-acme-green",
            "Environment=TENANT=acme COLOR=green PORT=8101",
            "--env=STATE_DIR --env=API_KEY",
            "--volume=/var/lib/drover/acme:/state",
            "--tmpfs=/tmp",
            "MemoryMax=512M",
            " localhost/drover-agent:1.0.0\n",
        ] {
            assert!(unit.contains(part), "{part} in:\n{unit}");
        }
    }

    #[test]
    fn bad_rendered_values_are_reported_at_their_field_with_line_and_column() {
        for (extra, at, what) in [
            (
                ", volumes = [\"state:/state\"]",
                "playbooks/c.toml:9:",
                "`state:/state` is not allowed",
            ),
            (
                ", memory_max = \"lots\"",
                "playbooks/c.toml:9:",
                "`lots` is not allowed",
            ),
            (
                ", cpu_quota = \"0%\"",
                "playbooks/c.toml:9:",
                "`0%` is not allowed",
            ),
            (
                ", port = \"99999\"",
                "playbooks/c.toml:9:",
                "`99999` is not a port",
            ),
            (
                ", entrypoint = \"python3\"",
                "playbooks/c.toml:9:",
                "`python3` is not allowed",
            ),
            (
                ", tmpfs = [\"tmp\"]",
                "playbooks/c.toml:9:",
                "`tmp` is not allowed",
            ),
        ] {
            let err = plan_container(&format!("{BASE}{extra}"), Color::Blue).unwrap_err();
            assert!(err.contains(at) && err.contains(what), "{extra}: {err}");
        }
        let err = plan_container(
            "name = \"u.service\", image = \"-v/etc:/x\", user = \"agent\"",
            Color::Blue,
        )
        .unwrap_err();
        assert!(
            err.contains("playbooks/c.toml:9:") && err.contains("not allowed"),
            "{err}"
        );
    }

    #[test]
    fn rendered_container_values_are_checked_before_they_reach_a_unit() {
        assert!(is_image_ref("localhost/drover-agent:1.0.0"));
        assert!(is_image_ref("drover-agent@sha256:1a5e"));
        assert!(!is_image_ref("--privileged"));
        assert!(!is_image_ref("a b"));
        assert!(is_volume("/var/lib/drover/acme:/state"));
        assert!(is_volume("/etc/x:/etc/x:ro"));
        for bad in [
            "state:/state",
            "/a:/b:rx",
            "/a/../b:/c",
            "/a",
            "/a:/b:ro:z",
            "/:/x",
        ] {
            assert!(!is_volume(bad), "{bad}");
        }
        assert!(is_memory("256M") && is_memory("1073741824") && is_memory("infinity"));
        assert!(!is_memory("256MB") && !is_memory("M") && !is_memory("-1"));
        assert!(is_cpu_quota("50%") && is_cpu_quota("200%"));
        assert!(!is_cpu_quota("50") && !is_cpu_quota("0%") && !is_cpu_quota("x%"));
    }
}

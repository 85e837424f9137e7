//! Rendering a playbook per target, from the playbook's text to the steps' specs.

use super::*;
use crate::config::SourceFile;

fn inventory() -> Inventory {
    Inventory::from_sources(vec![SourceFile::new(
        "inv.toml",
        "[hosts.h1]\naddress = \"10.0.0.1\"\n[hosts.h2]\naddress = \"10.0.0.2\"\n[tenants.acme]\nhosts = [\"h1\", \"h2\"]\nport = 8100\nvars = { model = \"m1\" }\n",
    )])
    .unwrap()
}

fn playbook(text: &str) -> Playbook {
    Playbook::from_source(SourceFile::new("/pb/agent.toml", text)).unwrap()
}

fn plan_for(p: &Playbook, options: &PlanOptions) -> Result<Plan, Diagnostics> {
    let inv = inventory();
    let tenant = inv.tenant("acme").unwrap();
    let targets: Vec<(&Tenant, &Host)> = tenant
        .hosts
        .iter()
        .map(|h| (tenant, inv.host(h).unwrap()))
        .collect();
    plan(&inv, p, &targets, options)
}

/// 1,000 tenants on 10 hosts; only the even ones have `model`.
fn wide_inventory() -> Inventory {
    let mut text = String::new();
    for h in 0..10 {
        text.push_str(&format!("[hosts.h{h}]\naddress = \"10.0.0.{}\"\n", h + 1));
    }
    for t in 0..1000 {
        let vars = if t % 2 == 0 {
            "vars = { model = \"m\" }\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "[tenants.t{t}]\nhosts = [\"h{}\"]\nport = {}\n{vars}",
            t % 10,
            8000 + 2 * (t / 10)
        ));
    }
    Inventory::from_sources(vec![SourceFile::new("inv.toml", text)]).unwrap()
}

#[test]
fn a_plan_is_the_same_on_one_thread_and_on_several() {
    let inv = wide_inventory();
    let targets: Vec<(&Tenant, &Host)> = inv
        .tenants
        .iter()
        .flat_map(|t| {
            let inv = &inv;
            t.hosts.iter().map(move |h| (t, inv.host(h).unwrap()))
        })
        .collect();
    assert_eq!(targets.len(), 1000);
    let fine = playbook(
        "name = \"a\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ tenant }}/{{ host }}/{{ port }}\" }\n",
    );
    let one = plan_on(1, &fine, &targets, &blue()).unwrap();
    let three = plan_on(3, &fine, &targets, &blue()).unwrap();
    assert_eq!(format!("{:?}", one.targets), format!("{:?}", three.targets));
    assert_eq!(one.targets[999].tenant, "t999");

    // The odd tenants fail: one report per field, naming the first target in order.
    let broken = playbook(
        "name = \"a\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ model }}\" }\n[[steps]]\nname = \"e\"\ndir = { path = \"/opt/{{ nope }}\" }\n",
    );
    let one = plan_on(1, &broken, &targets, &blue())
        .unwrap_err()
        .render(false);
    let three = plan_on(3, &broken, &targets, &blue())
        .unwrap_err()
        .render(false);
    assert_eq!(one, three);
    assert!(one.contains("t0@h0") && one.contains("t1@h1"), "{one}");
    assert_eq!(one.matches("error:").count(), 2, "{one}");
}

fn blue() -> PlanOptions {
    PlanOptions {
        color: Color::Blue,
        ..PlanOptions::default()
    }
}

#[test]
fn variables_render_per_target_from_tenant_host_and_playbook() {
    let p = playbook(
        "name = \"a\"\n[vars]\nuser = \"agent-{{ tenant }}\"\nversion = \"1.0.0\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ tenant }}/{{ version }}/{{ host }}/{{ model }}/{{ port }}\", owner = \"{{ user }}\" }\n",
    );
    let plan = plan_for(&p, &blue()).unwrap();
    assert_eq!(plan.targets.len(), 2);
    match &plan.targets[1].steps[0].spec {
        Some(StepSpec::Dir { path, ownership }) => {
            assert_eq!(path, "/opt/acme/1.0.0/h2/m1/8100");
            assert_eq!(ownership.owner.as_deref(), Some("agent-acme"));
        }
        other => panic!("{other:?}"),
    }
    let green = PlanOptions {
        color: Color::Green,
        overrides: vec![("version".into(), "2.0.0".into())],
        secrets: None,
    };
    let plan = plan_for(&p, &green).unwrap();
    assert!(
        matches!(&plan.targets[0].steps[0].spec, Some(StepSpec::Dir { path, .. }) if path == "/opt/acme/2.0.0/h1/m1/8101")
    );
}

#[test]
fn a_missing_variable_is_an_error_at_the_field_naming_the_target() {
    let p = playbook(
        "name = \"a\"\n[[steps]]\nname = \"d\"\ndir = { path = \"/opt/{{ tennant }}\" }\n",
    );
    let text = plan_for(&p, &blue()).unwrap_err().render(false);
    assert!(text.contains("/pb/agent.toml:4:16"), "{text}");
    assert!(
        text.contains("acme@h1") && text.contains("tennant"),
        "{text}"
    );
    assert_eq!(
        text.matches("error:").count(),
        1,
        "one report per field: {text}"
    );
}

#[test]
fn when_false_skips_a_step() {
    let p = playbook(
        "name = \"a\"\n[[steps]]\nname = \"r\"\nwhen = \"host == 'h2'\"\nrun = { script = \"true\" }\n",
    );
    let plan = plan_for(&p, &blue()).unwrap();
    assert!(plan.targets[0].steps[0].spec.is_none());
    assert!(plan.targets[1].steps[0].spec.is_some());
}

#[test]
fn unsafe_rendered_names_and_paths_are_rejected_before_anything_runs() {
    for (field, expect) in [
        (
            "user = { name = \"a;rm -rf /\" }",
            "not a valid user or group name",
        ),
        ("dir = { path = \"relative/x\" }", "not allowed"),
        ("dir = { path = \"/opt/../etc\" }", "not allowed"),
        (
            "dir = { path = \"/opt/x\", owner = \"$(id)\" }",
            "not a valid user or group name",
        ),
        (
            "dir = { path = \"/opt/x\", mode = \"99\" }",
            "not an octal file mode",
        ),
        (
            "cron = { name = \"a.b\", schedule = \"* * * * *\", command = \"true\" }",
            "not a valid file name",
        ),
        (
            "cron = { name = \"ab\", schedule = \"* * * * * rm\", command = \"true\" }",
            "not a cron schedule",
        ),
        ("service = { name = \"x;y\" }", "not a valid file name"),
    ] {
        let p = playbook(&format!("name = \"a\"\n[[steps]]\nname = \"s\"\n{field}\n"));
        let text = plan_for(&p, &blue()).unwrap_err().render(false);
        assert!(text.contains(expect), "{field}: {text}");
    }
}

#[test]
fn env_files_quote_values_and_carry_secrets_without_leaking_them_into_errors() {
    let p = playbook(
        "name = \"a\"\n[[steps]]\nname = \"e\"\nenv = { dest = \"/etc/drover/{{ tenant }}.env\", vars = { MODEL = \"{{ model }} \\\"x\\\" $HOME\" }, secrets = [\"API_KEY\"] }\n",
    );
    let missing = plan_for(
        &p,
        &PlanOptions {
            color: Color::Blue,
            overrides: vec![],
            secrets: Some(HashMap::new()),
        },
    );
    assert!(
        missing
            .unwrap_err()
            .render(false)
            .contains("DROVER_SECRET_API_KEY")
    );
    let secrets = HashMap::from([("API_KEY".to_string(), "s3cr3t\nline".to_string())]);
    let plan = plan_for(
        &p,
        &PlanOptions {
            color: Color::Blue,
            overrides: vec![],
            secrets: Some(secrets),
        },
    )
    .unwrap();
    match &plan.targets[0].steps[0].spec {
        Some(StepSpec::File {
            content,
            secret,
            ownership,
            ..
        }) => {
            let text = String::from_utf8_lossy(content);
            assert!(text.contains("MODEL=\"m1 \\\"x\\\" \\$HOME\"\n"), "{text}");
            assert!(text.contains("API_KEY=\"s3cr3t\nline\"\n"), "{text}");
            assert!(*secret);
            assert_eq!(ownership.mode.as_deref(), Some("0600"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.secret_values, ["s3cr3t\nline"]);
}

#[test]
fn the_default_unit_has_the_hardening_and_limits() {
    let p = playbook(
        "name = \"a\"\n[[steps]]\nname = \"u\"\nunit = { name = \"drover-{{ tenant }}-{{ color }}.service\", exec = \"/usr/bin/python3 /opt/x/agent.py --port {{ port }}\", user = \"agent-{{ tenant }}\" }\n",
    );
    let plan = plan_for(&p, &blue()).unwrap();
    match &plan.targets[0].steps[0].spec {
        Some(StepSpec::File {
            dest,
            content,
            on_change,
            ..
        }) => {
            assert_eq!(dest, "/etc/systemd/system/drover-acme-blue.service");
            let text = String::from_utf8_lossy(content);
            for needle in [
                "Restart=on-failure",
                "StartLimitBurst=",
                "MemoryMax=512M",
                "CPUQuota=100%",
                "NoNewPrivileges=yes",
                "ProtectSystem=strict",
                "PrivateTmp=yes",
                "User=agent-acme",
                "--port 8100",
            ] {
                assert!(text.contains(needle), "{needle} missing in\n{text}");
            }
            assert_eq!(on_change.as_deref(), Some("systemctl daemon-reload"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn env_lines_escape_everything_a_shell_or_systemd_would_interpret() {
    assert_eq!(
        env_line("A", "x\"y\\z$w\nv`id`"),
        "A=\"x\\\"y\\\\z\\$w\nv\\`id\\`\"\n"
    );
}

#[test]
fn an_image_step_renders_its_reference_and_a_missing_archive_is_reported_at_its_place() {
    let p = playbook(
        "name = \"x\"\n[vars]\nversion = \"1.0.0\"\n[[steps]]\nname = \"img\"\nimage = { from = \"drover-agent:{{ version }}\", name = \"localhost/drover-agent:{{ version }}\" }\n",
    );
    let plan = plan_for(&p, &blue()).unwrap();
    assert_eq!(
        plan.targets[0].steps[0].spec,
        Some(StepSpec::Image {
            source: crate::plan::steps::ImageSource::Local("drover-agent:1.0.0".into()),
            name: "localhost/drover-agent:1.0.0".into(),
            via: crate::config::playbook::ImageVia::Registry,
        })
    );
    let p = playbook(
        "name = \"x\"\n[[steps]]\nname = \"img\"\nimage = { archive = \"images/none.tar\", name = \"localhost/a:1\", via = \"load\" }\n",
    );
    let err = plan_for(&p, &blue()).unwrap_err().render(false);
    assert!(
        err.contains("/pb/agent.toml:4:21")
            && err.contains("cannot ship image archive /pb/images/none.tar"),
        "{err}"
    );
    let p = playbook(
        "name = \"x\"\n[[steps]]\nname = \"img\"\nimage = { from = \"a:1\", name = \"{{ tenant }} $(id)\" }\n",
    );
    let err = plan_for(&p, &blue()).unwrap_err().render(false);
    assert!(err.contains("is not an image reference"), "{err}");
}

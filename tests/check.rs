//! `drover check`: validation without connecting.
//!
//! Malformed inventories live in `tests/fixtures/bad/` (a directory there is one inventory of
//! several files); valid ones in `tests/fixtures/ok/`. drover runs from `tests/fixtures`, so
//! the paths in its messages are short and stable. A `bad/NAME.stderr` is the exact expected
//! output for `bad/NAME`; rewrite them after a deliberate change with
//! `DROVER_BLESS=1 cargo nextest run --test main check` and review the diff.

use std::path::{Path, PathBuf};

use crate::support::cli::{Run, drover, run};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `drover --color never -i FILE… check EXTRA…`, run from `tests/fixtures`.
fn check(files: &[&str], extra: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("temp HOME");
    let mut cmd = drover(home.path());
    cmd.current_dir(fixtures()).args(["--color", "never"]);
    for file in files {
        cmd.arg("-i").arg(file);
    }
    cmd.arg("check").args(extra);
    run(&mut cmd)
}

/// Checks `bad/NAME.toml` alone.
fn check_bad(name: &str) -> Run {
    check(&[&format!("bad/{name}.toml")], &[])
}

/// Exit 2, no panic, and an `error: LOCATION: …` line whose message holds every part (what
/// was found and what was expected); the annotated snippet points at the same place.
#[track_caller]
fn assert_reported(r: &Run, location: &str, parts: &[&str]) {
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    let prefix = format!("error: {location}: ");
    let Some(line) = r.stderr.lines().find(|l| l.starts_with(&prefix)) else {
        panic!("no line starting with `{prefix}`\n{r:?}");
    };
    for part in parts {
        assert!(
            line.contains(part),
            "`{part}` is not in the message\n{line}\n\n{r:?}"
        );
    }
    if location.matches(':').count() == 2 {
        assert!(
            r.stderr.contains(&format!("╭─[{location}]")),
            "snippet not at {location}\n{r:?}"
        );
    }
}

/// Asserts that stderr holds `text` somewhere (a label or a help line).
#[track_caller]
fn assert_says(r: &Run, text: &str) {
    assert!(r.stderr.contains(text), "`{text}` is not in stderr\n{r:?}");
}

/// Compares stderr with `bad/NAME.stderr` byte for byte (or writes it with DROVER_BLESS=1).
#[track_caller]
fn assert_golden(r: &Run, name: &str) {
    let path = fixtures().join("bad").join(format!("{name}.stderr"));
    if std::env::var_os("DROVER_BLESS").is_some() {
        std::fs::write(&path, &r.stderr).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with DROVER_BLESS=1 to create it)",
            path.display()
        )
    });
    if r.stderr != want {
        let line = r
            .stderr
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "a missing or extra line at the end".to_string(),
                |i| format!("line {}", i + 1),
            );
        panic!(
            "stderr differs from {} at {line} (DROVER_BLESS=1 rewrites it)\n--- expected\n{want}\n--- found\n{}",
            path.display(),
            r.stderr
        );
    }
}

// ---------------------------------------------------------------- syntax

#[test]
fn an_unclosed_table_header_is_a_syntax_error_at_the_end_of_the_line() {
    let r = check_bad("syntax-unclosed-table");
    assert_reported(
        &r,
        "bad/syntax-unclosed-table.toml:4:13",
        &["invalid TOML", "unclosed table, expected `]`"],
    );
    assert_golden(&r, "syntax-unclosed-table");
}

#[test]
fn a_key_set_twice_in_one_table_is_named_at_its_second_place() {
    let r = check_bad("syntax-duplicate-key");
    assert_reported(
        &r,
        "bad/syntax-duplicate-key.toml:3:1",
        &[
            "duplicate key `address`",
            "expected each key once in a table",
        ],
    );
}

#[test]
fn a_syntax_error_after_multibyte_text_is_located_in_characters_not_bytes() {
    let r = check_bad("multibyte-before-error");
    // The `,` after the inline table is character 47 of line 6 (byte 51).
    assert_reported(
        &r,
        "bad/multibyte-before-error.toml:6:47",
        &["expected newline"],
    );
    assert_golden(&r, "multibyte-before-error");
}

// ---------------------------------------------------------------- unknown keys

#[test]
fn unknown_key_in_a_host_is_reported_with_location_and_did_you_mean() {
    let r = check_bad("unknown-key-in-host");
    assert_reported(
        &r,
        "bad/unknown-key-in-host.toml:3:1",
        &[
            "unknown key `prot` in host `web-1`",
            "expected one of `address`, `port`",
        ],
    );
    assert_says(&r, "help: did you mean `port`?");
    assert_golden(&r, "unknown-key-in-host");
}

#[test]
fn unknown_key_in_defaults_is_reported_with_did_you_mean() {
    let r = check_bad("unknown-key-in-defaults");
    assert_reported(
        &r,
        "bad/unknown-key-in-defaults.toml:2:1",
        &[
            "unknown key `usr` in `[defaults]`",
            "expected one of `user`, `identity`",
        ],
    );
    assert_says(&r, "help: did you mean `user`?");
}

#[test]
fn unknown_key_in_a_tenant_is_reported_with_did_you_mean() {
    let r = check_bad("unknown-key-in-tenant");
    assert_reported(
        &r,
        "bad/unknown-key-in-tenant.toml:6:1",
        &[
            "unknown key `prot` in tenant `acme`",
            "expected one of `hosts`, `port`, `vars`",
        ],
    );
    assert_says(&r, "help: did you mean `port`?");
}

#[test]
fn an_unknown_top_level_table_suggests_the_right_one() {
    let r = check_bad("unknown-top-level-table");
    assert_reported(
        &r,
        "bad/unknown-top-level-table.toml:1:2",
        &[
            "unknown key `host` at the top level",
            "expected one of `defaults`, `hosts`, `tenants`",
        ],
    );
    assert_says(&r, "help: did you mean `hosts`?");
}

// ---------------------------------------------------------------- hosts

#[test]
fn a_host_without_address_is_reported_at_its_name() {
    let r = check_bad("missing-address");
    assert_reported(
        &r,
        "bad/missing-address.toml:4:8",
        &[
            "host `web-2` has no `address`",
            "expected `address = \"...\"`",
        ],
    );
}

#[test]
fn an_address_that_is_no_address_is_refused() {
    let r = check_bad("bad-address");
    assert_reported(
        &r,
        "bad/bad-address.toml:2:11",
        &[
            "found \"203.0.113.10; rm -rf /\"",
            "expected an IPv4 or IPv6 address or a DNS name",
        ],
    );
}

#[test]
fn a_host_written_as_a_string_instead_of_a_table_is_a_wrong_type() {
    let r = check_bad("host-not-a-table");
    assert_reported(
        &r,
        "bad/host-not-a-table.toml:2:9",
        &[
            "host `web-1`",
            "found the string \"203.0.113.10\"",
            "expected a table such as `[hosts.web-1]`",
        ],
    );
}

#[test]
fn a_host_defined_in_two_inventory_files_names_both_files() {
    let r = check(
        &["bad/duplicate-host/a.toml", "bad/duplicate-host/b.toml"],
        &[],
    );
    assert_reported(
        &r,
        "bad/duplicate-host/b.toml:4:8",
        &[
            "host `web-1` is defined twice",
            "first at bad/duplicate-host/a.toml:1:8",
            "expected each host name once across all inventory files",
        ],
    );
    assert_golden(&r, "duplicate-host");
}

#[test]
fn a_tenant_and_a_default_set_in_two_files_are_both_reported() {
    let r = check(
        &[
            "bad/duplicate-tenant-and-default/a.toml",
            "bad/duplicate-tenant-and-default/b.toml",
        ],
        &[],
    );
    assert_reported(
        &r,
        "bad/duplicate-tenant-and-default/b.toml:2:8",
        &[
            "`defaults.user` is set twice",
            "first at bad/duplicate-tenant-and-default/a.toml:2:8",
        ],
    );
    assert_reported(
        &r,
        "bad/duplicate-tenant-and-default/b.toml:4:10",
        &[
            "tenant `acme` is defined twice",
            "first at bad/duplicate-tenant-and-default/a.toml:7:10",
        ],
    );
    assert_says(&r, "error: 2 problems found");
}

// ---------------------------------------------------------------- references

#[test]
fn a_tenant_on_an_unknown_host_is_reported_with_did_you_mean() {
    let r = check_bad("unknown-host-in-tenant");
    assert_reported(
        &r,
        "bad/unknown-host-in-tenant.toml:8:19",
        &[
            "tenant `acme` is placed on unknown host `web-3`",
            "expected the name of a host defined as `[hosts.NAME]`",
        ],
    );
    assert_says(&r, "help: did you mean `web-2`?");
    assert_golden(&r, "unknown-host-in-tenant");
}

#[test]
fn an_unknown_jump_host_is_reported_with_did_you_mean() {
    let r = check_bad("unknown-jump-host");
    assert_reported(
        &r,
        "bad/unknown-jump-host.toml:6:8",
        &[
            "host `web-1` jumps through unknown host `bastoin`",
            "expected the name of a host",
        ],
    );
    assert_says(&r, "help: did you mean `bastion`?");
}

#[test]
fn a_jump_cycle_is_reported_once_with_both_jumps_labelled() {
    let r = check_bad("jump-cycle");
    assert_reported(
        &r,
        "bad/jump-cycle.toml:3:8",
        &[
            "jump hosts form a cycle `a` → `b` → `a`",
            "expected a chain that ends at a host reached directly",
        ],
    );
    assert_says(&r, "`b` jumps through `a`");
    assert_says(&r, "error: 1 problem found");
    assert_golden(&r, "jump-cycle");
}

#[test]
fn a_host_jumping_through_itself_is_a_cycle() {
    let r = check_bad("self-jump");
    assert_reported(
        &r,
        "bad/self-jump.toml:3:8",
        &[
            "host `web-1` jumps through itself",
            "expected another host, or no `jump`",
        ],
    );
}

// ---------------------------------------------------------------- names

const NAME_RULE: &str = "expected lowercase letters, digits and `-`, starting with a letter";

#[test]
fn an_uppercase_host_name_is_not_a_safe_identifier() {
    let r = check_bad("host-name-uppercase");
    assert_reported(
        &r,
        "bad/host-name-uppercase.toml:1:8",
        &[
            "host name `Web-1` is not a safe identifier",
            "found a leading uppercase `W`",
            NAME_RULE,
        ],
    );
    assert_says(&r, "try `web-1`");
}

#[test]
fn an_underscore_in_a_host_name_is_not_a_safe_identifier() {
    let r = check_bad("host-name-underscore");
    assert_reported(
        &r,
        "bad/host-name-underscore.toml:1:8",
        &["host name `web_1`", "found `_`", NAME_RULE],
    );
    assert_says(&r, "try `web-1`");
}

#[test]
fn a_host_name_with_a_leading_digit_is_not_a_safe_identifier() {
    let r = check_bad("host-name-leading-digit");
    assert_reported(
        &r,
        "bad/host-name-leading-digit.toml:1:8",
        &["host name `1web`", "found a leading digit `1`", NAME_RULE],
    );
}

#[test]
fn a_quoted_host_name_with_a_space_is_not_a_safe_identifier() {
    let r = check_bad("host-name-space");
    // The span starts at the opening quote of `"web 1"`.
    assert_reported(
        &r,
        "bad/host-name-space.toml:1:8",
        &["host name `web 1`", "found a space", NAME_RULE],
    );
    assert_golden(&r, "host-name-space");
}

#[test]
fn an_unsafe_tenant_name_is_reported() {
    let r = check_bad("tenant-name-unsafe");
    assert_reported(
        &r,
        "bad/tenant-name-unsafe.toml:4:10",
        &["tenant name `Acme_Corp`", NAME_RULE],
    );
    assert_says(&r, "try `acme-corp`");
}

#[test]
fn an_unsafe_group_name_is_reported_at_the_array_element() {
    let r = check_bad("group-name-unsafe");
    assert_reported(
        &r,
        "bad/group-name-unsafe.toml:3:17",
        &["group name `Canary`", NAME_RULE],
    );
    assert_says(&r, "try `canary`");
}

// ---------------------------------------------------------------- tenants and ports

#[test]
fn two_tenants_one_port_apart_on_one_host_overlap_on_green() {
    let r = check_bad("port-overlap-adjacent");
    assert_reported(
        &r,
        "bad/port-overlap-adjacent.toml:10:8",
        &[
            "tenants `acme` and `beta` both use port 8101 on host `web-1`",
            "`acme` takes 8100-8101 and `beta` takes 8101-8102",
            "expected ports at least 2 apart",
        ],
    );
    assert_says(&r, "`port = 8102` is free on `web-1`");
    assert_golden(&r, "port-overlap-adjacent");
}

#[test]
fn two_tenants_with_the_same_port_on_a_shared_host_overlap() {
    let r = check_bad("port-overlap-equal");
    assert_reported(
        &r,
        "bad/port-overlap-equal.toml:13:8",
        &[
            "tenants `acme` and `beta` both use port 8100 on host `web-2`",
            "expected ports at least 2 apart",
        ],
    );
}

#[test]
fn a_tenant_with_an_empty_host_list_points_at_the_array() {
    let r = check_bad("tenant-empty-hosts");
    assert_reported(
        &r,
        "bad/tenant-empty-hosts.toml:5:9",
        &[
            "tenant `acme` is placed on no host",
            "found an empty `hosts` array",
            "expected at least one host name",
        ],
    );
}

#[test]
fn a_tenant_without_hosts_points_at_its_name() {
    let r = check_bad("tenant-without-hosts");
    assert_reported(
        &r,
        "bad/tenant-without-hosts.toml:4:10",
        &[
            "tenant `acme` is placed on no host",
            "expected `hosts = [\"...\"]`",
        ],
    );
}

#[test]
fn a_host_listed_twice_for_one_tenant_is_reported() {
    let r = check_bad("duplicate-placement");
    assert_reported(
        &r,
        "bad/duplicate-placement.toml:5:19",
        &[
            "host `web-1` is listed twice for tenant `acme`",
            "expected each host once",
        ],
    );
}

#[test]
fn a_tenant_on_port_65535_has_no_room_for_green() {
    let r = check_bad("tenant-port-no-room-for-green");
    assert_reported(
        &r,
        "bad/tenant-port-no-room-for-green.toml:6:8",
        &["found 65535", "expected a port from 1 to 65534"],
    );
}

// ---------------------------------------------------------------- values

#[test]
fn a_bare_number_is_not_a_duration() {
    let r = check_bad("duration-bare-number");
    assert_reported(
        &r,
        "bad/duration-bare-number.toml:2:19",
        &[
            "invalid duration for `connect_timeout`",
            "found the bare number \"10\"",
            "expected a duration with a unit such as \"10s\"",
        ],
    );
}

#[test]
fn words_are_not_a_duration() {
    let r = check_bad("duration-words");
    assert_reported(
        &r,
        "bad/duration-words.toml:3:19",
        &[
            "invalid duration for `command_timeout`",
            "found \"ten seconds\"",
            "expected a duration such as \"10s\"",
        ],
    );
}

#[test]
fn a_zero_duration_is_refused() {
    let r = check_bad("duration-zero");
    assert_reported(
        &r,
        "bad/duration-zero.toml:3:19",
        &["found \"0s\"", "expected a duration above zero"],
    );
}

#[test]
fn a_quoted_port_is_a_wrong_type_with_a_fix() {
    let r = check_bad("port-as-string");
    assert_reported(
        &r,
        "bad/port-as-string.toml:3:8",
        &[
            "wrong type for `port` in host `web-1`",
            "found the string \"22\"",
            "expected a port number, an integer from 1 to 65535",
        ],
    );
    assert_says(&r, "help: write the number without quotes: `port = 22`");
    assert_golden(&r, "port-as-string");
}

#[test]
fn a_port_above_65535_is_out_of_range() {
    let r = check_bad("port-out-of-range");
    assert_reported(
        &r,
        "bad/port-out-of-range.toml:2:8",
        &[
            "`port` in `[defaults]` is out of range",
            "found the integer 70000",
            "expected a port number, an integer from 1 to 65535",
        ],
    );
}

#[test]
fn port_zero_is_refused() {
    let r = check_bad("port-zero");
    assert_reported(
        &r,
        "bad/port-zero.toml:3:8",
        &[
            "invalid port: found 0",
            "expected a port number from 1 to 65535",
        ],
    );
}

#[test]
fn groups_as_a_string_is_a_wrong_type_with_a_fix() {
    let r = check_bad("groups-as-string");
    assert_reported(
        &r,
        "bad/groups-as-string.toml:3:10",
        &[
            "wrong type for `groups` in host `web-1`",
            "found the string \"eu\"",
            "expected an array of group names",
        ],
    );
    assert_says(&r, "help: write an array: `groups = [\"eu\"]`");
}

#[test]
fn a_number_among_tenant_hosts_is_a_wrong_type_at_the_element() {
    let r = check_bad("tenant-hosts-element-not-a-string");
    assert_reported(
        &r,
        "bad/tenant-hosts-element-not-a-string.toml:5:19",
        &[
            "an element of `hosts` in tenant `acme`",
            "found the integer 2",
            "expected a host name (a string)",
        ],
    );
}

#[test]
fn an_unknown_become_value_is_refused() {
    let r = check_bad("bad-become");
    assert_reported(
        &r,
        "bad/bad-become.toml:2:10",
        &[
            "invalid `become`: found \"doas\"",
            "expected \"sudo\" or \"none\"",
        ],
    );
}

// ---------------------------------------------------------------- files

#[test]
fn a_file_that_does_not_exist_is_named_with_the_reason() {
    let r = check(&["does-not-exist.toml"], &[]);
    assert_reported(
        &r,
        "does-not-exist.toml",
        &[
            "cannot read inventory file: No such file or directory",
            "expected a readable UTF-8 TOML file",
        ],
    );
    assert_golden(&r, "does-not-exist");
}

#[test]
fn a_file_that_is_not_utf8_is_located_at_its_first_invalid_byte() {
    let r = check_bad("not-utf8");
    assert_reported(
        &r,
        "bad/not-utf8.toml:2:15",
        &[
            "it is not UTF-8 text",
            "expected a readable UTF-8 TOML file",
        ],
    );
}

#[test]
fn an_empty_file_is_a_valid_empty_inventory() {
    let r = check(&["ok/empty.toml"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout, "ok: 0 hosts, 0 tenants, 0 groups in 1 file\n",
        "{r:?}"
    );
    assert_eq!(r.stderr, "", "{r:?}");
}

#[test]
fn a_valid_inventory_prints_ok_with_counts_and_exits_0() {
    let r = check(&["ok/fleet.toml"], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout, "ok: 3 hosts, 2 tenants, 2 groups in 1 file\n",
        "{r:?}"
    );
    assert_eq!(r.stderr, "", "{r:?}");

    let r = check(&["ok/fleet.toml", "ok/empty.toml"], &["--format", "json"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "[]\n"), "{r:?}");
}

#[test]
fn without_dash_i_every_toml_file_in_inventory_is_checked() {
    let home = tempfile::tempdir().expect("temp HOME");
    std::fs::create_dir(home.path().join("inventory")).expect("mkdir");
    std::fs::copy(
        fixtures().join("ok/fleet.toml"),
        home.path().join("inventory/fleet.toml"),
    )
    .expect("copy");
    std::fs::write(home.path().join("inventory/notes.txt"), "not an inventory").expect("write");
    let r = run(drover(home.path()).arg("check"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stdout, "ok: 3 hosts, 2 tenants, 2 groups in 1 file\n",
        "{r:?}"
    );

    let empty = tempfile::tempdir().expect("temp HOME");
    let r = run(drover(empty.path()).arg("check"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("no inventory: pass -i FILE or create inventory/*.toml"),
        "{r:?}"
    );
}

// ---------------------------------------------------------------- several at once

#[test]
fn several_problems_in_one_file_are_all_reported_in_order() {
    let r = check_bad("several-problems");
    let locations: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: bad/several-problems.toml:"))
        .map(|l| &l[..l.find(": ").expect("location")])
        .collect();
    assert_eq!(locations, ["3:19", "7:1", "9:8", "12:8", "16:19"], "{r:?}");
    assert_reported(
        &r,
        "bad/several-problems.toml:3:19",
        &["found the bare number \"10\""],
    );
    assert_reported(
        &r,
        "bad/several-problems.toml:7:1",
        &["unknown key `prot` in host `web-1`"],
    );
    assert_reported(&r, "bad/several-problems.toml:9:8", &["host name `Web-2`"]);
    assert_reported(
        &r,
        "bad/several-problems.toml:12:8",
        &["host `web-3` has no `address`"],
    );
    assert_reported(
        &r,
        "bad/several-problems.toml:16:19",
        &["unknown host `web-4`"],
    );
    assert!(
        r.stderr
            .ends_with("error: 5 problems found; nothing was changed\n"),
        "{r:?}"
    );
    assert_golden(&r, "several-problems");
}

#[test]
fn json_format_gives_every_problem_with_exact_positions() {
    let r = check(&["bad/several-problems.toml"], &["--format", "json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON array");
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 5, "{r:?}");
    for item in list {
        let keys: Vec<&str> = item
            .as_object()
            .expect("objects")
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [
                "code",
                "column",
                "end_column",
                "end_line",
                "file",
                "help",
                "line",
                "message"
            ],
            "{item}"
        );
        assert_eq!(item["file"], "bad/several-problems.toml");
    }
    let at = |i: usize| {
        let d = &list[i];
        (
            d["line"].as_u64().unwrap(),
            d["column"].as_u64().unwrap(),
            d["end_line"].as_u64().unwrap(),
            d["end_column"].as_u64().unwrap(),
            d["code"].as_str().unwrap(),
        )
    };
    assert_eq!(at(0), (3, 19, 3, 23, "inventory::bad-duration"));
    assert_eq!(at(1), (7, 1, 7, 5, "inventory::unknown-key"));
    assert_eq!(at(2), (9, 8, 9, 13, "inventory::unsafe-name"));
    assert_eq!(at(3), (12, 8, 12, 13, "inventory::missing-address"));
    assert_eq!(at(4), (16, 19, 16, 26, "inventory::unknown-host"));
    assert_eq!(list[0]["help"], serde_json::Value::Null);
    assert_eq!(list[1]["help"], "did you mean `port`?");
    assert!(
        list[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown key `prot` in host `web-1`: expected one of"),
        "{}",
        list[1]
    );
    // Nothing but the array on stdout, and nothing rendered on stderr.
    assert!(!r.stderr.contains("╭─["), "{r:?}");
}

#[test]
fn json_format_names_an_unreadable_file_without_a_position() {
    let r = check(&["does-not-exist.toml"], &["--format", "json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON array");
    assert_eq!(list[0]["file"], "does-not-exist.toml");
    assert_eq!(list[0]["line"], serde_json::Value::Null);
    assert_eq!(list[0]["code"], "inventory::unreadable");
}

#[test]
fn json_format_counts_columns_in_characters() {
    let r = check(&["bad/multibyte-before-error.toml"], &["--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON array");
    assert_eq!(
        (list[0]["line"].as_u64(), list[0]["column"].as_u64()),
        (Some(6), Some(47)),
        "{r:?}"
    );
}

/// Every fixture under `bad/` (a file alone, or a directory's files together) is refused with
/// exit 2, at least one located `error:` line and no panic: new fixtures are covered at once.
#[test]
fn every_bad_fixture_is_refused_with_located_errors() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(fixtures().join("bad"))
        .expect("bad/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 30, "{entries:?}");
    for entry in entries {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        let files: Vec<String> = if entry.is_dir() {
            let mut files: Vec<String> = std::fs::read_dir(&entry)
                .expect("dir")
                .map(|e| {
                    format!(
                        "bad/{name}/{}",
                        e.expect("entry").file_name().to_string_lossy()
                    )
                })
                .collect();
            files.sort();
            files
        } else {
            vec![format!("bad/{name}")]
        };
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let r = check(&files, &[]);
        assert_eq!(r.code, 2, "{name}: {r:?}");
        assert!(!r.stderr.contains("panicked"), "{name}: {r:?}");
        let located = r
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: bad/"))
            .count();
        assert!(located >= 1, "{name}: {r:?}");
    }
}

// ---------------------------------------------------------------- fuzz

/// No input may make the inventory parser, the checks or the renderers panic: arbitrary
/// text, TOML-ish token soup, TOML built from a small grammar of drover's keys and tricky
/// values, and valid inventories with random edits (long lines past 65,535 characters, many
/// lines, deep nesting, NUL bytes), alone or as several files, some not UTF-8.
///
/// `DROVER_FUZZ_CASES=200000 cargo test --test main check::fuzz` runs it long (plain `cargo
/// test`: nextest ends any test after 5 minutes).
mod fuzz {
    use std::collections::{HashMap, HashSet};
    use std::path::PathBuf;

    use drover::config::diagnostic::MAX_SNIPPETS;
    use drover::config::{Diagnostics, Inventory};
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    const VALID: &str = include_str!("fixtures/ok/fleet.toml");
    const SEVERAL: &str = include_str!("fixtures/bad/several-problems.toml");
    const MULTIBYTE: &str = include_str!("fixtures/bad/multibyte-before-error.toml");

    fn config() -> Config {
        let cases = std::env::var("DROVER_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        Config {
            cases,
            // Failures are turned into named regression tests by hand, not files.
            failure_persistence: None,
            ..Config::default()
        }
    }

    #[rustfmt::skip]
    const TOKENS: &[&str] = &[
        "[", "]", "[[", "]]", ".", "=", "\"", "'", "\"\"\"", "'''", ",", "{", "}", "#", "\\", "\n",
        "\r\n", "\r", " ", "\t", "\u{feff}", "\u{0}", "\u{1b}[31m", "é", "ß", "🚀", "\u{301}",
        "hosts", "tenants", "defaults", "web-1", "Web_1", "address", "port", "jump", "groups",
        "become", "vars", "connect_timeout", "8100", "-1", "70000", "1.5", "nan", "true",
        "1979-05-27T07:32:00Z", "\"10s\"", "\"0s\"", "[\"eu\"]", "[]", "{}",
    ];

    #[rustfmt::skip]
    const NAMES: &[&str] = &[
        "web-1", "web-2", "a", "b", "bastion", "acme", "beta", "\"web 1\"", "Web", "web_1", "1x",
        "\"\"", "'a.b'", "é", "\"🚀\"", "\"a\\nb\"", "\"\\u001b\"",
    ];

    #[rustfmt::skip]
    const KEYS: &[&str] = &[
        "address", "port", "user", "identity", "groups", "jump", "become", "connect_timeout",
        "command_timeout", "known_hosts", "hosts", "vars", "prot", "adress", "usr", "vars.x",
        "\"é\"", "a.b.c", "hosts.web-1",
    ];

    #[rustfmt::skip]
    const VALUES: &[&str] = &[
        "\"203.0.113.10\"", "\"web-1\"", "\"web-2\"", "\"a\"", "\"bastion\"", "\"\"", "\"é🚀\"",
        "\"sudo\"", "\"none\"", "\"doas\"", "\"10s\"", "\"0s\"", "\"10\"", "\"ten seconds\"", "0",
        "1", "22", "8100", "8101", "65535", "65536", "70000", "-1", "99999999999999999999", "0x1F",
        "1.5", "inf", "true", "1979-05-27", "07:32:00", "[]", "[\"web-1\"]",
        "[\"web-1\", \"web-2\"]", "[\"a\", \"a\"]", "[\"eu\", \"Canary\"]", "[1, \"x\"]",
        "[[\"x\"]]", "{}", "{ model = \"gpt-4o\" }", "{ x = { y = 1 } }",
        "\"\"\"multi\nline\"\"\"", "'''raw\\'''", "\"a\u{0}b\"", "\"\\u0000\"",
    ];

    /// TOML-shaped text: headers and `key = value` lines from the lists above.
    fn grammar() -> impl Strategy<Value = String> {
        let header = prop_oneof![
            Just("[defaults]".to_string()),
            Just("[hosts]".to_string()),
            Just("[tenants]".to_string()),
            prop::sample::select(NAMES).prop_map(|n| format!("[hosts.{n}]")),
            prop::sample::select(NAMES).prop_map(|n| format!("[tenants.{n}]")),
            prop::sample::select(NAMES).prop_map(|n| format!("[{n}]")),
            prop::sample::select(NAMES).prop_map(|n| format!("[[hosts.{n}]]")),
        ];
        let line = prop_oneof![
            (prop::sample::select(KEYS), prop::sample::select(VALUES))
                .prop_map(|(k, v)| format!("{k} = {v}")),
            (prop::sample::select(NAMES), prop::sample::select(VALUES))
                .prop_map(|(k, v)| format!("{k} = {v}")),
        ];
        prop::collection::vec((header, prop::collection::vec(line, 0..6)), 0..8).prop_map(
            |sections| {
                let mut text = String::new();
                for (header, lines) in sections {
                    text.push_str(&header);
                    text.push('\n');
                    for line in lines {
                        text.push_str(&line);
                        text.push('\n');
                    }
                }
                text
            },
        )
    }

    #[rustfmt::skip]
    const HOSTS: &[&str] = &[
        "a", "b", "c", "web-1", "web-2", "Web-3", "web_4", "\"web 5\"", "\"é\"",
    ];
    #[rustfmt::skip]
    const TENANTS: &[&str] = &["acme", "beta", "gamma", "Delta"];
    #[rustfmt::skip]
    const ADDRESSES: &[&str] = &[
        "10.0.0.1", "web-1.example", "::1", "", "bad address", "é.example",
    ];
    #[rustfmt::skip]
    const PORTS: &[u32] = &[0, 1, 22, 8100, 8101, 8102, 8103, 65534, 65535];

    /// Valid TOML with drover's shape, so the checks after parsing run: jumps, placements,
    /// ports and names drawn from small sets make cycles, overlaps and duplicates common.
    fn fleet() -> impl Strategy<Value = String> {
        let host = (
            prop::sample::select(HOSTS),
            prop::option::of(prop::sample::select(ADDRESSES)),
            prop::option::of(prop::sample::select(&["a", "b", "c", "web-1", "nope"][..])),
            prop::collection::vec(
                prop::sample::select(&["eu", "us", "Canary", "a b"][..]),
                0..3,
            ),
            prop::option::of(prop::sample::select(PORTS)),
        );
        let tenant = (
            prop::sample::select(TENANTS),
            prop::option::weighted(
                0.9,
                prop::collection::vec(prop::sample::select(&HOSTS[..5]), 0..4),
            ),
            prop::option::weighted(0.9, prop::sample::select(PORTS)),
        );
        let defaults = prop::option::of((
            prop::sample::select(&["\"10s\"", "\"10\"", "\"0s\"", "\"1m30s\""][..]),
            prop::sample::select(&["\"sudo\"", "\"none\"", "\"doas\""][..]),
        ));
        (
            defaults,
            prop::collection::vec(host, 0..6),
            prop::collection::vec(tenant, 0..5),
        )
            .prop_map(|(defaults, hosts, tenants)| {
                let mut text = String::new();
                if let Some((timeout, become_)) = defaults {
                    text.push_str(&format!(
                        "[defaults]\nconnect_timeout = {timeout}\nbecome = {become_}\n"
                    ));
                }
                let mut seen = Vec::new();
                for (name, address, jump, groups, port) in hosts {
                    if seen.contains(&name) {
                        continue; // a table twice is a syntax error; keep this file parsable
                    }
                    seen.push(name);
                    text.push_str(&format!("[hosts.{name}]\n"));
                    if let Some(address) = address {
                        text.push_str(&format!("address = {address:?}\n"));
                    }
                    if let Some(jump) = jump {
                        text.push_str(&format!("jump = {jump:?}\n"));
                    }
                    text.push_str(&format!("groups = {groups:?}\n"));
                    if let Some(port) = port {
                        text.push_str(&format!("port = {port}\n"));
                    }
                }
                let mut seen = Vec::new();
                for (name, hosts, port) in tenants {
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    text.push_str(&format!("[tenants.{name}]\n"));
                    if let Some(hosts) = hosts {
                        let hosts: Vec<String> = hosts
                            .iter()
                            .map(|h| h.trim_matches('"').to_string())
                            .collect();
                        text.push_str(&format!("hosts = {hosts:?}\n"));
                    }
                    if let Some(port) = port {
                        text.push_str(&format!("port = {port}\n"));
                    }
                }
                text
            })
    }

    /// Token soup: mostly TOML punctuation, names and multi-byte characters.
    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|t| t.concat())
    }

    #[derive(Debug, Clone)]
    enum Edit {
        ReplaceValue(usize, &'static str),
        Delete(usize, usize),
        Insert(usize, &'static str),
        DuplicateLine(usize),
        Truncate(usize),
        /// A token repeated into a long run: lines past 65,535 characters.
        InsertLong(usize, &'static str, usize),
        /// The n-th line repeated: files of many lines.
        RepeatLine(usize, usize),
        /// Brackets or inline tables opened (and maybe closed) many times over.
        Nest(usize, &'static str, usize, bool),
    }

    /// What a long run is made of.
    #[rustfmt::skip]
    const RUNS: &[&str] = &["x", "é", "🚀", " ", "\\", "\"", "\t", "a = 1, ", "\u{0}", "\r"];
    /// What a level of nesting opens.
    #[rustfmt::skip]
    const OPENERS: &[&str] = &["[", "{ a = ", "[{ a = ", "x = [", "a."];

    fn floor_boundary(text: &str, at: usize) -> usize {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }

    fn apply(mut text: String, edits: &[Edit]) -> String {
        for edit in edits {
            match *edit {
                Edit::ReplaceValue(n, value) => {
                    // The n-th `key = value` line gets another value.
                    let lines: Vec<&str> = text.split_inclusive('\n').collect();
                    let assignments: Vec<usize> = (0..lines.len())
                        .filter(|&i| lines[i].contains(" = "))
                        .collect();
                    if !assignments.is_empty() {
                        let i = assignments[n % assignments.len()];
                        let key = lines[i].split(" = ").next().unwrap_or("");
                        let replaced = format!("{key} = {value}\n");
                        let mut out: String = lines[..i].concat();
                        out.push_str(&replaced);
                        out.push_str(&lines[i + 1..].concat());
                        text = out;
                    }
                }
                Edit::Delete(at, len) => {
                    let start = floor_boundary(&text, at);
                    let end = floor_boundary(&text, (start + len).min(text.len()));
                    if end > start {
                        text.replace_range(start..end, "");
                    }
                }
                Edit::Insert(at, token) => {
                    let at = floor_boundary(&text, at);
                    text.insert_str(at, token);
                }
                Edit::DuplicateLine(n) => {
                    let lines: Vec<&str> = text.split_inclusive('\n').collect();
                    if !lines.is_empty() {
                        let i = n % lines.len();
                        let mut out: String = lines[..=i].concat();
                        out.push_str(lines[i]);
                        out.push_str(&lines[i + 1..].concat());
                        text = out;
                    }
                }
                Edit::Truncate(at) => {
                    let at = floor_boundary(&text, at);
                    text.truncate(at);
                }
                Edit::InsertLong(at, run, n) => {
                    let at = floor_boundary(&text, at);
                    text.insert_str(at, &run.repeat(n));
                }
                Edit::RepeatLine(n, times) => {
                    let lines: Vec<&str> = text.split_inclusive('\n').collect();
                    if !lines.is_empty() {
                        let i = n % lines.len();
                        let mut out: String = lines[..=i].concat();
                        out.push_str(&lines[i].repeat(times));
                        out.push_str(&lines[i + 1..].concat());
                        text = out;
                    }
                }
                Edit::Nest(at, opener, depth, closed) => {
                    let at = floor_boundary(&text, at);
                    let mut nest = opener.repeat(depth);
                    if closed {
                        let closer = if opener.contains('{') { "}" } else { "]" };
                        nest.push_str(&closer.repeat(depth));
                    }
                    text.insert_str(at, &nest);
                }
            }
        }
        text
    }

    /// A valid (or nearly valid) inventory with a few random edits, some of them large.
    fn mutated() -> impl Strategy<Value = String> {
        mutated_by(true)
    }

    /// A valid (or nearly valid) inventory with a few random edits; `large`: long lines,
    /// many lines and deep nesting among them.
    fn mutated_by(large: bool) -> impl Strategy<Value = String> {
        let small = prop_oneof![
            3 => (any::<usize>(), prop::sample::select(VALUES)).prop_map(|(n, v)| Edit::ReplaceValue(n, v)),
            1 => (any::<usize>(), 1..20usize).prop_map(|(a, l)| Edit::Delete(a, l)),
            1 => (any::<usize>(), prop::sample::select(TOKENS)).prop_map(|(a, t)| Edit::Insert(a, t)),
            1 => (any::<usize>(), prop::sample::select(VALUES)).prop_map(|(a, t)| Edit::Insert(a, t)),
            1 => any::<usize>().prop_map(Edit::DuplicateLine),
            1 => any::<usize>().prop_map(Edit::Truncate),
        ];
        // Long lines are past 65,535 characters, where miette's padding panicked.
        let big = prop_oneof![
            (
                any::<usize>(),
                prop::sample::select(RUNS),
                66_000..90_000usize
            )
                .prop_map(|(a, r, n)| Edit::InsertLong(a, r, n)),
            (any::<usize>(), 100..3_000usize).prop_map(|(n, k)| Edit::RepeatLine(n, k)),
            (
                any::<usize>(),
                prop::sample::select(OPENERS),
                100..2_000usize,
                any::<bool>()
            )
                .prop_map(|(a, o, d, c)| Edit::Nest(a, o, d, c)),
        ];
        let edit = if large {
            prop_oneof![8 => small, 1 => big].boxed()
        } else {
            small.boxed()
        };
        (
            prop::sample::select(&[VALID, SEVERAL, MULTIBYTE][..]),
            prop::collection::vec(edit, 1..4),
        )
            .prop_map(|(base, edits)| apply(base.to_string(), &edits))
    }

    fn any_inventory_text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => fleet(),
            2 => mutated(),
            2 => grammar(),
            1 => soup(),
            1 => any::<String>(),
        ]
    }

    /// Byte sequences that are never UTF-8: a lone continuation byte, a lead byte without
    /// its continuation, an encoded surrogate, an overlong encoding, bytes UTF-8 never uses.
    #[rustfmt::skip]
    const INVALID: &[&[u8]] = &[b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff", b"\xfe\xff"];

    /// Inventory text, sometimes with bytes that are not UTF-8 spliced in.
    fn any_inventory_bytes() -> impl Strategy<Value = Vec<u8>> {
        let splice = prop::collection::vec((any::<usize>(), prop::sample::select(INVALID)), 1..3);
        (any_inventory_text(), prop::option::weighted(0.15, splice)).prop_map(|(text, splice)| {
            let mut bytes = text.into_bytes();
            for (at, invalid) in splice.unwrap_or_default() {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, invalid.iter().copied());
            }
            bytes
        })
    }

    #[rustfmt::skip]
    const PATHS: &[&str] = &["inventory/a.toml", "inventory/b.toml", "é/c.toml"];

    /// Loads, then renders and serialises every diagnostic, checking what must always hold.
    fn load_and_render(files: &[Vec<u8>]) {
        let named = files
            .iter()
            .zip(PATHS)
            .map(|(bytes, p)| (PathBuf::from(p), bytes.clone()))
            .collect();
        let Err(problems) = Inventory::from_bytes(named) else {
            assert!(
                files.iter().all(|b| std::str::from_utf8(b).is_ok()),
                "a file that is not UTF-8 was accepted"
            );
            return;
        };
        assert!(!problems.is_empty(), "an error without a diagnostic");
        check_not_utf8_located(files, &problems);
        check_diagnostics(files, &problems);
    }

    /// Every file that is not UTF-8 is reported at its first invalid byte.
    fn check_not_utf8_located(files: &[Vec<u8>], problems: &Diagnostics) {
        for (bytes, path) in files.iter().zip(PATHS) {
            let Err(e) = std::str::from_utf8(bytes) else {
                continue;
            };
            let at = e.valid_up_to();
            let found = problems.0.iter().any(|d| {
                d.file
                    .as_ref()
                    .is_some_and(|f| f.path.to_str() == Some(path))
                    && d.labels.first().is_some_and(|(span, _)| span.start == at)
                    && d.message.contains("not UTF-8")
            });
            assert!(
                found,
                "{path}: not UTF-8 from byte {at}, not reported there"
            );
        }
    }

    /// Line and column (1-based, in characters) of each of `offsets`, counted the slow way
    /// in one pass: line breaks are `\n`, `\r\n` and a lone `\r`; a leading byte-order mark
    /// takes no column.
    fn positions(text: &str, offsets: &[usize]) -> HashMap<usize, (u64, u64)> {
        let mut wanted: Vec<usize> = offsets.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut wanted = wanted.into_iter().peekable();
        let mut found = HashMap::new();
        let (mut line, mut column) = (1, 1);
        let mut chars = text.char_indices().peekable();
        loop {
            let here = chars.peek().map_or(text.len(), |&(i, _)| i);
            while wanted.peek().is_some_and(|&w| w <= here) {
                found.insert(wanted.next().expect("peeked"), (line, column));
            }
            let Some((i, c)) = chars.next() else { break };
            match c {
                '\n' => (line, column) = (line + 1, 1),
                '\r' => {
                    // An offset between `\r` and `\n` is on the next line already.
                    if chars.peek().is_some_and(|&(_, next)| next == '\n') {
                        (line, column) = (line + 1, 1);
                        let j = i + 1;
                        while wanted.peek().is_some_and(|&w| w <= j) {
                            found.insert(wanted.next().expect("peeked"), (line, column));
                        }
                        chars.next();
                    } else {
                        (line, column) = (line + 1, 1);
                    }
                }
                '\u{feff}' if i == 0 => {}
                _ => column += 1,
            }
        }
        found
    }

    fn check_diagnostics(files: &[Vec<u8>], problems: &Diagnostics) {
        let plain = problems.render(false);
        let _ = problems.render(true);
        let headers: HashSet<&str> = plain
            .lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .filter_map(|l| l.split_once(": ").map(|(location, _)| location))
            .collect();
        let count = plain.lines().filter(|l| l.starts_with("error: ")).count();
        assert!(count >= problems.len(), "{plain}");
        // What is quoted is shortened: a window of a long line, the ends of a long value.
        let longest = plain.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(longest < 600, "a line of {longest} characters in\n{plain}");
        // Each file's text once, and the reference positions of every label in one pass.
        let mut known: HashMap<String, HashMap<usize, (u64, u64)>> = HashMap::new();
        for d in &problems.0 {
            let Some(file) = &d.file else { continue };
            let path = file.path.display().to_string();
            if known.contains_key(&path) {
                continue;
            }
            let input = &files[PATHS.iter().position(|p| *p == path).expect("path")];
            // The text quoted is the file's, invalid UTF-8 replaced by U+FFFD.
            assert_eq!(&*file.text, String::from_utf8_lossy(input), "{d}");
            let offsets: Vec<usize> = problems
                .0
                .iter()
                .filter(|o| o.file.as_ref().is_some_and(|f| f.path == file.path))
                .filter_map(|o| o.labels.first())
                .flat_map(|(s, _)| [s.start, s.end])
                .collect();
            known.insert(path, positions(&file.text, &offsets));
        }
        let mut last = (String::new(), 0);
        for (i, d) in problems.0.iter().enumerate() {
            assert!(
                !d.message.is_empty() && !d.message.contains('\n'),
                "{:?}",
                d.message
            );
            let json = serde_json::to_string(&d.to_json()).expect("JSON");
            let back: serde_json::Value = serde_json::from_str(&json).expect("JSON back");
            if let Some(file) = &d.file {
                let text = &*file.text;
                for (span, _) in &d.labels {
                    assert!(
                        span.start <= span.end
                            && text.is_char_boundary(span.start)
                            && text.is_char_boundary(span.end),
                        "{span:?} in {} bytes: {d}",
                        text.len()
                    );
                }
                let span = d.labels[0].0.clone();
                let position = &known[&file.path.display().to_string()];
                let at = |key: &str| back[key].as_u64().expect("a number");
                assert_eq!((at("line"), at("column")), position[&span.start], "{json}");
                assert_eq!(
                    (at("end_line"), at("end_column")),
                    position[&span.end],
                    "{json}"
                );
                let key = (file.path.display().to_string(), span.start);
                assert!(key >= last, "not sorted: {key:?} after {last:?}");
                last = key;
                // The `path:line:col` line and the snippet box agree (the first problems
                // have a snippet; the rest their `error:` line only).
                let location = d.location().expect("location");
                assert!(headers.contains(location.as_str()), "{location}\n{plain}");
                assert!(
                    i >= MAX_SNIPPETS || plain.contains(&format!("╭─[{location}]")),
                    "{location}\n{plain}"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn no_single_inventory_file_makes_check_panic(bytes in any_inventory_bytes()) {
            load_and_render(&[bytes]);
        }

        #[test]
        fn no_set_of_inventory_files_makes_check_panic(
            texts in prop::collection::vec(prop_oneof![3 => fleet(), 1 => mutated_by(false), 1 => grammar()], 2..=3)
        ) {
            let files: Vec<Vec<u8>> = texts.into_iter().map(String::into_bytes).collect();
            load_and_render(&files);
        }
    }
}

//! `drover check` over inputs built to break it: lines of 100,000 characters, files of
//! 200,000 lines, nesting 50,000 deep, bytes that are not UTF-8, NUL bytes, templates that
//! loop for ever or render gigabytes. Each is refused with the bad-input exit code (2) and
//! a located message, never a panic (101), and within a second: the bounds are against
//! hangs and runaway work, not benchmarks.

use std::time::Duration;

use crate::support::cli::{Run, drover, run_within};

/// What a bad input may take at most (issue 12).
const LIMIT: Duration = Duration::from_secs(1);
/// Killed after this, so that a hang fails the test instead of stalling the suite.
const KILL_AFTER: Duration = Duration::from_secs(20);

/// A valid inventory: one tenant on one host, for checking playbooks.
const INVENTORY: &str =
    "[hosts.web-1]\naddress = \"10.0.0.11\"\n\n[tenants.acme]\nhosts = [\"web-1\"]\nport = 8100\n";

/// `drover --color never -i inventory.toml check [playbook.toml]` in a directory holding
/// the given files, run from there so that messages name them as written.
fn check_files(inventory: &[u8], playbook: Option<&[u8]>) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("inventory.toml"), inventory).expect("write inventory");
    let mut cmd = drover(dir.path());
    cmd.args(["--color", "never", "-i", "inventory.toml", "check"]);
    if let Some(playbook) = playbook {
        std::fs::write(dir.path().join("playbook.toml"), playbook).expect("write playbook");
        cmd.arg("playbook.toml");
    }
    let (run, killed) = run_within(&mut cmd, KILL_AFTER);
    assert!(
        !killed,
        "still running after {KILL_AFTER:?}, killed\n{run:?}"
    );
    run
}

/// Exit 2 within [`LIMIT`], no panic, an `error: FILE:LINE:COL: …` line holding `parts`;
/// returns that line. The whole output stays small: long lines are quoted as a window.
#[track_caller]
fn assert_refused(r: &Run, file: &str, parts: &[&str]) -> String {
    assert_ne!(r.code, 101, "panicked\n{}", short(r));
    assert!(!r.stderr.contains("panicked"), "{}", short(r));
    assert_eq!(r.code, 2, "{}", short(r));
    assert!(r.elapsed < LIMIT, "took {:?}\n{}", r.elapsed, short(r));
    let prefix = format!("error: {file}:");
    let Some(line) = r.stderr.lines().find(|l| {
        l.strip_prefix(&prefix)
            .and_then(|rest| rest.split_once(": "))
            .is_some_and(|(place, _)| {
                place.split(':').count() == 2 && place.split(':').all(|n| n.parse::<u64>().is_ok())
            })
    }) else {
        panic!("no located `{prefix}LINE:COL: …` line\n{}", short(r));
    };
    for part in parts {
        assert!(line.contains(part), "`{part}` not in\n{line}\n{}", short(r));
    }
    line.to_string()
}

/// The run with stderr cut short, for failure messages.
fn short(r: &Run) -> String {
    let cut: String = r.stderr.chars().take(3000).collect();
    format!("exit {} after {:?}\n--- stderr\n{cut}", r.code, r.elapsed)
}

/// No line of the output is much longer than the window a snippet quotes.
#[track_caller]
fn assert_lines_short(r: &Run) {
    let longest = r
        .stderr
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    assert!(
        longest < 400,
        "a line of {longest} characters\n{}",
        short(r)
    );
}

fn long(n: usize) -> String {
    "x".repeat(n)
}

// ---------------------------------------------------------------- long lines

#[test]
fn check_quotes_a_window_of_a_100000_character_line_instead_of_panicking() {
    let text = format!("[hosts.web-1]\naddress = \"{}\" prot = 22\n", long(100_000));
    let r = check_files(text.as_bytes(), None);
    let line = assert_refused(&r, "inventory.toml", &["inventory.toml:2:100014"]);
    assert!(line.contains("expected"), "{line}");
    assert!(
        r.stderr.contains("╭─[inventory.toml:2:100014]"),
        "{}",
        short(&r)
    );
    assert!(r.stderr.contains('…'), "{}", short(&r));
    assert_lines_short(&r);
}

#[test]
fn check_refuses_a_100000_character_value_with_the_label_cut_to_the_window() {
    // A wrong value that is itself 100,000 characters long: the label spans all of it.
    let text = format!("[hosts.web-1]\naddress = \"a b {}\"\n", long(100_000));
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:2:11"]);
    assert_lines_short(&r);
}

#[test]
fn check_locates_errors_after_a_long_line_with_a_byte_order_mark_and_crlf() {
    let text = format!(
        "\u{feff}[hosts.web-1]\r\naddress = \"{}\"\r\nport = \"22\"\r\n",
        long(100_000)
    );
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:3:8", "port"]);
    assert_lines_short(&r);
}

#[test]
fn check_locates_a_duplicated_table_after_a_long_line() {
    let host = format!("[hosts.web-1]\naddress = \"{}\"\n", long(100_000));
    let text = format!("{host}{host}");
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:3:"]);
    assert_lines_short(&r);
}

#[test]
fn check_locates_a_long_line_cut_off_by_the_end_of_the_file() {
    let text = format!("[hosts.web-1]\naddress = \"{}", long(100_000));
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:2:"]);
    assert_lines_short(&r);
}

#[test]
fn check_locates_an_error_in_a_playbook_on_a_long_line() {
    let text = format!(
        "name = \"p\"\n[[steps]]\nname = \"s\"\nrun = {{ script = \"{}\", unles = \"x\" }}\n",
        long(100_000)
    );
    let r = check_files(INVENTORY.as_bytes(), Some(text.as_bytes()));
    assert_refused(&r, "playbook.toml", &["playbook.toml:4:"]);
    assert_lines_short(&r);
}

// ---------------------------------------------------------------- many lines

#[test]
fn check_locates_an_error_at_the_end_of_200000_lines() {
    let mut text = "# a comment\n".repeat(200_000);
    text.push_str("[hosts.web-1]\naddress = \"10.0.0.1\"\nprot = 22\n");
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:200003:1", "prot"]);
}

#[test]
fn check_reports_thousands_of_problems_in_one_file_in_time() {
    let text: String = (0..2_000)
        .map(|i| format!("[hosts.h{i}]\naddress = \"10.0.0.1\"\nprot = 22\n"))
        .collect();
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:3:1"]);
    let located = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: inventory.toml:"))
        .count();
    assert_eq!(located, 2_000, "{}", short(&r));
}

// ---------------------------------------------------------------- deep nesting

#[test]
fn check_refuses_arrays_nested_50000_deep() {
    let depth = 50_000;
    let text = format!(
        "[tenants.acme]\nhosts = [\"web-1\"]\nvars = {{ x = {}{} }}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:3:"]);
    assert_lines_short(&r);
}

#[test]
fn check_refuses_inline_tables_nested_50000_deep_in_a_playbook() {
    let depth = 50_000;
    let text = format!(
        "name = \"p\"\n[vars]\nx = {}{}\n",
        "{ a = ".repeat(depth),
        "}".repeat(depth)
    );
    let r = check_files(INVENTORY.as_bytes(), Some(text.as_bytes()));
    assert_refused(&r, "playbook.toml", &["playbook.toml:3:"]);
    assert_lines_short(&r);
}

#[test]
fn check_refuses_a_dotted_key_50000_parts_long() {
    let key = vec!["a"; 50_000].join(".");
    let text = format!("[tenants.acme]\nhosts = [\"web-1\"]\nvars.{key} = 1\n");
    let r = check_files(text.as_bytes(), None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:3:"]);
}

// ---------------------------------------------------------------- bytes

#[test]
fn check_locates_the_first_byte_that_is_not_utf8() {
    let mut text = b"[hosts.web-1]\naddress = \"caf".to_vec();
    text.extend([0xe9, b'"', b'\n']);
    let r = check_files(&text, None);
    assert_refused(
        &r,
        "inventory.toml",
        &[
            "inventory.toml:2:15",
            "not UTF-8",
            "expected a readable UTF-8 TOML file",
        ],
    );
    assert!(r.stderr.contains("byte 0xe9 is not UTF-8"), "{}", short(&r));
}

#[test]
fn check_locates_invalid_utf8_at_the_end_of_a_long_line_in_a_playbook() {
    let mut text = format!("name = \"p\"\ndescription = \"{}", long(100_000)).into_bytes();
    text.extend([0xff, 0xfe, b'"', b'\n']);
    let r = check_files(INVENTORY.as_bytes(), Some(&text));
    assert_refused(
        &r,
        "playbook.toml",
        &["playbook.toml:2:100016", "not UTF-8"],
    );
    assert_lines_short(&r);
}

#[test]
fn check_locates_a_nul_byte_in_a_value_and_between_keys() {
    let r = check_files(b"[hosts.web-1]\naddress = \"10.0.\x000.1\"\n", None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:2:"]);
    let r = check_files(b"[hosts.web-1]\n\x00address = \"10.0.0.1\"\n", None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:2:1"]);
    let mut text = format!("[hosts.web-1]\naddress = \"{}", long(100_000)).into_bytes();
    text.extend(b"\x00\"\n");
    let r = check_files(&text, None);
    assert_refused(&r, "inventory.toml", &["inventory.toml:2:"]);
    assert_lines_short(&r);
}

// ---------------------------------------------------------------- runaway templates

fn playbook_running(script: &str) -> Vec<u8> {
    format!("name = \"p\"\n\n[[steps]]\nname = \"spin\"\nrun = {{ script = \"{script}\" }}\n")
        .into_bytes()
}

#[test]
fn check_stops_a_template_that_loops_for_ever_naming_step_and_key() {
    let playbook = playbook_running(
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
    );
    let r = check_files(INVENTORY.as_bytes(), Some(&playbook));
    assert_refused(
        &r,
        "playbook.toml",
        &[
            "playbook.toml:5:18",
            "step `spin`",
            "`script`",
            "acme@web-1",
            "too long",
        ],
    );
}

#[test]
fn check_refuses_a_template_that_renders_100_megabytes() {
    let playbook = playbook_running("{{ 'x' * 100000000 }}");
    let r = check_files(INVENTORY.as_bytes(), Some(&playbook));
    assert_refused(
        &r,
        "playbook.toml",
        &[
            "playbook.toml:5:18",
            "step `spin`",
            "`script`",
            "larger than 1 MiB",
        ],
    );
}

#[test]
fn check_refuses_a_variable_that_loops_for_ever() {
    let playbook = b"name = \"p\"\n\n[vars]\nbig = \"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\"\n\n[[steps]]\nname = \"s\"\nrun = { script = \"{{ big }}\" }\n";
    let r = check_files(INVENTORY.as_bytes(), Some(playbook));
    assert_refused(
        &r,
        "playbook.toml",
        &["playbook.toml:4:1", "`big`", "too long"],
    );
}

#[test]
fn check_stops_a_loop_whose_output_passes_1_mib() {
    let playbook = playbook_running("{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}");
    let r = check_files(INVENTORY.as_bytes(), Some(&playbook));
    assert_refused(
        &r,
        "playbook.toml",
        &[
            "playbook.toml:5:18",
            "step `spin`",
            "`script`",
            "larger than 1 MiB",
        ],
    );
}

#[test]
fn a_template_just_under_the_limits_still_renders() {
    // 1,000 iterations and 500 KiB of output are ordinary: they must pass.
    let playbook =
        playbook_running("{% for i in range(1000) %}{{ i }}{% endfor %}{{ 'y' * 500000 }}");
    let r = check_files(INVENTORY.as_bytes(), Some(&playbook));
    assert_eq!(r.code, 0, "{}", short(&r));
}

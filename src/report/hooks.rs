//! A hook's run as text: one line saying where and how it ended, then its output
//! indented, so it reads apart from drover's own lines.

use crate::outcome::HookRun;

/// `hook post-switch (acme@web-1): exit 0 in 0.1s` and the output under it.
#[must_use]
pub fn render(ran: &HookRun) -> String {
    let target = ran
        .target
        .as_deref()
        .map_or_else(String::new, |t| format!(" ({t})"));
    let mut text = format!(
        "hook {}{target}: {} in {:.1}s\n",
        ran.point,
        ran.ending(),
        ran.duration_ms as f64 / 1000.0
    );
    for line in ran.output.lines() {
        text.push_str("  | ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_run_reads_as_a_heading_and_its_indented_output() {
        let ran = HookRun {
            point: "post-switch".into(),
            target: Some("acme@web-1".into()),
            command: "notify".into(),
            exit_code: Some(0),
            timed_out: false,
            output: "sent\nok\n".into(),
            duration_ms: 120,
            timeout_ms: 60_000,
        };
        assert_eq!(
            render(&ran),
            "hook post-switch (acme@web-1): exit 0 in 0.1s\n  | sent\n  | ok\n"
        );
    }
}

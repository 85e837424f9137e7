//! The exposition read back by a small parser of the text format, which also checks
//! that every sample follows its metric's HELP and TYPE.

use super::super::sample;
use super::*;

/// A small parser of the text format: (name, labels, value) per sample; checks that
/// every sample's metric was declared with HELP and TYPE before it.
fn parse(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut declared: Vec<String> = Vec::new();
    let mut typed: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            declared.push(rest.split_whitespace().next().unwrap().to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split_whitespace();
            let name = w.next().unwrap().to_string();
            let kind = w.next().unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            assert!(kind != "counter" || name.ends_with("_total"), "{line}");
            assert!(!typed.contains(&name), "TYPE twice: {line}");
            typed.push(name);
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, label_text) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert_eq!(
            typed.last().map(String::as_str),
            Some(name),
            "samples grouped: {line}"
        );
        assert!(declared.contains(&name.to_string()));
        let mut labels = BTreeMap::new();
        let mut rest = label_text;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").unwrap();
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        let (_, c) = chars.next().unwrap();
                        value.push(if c == 'n' { '\n' } else { c });
                    }
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label: {line}"),
                }
            };
            labels.insert(k.to_string(), value);
            rest = after[end + 1..].trim_start_matches(',');
        }
        out.push((name.to_string(), labels, value.parse::<f64>().unwrap()));
    }
    out
}

fn sample<'a>(
    samples: &'a [(String, BTreeMap<String, String>, f64)],
    name: &str,
    want: &[(&str, &str)],
) -> Option<&'a f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
}

#[test]
fn the_exposition_parses_and_says_what_is_healthy() {
    let text = render(&sample::status());
    let s = parse(&text);
    assert_eq!(
        sample(
            &s,
            "drover_target_healthy",
            &[("tenant", "acme"), ("host", "web-1")]
        ),
        Some(&1.0)
    );
    assert_eq!(
        sample(
            &s,
            "drover_target_healthy",
            &[("tenant", "acme"), ("host", "web-2")]
        ),
        Some(&0.0)
    );
    assert_eq!(
        sample(
            &s,
            "drover_target_up",
            &[("tenant", "beta"), ("host", "web-3")]
        ),
        Some(&0.0)
    );
    assert_eq!(
        sample(
            &s,
            "drover_target_info",
            &[
                ("tenant", "acme"),
                ("host", "web-1"),
                ("version", "2.0.0"),
                ("color", "green")
            ]
        ),
        Some(&1.0)
    );
    assert_eq!(
        sample(
            &s,
            "drover_target_restarts_total",
            &[("host", "web-1"), ("color", "blue")]
        ),
        Some(&1.0)
    );
    assert_eq!(
        sample(
            &s,
            "drover_host_disk_used_ratio",
            &[("host", "web-1"), ("mount", "/")]
        ),
        Some(&0.85)
    );
    assert_eq!(
        sample(&s, "drover_host_up", &[("host", "web-3")]),
        Some(&0.0)
    );
    assert_eq!(
        sample(&s, "drover_host_up", &[("host", "web-1")]),
        Some(&1.0)
    );
    assert_eq!(
        sample(&s, "drover_status_duration_seconds", &[]),
        Some(&0.84)
    );
    // One disk series per mount, although two paths were asked about.
    assert_eq!(
        s.iter()
            .filter(|(n, l, _)| n == "drover_host_disk_used_ratio" && l["host"] == "web-1")
            .count(),
        1
    );
    assert!(!text.contains("drover_target_info{tenant=\"beta\",host=\"web-3\""));
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(labels(&[("a", "x\"y\\z\nw")]), "{a=\"x\\\"y\\\\z\\nw\"}");
    assert_eq!(number(3.0), "3");
    assert_eq!(number(0.25), "0.25");
}

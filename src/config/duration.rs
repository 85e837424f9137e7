//! Human durations (`"10s"`, `"1m30s"`, `"500ms"`) for the inventory and the command line.

use std::time::Duration;

/// Parses a human duration; a bare number is not accepted, so units are never guessed.
///
/// # Errors
/// A message saying what was found and what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    // A message quotes a long value by its ends: it stays one readable line.
    let shown = crate::config::diagnostic::clipped(trimmed);
    if trimmed.is_empty() {
        return Err("found an empty string, expected a duration such as \"10s\"".into());
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "found the bare number \"{shown}\", expected a duration with a unit such as \"{shown}s\""
        ));
    }
    let value = humantime::parse_duration(trimmed).map_err(|_| {
        format!("found {shown:?}, expected a duration such as \"10s\", \"1m30s\" or \"500ms\"")
    })?;
    if value.is_zero() {
        return Err(format!("found {shown:?}, expected a duration above zero"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_bad_value_is_quoted_by_its_ends() {
        let long = format!("5m{}", "[".repeat(2000));
        let e = parse(&long).unwrap_err();
        assert!(e.len() < 200 && e.contains('…'), "{e}");
        let digits = "9".repeat(500);
        assert!(parse(&digits).unwrap_err().len() < 300);
    }

    #[test]
    fn durations_with_units_parse() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn bare_numbers_empty_strings_zero_and_junk_are_refused() {
        assert!(parse("10").unwrap_err().contains("\"10s\""));
        assert!(parse("").is_err());
        assert!(parse("0s").unwrap_err().contains("above zero"));
        assert!(parse("ten seconds").is_err());
    }
}

//! Human durations (`"10s"`, `"1m30s"`, `"500ms"`) for the inventory and the command line.

use std::time::Duration;

/// Parses a human duration; a bare number is not accepted, so units are never guessed.
///
/// # Errors
/// A message saying what was found and what was expected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("found an empty string, expected a duration such as \"10s\"".into());
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "found the bare number \"{trimmed}\", expected a duration with a unit such as \"{trimmed}s\""
        ));
    }
    let value = humantime::parse_duration(trimmed).map_err(|_| {
        format!("found {trimmed:?}, expected a duration such as \"10s\", \"1m30s\" or \"500ms\"")
    })?;
    if value.is_zero() {
        return Err(format!("found {trimmed:?}, expected a duration above zero"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

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

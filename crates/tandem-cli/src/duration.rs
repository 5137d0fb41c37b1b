//! Human durations on the command line: `250ms`, `2s`, `1.5s`, `1m`, `1h`, `500us`.

use std::time::Duration;

/// Parses `250ms`, `2s`, `1m`, `1h`, `500us` (decimals allowed); a bare number is seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (write e.g. 250ms, 2s or 1m)"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in duration {s:?} (accepted: us, ms, s, m, h; e.g. 250ms)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("invalid duration {s:?} ({e})"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("500us").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn rejects_garbage_with_an_example() {
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("e.g. 250ms"), "{e}");
        let e = parse_duration("5d").unwrap_err();
        assert!(e.contains("accepted: us, ms, s, m, h"), "{e}");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1.2.3s").is_err());
    }
}

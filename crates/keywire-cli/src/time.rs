//! Times: `--since` and `--failed-since` values, and how times are shown.

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};

use crate::error::Error;

/// A time given on the command line as RFC 3339 (`2026-11-28T10:00:00Z`), a date
/// (`2026-11-28`, midnight UTC) or an age (`90s`, `30m`, `2h`, `7d`, `2w`), as RFC 3339 UTC.
pub(crate) fn parse_since(text: &str, now: DateTime<Utc>) -> Result<String, Error> {
    let text = text.trim();
    let at = if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        at.with_timezone(&Utc)
    } else if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| Error::usage(format!("`{text}` is not a date")))?
    } else {
        now - age(text)?
    };
    Ok(at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn age(text: &str) -> Result<TimeDelta, Error> {
    let bad = || {
        Error::usage(format!(
            "`{text}` is not a time: give RFC 3339 (2026-11-28T10:00:00Z), a date (2026-11-28) or an age (30m, 2h, 7d)"
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let delta = match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        "w" => TimeDelta::try_weeks(n),
        _ => None,
    };
    delta.ok_or_else(bad)
}

/// An RFC 3339 time from the server as `2026-11-28 10:00:00` (UTC); anything else unchanged.
pub(crate) fn show(text: &str) -> String {
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => at
            .with_timezone(&Utc)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => text.to_owned(),
    }
}

/// [`show`] of an optional JSON string; empty when absent.
pub(crate) fn show_value(value: &serde_json::Value) -> String {
    value.as_str().map(show).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let now: DateTime<Utc> = "2026-11-28T10:00:00Z".parse().unwrap();
        assert_eq!(
            parse_since("2026-11-27T09:30:00+01:00", now).unwrap(),
            "2026-11-27T08:30:00.000Z"
        );
        assert_eq!(
            parse_since("2026-11-01", now).unwrap(),
            "2026-11-01T00:00:00.000Z"
        );
        assert_eq!(parse_since("30m", now).unwrap(), "2026-11-28T09:30:00.000Z");
        assert_eq!(parse_since("2d", now).unwrap(), "2026-11-26T10:00:00.000Z");
        for bad in ["", "yesterday", "5y", "m", "-3h"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
        assert_eq!(show("2026-11-28T08:58:07.096Z"), "2026-11-28 08:58:07");
    }
}

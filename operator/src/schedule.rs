//! Pure: when a rotation or reminder is due. Durations are Go-style
//! (`720h`, `1h30m`, `90s`), as the CRD's schema allows; schedules are
//! five-field cron expressions (or `@daily` and friends), in UTC.

use std::time::Duration;

use k8s_openapi::jiff::{Timestamp, Zoned};

use crate::resource::Schedule;

/// Why a duration or schedule cannot be used (the schema lets few through).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("`{0}` is not a duration such as 720h, 15m or 1h30m")]
    Duration(String),
    #[error("`{0}` is not a cron schedule: {1}")]
    Cron(String, String),
}

/// Parses a Go-style duration: one or more `<number><unit>`, units ms, s, m, h.
pub fn parse_duration(text: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::Duration(text.to_string());
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (seconds, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else {
            return Err(bad());
        };
        total += number * seconds;
        rest = &rest[len..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// The first time after `last` that `schedule` says to rotate.
pub fn next_after(schedule: &Schedule, last: Timestamp) -> Result<Timestamp, ScheduleError> {
    if let Some(every) = &schedule.every {
        let d = parse_duration(every)?;
        let span = k8s_openapi::jiff::SignedDuration::try_from(d)
            .map_err(|_| ScheduleError::Duration(every.clone()))?;
        return last
            .checked_add(span)
            .map_err(|_| ScheduleError::Duration(every.clone()));
    }
    let pattern = schedule.schedule.clone().unwrap_or_default();
    let cron_error =
        |e: &dyn std::fmt::Display| ScheduleError::Cron(pattern.clone(), e.to_string());
    let cron = croner::parser::CronParser::builder()
        .build()
        .parse(&pattern)
        .map_err(|e| cron_error(&e))?;
    let start: Zoned = last.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
    let next = cron
        .find_next_occurrence(&start, false)
        .map_err(|e| cron_error(&e))?;
    Ok(next.timestamp())
}

/// How long from `now` until `at` (zero when it is past).
pub fn until(at: Timestamp, now: Timestamp) -> Duration {
    let d = at.duration_since(now);
    if d.is_negative() {
        Duration::ZERO
    } else {
        d.unsigned_abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("720h", Some(720.0 * 3600.0)),
            ("15m", Some(900.0)),
            ("1h30m", Some(5400.0)),
            ("1.5h", Some(5400.0)),
            ("90s", Some(90.0)),
            ("250ms", Some(0.25)),
            ("", None),
            ("10", None),
            ("10d", None),
            ("h", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_duration(text).ok().map(|d| d.as_secs_f64()),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn next_rotation_from_an_interval_or_a_cron_schedule() {
        let every = |e: &str| Schedule {
            every: Some(e.into()),
            schedule: None,
        };
        let cron = |c: &str| Schedule {
            every: None,
            schedule: Some(c.into()),
        };
        let cases = [
            (
                every("720h"),
                "2026-01-01T00:00:00Z",
                "2026-01-31T00:00:00Z",
            ),
            (every("1m"), "2026-01-01T00:00:30Z", "2026-01-01T00:01:30Z"),
            // Mondays at 03:00 UTC; 2026-01-01 is a Thursday.
            (
                cron("0 3 * * 1"),
                "2026-01-01T12:00:00Z",
                "2026-01-05T03:00:00Z",
            ),
            (
                cron("@daily"),
                "2026-01-01T12:00:00Z",
                "2026-01-02T00:00:00Z",
            ),
            (
                cron("*/15 * * * *"),
                "2026-01-01T12:07:00Z",
                "2026-01-01T12:15:00Z",
            ),
        ];
        for (schedule, last, want) in cases {
            assert_eq!(
                next_after(&schedule, at(last)).unwrap(),
                at(want),
                "{schedule:?} after {last}"
            );
        }
        assert!(matches!(
            next_after(&cron("61 * * * *"), at("2026-01-01T00:00:00Z")),
            Err(ScheduleError::Cron(..))
        ));
    }

    #[test]
    fn time_until_is_never_negative() {
        assert_eq!(
            until(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:01:00Z")),
            Duration::ZERO
        );
        assert_eq!(
            until(at("2026-01-01T00:01:00Z"), at("2026-01-01T00:00:00Z")),
            Duration::from_secs(60)
        );
    }
}

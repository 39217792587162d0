//! Jittered exponential backoff for idempotent X API calls that failed
//! transiently (5xx, lost answers): "full jitter", so many environments
//! failing together do not come back together.

use std::time::Duration;

/// How an idempotent call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The ceiling of the first wait; doubled for each retry.
    pub base: Duration,
    /// No wait is longer.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            retries: 3,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// No retries: every failure goes back to the caller.
    pub fn none() -> Self {
        Backoff {
            retries: 0,
            ..Backoff::default()
        }
    }

    /// Pure: the wait before retry `attempt` (0-based), given `unit`, a
    /// random number in [0, 1); `None` once the retries are spent.
    pub fn delay(&self, attempt: u32, unit: f64) -> Option<Duration> {
        if attempt >= self.retries {
            return None;
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max);
        Some(ceiling.mul_f64(unit.clamp(0.0, 1.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_are_jittered_capped_and_end() {
        let b = Backoff {
            retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        let cases = [
            ("first retry, top of the range", 0, 0.999_999, Some(99)),
            ("first retry, bottom", 0, 0.0, Some(0)),
            ("doubles", 1, 0.5, Some(100)),
            ("doubles again", 2, 0.5, Some(200)),
            ("capped", 4, 0.999_999, Some(499)),
            ("spent", 5, 0.5, None),
            ("out-of-range randomness is clamped", 1, 7.0, Some(200)),
        ];
        for (what, attempt, unit, want) in cases {
            assert_eq!(ms(b.delay(attempt, unit)), want, "{what}");
        }
        assert_eq!(Backoff::none().delay(0, 0.5), None);
    }
}

//! GitHub's rate limits, as its REST API documentation tells a client to
//! honour them ("Rate limits for the REST API", "Best practices for using
//! the REST API"): after a 403 or 429, wait `retry-after` seconds when
//! given; else, when `x-ratelimit-remaining` is 0, until
//! `x-ratelimit-reset`; else at least a minute, longer on each retry. A
//! 403 that is no rate limit (a permission) is final.

use std::time::Duration;

/// The headers and body facts a decision needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub remaining: Option<u64>,
    /// Epoch seconds when the primary limit resets.
    pub reset: Option<u64>,
    /// The body says "rate limit" (a secondary limit may come without
    /// headers).
    pub says_rate_limit: bool,
}

/// What to do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Read the body: it is the page.
    Use,
    /// Ask again after this long.
    Retry(Duration),
    /// Stop, for this reason.
    GiveUp(String),
}

/// How many times one request is retried before the sweep stops.
pub const MAX_ATTEMPTS: u32 = 6;

/// Pure: what to do after `answer` to the `attempt`th try (0 for the
/// first) at epoch second `now`, waiting no longer than `max_wait`.
pub fn next(answer: &Answer, attempt: u32, now: u64, max_wait: Duration) -> Next {
    let wait = match answer.status {
        200..=299 => return Next::Use,
        403 | 429 => match limit_wait(answer, attempt, now) {
            Some(wait) => wait,
            None => return Next::GiveUp(format!("GitHub refused the listing ({})", answer.status)),
        },
        500..=599 => Duration::from_secs(2u64.saturating_pow(attempt + 1)),
        other => return Next::GiveUp(format!("GitHub answered {other}")),
    };
    if attempt + 1 >= MAX_ATTEMPTS {
        return Next::GiveUp(format!(
            "GitHub answered {} {MAX_ATTEMPTS} times in a row",
            answer.status
        ));
    }
    if wait > max_wait {
        return Next::GiveUp(format!(
            "GitHub's rate limit asks for a wait of {}s, more than --max-rate-limit-wait ({}s); run again later (with --state the sweep resumes where it stopped)",
            wait.as_secs(),
            max_wait.as_secs()
        ));
    }
    Next::Retry(wait)
}

/// How long a rate limit asks to wait; `None` when the refusal is no rate
/// limit.
fn limit_wait(answer: &Answer, attempt: u32, now: u64) -> Option<Duration> {
    if let Some(seconds) = answer.retry_after {
        return Some(Duration::from_secs(seconds));
    }
    if answer.remaining == Some(0) {
        let reset = answer.reset.unwrap_or(now + 60);
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    (answer.status == 429 || answer.says_rate_limit)
        .then(|| Duration::from_secs(60u64.saturating_mul(1 << attempt.min(10))))
}

/// Pure: after a page that used the last request of the primary limit,
/// how long to wait before the next one (none while requests remain).
pub fn before_next_request(answer: &Answer, now: u64) -> Option<Duration> {
    match (answer.remaining, answer.reset) {
        (Some(0), Some(reset)) => Some(Duration::from_secs(reset.saturating_sub(now) + 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;
    const MAX: Duration = Duration::from_secs(900);

    fn answer(status: u16) -> Answer {
        Answer {
            status,
            ..Answer::default()
        }
    }

    #[test]
    fn each_answer_gets_the_wait_github_documents() {
        let secs = |s| Next::Retry(Duration::from_secs(s));
        let cases: Vec<(&str, Answer, u32, Next)> = vec![
            ("a page", answer(200), 0, Next::Use),
            (
                "secondary limit with retry-after",
                Answer {
                    retry_after: Some(7),
                    ..answer(403)
                },
                0,
                secs(7),
            ),
            (
                "primary limit spent: until the reset",
                Answer {
                    remaining: Some(0),
                    reset: Some(NOW + 30),
                    ..answer(403)
                },
                0,
                secs(31),
            ),
            ("429 without headers: a minute", answer(429), 0, secs(60)),
            (
                "secondary limit said in the body, third try: longer",
                Answer {
                    says_rate_limit: true,
                    ..answer(403)
                },
                2,
                secs(240),
            ),
            (
                "a 403 that is a permission",
                answer(403),
                0,
                Next::GiveUp("GitHub refused the listing (403)".into()),
            ),
            ("an outage", answer(502), 1, secs(4)),
            (
                "not found",
                answer(404),
                0,
                Next::GiveUp("GitHub answered 404".into()),
            ),
        ];
        for (what, a, attempt, want) in cases {
            assert_eq!(next(&a, attempt, NOW, MAX), want, "{what}");
        }
    }

    #[test]
    fn a_wait_beyond_the_limit_or_too_many_tries_stops_the_sweep() {
        let far = Answer {
            remaining: Some(0),
            reset: Some(NOW + 3600),
            ..answer(429)
        };
        assert!(matches!(next(&far, 0, NOW, MAX), Next::GiveUp(why) if why.contains("--state")));
        let again = Answer {
            retry_after: Some(1),
            ..answer(429)
        };
        assert!(matches!(
            next(&again, MAX_ATTEMPTS - 1, NOW, MAX),
            Next::GiveUp(_)
        ));
        assert!(matches!(
            next(&again, MAX_ATTEMPTS - 2, NOW, MAX),
            Next::Retry(_)
        ));
    }

    #[test]
    fn the_last_request_of_the_limit_waits_for_the_reset() {
        let last = Answer {
            remaining: Some(0),
            reset: Some(NOW + 5),
            ..answer(200)
        };
        assert_eq!(
            before_next_request(&last, NOW),
            Some(Duration::from_secs(6))
        );
        let more = Answer {
            remaining: Some(4),
            reset: Some(NOW + 5),
            ..answer(200)
        };
        assert_eq!(before_next_request(&more, NOW), None);
    }
}

//! What can go wrong talking to X, classified for the callers' decisions
//! (wait, retry, ask a person, never destroy), and X's error bodies reduced
//! to one line that is safe to put in a condition or an Event.

use std::time::Duration;

use serde::Deserialize;

/// Errors from the X API.
#[derive(Debug, thiserror::Error)]
pub enum XApiError {
    #[error("X API {endpoint}: HTTP {status}: {detail}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        detail: String,
    },
    #[error("X API {endpoint}: rate limited until {}", reset.map_or_else(|| "the window resets".to_string(), utc))]
    RateLimited {
        endpoint: &'static str,
        reset: Option<u64>,
    },
    #[error("X API {endpoint}: {message}")]
    Transport {
        endpoint: &'static str,
        message: String,
    },
}

/// Pure: `2026-11-30T22:30:00Z` for seconds since the epoch, so a person
/// reading a condition sees when X's window resets.
pub fn utc(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

impl XApiError {
    /// The error for a refusal with this status and body (`check_status`
    /// for the rest).
    pub fn from_answer(endpoint: &'static str, status: u16, body: &str) -> XApiError {
        XApiError::Refused {
            endpoint,
            status,
            detail: describe_error(body),
        }
    }

    /// X's code 348 from invalidate: the token is not (or no longer) one
    /// this app may invalidate, e.g. because it already was.
    pub fn is_not_invalidatable(&self) -> bool {
        matches!(self, XApiError::Refused { status: 403, detail, .. } if detail.starts_with("code 348"))
    }

    /// The token endpoint said the refresh token itself is no good (400
    /// `invalid_request`/`invalid_grant`: spent, revoked, expired or
    /// unknown), not that the client failed to authenticate (401, or
    /// `invalid_client`/`unauthorized_client`) or an answer nobody could
    /// read. Only such a token is worth never sending again.
    pub fn refresh_token_refused(&self) -> bool {
        matches!(self, XApiError::Refused { status: 400, endpoint, detail }
            if endpoint.contains("oauth2/token")
                && (detail.starts_with("invalid_request:") || detail.starts_with("invalid_grant:")))
    }

    /// The token endpoint refused the refresh token (spent, revoked or
    /// unknown): only a person can authorize the app again.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, XApiError::Refused { status: 400 | 401, endpoint, .. } if endpoint.contains("oauth2/token"))
    }

    /// How long until a rate limit resets (at least a second, at most a
    /// day: X's longest window is the Free tier's 24 hours), for a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        let XApiError::RateLimited { reset, .. } = self else {
            return None;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let wait = reset.map_or(60, |r| r.saturating_sub(now));
        Some(Duration::from_secs(wait.clamp(1, 24 * 3600)))
    }

    /// Whether retrying later may succeed (rate limits, 5xx, network).
    pub fn is_transient(&self) -> bool {
        match self {
            XApiError::Refused { status, .. } => *status >= 500,
            _ => true,
        }
    }

    /// Whether an immediate retry (after a short backoff) may succeed: a
    /// 5xx or a lost answer, not a rate limit (that waits for its reset).
    pub fn is_retryable_now(&self) -> bool {
        match self {
            XApiError::Refused { status, .. } => *status >= 500,
            XApiError::Transport { .. } => true,
            XApiError::RateLimited { .. } => false,
        }
    }

    /// X answers 403 with error 453 (v1.1) or a `client-not-enrolled`
    /// problem (v2) when a valid credential's access tier lacks the
    /// endpoint: the credential authenticated, so it is live.
    pub fn is_tier_limited(&self) -> bool {
        matches!(self, XApiError::Refused { status: 403, detail, .. }
            if detail.starts_with("code 453") || detail.starts_with("client-not-enrolled"))
    }

    /// X refused the credential itself (401, or a 403 that is not about
    /// the access tier).
    pub fn is_rejected_credential(&self) -> bool {
        matches!(
            self,
            XApiError::Refused {
                status: 401 | 403,
                ..
            }
        ) && !self.is_tier_limited()
    }
}

/// X's three error shapes, reduced to one short line without anything
/// shaped like a credential (it ends up in conditions and Events).
pub(crate) fn describe_error(body: &str) -> String {
    keyguard_credentials::scrub_server_text(&describe_error_raw(body), 200)
}

fn describe_error_raw(body: &str) -> String {
    #[derive(Deserialize)]
    struct V11 {
        errors: Vec<V11Error>,
    }
    #[derive(Deserialize)]
    struct V11Error {
        code: Option<i64>,
        message: Option<String>,
    }
    #[derive(Deserialize)]
    struct Problem {
        reason: Option<String>,
        title: Option<String>,
        detail: Option<String>,
    }
    #[derive(Deserialize)]
    struct OAuth2 {
        error: String,
        error_description: Option<String>,
    }
    if let Ok(v) = serde_json::from_str::<V11>(body) {
        if let Some(e) = v.errors.first() {
            return format!(
                "code {}: {}",
                e.code.unwrap_or_default(),
                e.message.clone().unwrap_or_default()
            );
        }
    }
    if let Ok(o) = serde_json::from_str::<OAuth2>(body) {
        return format!("{}: {}", o.error, o.error_description.unwrap_or_default());
    }
    if let Ok(p) = serde_json::from_str::<Problem>(body) {
        return format!(
            "{}: {}",
            p.reason.or(p.title).unwrap_or_default(),
            p.detail.unwrap_or_default()
        );
    }
    "unrecognised error body".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_read_as_utc() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_796_077_800, "2026-11-30T22:30:00Z"),
            (4_102_444_799, "2099-12-31T23:59:59Z"),
        ];
        for (epoch, want) in cases {
            assert_eq!(utc(epoch), want, "{epoch}");
        }
        let limited = XApiError::RateLimited {
            endpoint: "GET /2/users/me",
            reset: Some(1_796_077_800),
        };
        assert_eq!(
            limited.to_string(),
            "X API GET /2/users/me: rate limited until 2026-11-30T22:30:00Z"
        );
    }

    #[test]
    fn only_a_refresh_token_x_called_bad_is_refused_for_good() {
        let refused = |status, detail: &str| XApiError::Refused {
            endpoint: "POST /2/oauth2/token",
            status,
            detail: detail.into(),
        };
        let cases = [
            (
                400,
                "invalid_request: Value passed for the token was invalid.",
                true,
            ),
            (400, "invalid_grant: expired", true),
            (
                401,
                "unauthorized_client: Missing valid authorization header",
                false,
            ),
            (400, "invalid_client: wrong secret", false),
            (400, "unrecognised error body", false),
        ];
        for (status, detail, want) in cases {
            assert_eq!(
                refused(status, detail).refresh_token_refused(),
                want,
                "{status} {detail}"
            );
        }
    }

    #[test]
    fn a_rate_limit_waits_for_its_reset_within_the_window() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let limited = |reset| XApiError::RateLimited {
            endpoint: "GET /x",
            reset,
        };
        let secs = |e: XApiError| e.retry_after().map(|d| d.as_secs());
        assert!(matches!(secs(limited(Some(now + 120))), Some(119..=120)));
        assert_eq!(
            secs(limited(Some(now - 5))),
            Some(1),
            "a reset in the past: at once, not negative"
        );
        assert_eq!(
            secs(limited(Some(now + 99_999))),
            Some(24 * 3600),
            "never past X's longest window, the Free tier's 24 hours"
        );
        assert_eq!(secs(limited(None)), Some(60));
        let refused = XApiError::Refused {
            endpoint: "GET /x",
            status: 503,
            detail: String::new(),
        };
        assert_eq!(refused.retry_after(), None);
    }

    #[test]
    fn echoed_parameters_never_reach_a_condition() {
        let token = "AAAAAAAAAAAAAAAAAAAAAabc%2Bdef%3Dghijklmnopqrstuvwxyz";
        for body in [
            format!(r#"{{"errors":[{{"code":89,"message":"Invalid token {token}"}}]}}"#),
            format!(r#"{{"error":"invalid_request","error_description":"token={token}"}}"#),
            format!(r#"{{"title":"Unauthorized","detail":"{token} is not valid"}}"#),
        ] {
            let d = describe_error(&body);
            assert!(!d.contains("ghijklmnop") && d.contains("[redacted]"), "{d}");
        }
        let long = format!(
            r#"{{"errors":[{{"code":1,"message":"{}"}}]}}"#,
            "no ".repeat(500)
        );
        assert!(describe_error(&long).len() <= 200);
    }

    #[test]
    fn error_bodies_of_every_shape_become_one_line() {
        assert_eq!(
            describe_error(r#"{"errors":[{"code":89,"message":"Invalid or expired token."}]}"#),
            "code 89: Invalid or expired token."
        );
        assert_eq!(
            describe_error(
                r#"{"error":"invalid_request","error_description":"Value passed for the token was invalid."}"#
            ),
            "invalid_request: Value passed for the token was invalid."
        );
        assert_eq!(
            describe_error(
                r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#
            ),
            "Unauthorized: Unauthorized"
        );
        assert_eq!(describe_error("<html>"), "unrecognised error body");
    }

    #[test]
    fn answers_are_classified_for_the_callers_decisions() {
        let refused = |status, body: &str| XApiError::Refused {
            endpoint: "GET /x",
            status,
            detail: describe_error(body),
        };
        let tier_v11 =
            r#"{"errors":[{"code":453,"message":"You currently have access to a subset"}]}"#;
        let tier_v2 = r#"{"title":"Client Forbidden","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}"#;
        let bad = r#"{"errors":[{"code":89,"message":"Invalid or expired token."}]}"#;
        let rate_limited = XApiError::RateLimited {
            endpoint: "GET /x",
            reset: None,
        };
        let lost = XApiError::Transport {
            endpoint: "GET /x",
            message: "connection reset".into(),
        };
        // (what, error, tier-limited, rejected credential, retry now, transient)
        let cases = [
            ("453", refused(403, tier_v11), true, false, false, false),
            (
                "v2 not enrolled",
                refused(403, tier_v2),
                true,
                false,
                false,
                false,
            ),
            ("401", refused(401, bad), false, true, false, false),
            ("403 other", refused(403, bad), false, true, false, false),
            ("503", refused(503, "<html>"), false, false, true, true),
            ("429", rate_limited, false, false, false, true),
            ("lost answer", lost, false, false, true, true),
        ];
        for (what, e, tier, rejected, now, transient) in cases {
            assert_eq!(
                (
                    e.is_tier_limited(),
                    e.is_rejected_credential(),
                    e.is_retryable_now(),
                    e.is_transient()
                ),
                (tier, rejected, now, transient),
                "{what}"
            );
        }
    }
}

//! The X API client: minting and checking credentials. Errors describe the
//! X API's answer (status, X error code and message) and never carry a
//! credential value.

use std::time::Duration;

use keyguard_credentials::{basic_authorization, bearer_for_header, SecretValue};
use serde::Deserialize;

/// X API calls in flight at once, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Errors from the X API.
#[derive(Debug, thiserror::Error)]
pub enum XApiError {
    #[error("X API {endpoint}: HTTP {status}: {detail}")]
    Refused {
        endpoint: &'static str,
        status: u16,
        detail: String,
    },
    #[error("X API {endpoint}: rate limited until epoch {reset:?}")]
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

impl XApiError {
    /// Whether retrying later may succeed (rate limits, 5xx, network).
    /// X's code 348 from invalidate: the token is not (or no longer) one
    /// this app may invalidate, e.g. because it already was.
    pub fn is_not_invalidatable(&self) -> bool {
        matches!(self, XApiError::Refused { status: 403, detail, .. } if detail.starts_with("code 348"))
    }

    /// The token endpoint refused the refresh token (spent, revoked or
    /// unknown): only a person can authorize the app again.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, XApiError::Refused { status: 400 | 401, endpoint, .. } if endpoint.contains("oauth2/token"))
    }

    /// How long until a rate limit resets (at least a second, at most the
    /// 15-minute window), for a 429.
    pub fn retry_after(&self) -> Option<Duration> {
        let XApiError::RateLimited { reset, .. } = self else {
            return None;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let wait = reset.map_or(60, |r| r.saturating_sub(now));
        Some(Duration::from_secs(wait.clamp(1, 900)))
    }

    pub fn is_transient(&self) -> bool {
        match self {
            XApiError::Refused { status, .. } => *status >= 500,
            _ => true,
        }
    }
}

/// Rate-limit headers of the last response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<u64>,
}

/// What a user-token refresh returns. Values print as fingerprints only.
#[derive(Debug)]
pub struct UserTokens {
    pub access_token: SecretValue,
    /// Comes only with `offline.access`; the one sent is spent either way.
    pub refresh_token: Option<SecretValue>,
    pub expires_in: Duration,
}

#[derive(Debug, Clone)]
pub struct XApiClient {
    base: String,
    http: reqwest::Client,
    /// Bounds the X API calls in flight across every reconcile.
    permits: std::sync::Arc<tokio::sync::Semaphore>,
}

/// X's three error shapes, reduced to one short line without anything
/// shaped like a credential (it ends up in conditions and Events).
fn describe_error(body: &str) -> String {
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
            p.title.unwrap_or_default(),
            p.detail.unwrap_or_default()
        );
    }
    "unrecognised error body".into()
}

fn rate_limit(headers: &reqwest::header::HeaderMap) -> RateLimit {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    RateLimit {
        limit: num("x-rate-limit-limit"),
        remaining: num("x-rate-limit-remaining"),
        reset: num("x-rate-limit-reset"),
    }
}

/// `project_usage` and `project_cap` from a usage answer, numbers or strings.
pub fn parse_usage(body: &str) -> Option<(u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let num = |x: &serde_json::Value| x.as_u64().or_else(|| x.as_str()?.trim().parse().ok());
    Some((
        num(&v["data"]["project_usage"])?,
        num(&v["data"]["project_cap"])?,
    ))
}

/// An answer's status as an error, unless it is a success.
fn check_status(
    endpoint: &'static str,
    status: u16,
    limits: &RateLimit,
    body: &str,
) -> Result<(), XApiError> {
    if status == 429 {
        return Err(XApiError::RateLimited {
            endpoint,
            reset: limits.reset,
        });
    }
    if !(200..300).contains(&status) {
        return Err(XApiError::Refused {
            endpoint,
            status,
            detail: describe_error(body),
        });
    }
    Ok(())
}

impl XApiClient {
    pub fn new(base: &str, timeout: Duration) -> Result<Self, XApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("keyguard-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| XApiError::Transport {
                endpoint: "client",
                message: e.to_string(),
            })?;
        Ok(XApiClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENCY)),
        })
    }

    /// At most `n` X API calls in flight at once (at least one).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.permits = std::sync::Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// Waits for a place among the calls in flight.
    async fn permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    async fn send(
        &self,
        endpoint: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<(String, RateLimit), XApiError> {
        let _permit = self.permit().await;
        let resp = req.send().await.map_err(|e| XApiError::Transport {
            endpoint,
            // reqwest errors name the URL, never the credentials.
            message: e.without_url().to_string(),
        })?;
        let status = resp.status().as_u16();
        let limits = rate_limit(resp.headers());
        let body = resp.text().await.unwrap_or_default();
        check_status(endpoint, status, &limits, &body)?;
        Ok((body, limits))
    }

    /// `POST /oauth2/token` (client credentials): the app-only bearer
    /// token. X returns the same token until it is invalidated.
    pub async fn mint_bearer(
        &self,
        api_key: &SecretValue,
        api_key_secret: &SecretValue,
    ) -> Result<SecretValue, XApiError> {
        let basic = basic_authorization(api_key.expose(), api_key_secret.expose());
        let (body, _) = self
            .send(
                "POST /oauth2/token",
                self.http
                    .post(format!("{}/oauth2/token", self.base))
                    .header("Authorization", basic)
                    .header(
                        "Content-Type",
                        "application/x-www-form-urlencoded;charset=UTF-8",
                    )
                    .body("grant_type=client_credentials"),
            )
            .await?;
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let token: Token = serde_json::from_str(&body).map_err(|_| XApiError::Refused {
            endpoint: "POST /oauth2/token",
            status: 200,
            detail: "response without access_token".into(),
        })?;
        Ok(SecretValue::new(token.access_token))
    }

    /// `POST /oauth2/invalidate_token`: the app-only bearer token stops
    /// working at once, and the next mint returns a new one.
    pub async fn invalidate_bearer(
        &self,
        api_key: &SecretValue,
        api_key_secret: &SecretValue,
        bearer: &SecretValue,
    ) -> Result<(), XApiError> {
        let basic = basic_authorization(api_key.expose(), api_key_secret.expose());
        let token = bearer_for_header(bearer.expose());
        let body = format!(
            "access_token={}",
            percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC)
        );
        self.send(
            "POST /oauth2/invalidate_token",
            self.http
                .post(format!("{}/oauth2/invalidate_token", self.base))
                .header("Authorization", basic)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded;charset=UTF-8",
                )
                .body(body),
        )
        .await?;
        Ok(())
    }

    /// `GET /1.1/account/verify_credentials.json`, signed with OAuth 1.0a
    /// user context: is the access token live, and at which permission
    /// level (`x-access-level`)?
    pub async fn verify_user_context(
        &self,
        keys: &keyguard_credentials::OAuth1Keys<'_>,
    ) -> Result<(Option<String>, RateLimit), XApiError> {
        let url = format!("{}/1.1/account/verify_credentials.json", self.base);
        let query = [("include_email", "false"), ("skip_status", "true")];
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| XApiError::Transport {
            endpoint: "GET /1.1/account/verify_credentials.json",
            message: e.to_string(),
        })?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let header = keyguard_credentials::oauth1_authorization(
            keys,
            "GET",
            &url,
            &query,
            &hex::encode(nonce),
            timestamp,
        );
        let _permit = self.permit().await;
        let resp = self
            .http
            .get(&url)
            .query(&query)
            .header("Authorization", header)
            .send()
            .await
            .map_err(|e| XApiError::Transport {
                endpoint: "GET /1.1/account/verify_credentials.json",
                message: e.without_url().to_string(),
            })?;
        let level = resp
            .headers()
            .get("x-access-level")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = resp.status().as_u16();
        let limits = rate_limit(resp.headers());
        let body = resp.text().await.unwrap_or_default();
        check_status(
            "GET /1.1/account/verify_credentials.json",
            status,
            &limits,
            &body,
        )?;
        Ok((level, limits))
    }

    /// `POST /2/oauth2/token` (`grant_type=refresh_token`): a new user
    /// access token and a new refresh token; the one sent is spent. A
    /// confidential client (with a client secret) authenticates with Basic.
    pub async fn refresh_user_token(
        &self,
        client_id: &SecretValue,
        client_secret: Option<&SecretValue>,
        refresh_token: &SecretValue,
    ) -> Result<UserTokens, XApiError> {
        let enc = |v: &SecretValue| {
            percent_encoding::percent_encode(v.expose(), percent_encoding::NON_ALPHANUMERIC)
                .to_string()
        };
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}",
            enc(refresh_token),
            enc(client_id)
        );
        let mut req = self
            .http
            .post(format!("{}/2/oauth2/token", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(secret) = client_secret {
            req = req.header(
                "Authorization",
                basic_authorization(client_id.expose(), secret.expose()),
            );
        }
        let (body, _) = self.send("POST /2/oauth2/token", req).await?;
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            refresh_token: Option<String>,
            expires_in: Option<u64>,
        }
        let a: Answer = serde_json::from_str(&body).map_err(|_| XApiError::Refused {
            endpoint: "POST /2/oauth2/token",
            status: 200,
            detail: "response without access_token".into(),
        })?;
        Ok(UserTokens {
            access_token: SecretValue::new(a.access_token),
            refresh_token: a.refresh_token.map(SecretValue::new),
            expires_in: Duration::from_secs(a.expires_in.unwrap_or(7200)),
        })
    }

    /// `GET /2/usage/tweets` with the bearer token: the project's post usage
    /// and cap. X documents numbers and serves strings: both are accepted.
    pub async fn usage(&self, bearer: &SecretValue) -> Result<(u64, u64), XApiError> {
        let token = bearer_for_header(bearer.expose());
        let (body, _) = self
            .send(
                "GET /2/usage/tweets",
                self.http
                    .get(format!("{}/2/usage/tweets", self.base))
                    .bearer_auth(token),
            )
            .await?;
        parse_usage(&body).ok_or(XApiError::Refused {
            endpoint: "GET /2/usage/tweets",
            status: 200,
            detail: "response without project_usage and project_cap".into(),
        })
    }

    /// `verify_user_context` with the four OAuth 1.0a values of a source
    /// Secret's data; `None` when one of them is missing or empty.
    pub async fn verify_source_user_context(
        &self,
        source: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Option<Result<(Option<String>, RateLimit), XApiError>> {
        use keyguard_credentials::CredentialKey as K;
        let text = |k: K| {
            source
                .get(k.as_str())
                .and_then(|v| String::from_utf8(v.clone()).ok())
                .filter(|v| !v.is_empty())
        };
        let (ck, cs) = (text(K::ApiKey)?, text(K::ApiKeySecret)?);
        let (t, ts) = (text(K::AccessToken)?, text(K::AccessTokenSecret)?);
        let keys = keyguard_credentials::OAuth1Keys {
            consumer_key: &ck,
            consumer_secret: &cs,
            token: &t,
            token_secret: &ts,
        };
        Some(self.verify_user_context(&keys).await)
    }

    /// A cheap authenticated GET with the bearer token: is it live?
    pub async fn verify_bearer(&self, bearer: &SecretValue) -> Result<RateLimit, XApiError> {
        let token = bearer_for_header(bearer.expose());
        let (_, limits) = self
            .send(
                "GET /1.1/application/rate_limit_status.json",
                self.http
                    .get(format!(
                        "{}/1.1/application/rate_limit_status.json",
                        self.base
                    ))
                    .bearer_auth(token),
            )
            .await?;
        Ok(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Some(900),
            "never past X's 15-minute window"
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
    fn usage_parses_leniently() {
        let cases = [
            (
                r#"{"data":{"project_usage":"1234","project_cap":"10000"}}"#,
                Some((1234, 10000)),
            ),
            (
                r#"{"data":{"project_usage":1234,"project_cap":10000}}"#,
                Some((1234, 10000)),
            ),
            (
                r#"{"data":{"project_usage":" 5 ","project_cap":"7"}}"#,
                Some((5, 7)),
            ),
            (
                r#"{"data":{"project_usage":"n/a","project_cap":"7"}}"#,
                None,
            ),
            (r#"{"errors":[]}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(parse_usage(body), want, "{body}");
        }
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
}

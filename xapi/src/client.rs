//! The HTTP implementation of `XApi`. Every call waits for one of a
//! bounded number of places in flight; idempotent calls (reads, minting the
//! bearer token, retiring an access token) are retried on 5xx and transport
//! errors with jittered backoff (`retry.rs`); a refresh is never retried,
//! since X spends the refresh token even when the answer is lost, nor a
//! bearer token's invalidation, which its caller resumes from a recorded
//! step. Errors describe X's
//! answer and never carry a credential value.

use std::sync::Arc;
use std::time::Duration;

use keyguard_credentials::{basic_authorization, bearer_for_header, OAuth1Keys, SecretValue};
use serde::Deserialize;

use crate::error::describe_error;
use crate::retry::Backoff;
use crate::{RateLimit, UserTokens, XApi, XApiError};

/// X API calls in flight at once, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub struct XApiClient {
    base: String,
    http: reqwest::Client,
    /// Bounds the X API calls in flight across every caller.
    permits: Arc<tokio::sync::Semaphore>,
    backoff: Backoff,
}

/// Whether a call may be sent again after an answer that was lost or a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotent {
    Yes,
    No,
}

/// A successful answer: its body, rate-limit headers and access level.
struct Answer {
    body: String,
    limits: RateLimit,
    access_level: Option<String>,
}

fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn rate_limit(headers: &reqwest::header::HeaderMap) -> RateLimit {
    let num = |name: &str| header_number(headers, name);
    RateLimit {
        limit: num("x-rate-limit-limit"),
        remaining: num("x-rate-limit-remaining"),
        reset: num("x-rate-limit-reset"),
    }
}

/// The windows X limits calls in: 15 minutes, and on the Free tier 24
/// hours per app and per user, each with its own headers.
const LIMIT_WINDOWS: [&str; 3] = ["x-rate-limit", "x-app-limit-24hour", "x-user-limit-24hour"];

/// When a 429's limit lifts: the latest reset of the windows X says are
/// spent (a spent 24-hour window outlasts the 15-minute one).
fn limit_lifts_at(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let num = |window: &str, part: &str| header_number(headers, &format!("{window}-{part}"));
    LIMIT_WINDOWS
        .iter()
        .filter(|w| num(w, "remaining") == Some(0))
        .filter_map(|w| num(w, "reset"))
        .max()
        .or_else(|| num("x-rate-limit", "reset"))
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
    lifts_at: Option<u64>,
    body: &str,
) -> Result<(), XApiError> {
    if status == 429 {
        return Err(XApiError::RateLimited {
            endpoint,
            reset: lifts_at,
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

/// The most of an answer that is read. X's answers are a few KiB of JSON;
/// a larger one is not X's, and reading it whole would let whoever answers
/// fill the operator's memory.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The answer's body, read chunk by chunk up to [`MAX_ANSWER_BYTES`].
async fn read_bounded(
    endpoint: &'static str,
    mut resp: reqwest::Response,
) -> Result<String, XApiError> {
    let too_large = || XApiError::Transport {
        endpoint,
        message: format!("answer larger than {MAX_ANSWER_BYTES} bytes: not read"),
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                return Err(too_large())
            }
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            // A broken body reads as empty, as before: the status decides.
            Err(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The CA certificates named by `SSL_CERT_FILE` (a PEM bundle) and
/// `SSL_CERT_DIR` (directories, `:`-separated, of `.pem`/`.crt` files), as
/// OpenSSL-based tools read them: the way to trust a TLS-inspecting proxy.
/// Empty when neither is set.
pub fn extra_roots_from_env() -> Result<Vec<u8>, XApiError> {
    extra_roots(
        std::env::var_os("SSL_CERT_FILE").as_deref(),
        std::env::var_os("SSL_CERT_DIR").as_deref(),
    )
}

/// [`extra_roots_from_env`] with the two values given.
pub fn extra_roots(
    file: Option<&std::ffi::OsStr>,
    dirs: Option<&std::ffi::OsStr>,
) -> Result<Vec<u8>, XApiError> {
    let failed = |what: &std::path::Path, e: std::io::Error| XApiError::Transport {
        endpoint: "client",
        message: format!("reading CA certificates from {}: {e}", what.display()),
    };
    let mut pem = Vec::new();
    if let Some(file) = file.filter(|f| !f.is_empty()) {
        let path = std::path::Path::new(file);
        pem.extend(std::fs::read(path).map_err(|e| failed(path, e))?);
        pem.push(b'\n');
    }
    for dir in dirs.into_iter().flat_map(std::env::split_paths) {
        let entries = std::fs::read_dir(&dir).map_err(|e| failed(&dir, e))?;
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        files.sort();
        for path in files {
            pem.extend(std::fs::read(&path).map_err(|e| failed(&path, e))?);
            pem.push(b'\n');
        }
    }
    Ok(pem)
}

/// Refuses an X API base a credential must not travel to: anything but
/// `https://`, except `http://` to a loopback address (an emulator on the
/// same machine).
pub fn check_base(base: &str) -> Result<(), XApiError> {
    let refused = |why: &str| {
        XApiError::Transport {
        endpoint: "client",
        message: format!("X API base {base:?} {why}: use https://, or http:// only to a loopback address (an emulator)"),
    }
    };
    let url = reqwest::Url::parse(base).map_err(|_| refused("is not a URL"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(refused("is plain http to a host that is not loopback")),
        _ => Err(refused("has a scheme other than https")),
    }
}

fn form_header() -> (&'static str, &'static str) {
    (
        "Content-Type",
        "application/x-www-form-urlencoded;charset=UTF-8",
    )
}

fn encode(v: &[u8]) -> String {
    percent_encoding::percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl XApiClient {
    /// A client for `base` (e.g. `https://api.x.com`); `user_agent` names
    /// the program, e.g. `keyguard-operator/0.1.0`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, XApiError> {
        Self::with_user_agent(
            base,
            timeout,
            concat!("keyguard/", env!("CARGO_PKG_VERSION")),
        )
    }

    pub fn with_user_agent(
        base: &str,
        timeout: Duration,
        user_agent: &str,
    ) -> Result<Self, XApiError> {
        Self::with_roots(base, timeout, user_agent, &[])
    }

    /// As [`XApiClient::with_user_agent`], also trusting the CA
    /// certificates in `extra_roots_pem` (a corporate TLS-inspecting
    /// proxy's, say) besides the compiled-in roots.
    pub fn with_roots(
        base: &str,
        timeout: Duration,
        user_agent: &str,
        extra_roots_pem: &[u8],
    ) -> Result<Self, XApiError> {
        check_base(base)?;
        let mut builder = reqwest::Client::builder();
        if !extra_roots_pem.is_empty() {
            let roots = reqwest::Certificate::from_pem_bundle(extra_roots_pem).map_err(|e| {
                XApiError::Transport {
                    endpoint: "client",
                    message: format!("reading the extra CA certificates: {e}"),
                }
            })?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let http = builder
            .timeout(timeout)
            .user_agent(user_agent)
            // Every call carries a credential (a header, or the token in
            // the body): a redirect, even to X's own host, is never
            // followed with it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| XApiError::Transport {
                endpoint: "client",
                message: e.to_string(),
            })?;
        Ok(XApiClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            permits: Arc::new(tokio::sync::Semaphore::new(DEFAULT_CONCURRENCY)),
            backoff: Backoff::default(),
        })
    }

    /// At most `n` X API calls in flight at once (at least one).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.permits = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// How idempotent calls are retried (`Backoff::none()`: never).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends what `build` makes, retrying idempotent calls on transient
    /// failures (5xx, transport) after a jittered wait. A rate limit is
    /// returned at once: the caller waits for its reset, not a backoff.
    async fn send(
        &self,
        endpoint: &'static str,
        idempotent: Idempotent,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, XApiError> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(endpoint, build()).await;
            let retry = match &result {
                Err(e) if idempotent == Idempotent::Yes && e.is_retryable_now() => {
                    self.backoff.delay(attempt, fastrand::f64())
                }
                _ => None,
            };
            match retry {
                Some(wait) => {
                    tracing::debug!(
                        endpoint,
                        attempt,
                        ?wait,
                        "X API call failed transiently; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                None => return result,
            }
        }
    }

    async fn send_once(
        &self,
        endpoint: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<Answer, XApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let resp = req.send().await.map_err(|e| XApiError::Transport {
            endpoint,
            // reqwest errors name the URL, never the credentials.
            message: e.without_url().to_string(),
        })?;
        let status = resp.status().as_u16();
        let limits = rate_limit(resp.headers());
        let lifts_at = limit_lifts_at(resp.headers());
        let access_level = resp
            .headers()
            .get("x-access-level")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if (300..400).contains(&status) {
            return Err(XApiError::Transport {
                endpoint,
                message: format!("answered a redirect (HTTP {status}), which is never followed: a credential would go with it"),
            });
        }
        let body = read_bounded(endpoint, resp).await?;
        check_status(endpoint, status, lifts_at, &body)?;
        Ok(Answer {
            body,
            limits,
            access_level,
        })
    }

    /// An OAuth 1.0a `Authorization` header for a request, with a fresh
    /// nonce (it must be unique, not secret).
    fn oauth1_header(
        keys: &OAuth1Keys<'_>,
        method: &str,
        url: &str,
        params: &[(&str, &str)],
    ) -> String {
        let mut nonce = [0u8; 16];
        if getrandom::fill(&mut nonce).is_err() {
            nonce = fastrand::u128(..).to_le_bytes();
        }
        keyguard_credentials::oauth1_authorization(
            keys,
            method,
            url,
            params,
            &hex::encode(nonce),
            unix_now(),
        )
    }

    async fn get_with_bearer(
        &self,
        endpoint: &'static str,
        path: &str,
        token: &SecretValue,
    ) -> Result<Answer, XApiError> {
        let token = bearer_for_header(token.expose());
        let url = self.url(path);
        self.send(endpoint, Idempotent::Yes, || {
            self.http.get(&url).bearer_auth(&token)
        })
        .await
    }
}

#[async_trait::async_trait]
impl XApi for XApiClient {
    async fn mint_bearer(
        &self,
        api_key: &SecretValue,
        api_key_secret: &SecretValue,
    ) -> Result<SecretValue, XApiError> {
        const ENDPOINT: &str = "POST /oauth2/token";
        let basic = basic_authorization(api_key.expose(), api_key_secret.expose());
        let url = self.url("/oauth2/token");
        // X returns the token it already has: sending again is harmless.
        let answer = self
            .send(ENDPOINT, Idempotent::Yes, || {
                let (k, v) = form_header();
                self.http
                    .post(&url)
                    .header("Authorization", &basic)
                    .header(k, v)
                    .body("grant_type=client_credentials")
            })
            .await?;
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let token: Token = serde_json::from_str(&answer.body).map_err(|_| XApiError::Refused {
            endpoint: ENDPOINT,
            status: 200,
            detail: "response without access_token".into(),
        })?;
        Ok(SecretValue::new(token.access_token))
    }

    async fn invalidate_bearer(
        &self,
        owner: &OAuth1Keys<'_>,
        bearer: &SecretValue,
    ) -> Result<(), XApiError> {
        // X's reference page: OAuth 1.0a with the app's consumer keys and
        // the app owner's access token, the token to invalidate as a
        // (signed) form parameter.
        let token = bearer_for_header(bearer.expose());
        let body = format!("access_token={}", encode(token.as_bytes()));
        let url = self.url("/oauth2/invalidate_token");
        // Never retried here: after a lost answer the caller, which
        // recorded the step, resumes by asking X about the old token first
        // (401: the invalidation happened), so X is sent it at most once.
        self.send("POST /oauth2/invalidate_token", Idempotent::No, || {
            let header = Self::oauth1_header(owner, "POST", &url, &[("access_token", &token)]);
            let (k, v) = form_header();
            self.http
                .post(&url)
                .header("Authorization", header)
                .header(k, v)
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    async fn verify_bearer(&self, bearer: &SecretValue) -> Result<RateLimit, XApiError> {
        let answer = self
            .get_with_bearer(
                "GET /1.1/application/rate_limit_status.json",
                "/1.1/application/rate_limit_status.json",
                bearer,
            )
            .await?;
        Ok(answer.limits)
    }

    async fn verify_user_token(&self, token: &SecretValue) -> Result<RateLimit, XApiError> {
        let answer = self
            .get_with_bearer("GET /2/users/me", "/2/users/me", token)
            .await?;
        Ok(answer.limits)
    }

    async fn verify_user_context(
        &self,
        keys: &OAuth1Keys<'_>,
    ) -> Result<(Option<String>, RateLimit), XApiError> {
        const ENDPOINT: &str = "GET /1.1/account/verify_credentials.json";
        let url = self.url("/1.1/account/verify_credentials.json");
        let query = [("include_email", "false"), ("skip_status", "true")];
        // Each attempt signs anew: X refuses a nonce it has seen.
        let answer = self
            .send(ENDPOINT, Idempotent::Yes, || {
                let header = Self::oauth1_header(keys, "GET", &url, &query);
                self.http
                    .get(&url)
                    .query(&query)
                    .header("Authorization", header)
            })
            .await?;
        Ok((answer.access_level, answer.limits))
    }

    async fn invalidate_access_token(&self, keys: &OAuth1Keys<'_>) -> Result<(), XApiError> {
        const ENDPOINT: &str = "POST /1.1/oauth/invalidate_token";
        let url = self.url("/1.1/oauth/invalidate_token");
        self.send(ENDPOINT, Idempotent::Yes, || {
            let header = Self::oauth1_header(keys, "POST", &url, &[]);
            self.http.post(&url).header("Authorization", header)
        })
        .await?;
        Ok(())
    }

    async fn refresh_user_token(
        &self,
        client_id: &SecretValue,
        client_secret: Option<&SecretValue>,
        refresh_token: &SecretValue,
    ) -> Result<UserTokens, XApiError> {
        const ENDPOINT: &str = "POST /2/oauth2/token";
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}",
            encode(refresh_token.expose()),
            encode(client_id.expose())
        );
        let basic = client_secret.map(|s| basic_authorization(client_id.expose(), s.expose()));
        let url = self.url("/2/oauth2/token");
        let answer = self
            .send(ENDPOINT, Idempotent::No, || {
                let req = self
                    .http
                    .post(&url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone());
                match &basic {
                    // A confidential client authenticates with Basic.
                    Some(b) => req.header("Authorization", b),
                    None => req,
                }
            })
            .await?;
        #[derive(Deserialize)]
        struct Tokens {
            access_token: String,
            refresh_token: Option<String>,
            expires_in: Option<u64>,
            /// Space-separated, as OAuth 2.0 (RFC 6749 §3.3) says.
            scope: Option<String>,
        }
        let a: Tokens = serde_json::from_str(&answer.body).map_err(|_| XApiError::Refused {
            endpoint: ENDPOINT,
            status: 200,
            detail: "response without access_token".into(),
        })?;
        Ok(UserTokens {
            access_token: SecretValue::new(a.access_token),
            refresh_token: a.refresh_token.map(SecretValue::new),
            expires_in: Duration::from_secs(a.expires_in.unwrap_or(7200)),
            scopes: scopes(a.scope.as_deref().unwrap_or_default()),
        })
    }

    async fn usage(&self, bearer: &SecretValue) -> Result<(u64, u64), XApiError> {
        const ENDPOINT: &str = "GET /2/usage/tweets";
        let answer = self
            .get_with_bearer(ENDPOINT, "/2/usage/tweets", bearer)
            .await?;
        parse_usage(&answer.body).ok_or(XApiError::Refused {
            endpoint: ENDPOINT,
            status: 200,
            detail: "response without project_usage and project_cap".into(),
        })
    }
}

/// The scopes an OAuth 2.0 answer names, bounded: at most 32, each at
/// most 64 characters of what scope names use. What X answers is kept in
/// a state record, so an oversized or strange answer must not make that
/// write fail (the refresh token it carries is the only one that works);
/// anything else is named as `unrecognized`, which counts as the widest.
pub fn scopes(answer: &str) -> Vec<String> {
    const MOST: usize = 32;
    let plausible = |s: &&str| {
        s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._:-".contains(&b))
    };
    let mut kept: Vec<String> = Vec::new();
    let mut strange = false;
    for scope in answer.split_whitespace() {
        match plausible(&scope) && kept.len() < MOST {
            true => kept.push(scope.to_string()),
            false => strange = true,
        }
    }
    if strange {
        kept.push("unrecognized".to_string());
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_lifts_when_the_latest_spent_window_resets() {
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Headers, Option<u64>)] = &[
            (
                &[
                    ("x-rate-limit-remaining", "0"),
                    ("x-rate-limit-reset", "100"),
                ],
                Some(100),
            ),
            // Free: the 24-hour window per user is spent, the 15-minute one is not.
            (
                &[
                    ("x-rate-limit-remaining", "70"),
                    ("x-rate-limit-reset", "100"),
                    ("x-user-limit-24hour-remaining", "0"),
                    ("x-user-limit-24hour-reset", "80000"),
                ],
                Some(80000),
            ),
            (
                &[
                    ("x-rate-limit-remaining", "0"),
                    ("x-rate-limit-reset", "100"),
                    ("x-app-limit-24hour-remaining", "0"),
                    ("x-app-limit-24hour-reset", "90000"),
                    ("x-user-limit-24hour-remaining", "3"),
                    ("x-user-limit-24hour-reset", "95000"),
                ],
                Some(90000),
            ),
            // No window says it is spent: the 15-minute reset, if any.
            (&[("x-rate-limit-reset", "100")], Some(100)),
            (&[], None),
        ];
        for (headers, want) in cases {
            let mut map = reqwest::header::HeaderMap::new();
            for (k, v) in *headers {
                map.insert(*k, v.parse().unwrap());
            }
            assert_eq!(limit_lifts_at(&map), *want, "{headers:?}");
        }
    }

    #[test]
    fn granted_scopes_are_bounded() {
        assert_eq!(
            scopes("tweet.read  users.read\toffline.access"),
            ["tweet.read", "users.read", "offline.access"]
        );
        assert_eq!(scopes(""), Vec::<String>::new());
        assert_eq!(
            scopes("tweet.read <script>"),
            ["tweet.read", "unrecognized"]
        );
        let many = vec!["a.read"; 100].join(" ");
        assert_eq!(scopes(&many).len(), 33);
        assert_eq!(scopes(&"x".repeat(100)), ["unrecognized"]);
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
    fn only_https_or_loopback_http_bases_are_accepted() {
        let cases = [
            ("https://api.x.com", true),
            ("https://api.x.com/", true),
            ("http://127.0.0.1:8080", true),
            ("http://127.1.2.3", true),
            ("http://localhost:9000", true),
            ("http://[::1]:9000", true),
            ("http://api.x.com", false),
            ("http://10.0.0.1", false),
            ("http://[::ffff:10.0.0.1]", false),
            ("ftp://api.x.com", false),
            ("api.x.com", false),
        ];
        for (base, ok) in cases {
            assert_eq!(check_base(base).is_ok(), ok, "{base}");
            assert_eq!(
                XApiClient::new(base, Duration::from_secs(1)).is_ok(),
                ok,
                "{base}"
            );
        }
    }
}

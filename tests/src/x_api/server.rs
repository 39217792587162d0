//! The emulator's HTTP server (axum on a loopback port).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;

use super::credentials::{
    bearer_token, refresh_token, user_token, AccessLevel, App, AppCredentials,
};
use super::oauth1;

/// A fault injected into the next request(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `x-rate-limit-remaining: 0` and a reset time.
    RateLimited,
    /// A 5xx status.
    ServerError(u16),
    /// Answer normally, but only after this long.
    Latency(Duration),
    /// X processes the call, and its answer never reaches the client (a
    /// connection cut after the work was done): the client gets a 504 from
    /// the edge, with no body it could learn the result from.
    AnswerLost,
    /// A careless server: 403 with an error message that quotes the
    /// request's `Authorization` header and body, credentials and all.
    RefusedEchoing,
}

#[derive(Debug, Default)]
struct Inner {
    apps: Vec<App>,
    faults: VecDeque<Fault>,
    /// Faults for the next request to one endpoint ("POST /path").
    targeted: Vec<(String, Fault)>,
    /// Which request each injected fault hit: ("METHOD /path", fault).
    faulted: Vec<(String, Fault)>,
    /// (method path) of every request, in order.
    requests: Vec<String>,
    /// Rate-limit windows, per app (credential) and endpoint.
    windows: HashMap<String, Window>,
    /// The Free tier's 24-hour windows, per user and endpoint.
    daily_windows: HashMap<String, Window>,
    /// A test's 24-hour limit instead of X's documented Free-tier one.
    daily_limit: Option<u32>,
    /// Calls allowed per window on each read endpoint.
    /// A test's limit for every GET instead of X's documented ones.
    rate_limit: Option<u32>,
    /// OAuth 1.0a nonces seen: (consumer key, token, nonce, timestamp).
    nonces: std::collections::HashSet<(String, String, String, String)>,
    /// Lifetime of OAuth 2.0 user access tokens (`expires_in`).
    user_token_lifetime: Duration,
    /// Bearer tokens invalidated, by API key.
    invalidated: HashMap<String, Vec<String>>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// One rate-limit window: fixed reset time, calls left.
#[derive(Debug, Clone, Copy)]
struct Window {
    reset: u64,
    remaining: u32,
}

/// The Free tier's 24-hour limit on `GET /2/users/me`, per user (X's
/// "Rate limits" page, Free column).
const FREE_USERS_ME_PER_DAY: u32 = 25;
const DAY_SECS: u64 = 24 * 3600;

/// How far an OAuth 1.0a timestamp may be from the server's clock.
const TIMESTAMP_WINDOW_SECS: u64 = 300;
/// X's rate-limit window.
const WINDOW_SECS: u64 = 900;

type Shared = Arc<Mutex<Inner>>;

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct XApiEmulator {
    base_url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for XApiEmulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// X's documented limit per 15-minute window for the endpoints the project
/// reads (each endpoint's reference page); other GETs get X's common 900.
fn documented_limit(path: &str) -> u32 {
    match path {
        "/1.1/application/rate_limit_status.json" => 180,
        "/1.1/account/verify_credentials.json" => 75,
        "/2/users/me" => 75,
        "/2/usage/tweets" => 50,
        _ => 900,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl XApiEmulator {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts on `addr` (e.g. for the demo, a fixed port).
    pub async fn start_on(addr: &str) -> Self {
        Self::start_with(addr, "http").await
    }

    /// Starts on a free loopback port, to be reached only through a TLS
    /// front that relays bytes (no `X-Forwarded-Proto`): the URLs clients
    /// sign are https ones. [`XApiEmulator::base_url`] stays the plain one
    /// the front connects to.
    pub async fn start_behind_tls() -> Self {
        Self::start_with("127.0.0.1:0", "https").await
    }

    async fn start_with(addr: &str, signed_scheme: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the X API emulator");
        let local = listener.local_addr().unwrap();
        let base_url = format!("http://{local}");
        let state: Shared = Arc::new(Mutex::new(Inner {
            rate_limit: None,
            user_token_lifetime: Duration::from_secs(7200),
            ..Default::default()
        }));
        let ctx = Ctx {
            state: state.clone(),
            base_url: format!("{signed_scheme}://{local}"),
        };
        let app = Router::new()
            .route("/oauth2/token", post(oauth2_token))
            .route("/oauth2/invalidate_token", post(oauth2_invalidate))
            .route(
                "/1.1/application/rate_limit_status.json",
                get(rate_limit_status),
            )
            .route(
                "/1.1/account/verify_credentials.json",
                get(verify_credentials),
            )
            .route("/1.1/oauth/invalidate_token", post(oauth1_invalidate))
            .route("/2/oauth2/token", post(oauth2_refresh))
            .route("/2/oauth2/revoke", post(oauth2_revoke))
            .route("/2/users/me", get(users_me))
            .route("/2/usage/tweets", get(usage))
            .layer(axum::middleware::from_fn_with_state(
                ctx.clone(),
                faults_and_rate_limits,
            ))
            .with_state(ctx);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        XApiEmulator {
            base_url,
            state,
            task,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Registers a new app with fresh credentials, as the developer portal
    /// would issue them.
    pub fn create_app(&self, access_level: AccessLevel) -> AppCredentials {
        let credentials = AppCredentials::generate();
        self.state.lock().unwrap().apps.push(App {
            refresh_tokens: vec![credentials.refresh_token.clone()],
            credentials: credentials.clone(),
            access_level,
            bearer: None,
            user_tokens: Vec::new(),
            more_access_tokens: Vec::new(),
            revoked_access_tokens: Vec::new(),
            project_usage: 1234,
            project_cap: 10_000,
            tier_limited: false,
            no_offline_access: false,
            granted_scopes: vec!["tweet.read".into(), "users.read".into()],
        });
        credentials
    }

    /// The app's current bearer token, if one was minted and not invalidated.
    pub fn current_bearer(&self, api_key: &str) -> Option<String> {
        let s = self.state.lock().unwrap();
        s.apps
            .iter()
            .find(|a| a.credentials.api_key == api_key)?
            .bearer
            .clone()
    }

    /// Mints (or returns) the app's bearer token, as `POST /oauth2/token`
    /// would, without a request.
    pub fn mint_bearer(&self, api_key: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let app = s.app_mut(api_key);
        app.bearer.get_or_insert_with(bearer_token).clone()
    }

    /// Issues a live user access token for the app, without a request.
    pub fn mint_user_token(&self, api_key: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let app = s.app_mut(api_key);
        let token = user_token();
        app.user_tokens.push((token.clone(), u64::MAX));
        token
    }

    /// The app's user authorization lacks `offline.access`: refreshes answer
    /// without a new refresh token.
    pub fn without_offline_access(&self, api_key: &str) {
        let mut s = self.state.lock().unwrap();
        for a in s
            .apps
            .iter_mut()
            .filter(|a| a.credentials.api_key == api_key)
        {
            a.no_offline_access = true;
        }
    }

    /// The user's authorization grants `scopes` (besides `offline.access`)
    /// from the next refresh on, as a new authorization would.
    pub fn grant_scopes(&self, api_key: &str, scopes: &[&str]) {
        let mut s = self.state.lock().unwrap();
        s.app_mut(api_key).granted_scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// Issues a new refresh token for the app, as a person authorizing it
    /// again (the OAuth 2.0 authorization code flow) would get.
    pub fn authorize_again(&self, api_key: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let app = s.app_mut(api_key);
        let token = refresh_token();
        app.refresh_tokens.push(token.clone());
        token
    }

    /// Issues another OAuth 1.0a access token and secret for the app, as a
    /// user authorizing it again would; the earlier ones stay valid.
    pub fn issue_access_token(&self, api_key: &str) -> (String, String) {
        let mut s = self.state.lock().unwrap();
        let app = s.app_mut(api_key);
        let fresh = AppCredentials::generate();
        let token = format!(
            "{}-{}",
            app.credentials.user_id,
            &fresh.access_token[fresh.access_token.find('-').unwrap() + 1..]
        );
        app.more_access_tokens
            .push((token.clone(), fresh.access_token_secret.clone()));
        (token, fresh.access_token_secret)
    }

    /// The OAuth 1.0a access tokens of the app that X has revoked.
    pub fn revoked_access_tokens(&self, api_key: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.apps
            .iter()
            .find(|a| a.credentials.api_key == api_key)
            .map(|a| a.revoked_access_tokens.clone())
            .unwrap_or_default()
    }

    /// Puts the app on the Free tier: its valid credentials get X's 403
    /// with error 453 on the app-only and v1.1 reads, and `GET /2/users/me`
    /// answers within a 24-hour limit per user.
    pub fn limit_access_tier(&self, api_key: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(a) = s.apps.iter_mut().find(|a| a.credentials.api_key == api_key) {
            a.tier_limited = true;
        }
    }

    /// Sets an app's post usage against its cap.
    pub fn set_usage(&self, api_key: &str, usage: u64, cap: u64) {
        let mut s = self.state.lock().unwrap();
        if let Some(a) = s.apps.iter_mut().find(|a| a.credentials.api_key == api_key) {
            a.project_usage = usage;
            a.project_cap = cap;
        }
    }

    /// Calls allowed per app and read endpoint in each 15-minute window.
    pub fn set_rate_limit(&self, calls: u32) {
        self.state.lock().unwrap().rate_limit = Some(calls);
    }

    /// Lifetime of user access tokens issued from now on.
    pub fn set_user_token_lifetime(&self, lifetime: Duration) {
        self.state.lock().unwrap().user_token_lifetime = lifetime;
    }

    /// Moves the app's user access tokens past their expiry, as the clock
    /// would: tests control time instead of racing a short lifetime.
    pub fn expire_user_tokens(&self, api_key: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(a) = s.apps.iter_mut().find(|a| a.credentials.api_key == api_key) {
            for (_, expires) in &mut a.user_tokens {
                *expires = now();
            }
        }
    }

    /// Makes the app's OAuth 2.0 client a public one (no client secret, as
    /// for a native or single-page app): it refreshes with its `client_id`
    /// alone.
    pub fn make_public_client(&self, api_key: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(a) = s.apps.iter_mut().find(|a| a.credentials.api_key == api_key) {
            a.credentials.client_secret.clear();
        }
    }

    /// The Free tier's 24-hour limit per user, for a test (X's is 25).
    pub fn set_daily_limit(&self, calls: u32) {
        self.state.lock().unwrap().daily_limit = Some(calls);
    }

    /// Injects faults into the next requests, one each.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    /// Injects `fault` into the next request to `endpoint` ("POST /path"),
    /// whatever comes before it.
    pub fn inject_at(&self, endpoint: &str, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        s.targeted.push((endpoint.to_string(), fault));
    }

    /// The requests injected faults hit, in order: ("METHOD /path", fault).
    /// A fault test asserts its fault landed where it names.
    pub fn faulted(&self) -> Vec<(String, Fault)> {
        self.state.lock().unwrap().faulted.clone()
    }

    /// How many bearer tokens of the app X has invalidated (requests that
    /// failed, e.g. with an injected 5xx, do not count).
    pub fn bearer_invalidations(&self, api_key: &str) -> usize {
        self.invalidated_bearers(api_key).len()
    }

    /// The app's bearer tokens X has invalidated, oldest first: the values
    /// a leak check must look for too (an invalidated token is the one a
    /// careless operator would log).
    pub fn invalidated_bearers(&self, api_key: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.invalidated.get(api_key).cloned().unwrap_or_default()
    }

    /// The most requests the emulator was answering at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// `METHOD /path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

#[derive(Clone)]
struct Ctx {
    state: Shared,
    base_url: String,
}

impl Inner {
    /// The app of `api_key`; a test names only apps it created.
    fn app_mut(&mut self, api_key: &str) -> &mut App {
        self.apps
            .iter_mut()
            .find(|a| a.credentials.api_key == api_key)
            .expect("known app")
    }
}

impl Ctx {
    fn scheme(&self) -> &str {
        self.base_url.split("://").next().unwrap_or("http")
    }
}

async fn faults_and_rate_limits(
    State(ctx): State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let endpoint = format!("{} {}", req.method(), req.uri().path());
    // X limits read endpoints per endpoint and 15-minute window: per app
    // for app-only bearer tokens, per user for user context.
    let limited = req.method() == Method::GET;
    let v11 = req.uri().path().starts_with("/1.1/");
    let (fault, window, limit) = {
        let mut s = ctx.state.lock().unwrap();
        let caller = caller_identity(&s, req.headers());
        s.requests.push(endpoint.clone());
        let fault = match s.targeted.iter().position(|(e, _)| *e == endpoint) {
            Some(i) => Some(s.targeted.remove(i).1),
            None => s.faults.pop_front(),
        };
        let limit = s
            .rate_limit
            .unwrap_or_else(|| documented_limit(req.uri().path()));
        let w = s
            .windows
            .entry(format!("{caller} {endpoint}"))
            .or_insert(Window {
                reset: now() + WINDOW_SECS,
                remaining: limit,
            });
        if now() >= w.reset {
            *w = Window {
                reset: now() + WINDOW_SECS,
                remaining: limit,
            };
        }
        let exhausted = limited && w.remaining == 0;
        if limited && !exhausted {
            w.remaining -= 1;
        }
        let w = *w;
        if let (Some(f), false) = (fault, exhausted) {
            s.faulted.push((endpoint.clone(), f));
        }
        (
            if exhausted {
                Some(Fault::RateLimited)
            } else {
                fault
            },
            w,
            limit,
        )
    };
    let (remaining, reset) = (window.remaining, window.reset);
    {
        let mut s = ctx.state.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
    }
    let response = answer(req, next, fault, window, limit, v11).await;
    ctx.state.lock().unwrap().in_flight -= 1;
    with_rate_limit_headers(response, limit, remaining, reset)
}

async fn answer(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    fault: Option<Fault>,
    window: Window,
    limit: u32,
    v11: bool,
) -> Response {
    match fault {
        Some(Fault::RateLimited) => {
            // v1.1 answers with its error list (code 88), v2 with a problem.
            let body = if v11 {
                json!({"errors": [{"code": 88, "message": "Rate limit exceeded"}]})
            } else {
                json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})
            };
            let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            r.headers_mut().insert("x-rate-limit-remaining", HeaderValue::from(0));
            r.headers_mut().insert("x-rate-limit-limit", HeaderValue::from(limit));
            let reset = if window.remaining == 0 { window.reset } else { now() + 2 };
            r.headers_mut().insert("x-rate-limit-reset", HeaderValue::from(reset));
            r
        }
        Some(Fault::ServerError(code)) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            Json(json!({"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank", "status": code})),
        )
            .into_response(),
        Some(Fault::Latency(d)) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Some(Fault::RefusedEchoing) => {
            let authorization = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let message = format!(
                "Could not authenticate you. Authorization: {authorization}; body: {}",
                String::from_utf8_lossy(&body)
            );
            v11_error(StatusCode::FORBIDDEN, 32, &message)
        }
        Some(Fault::AnswerLost) => {
            drop(next.run(req).await);
            (
                StatusCode::GATEWAY_TIMEOUT,
                Json(json!({"title": "Gateway Timeout", "detail": "Gateway Timeout", "type": "about:blank", "status": 504})),
            )
                .into_response()
        }
        None => next.run(req).await,
    }
}

fn with_rate_limit_headers(
    mut response: Response,
    limit: u32,
    remaining: u32,
    reset: u64,
) -> Response {
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        return response;
    }
    let h = response.headers_mut();
    h.insert("x-rate-limit-limit", HeaderValue::from(limit));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    h.insert("x-rate-limit-reset", HeaderValue::from(reset));
    response
}

/// Who is calling, for rate limits: the app of an app-only bearer token
/// (however the token is encoded, and across its rotations: X's app-only
/// limits are per app), else the credential in `Authorization` (per user).
fn caller_identity(s: &Inner, headers: &HeaderMap) -> String {
    use sha2::Digest;
    if let Some(i) = app_by_bearer(s, headers) {
        return format!("app {}", s.apps[i].credentials.api_key);
    }
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("anonymous");
    let identity = match oauth1::parse_authorization(auth) {
        // The nonce, timestamp and signature change per request.
        Some(pairs) => pairs
            .into_iter()
            .filter(|(k, _)| k == "oauth_consumer_key" || k == "oauth_token")
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&"),
        None => auth.to_string(),
    };
    hex::encode(&sha2::Sha256::digest(identity.as_bytes())[..8])
}

fn v11_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"code": code, "message": message}]})),
    )
        .into_response()
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        Json(json!({"title": status.canonical_reason().unwrap_or("Error"), "detail": detail, "type": "about:blank", "status": status.as_u16()})),
    )
        .into_response()
}

fn oauth2_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn form(body: &Bytes) -> HashMap<String, String> {
    url_pairs(&String::from_utf8_lossy(body))
        .into_iter()
        .collect()
}

fn url_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let d = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

/// Basic auth of URL-encoded `key:secret`, decoded.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (k, s) = text.split_once(':')?;
    let d = |x: &str| {
        percent_encoding::percent_decode_str(x)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((d(k)?, d(s)?))
}

/// The token after `Bearer `, decoded: X hands the bearer token out
/// URL-encoded and accepts it as issued or decoded (tweepy, for one, sends
/// it exactly as issued).
fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| {
            percent_encoding::percent_decode_str(t.trim())
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// The token endpoints read a form body, and only with its content type.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| {
            c.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn decoded_bearer(app: &App) -> Option<String> {
    app.bearer.as_ref().map(|b| {
        percent_encoding::percent_decode_str(b)
            .decode_utf8_lossy()
            .into_owned()
    })
}

/// App whose OAuth 1.0a signature (user context) on this request is valid.
fn oauth1_app(
    ctx: &Ctx,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<usize, Box<Response>> {
    oauth1_request(ctx, method, uri, headers, body).map(|(i, _)| i)
}

/// The app and the access token of a request signed with OAuth 1.0a.
fn oauth1_request(
    ctx: &Ctx,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(usize, String), Box<Response>> {
    let header = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(oauth1::parse_authorization)
        .ok_or_else(|| {
            Box::new(v11_error(
                StatusCode::BAD_REQUEST,
                215,
                "Bad Authentication data.",
            ))
        })?;
    let get = |k: &str| header.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(key), Some(token), Some(signature)) = (
        get("oauth_consumer_key"),
        get("oauth_token"),
        get("oauth_signature"),
    ) else {
        return Err(Box::new(v11_error(
            StatusCode::BAD_REQUEST,
            215,
            "Bad Authentication data.",
        )));
    };
    let unauthenticated = || {
        Box::new(v11_error(
            StatusCode::UNAUTHORIZED,
            32,
            "Could not authenticate you.",
        ))
    };
    if get("oauth_signature_method").as_deref() != Some("HMAC-SHA1") {
        return Err(unauthenticated());
    }
    let timestamp = get("oauth_timestamp").unwrap_or_default();
    let nonce = get("oauth_nonce").unwrap_or_default();
    match timestamp.parse::<u64>() {
        Ok(t) if t.abs_diff(now()) <= TIMESTAMP_WINDOW_SECS => {}
        _ => {
            return Err(Box::new(v11_error(
                StatusCode::UNAUTHORIZED,
                135,
                "Timestamp out of bounds.",
            )))
        }
    }
    if nonce.is_empty() {
        return Err(unauthenticated());
    }
    // `realm` is not signed (RFC 5849 3.4.1.3.1).
    let mut params: Vec<(String, String)> = header
        .iter()
        .filter(|(k, _)| k != "realm")
        .cloned()
        .collect();
    params.extend(url_pairs(uri.query().unwrap_or_default()));
    if is_form(headers) {
        params.extend(url_pairs(&String::from_utf8_lossy(body)));
    }
    // The base URL the client signed: scheme (as a TLS-terminating proxy
    // in front reports it), the Host it sent, the path.
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = host.strip_suffix(":80").unwrap_or(&host);
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or(ctx.scheme());
    let host = if scheme == "https" {
        host.strip_suffix(":443").unwrap_or(host)
    } else {
        host
    };
    let base_url = format!("{scheme}://{host}{}", uri.path());
    let s = ctx.state.lock().unwrap();
    let (index, token_secret) = s
        .apps
        .iter()
        .enumerate()
        .filter(|(_, a)| a.credentials.api_key == key)
        .find_map(|(i, a)| Some((i, a.access_token_secret(&token)?.to_string())))
        .ok_or_else(|| {
            Box::new(v11_error(
                StatusCode::UNAUTHORIZED,
                89,
                "Invalid or expired token.",
            ))
        })?;
    let app = &s.apps[index];
    if !oauth1::verify_signature(
        method.as_str(),
        &base_url,
        &params,
        &app.credentials.api_key_secret,
        &token_secret,
        &signature,
    ) {
        return Err(unauthenticated());
    }
    drop(s);
    // A nonce is good for one request (checked after the signature, so a
    // forged request cannot burn someone's nonce).
    let mut s = ctx.state.lock().unwrap();
    if !s.nonces.insert((key, token.clone(), nonce, timestamp)) {
        return Err(unauthenticated());
    }
    Ok((index, token))
}

async fn oauth2_token(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_form(&headers) {
        return v11_error(
            StatusCode::FORBIDDEN,
            170,
            "Missing required parameter: grant_type",
        );
    }
    let Some((key, secret)) = basic_auth(&headers) else {
        return v11_error(
            StatusCode::FORBIDDEN,
            99,
            "Unable to verify your credentials",
        );
    };
    if form(&body).get("grant_type").map(String::as_str) != Some("client_credentials") {
        return v11_error(
            StatusCode::FORBIDDEN,
            170,
            "Missing required parameter: grant_type",
        );
    }
    let mut s = ctx.state.lock().unwrap();
    let Some(app) = s
        .apps
        .iter_mut()
        .find(|a| a.credentials.api_key == key && a.credentials.api_key_secret == secret)
    else {
        return v11_error(
            StatusCode::FORBIDDEN,
            99,
            "Unable to verify your credentials",
        );
    };
    let token = app.bearer.get_or_insert_with(bearer_token).clone();
    Json(json!({"token_type": "bearer", "access_token": token})).into_response()
}

async fn oauth2_invalidate(
    State(ctx): State<Ctx>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // X's reference page "POST oauth2/invalidate_token": OAuth 1.0a with
    // the app's consumer keys and the app owner's access token. Basic (an
    // older page's scheme) is refused like any request without an OAuth
    // header (400, code 215), another user's token with 403 code 220.
    let (index, token) = match oauth1_request(&ctx, &method, &uri, &headers, &body) {
        Ok(found) => found,
        Err(r) => return *r,
    };
    if ctx.state.lock().unwrap().apps[index]
        .credentials
        .access_token
        != token
    {
        return v11_error(
            StatusCode::FORBIDDEN,
            220,
            "Your credentials do not allow access to this resource.",
        );
    }
    let token = form(&body).get("access_token").cloned().unwrap_or_default();
    let mut s = ctx.state.lock().unwrap();
    let app = &mut s.apps[index];
    let current = decoded_bearer(app);
    // `form` decoded the parameter once, as X does; no second decoding.
    if current.as_deref() != Some(token.as_str()) {
        return v11_error(
            StatusCode::FORBIDDEN,
            348,
            "Client application is not permitted to to invalidate this token.",
        );
    }
    app.bearer = None;
    let key = app.credentials.api_key.clone();
    s.invalidated.entry(key).or_default().push(token.clone());
    Json(json!({"access_token": token})).into_response()
}

fn app_by_bearer(s: &Inner, headers: &HeaderMap) -> Option<usize> {
    let token = bearer(headers)?;
    s.apps
        .iter()
        .position(|a| decoded_bearer(a).as_deref() == Some(token.as_str()))
}

/// X's answer to a valid credential whose access tier lacks the endpoint.
fn tier_limited() -> Response {
    v11_error(
        StatusCode::FORBIDDEN,
        453,
        "You currently have access to a subset of X API V2 endpoints and limited v1.1 endpoints only. If you need access to this endpoint, you may need a different access level.",
    )
}

async fn rate_limit_status(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let s = ctx.state.lock().unwrap();
    match app_by_bearer(&s, &headers) {
        Some(i) if s.apps[i].tier_limited => tier_limited(),
        Some(_) => Json(json!({"rate_limit_context": {"application": "app"}, "resources": {}}))
            .into_response(),
        None => v11_error(StatusCode::UNAUTHORIZED, 89, "Invalid or expired token."),
    }
}

async fn usage(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let s = ctx.state.lock().unwrap();
    match app_by_bearer(&s, &headers) {
        // Documented as numbers, served as strings: clients parse leniently.
        Some(i) => Json(json!({"data": {
            "project_id": "1",
            "project_usage": s.apps[i].project_usage.to_string(),
            "project_cap": s.apps[i].project_cap.to_string(),
            "cap_reset_day": 1
        }}))
        .into_response(),
        None => problem(StatusCode::UNAUTHORIZED, "Unauthorized"),
    }
}

async fn verify_credentials(
    State(ctx): State<Ctx>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match oauth1_app(&ctx, &method, &uri, &headers, &body) {
        Ok(i) => {
            let s = ctx.state.lock().unwrap();
            let app = &s.apps[i];
            if app.tier_limited {
                return tier_limited();
            }
            let mut r = Json(json!({
                "id": app.credentials.user_id,
                "id_str": app.credentials.user_id.to_string(),
                "screen_name": format!("user{}", app.credentials.user_id),
            }))
            .into_response();
            r.headers_mut().insert(
                "x-access-level",
                HeaderValue::from_static(app.access_level.header()),
            );
            r
        }
        Err(r) => *r,
    }
}

async fn oauth1_invalidate(
    State(ctx): State<Ctx>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match oauth1_request(&ctx, &method, &uri, &headers, &body) {
        Ok((i, token)) => {
            let mut s = ctx.state.lock().unwrap();
            s.apps[i].revoked_access_tokens.push(token.clone());
            Json(json!({"access_token": token})).into_response()
        }
        Err(r) => *r,
    }
}

/// X's answer to a client that did not authenticate.
fn unauthorized_client() -> Response {
    oauth2_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized_client",
        "Missing valid authorization header",
    )
}

/// A confidential client (one with a client secret) authenticates with
/// Basic of its id and secret; a public client has nothing to send.
fn client_authenticated(app: &App, headers: &HeaderMap) -> bool {
    let confidential = !app.credentials.client_secret.is_empty();
    let basic = basic_auth(headers).is_some_and(|(id, secret)| {
        id == app.credentials.client_id && secret == app.credentials.client_secret
    });
    !confidential || basic
}

async fn oauth2_refresh(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let f = if is_form(&headers) {
        form(&body)
    } else {
        HashMap::new()
    };
    if f.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return oauth2_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type must be refresh_token",
        );
    }
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let refresh = f.get("refresh_token").cloned().unwrap_or_default();
    let mut s = ctx.state.lock().unwrap();
    let lifetime = s.user_token_lifetime;
    let Some(app) = s
        .apps
        .iter_mut()
        .find(|a| a.credentials.client_id == client_id)
    else {
        return unauthorized_client();
    };
    // Confidential clients (those with a client secret) must authenticate
    // with Basic auth of their id and secret.
    if !client_authenticated(app, &headers) {
        return unauthorized_client();
    }
    let Some(pos) = app.refresh_tokens.iter().position(|t| *t == refresh) else {
        return oauth2_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Value passed for the token was invalid.",
        );
    };
    app.refresh_tokens.remove(pos);
    let access = user_token();
    app.user_tokens
        .push((access.clone(), now() + lifetime.as_secs()));
    let mut scopes = app.granted_scopes.clone();
    let mut answer = json!({
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "access_token": access,
    });
    // A new refresh token only with offline.access (X's OAuth 2.0 docs).
    if !app.no_offline_access {
        let next = refresh_token();
        app.refresh_tokens.push(next.clone());
        scopes.push("offline.access".into());
        answer["refresh_token"] = json!(next);
    }
    answer["scope"] = json!(scopes.join(" "));
    Json(answer).into_response()
}

/// X's OAuth 2.0 guide: `token` and `client_id`, and a confidential client
/// authenticates with Basic as at the token endpoint; a token of another
/// client is not revoked.
async fn oauth2_revoke(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let token = f.get("token").cloned().unwrap_or_default();
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let mut s = ctx.state.lock().unwrap();
    let Some(app) = s
        .apps
        .iter_mut()
        .find(|a| !client_id.is_empty() && a.credentials.client_id == client_id)
    else {
        return unauthorized_client();
    };
    if !client_authenticated(app, &headers) {
        return unauthorized_client();
    }
    app.user_tokens.retain(|(t, _)| *t != token);
    app.refresh_tokens.retain(|t| *t != token);
    Json(json!({"revoked": true})).into_response()
}

async fn users_me(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let token = bearer(&headers).unwrap_or_default();
    let mut s = ctx.state.lock().unwrap();
    let live = |a: &&App| {
        a.user_tokens
            .iter()
            .any(|(t, expires)| *t == token && now() < *expires)
    };
    let found = s
        .apps
        .iter()
        .find(live)
        .map(|a| (a.credentials.user_id.to_string(), a.tier_limited));
    let Some((user, free)) = found else {
        return problem(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let me = json!({"data": {
        "id": user,
        "name": "Keyguard Test",
        "username": format!("user{user}")
    }});
    if !free {
        return Json(me).into_response();
    }
    // Free serves it, within a 24-hour limit per user.
    let limit = s.daily_limit.unwrap_or(FREE_USERS_ME_PER_DAY);
    let w = s
        .daily_windows
        .entry(format!("{user} GET /2/users/me"))
        .or_insert(Window {
            reset: now() + DAY_SECS,
            remaining: limit,
        });
    if now() >= w.reset {
        *w = Window {
            reset: now() + DAY_SECS,
            remaining: limit,
        };
    }
    let spent = w.remaining == 0;
    w.remaining = w.remaining.saturating_sub(1);
    let mut r = if spent {
        problem(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests")
    } else {
        Json(me).into_response()
    };
    let h = r.headers_mut();
    h.insert("x-user-limit-24hour-limit", HeaderValue::from(limit));
    h.insert(
        "x-user-limit-24hour-remaining",
        HeaderValue::from(w.remaining),
    );
    h.insert("x-user-limit-24hour-reset", HeaderValue::from(w.reset));
    r
}

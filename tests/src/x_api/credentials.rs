//! Credentials the emulator issues, in X's real shapes.

use base64::Engine;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The seed of every generated credential in this process: from
/// `KEYGUARD_TEST_SEED` when set (to reproduce a failure), else random;
/// printed once, so a failing test's output names it.
pub fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = std::env::var("KEYGUARD_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(..));
        eprintln!(
            "X API emulator credentials: seed {seed} (KEYGUARD_TEST_SEED={seed} reproduces them)"
        );
        seed
    })
}

fn rng() -> std::sync::MutexGuard<'static, fastrand::Rng> {
    static RNG: std::sync::OnceLock<std::sync::Mutex<fastrand::Rng>> = std::sync::OnceLock::new();
    RNG.get_or_init(|| std::sync::Mutex::new(fastrand::Rng::with_seed(seed())))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Random text over `alphabet` that the scanner would not dismiss as a
/// placeholder (generated values must look like real ones).
fn random(n: usize, alphabet: &[u8]) -> String {
    loop {
        let text: String = {
            let mut rng = rng();
            (0..n)
                .map(|_| alphabet[rng.usize(..alphabet.len())] as char)
                .collect()
        };
        if !keyguard_credentials::looks_like_placeholder(text.as_bytes()) {
            return text;
        }
    }
}

/// Permission level of an app's access tokens (`x-access-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    Read,
    ReadWrite,
    ReadWriteDirectMessages,
}

impl AccessLevel {
    pub fn header(self) -> &'static str {
        match self {
            AccessLevel::Read => "read",
            AccessLevel::ReadWrite => "read-write",
            AccessLevel::ReadWriteDirectMessages => "read-write-directmessages",
        }
    }
}

/// What a developer copies from the portal for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredentials {
    pub api_key: String,
    pub api_key_secret: String,
    pub access_token: String,
    pub access_token_secret: String,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub user_id: u64,
}

/// The emulator's state for one app.
#[derive(Debug, Clone)]
pub struct App {
    pub credentials: AppCredentials,
    pub access_level: AccessLevel,
    /// The current app-only bearer token; minted on demand, invalidated on
    /// request. The same token comes back until invalidated.
    pub bearer: Option<String>,
    /// OAuth 2.0 user access tokens and when each expires (epoch seconds).
    pub user_tokens: Vec<(String, u64)>,
    /// Refresh tokens not yet used (single use).
    pub refresh_tokens: Vec<String>,
    /// OAuth 1.0a access tokens issued after the first (a user authorizing
    /// the app again), with their secrets.
    pub more_access_tokens: Vec<(String, String)>,
    /// OAuth 1.0a access tokens revoked by `POST /1.1/oauth/invalidate_token`.
    pub revoked_access_tokens: Vec<String>,
    pub project_usage: u64,
    pub project_cap: u64,
    /// The app's access tier lacks the read endpoints: X answers 403 with
    /// error 453 to its valid credentials.
    pub tier_limited: bool,
    /// The user's authorization lacks `offline.access`: a refresh answers
    /// without a new refresh token, as X does.
    pub no_offline_access: bool,
    /// The scopes the user granted (besides `offline.access`), as the
    /// token endpoint's `scope` names them.
    pub granted_scopes: Vec<String>,
}

impl App {
    /// The secret of a live OAuth 1.0a access token of this app.
    pub fn access_token_secret(&self, token: &str) -> Option<&str> {
        if self.revoked_access_tokens.iter().any(|t| t == token) {
            return None;
        }
        std::iter::once((
            &self.credentials.access_token,
            &self.credentials.access_token_secret,
        ))
        .chain(self.more_access_tokens.iter().map(|(t, s)| (t, s)))
        .find(|(t, _)| *t == token)
        .map(|(_, s)| s.as_str())
    }
}

/// Draws from `make` until the whole value is no placeholder either (a
/// word can straddle two random parts, or appear in base64).
fn plausible(make: impl Fn() -> String) -> String {
    loop {
        let v = make();
        if !keyguard_credentials::looks_like_placeholder(v.as_bytes()) {
            return v;
        }
    }
}

pub(crate) fn bearer_token() -> String {
    plausible(bearer_token_once)
}

fn bearer_token_once() -> String {
    // 21 `A`s, an app id, more `A`s, base64, '=', a secret: URL-encoded as X
    // hands it out.
    format!(
        "AAAAAAAAAAAAAAAAAAAAA{}AAAAAAA{}%2B{}%3D{}",
        random(6, ALNUM),
        random(22, ALNUM),
        random(8, ALNUM),
        random(50, ALNUM)
    )
}

fn oauth2_token(kind: &str) -> String {
    plausible(|| oauth2_token_once(kind))
}

fn oauth2_token_once(kind: &str) -> String {
    let text = format!(
        "{}:{}:1:1:{kind}:1",
        random(
            45,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        ),
        1_600_000_000_000u64 + rng().u64(..100_000_000_000)
    );
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(text)
}

pub(crate) fn user_token() -> String {
    oauth2_token("at")
}

pub(crate) fn refresh_token() -> String {
    oauth2_token("rt")
}

impl AppCredentials {
    pub fn generate() -> Self {
        // The user id starts the access token: it must not be a
        // placeholder itself (`123456…`), or no token could be drawn.
        let user_id = loop {
            let id = rng().u64(10_000..10_000_000_000);
            if !keyguard_credentials::looks_like_placeholder(id.to_string().as_bytes()) {
                break id;
            }
        };
        let client_id = plausible(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
                "{}:1:ci",
                random(
                    20,
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
                )
            ))
        });
        AppCredentials {
            api_key: random(25, ALNUM),
            api_key_secret: random(50, ALNUM),
            access_token: plausible(|| format!("{user_id}-{}", random(40, ALNUM))),
            access_token_secret: random(45, ALNUM),
            client_id,
            client_secret: random(
                50,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
            ),
            refresh_token: refresh_token(),
            user_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_never_look_like_placeholders() {
        for _ in 0..500 {
            let c = AppCredentials::generate();
            let bearer = bearer_token();
            for v in [
                &c.api_key,
                &c.api_key_secret,
                &c.access_token,
                &c.access_token_secret,
                &c.client_secret,
                &c.client_id,
                &c.refresh_token,
                &bearer,
            ] {
                assert!(
                    !keyguard_credentials::looks_like_placeholder(v.as_bytes()),
                    "seed {}",
                    seed()
                );
            }
        }
    }
}

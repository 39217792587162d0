//! Credentials the emulator issues, in X's real shapes.

use base64::Engine;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random(n: usize, alphabet: &[u8]) -> String {
    (0..n)
        .map(|_| alphabet[fastrand::usize(..alphabet.len())] as char)
        .collect()
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
    /// Revoked OAuth 1.0a access token.
    pub access_token_revoked: bool,
    pub project_usage: u64,
    pub project_cap: u64,
    /// The app's access tier lacks the read endpoints: X answers 403 with
    /// error 453 to its valid credentials.
    pub tier_limited: bool,
}

pub(crate) fn bearer_token() -> String {
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
    let text = format!(
        "{}:{}:1:1:{kind}:1",
        random(
            45,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        ),
        1_600_000_000_000u64 + fastrand::u64(..100_000_000_000)
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
        let user_id = fastrand::u64(10_000..10_000_000_000);
        let client_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}:1:ci",
            random(
                20,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
            )
        ));
        AppCredentials {
            api_key: random(25, ALNUM),
            api_key_secret: random(50, ALNUM),
            access_token: format!("{user_id}-{}", random(40, ALNUM)),
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

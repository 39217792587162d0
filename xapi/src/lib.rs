//! keyguard-xapi: the one X (Twitter) API client of the project, used by
//! the operator's controllers and by `keyguard scan --verify`.
//!
//! Reading order: `XApi` below (what callers may ask of X), `client.rs`
//! (the HTTP implementation: bounded concurrency, retries of idempotent
//! calls only), `retry.rs` (the jittered backoff), `error.rs` (how an
//! answer is classified and described without a credential in it), and
//! `fake.rs` (an in-process X for unit tests, feature `fake`).

#![forbid(unsafe_code)]

mod client;
mod error;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod retry;

use std::collections::BTreeMap;

pub use client::{
    check_base, extra_roots, extra_roots_from_env, parse_usage, XApiClient, DEFAULT_CONCURRENCY,
    MAX_ANSWER_BYTES,
};
pub use error::XApiError;
use keyguard_credentials::{CredentialKey, OAuth1Keys, SecretValue};

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
    pub expires_in: std::time::Duration,
    /// The scopes X granted (the answer's `scope`); empty when it named
    /// none.
    pub scopes: Vec<String>,
}

/// Everything the project asks of X. Controllers hold an `Arc<dyn XApi>`,
/// so unit tests can hand them the fake.
#[async_trait::async_trait]
pub trait XApi: Send + Sync {
    /// `POST /oauth2/token` (client credentials): the app-only bearer
    /// token. X returns the same token until it is invalidated.
    async fn mint_bearer(
        &self,
        api_key: &SecretValue,
        api_key_secret: &SecretValue,
    ) -> Result<SecretValue, XApiError>;

    /// `POST /oauth2/invalidate_token`, signed (OAuth 1.0a) with the app's
    /// consumer keys and the app owner's access token and secret: the
    /// bearer token stops working at once, and the next mint returns a new
    /// one.
    async fn invalidate_bearer(
        &self,
        owner: &OAuth1Keys<'_>,
        bearer: &SecretValue,
    ) -> Result<(), XApiError>;

    /// A cheap authenticated GET with an app-only bearer token.
    async fn verify_bearer(&self, bearer: &SecretValue) -> Result<RateLimit, XApiError>;

    /// `GET /2/users/me` with an OAuth 2.0 user access token.
    async fn verify_user_token(&self, token: &SecretValue) -> Result<RateLimit, XApiError>;

    /// `GET /1.1/account/verify_credentials.json` signed with OAuth 1.0a:
    /// is the access token live, and at which level (`x-access-level`)?
    async fn verify_user_context(
        &self,
        keys: &OAuth1Keys<'_>,
    ) -> Result<(Option<String>, RateLimit), XApiError>;

    /// `POST /1.1/oauth/invalidate_token`, signed with the OAuth 1.0a
    /// access token it invalidates.
    async fn invalidate_access_token(&self, keys: &OAuth1Keys<'_>) -> Result<(), XApiError>;

    /// `POST /2/oauth2/token` (`grant_type=refresh_token`): never retried,
    /// since X spends the refresh token sent even when the answer is lost.
    async fn refresh_user_token(
        &self,
        client_id: &SecretValue,
        client_secret: Option<&SecretValue>,
        refresh_token: &SecretValue,
    ) -> Result<UserTokens, XApiError>;

    /// `GET /2/usage/tweets`: the project's post usage and cap.
    async fn usage(&self, bearer: &SecretValue) -> Result<(u64, u64), XApiError>;

    /// `verify_user_context` with the four OAuth 1.0a values of a source
    /// Secret's data; `None` when one of them is missing or empty.
    async fn verify_source_user_context(
        &self,
        source: &BTreeMap<String, Vec<u8>>,
    ) -> Option<Result<(Option<String>, RateLimit), XApiError>> {
        let values = oauth1_values(source)?;
        Some(self.verify_user_context(&values.keys()).await)
    }
}

/// The four OAuth 1.0a values of a Secret's data, as text.
pub struct OAuth1Values([String; 4]);

/// Never the values: a `{:?}` in a log line must not print them.
impl std::fmt::Debug for OAuth1Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuth1Values([redacted; 4])")
    }
}

impl OAuth1Values {
    pub fn keys(&self) -> OAuth1Keys<'_> {
        let [ck, cs, t, ts] = &self.0;
        OAuth1Keys {
            consumer_key: ck,
            consumer_secret: cs,
            token: t,
            token_secret: ts,
        }
    }
}

/// The four OAuth 1.0a values in `data`, or `None` if one is missing,
/// empty or not UTF-8.
pub fn oauth1_values(data: &BTreeMap<String, Vec<u8>>) -> Option<OAuth1Values> {
    use CredentialKey as K;
    let text = |k: K| {
        data.get(k.as_str())
            .and_then(|v| String::from_utf8(v.clone()).ok())
            .filter(|v| !v.is_empty())
    };
    Some(OAuth1Values([
        text(K::ApiKey)?,
        text(K::ApiKeySecret)?,
        text(K::AccessToken)?,
        text(K::AccessTokenSecret)?,
    ]))
}

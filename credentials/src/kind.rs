//! The credentials an X app has, under the names the operator uses as Secret
//! keys.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A credential of an X app, named as it appears as a key in source and
/// projected Secrets.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKey {
    /// OAuth 1.0a consumer key ("API Key" in the developer portal).
    ApiKey,
    /// OAuth 1.0a consumer secret ("API Key Secret").
    ApiKeySecret,
    /// OAuth 1.0a user access token: `<numeric user id>-<random>`.
    AccessToken,
    /// OAuth 1.0a user access token secret.
    AccessTokenSecret,
    /// OAuth 2.0 client id.
    ClientId,
    /// OAuth 2.0 client secret (confidential clients only).
    ClientSecret,
    /// OAuth 2.0 refresh token (single use: each refresh returns a new one).
    RefreshToken,
    /// App-only OAuth 2.0 bearer token, derived from the API key and secret.
    BearerToken,
    /// OAuth 2.0 user access token, derived from the refresh token.
    UserAccessToken,
}

impl CredentialKey {
    pub const ALL: [CredentialKey; 9] = [
        CredentialKey::ApiKey,
        CredentialKey::ApiKeySecret,
        CredentialKey::AccessToken,
        CredentialKey::AccessTokenSecret,
        CredentialKey::ClientId,
        CredentialKey::ClientSecret,
        CredentialKey::RefreshToken,
        CredentialKey::BearerToken,
        CredentialKey::UserAccessToken,
    ];

    /// The Secret key, e.g. `apiKeySecret`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKey::ApiKey => "apiKey",
            CredentialKey::ApiKeySecret => "apiKeySecret",
            CredentialKey::AccessToken => "accessToken",
            CredentialKey::AccessTokenSecret => "accessTokenSecret",
            CredentialKey::ClientId => "clientId",
            CredentialKey::ClientSecret => "clientSecret",
            CredentialKey::RefreshToken => "refreshToken",
            CredentialKey::BearerToken => "bearerToken",
            CredentialKey::UserAccessToken => "userAccessToken",
        }
    }

    pub fn from_secret_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == key)
    }

    /// Derived credentials are minted by the operator from source credentials
    /// and never need to be in the source Secret.
    pub fn is_derived(self) -> bool {
        matches!(
            self,
            CredentialKey::BearerToken | CredentialKey::UserAccessToken
        )
    }

    /// Human name, as the developer portal says it.
    pub fn display_name(self) -> &'static str {
        match self {
            CredentialKey::ApiKey => "API key (consumer key)",
            CredentialKey::ApiKeySecret => "API key secret (consumer secret)",
            CredentialKey::AccessToken => "OAuth 1.0a access token",
            CredentialKey::AccessTokenSecret => "OAuth 1.0a access token secret",
            CredentialKey::ClientId => "OAuth 2.0 client ID",
            CredentialKey::ClientSecret => "OAuth 2.0 client secret",
            CredentialKey::RefreshToken => "OAuth 2.0 refresh token",
            CredentialKey::BearerToken => "app-only bearer token",
            CredentialKey::UserAccessToken => "OAuth 2.0 user access token",
        }
    }
}

impl fmt::Display for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_names_round_trip_through_serde_and_lookup() {
        for key in CredentialKey::ALL {
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(json, format!("\"{}\"", key.as_str()));
            assert_eq!(CredentialKey::from_secret_key(key.as_str()), Some(key));
        }
        assert_eq!(CredentialKey::from_secret_key("password"), None);
    }
}

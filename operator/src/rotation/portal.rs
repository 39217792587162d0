//! Values only a person can issue (in the developer portal) arrive by a
//! person editing the source Secret. Before new ones replace a projection
//! that works, they are checked with read-only X API calls; if X refuses
//! them, the previous projection stays untouched and the condition says
//! why. Only what can be checked is: the consumer key pair (the token
//! endpoint) and the four OAuth 1.0a values together (`verify_credentials`).

use keyguard_credentials::{fingerprint, CredentialKey, SecretValue};
use kube::ResourceExt;

use crate::conditions::Reason;
use crate::context::Context;
use crate::projection::Data;
use crate::refusal::{Refusal, Teardown};
use crate::resource::{Environment, EnvironmentStatus, TwitterCredential};

/// A set of values X can check together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    ConsumerPair,
    UserContext,
}

impl Group {
    fn keys(self) -> &'static [CredentialKey] {
        match self {
            Group::ConsumerPair => &[CredentialKey::ApiKey, CredentialKey::ApiKeySecret],
            Group::UserContext => &[
                CredentialKey::ApiKey,
                CredentialKey::ApiKeySecret,
                CredentialKey::AccessToken,
                CredentialKey::AccessTokenSecret,
            ],
        }
    }

    /// The projected keys this group vouches for.
    fn projected(self) -> &'static [CredentialKey] {
        match self {
            Group::ConsumerPair => &[CredentialKey::ApiKey, CredentialKey::ApiKeySecret],
            Group::UserContext => &[CredentialKey::AccessToken, CredentialKey::AccessTokenSecret],
        }
    }
}

/// Pure: the groups whose values a person changed since the last sync and
/// that this environment projects. Nothing before the first sync.
pub fn to_check(env: &Environment, source: &Data, previous: &EnvironmentStatus) -> Vec<Group> {
    if previous.source_credentials.is_empty() {
        return Vec::new();
    }
    [Group::UserContext, Group::ConsumerPair]
        .into_iter()
        .filter(|g| g.projected().iter().any(|k| env.target.keys.contains(k)))
        .filter(|g| {
            g.keys()
                .iter()
                .all(|k| source.get(k.as_str()).is_some_and(|v| !v.is_empty()))
        })
        .filter(|g| {
            g.keys().iter().any(|k| {
                let now = fingerprint(&source[k.as_str()]).to_string();
                !previous
                    .source_credentials
                    .iter()
                    .any(|c| c.key == k.as_str() && c.fingerprint == now)
            })
        })
        .take(1) // the user context checks the consumer pair too
        .collect()
}

/// Checks what a person changed; refuses (keeping the projection) when X does.
pub async fn vet(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    source: &Data,
    previous: &EnvironmentStatus,
) -> Result<(), Refusal> {
    for group in to_check(env, source, previous) {
        let result = match group {
            Group::ConsumerPair => ctx
                .xapi
                .mint_bearer(
                    &SecretValue::new(source[CredentialKey::ApiKey.as_str()].clone()),
                    &SecretValue::new(source[CredentialKey::ApiKeySecret.as_str()].clone()),
                )
                .await
                .map(|_| ()),
            Group::UserContext => match ctx.xapi.verify_source_user_context(source).await {
                Some(result) => result.map(|_| ()),
                None => Ok(()),
            },
        };
        match result {
            Ok(()) => {}
            // X authenticated the values; the access tier lacks the endpoint.
            Err(e) if e.is_tier_limited() => {}
            Err(e) if e.is_transient() => return Err(Refusal::x_api("checking the new values", &e)),
            Err(e) => {
                return Err(Refusal::new(
                    Reason::VerificationFailed,
                    format!(
                        "X refused the new values in Secret {}/{} ({e}); the previous projection is kept",
                        tc.namespace().unwrap_or_default(),
                        env.source.secret_ref.name
                    ),
                    Teardown::Keep,
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::CredentialFingerprint;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn env(keys: &str) -> Environment {
        serde_yaml::from_str(&format!("{{name: prod, source: {{secretRef: {{name: s}}}}, target: {{secretName: t, keys: [{keys}]}}}}")).unwrap()
    }

    fn data(pairs: &[(&str, &str)]) -> Data {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn seen(pairs: &[(&str, &str)]) -> EnvironmentStatus {
        EnvironmentStatus {
            source_credentials: pairs
                .iter()
                .map(|(k, v)| CredentialFingerprint {
                    key: k.to_string(),
                    fingerprint: fingerprint(v.as_bytes()).to_string(),
                    since: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_changed_checkable_projected_values_are_checked() {
        let old = [
            ("apiKey", "k1"),
            ("apiKeySecret", "s1"),
            ("accessToken", "t1"),
            ("accessTokenSecret", "ts1"),
        ];
        let new_token = [
            ("apiKey", "k1"),
            ("apiKeySecret", "s1"),
            ("accessToken", "t2"),
            ("accessTokenSecret", "ts2"),
        ];
        let new_keys = [("apiKey", "k2"), ("apiKeySecret", "s2")];
        let cases: Vec<(&str, Environment, Data, EnvironmentStatus, Vec<Group>)> = vec![
            (
                "first sync",
                env("accessToken"),
                data(&new_token),
                EnvironmentStatus::default(),
                vec![],
            ),
            (
                "unchanged",
                env("accessToken"),
                data(&old),
                seen(&old),
                vec![],
            ),
            (
                "a new access token",
                env("accessToken, accessTokenSecret"),
                data(&new_token),
                seen(&old),
                vec![Group::UserContext],
            ),
            (
                "a new access token not projected",
                env("apiKey"),
                data(&new_token),
                seen(&old),
                vec![],
            ),
            (
                "new consumer keys",
                env("apiKey, apiKeySecret"),
                data(&new_keys),
                seen(&old),
                vec![Group::ConsumerPair],
            ),
            (
                "half a pair cannot be checked",
                env("apiKey"),
                data(&[("apiKey", "k2")]),
                seen(&old),
                vec![],
            ),
        ];
        for (what, e, source, prev, want) in cases {
            assert_eq!(to_check(&e, &source, &prev), want, "{what}");
        }
    }
}

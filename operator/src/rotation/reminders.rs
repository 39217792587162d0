//! Credentials only a person can replace (API key and secret, the OAuth 2.0
//! client secret, OAuth 1.0a access tokens): the operator cannot rotate
//! them, so it tracks their age from when it first saw each value and
//! raises `RotationDue` past `maxAge`, instead of pretending.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use keyguard_credentials::CredentialKey;

use crate::resource::{CredentialFingerprint, Rotation};
use crate::schedule::parse_duration;

/// A credential past its maximum age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    pub key: String,
    pub age: Duration,
    pub max_age: Duration,
}

/// The keys each `maxAge` covers.
fn max_ages(rotation: &Rotation) -> Vec<(CredentialKey, Duration)> {
    let mut out = Vec::new();
    let parse = |m: &crate::resource::MaxAge| parse_duration(&m.max_age).ok();
    if let Some(d) = rotation.consumer_keys.as_ref().and_then(parse) {
        for k in [
            CredentialKey::ApiKey,
            CredentialKey::ApiKeySecret,
            CredentialKey::ClientSecret,
        ] {
            out.push((k, d));
        }
    }
    if let Some(d) = rotation.access_tokens.as_ref().and_then(parse) {
        for k in [CredentialKey::AccessToken, CredentialKey::AccessTokenSecret] {
            out.push((k, d));
        }
    }
    out
}

/// Pure: what is past its `maxAge` now, and when the next one will be.
pub fn check(
    rotation: Option<&Rotation>,
    seen: &[CredentialFingerprint],
    now: Timestamp,
) -> (Vec<Overdue>, Option<Timestamp>) {
    let Some(rotation) = rotation else {
        return (Vec::new(), None);
    };
    let mut overdue = Vec::new();
    let mut next: Option<Timestamp> = None;
    for (key, max_age) in max_ages(rotation) {
        let Some(c) = seen.iter().find(|c| c.key == key.as_str()) else {
            continue;
        };
        let since = c.since.0;
        let age = crate::schedule::until(now, since);
        if age >= max_age {
            overdue.push(Overdue {
                key: c.key.clone(),
                age,
                max_age,
            });
        } else if let Ok(due) = since
            .checked_add(k8s_openapi::jiff::SignedDuration::try_from(max_age).unwrap_or_default())
        {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
    }
    (overdue, next)
}

/// Whether any `maxAge` is declared.
pub fn tracked(rotation: Option<&Rotation>) -> bool {
    rotation.is_some_and(|r| !max_ages(r).is_empty())
}

/// A person-readable summary, e.g. `apiKey is 2200h old (maxAge 2160h)`.
pub fn describe(overdue: &[Overdue], source: &str) -> String {
    let list: Vec<String> = overdue
        .iter()
        .map(|o| {
            format!(
                "{} is {}h old (maxAge {}h)",
                o.key,
                o.age.as_secs() / 3600,
                o.max_age.as_secs() / 3600
            )
        })
        .collect();
    format!(
        "{}: replace in the X developer portal and put the new values in Secret {source}",
        list.join(", ")
    )
}

/// Sets the environment's `RotationDue` condition (with a Warning Event
/// when it starts) and the age metrics; returns when to look again.
pub async fn remind(
    ctx: &crate::context::Context,
    tc: &crate::resource::TwitterCredential,
    env: &crate::resource::Environment,
    status: &mut crate::resource::EnvironmentStatus,
    now: Timestamp,
) -> Option<Timestamp> {
    use crate::conditions::{self, ConditionType, News, Reason};
    use kube::ResourceExt;
    let rotation = env.rotation.as_ref();
    if !tracked(rotation) {
        conditions::clear(&mut status.conditions, ConditionType::RotationDue);
        return None;
    }
    let (overdue, next) = check(rotation, &status.source_credentials, now);
    for c in &status.source_credentials {
        let age = crate::schedule::until(now, c.since.0);
        ctx.metrics.credential_age(tc, &env.name, &c.key, age);
    }
    let generation = tc.metadata.generation;
    if overdue.is_empty() {
        conditions::set(
            &mut status.conditions,
            ConditionType::RotationDue,
            false,
            Reason::WithinMaxAge,
            "no credential is past its maxAge",
            generation,
        );
        return next;
    }
    let source = format!(
        "{}/{}",
        tc.namespace().unwrap_or_default(),
        env.source.secret_ref.name
    );
    let message = describe(&overdue, &source);
    let warn = conditions::set_warning(
        &mut status.conditions,
        ConditionType::RotationDue,
        true,
        Reason::MaxAgeExceeded,
        message.clone(),
        generation,
        true,
        News::StatusOrMessageChanged,
    );
    if warn {
        warn_rotation_due(ctx, tc, &env.name, &message).await;
    }
    next
}

/// The Warning Event when a credential first passes its maxAge (or the
/// list of those that have changes).
async fn warn_rotation_due(
    ctx: &crate::context::Context,
    tc: &crate::resource::TwitterCredential,
    environment: &str,
    message: &str,
) {
    let note = format!("{environment}: {message}");
    ctx.events
        .publish(
            &kube::Resource::object_ref(tc, &()),
            crate::events::Kind::Warning,
            "RotationDue",
            "Remind",
            &note,
            None,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn seen(key: &str, since: &str) -> CredentialFingerprint {
        CredentialFingerprint {
            key: key.into(),
            fingerprint: "sha256:0".into(),
            since: Time(since.parse().unwrap()),
        }
    }

    #[test]
    fn ages_past_max_age_are_overdue_and_the_next_due_time_is_known() {
        let rotation: Rotation =
            serde_yaml::from_str("{consumerKeys: {maxAge: 2160h}, accessTokens: {maxAge: 720h}}")
                .unwrap();
        let now: Timestamp = "2026-04-01T00:00:00Z".parse().unwrap();
        let list = vec![
            seen("apiKey", "2025-12-01T00:00:00Z"), // ~121 days: overdue
            seen("apiKeySecret", "2026-03-20T00:00:00Z"), // 12 days: fine
            seen("accessToken", "2026-03-15T00:00:00Z"), // 17 days: fine, due 2026-04-14
            seen("bearerToken", "2020-01-01T00:00:00Z"), // rotated by the operator: not tracked
        ];
        let (overdue, next) = check(Some(&rotation), &list, now);
        assert_eq!(
            overdue.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["apiKey"]
        );
        assert_eq!(next, Some("2026-04-14T00:00:00Z".parse().unwrap()));
        assert!(describe(&overdue, "team/keys").starts_with("apiKey is 2904h old (maxAge 2160h)"));
        assert_eq!(check(None, &list, now), (vec![], None));
        assert!(tracked(Some(&rotation)) && !tracked(None));
    }
}

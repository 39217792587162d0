//! The OAuth 2.0 user access token: refreshed `refreshBefore` its expiry
//! (X's live two hours). X issues a new refresh token with each refresh and
//! the one sent is spent, so the answer is written to the state record
//! before anything else happens, retried until it lands. A spent or
//! revoked refresh token is `ReauthorizationRequired`, and nothing is
//! overwritten: only a person can authorize the app again, by putting a
//! new refresh token in the source Secret (which the operator then uses
//! once and keeps the successors of in its state record).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use keyguard_credentials::{fingerprint, CredentialKey, SecretValue};
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::due::RotationInfo;
use crate::conditions::Reason;
use crate::context::Context;
use crate::labels;
use crate::objects::secret_data;
use crate::projection::Data;
use crate::refusal::{Refusal, Teardown};
use crate::resource::{Environment, TwitterCredential};
use crate::schedule;
use crate::state_record::new_record;
use crate::xapi::UserTokens;

/// Pure: the refresh token to use: the operator's latest while it descends
/// from the one a person seeded, else the seeded one.
pub fn refresh_token_to_use(seed: &[u8], state: Option<&Secret>) -> Vec<u8> {
    let seeded_from = fingerprint(seed).to_string();
    state
        .filter(|s| s.annotations().get(labels::REFRESH_SEEDED_FROM) == Some(&seeded_from))
        .and_then(|s| secret_data(s).remove(CredentialKey::RefreshToken.as_str()))
        .unwrap_or_else(|| seed.to_vec())
}

/// Pure: X answered the last refresh without a refresh token (the
/// authorization lacks `offline.access`): the seed is spent and nothing
/// can refresh the access token again.
pub fn granted_no_refresh_token(seed: &[u8], state: Option<&Secret>) -> bool {
    state.is_some_and(|s| {
        s.annotations().get(labels::REFRESH_SEEDED_FROM) == Some(&fingerprint(seed).to_string())
            && secret_data(s).contains_key(CredentialKey::UserAccessToken.as_str())
            && !secret_data(s).contains_key(CredentialKey::RefreshToken.as_str())
    })
}

/// Pure: when the access token should be refreshed (`None`: now).
pub fn refresh_at(
    seed: &[u8],
    state: Option<&Secret>,
    refresh_before: Duration,
) -> Option<Timestamp> {
    let state = state?;
    let current = state.annotations().get(labels::REFRESH_SEEDED_FROM)
        == Some(&fingerprint(seed).to_string());
    let has_token = secret_data(state).contains_key(CredentialKey::UserAccessToken.as_str());
    let expires: Timestamp = state
        .annotations()
        .get(labels::USER_TOKEN_EXPIRES)?
        .parse()
        .ok()?;
    (current && has_token).then(|| {
        expires
            .checked_sub(SignedDuration::try_from(refresh_before).unwrap_or_default())
            .ok()
    })?
}

fn refresh_before(env: &Environment) -> Duration {
    env.rotation
        .as_ref()
        .and_then(|r| r.user_token.as_ref())
        .and_then(|u| schedule::parse_duration(&u.refresh_before).ok())
        .unwrap_or(Duration::from_secs(15 * 60))
}

/// Sends X the refresh token, unless X refused it before; a refused one is
/// remembered (by fingerprint) and needs a person.
async fn exchange(
    ctx: &Context,
    client: &Client,
    refresh: &SecretValue,
    ns: &str,
    env: &Environment,
) -> Result<UserTokens, Refusal> {
    // The client's values are part of the key: a refusal for a wrong
    // client secret (which did not spend the token) ends when it is fixed.
    let fingerprint = format!(
        "{} {} {}",
        refresh.fingerprint(),
        client.id.fingerprint(),
        client
            .secret
            .as_ref()
            .map(|s| s.fingerprint().to_string())
            .unwrap_or_default()
    );
    if let Some(answer) = ctx.refused_refresh_tokens.answer_for(&fingerprint) {
        return Err(reauthorization_required(&answer, ns, env));
    }
    let refreshed = ctx
        .xapi
        .refresh_user_token(&client.id, client.secret.as_ref(), refresh)
        .await;
    refreshed.map_err(|e| {
        if !e.needs_reauthorization() {
            return Refusal::x_api("refreshing the user access token", &e);
        }
        if e.refresh_token_refused() {
            ctx.refused_refresh_tokens
                .remember(fingerprint, e.to_string());
        }
        reauthorization_required(&e.to_string(), ns, env)
    })
}

/// X refused the refresh token (`answer`): only a person can authorize the
/// app again.
fn reauthorization_required(answer: &str, ns: &str, env: &Environment) -> Refusal {
    Refusal::new(
        Reason::ReauthorizationRequired,
        format!(
            "X refused the refresh token ({answer}): authorize the app again and put the new refresh token in Secret {ns}/{}",
            env.source.secret_ref.name
        ),
        Teardown::Keep,
    )
}

/// Why the access token cannot be refreshed: X granted no refresh token.
fn no_refresh_token(ns: &str, env: &Environment) -> Refusal {
    Refusal::new(
        Reason::ReauthorizationRequired,
        format!(
            "X granted no refresh token with the last refresh (the authorization lacks the offline.access scope), so the user access token cannot be refreshed before it expires: authorize the app again with offline.access and put the new refresh token in Secret {ns}/{}",
            env.source.secret_ref.name
        ),
        Teardown::Keep,
    )
}

/// Refreshes the user access token when due.
pub async fn refresh(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    source: &Data,
    state: Option<Secret>,
    now: Timestamp,
) -> Result<RotationInfo, Refusal> {
    let get = |k: CredentialKey| source.get(k.as_str()).filter(|v| !v.is_empty());
    let (Some(client_id), Some(seed)) = (
        get(CredentialKey::ClientId),
        get(CredentialKey::RefreshToken),
    ) else {
        return Ok(RotationInfo::default()); // sync reports the missing keys
    };
    let ns = tc.namespace().unwrap_or_default();
    crate::state_record::ensure_ours(ctx, tc, state.as_ref())?;
    let before = refresh_before(env);
    let last = state
        .as_ref()
        .and_then(|s| s.annotations().get(labels::LAST_ROTATION)?.parse().ok());
    if let Some(at) = refresh_at(seed, state.as_ref(), before).filter(|at| *at > now) {
        return Ok(RotationInfo {
            last_rotation: last,
            next_rotation: Some(at),
            granted_scopes: state.as_ref().and_then(granted_scopes),
            ..Default::default()
        });
    }
    if granted_no_refresh_token(seed, state.as_ref()) {
        // Said before the access token expires; X is not sent the spent seed.
        return Err(no_refresh_token(&ns, env));
    }
    let client = Client {
        id: SecretValue::new(client_id.clone()),
        secret: get(CredentialKey::ClientSecret).map(|s| SecretValue::new(s.clone())),
    };
    refresh_now(ctx, tc, env, &client, seed, state, before, now).await
}

/// The app's OAuth 2.0 client: a public one has no secret.
struct Client {
    id: SecretValue,
    secret: Option<SecretValue>,
}

/// Asks X for new tokens with the current refresh token, keeps them in
/// the state record, and says when the next refresh is due.
#[allow(clippy::too_many_arguments)]
async fn refresh_now(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    client: &Client,
    seed: &[u8],
    state: Option<Secret>,
    before: Duration,
    now: Timestamp,
) -> Result<RotationInfo, Refusal> {
    let ns = tc.namespace().unwrap_or_default();
    let refresh = SecretValue::new(refresh_token_to_use(seed, state.as_ref()));
    let tokens = exchange(ctx, client, &refresh, &ns, env).await?;
    ctx.crash_point(crate::context::CrashPoint::AfterRefresh)
        .await;
    let expires = now
        .checked_add(SignedDuration::try_from(tokens.expires_in).unwrap_or_default())
        .unwrap_or(now);
    let seed_fingerprint = fingerprint(seed).to_string();
    persist(
        ctx,
        tc,
        env,
        state,
        &tokens,
        &seed_fingerprint,
        expires,
        now,
    )
    .await?;
    ctx.metrics.rotated(tc, &env.name, "userAccessToken");
    tracing::info!(fingerprint = %tokens.access_token.fingerprint(), "refreshed the user access token");
    let next = expires
        .checked_sub(SignedDuration::try_from(before).unwrap_or_default())
        .ok();
    Ok(RotationInfo {
        last_rotation: Some(now),
        next_rotation: next,
        granted_scopes: Some(tokens.scopes.clone()),
        ..Default::default()
    })
}

/// The scopes the state record says X granted at the last refresh.
fn granted_scopes(state: &Secret) -> Option<Vec<String>> {
    let scopes = state.annotations().get(labels::GRANTED_SCOPES)?;
    Some(scopes.split_whitespace().map(str::to_string).collect())
}

/// Pure: `record` holding the new tokens and what is known about them.
fn record_tokens(
    record: &mut Secret,
    tokens: &UserTokens,
    seeded_from: &str,
    expires: Timestamp,
    now: Timestamp,
) {
    let data = record.data.get_or_insert_with(Default::default);
    data.insert(
        CredentialKey::UserAccessToken.as_str().into(),
        ByteString(tokens.access_token.expose().to_vec()),
    );
    match &tokens.refresh_token {
        Some(r) => data.insert(
            CredentialKey::RefreshToken.as_str().into(),
            ByteString(r.expose().to_vec()),
        ),
        None => data.remove(CredentialKey::RefreshToken.as_str()),
    };
    let a = record
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    a.insert(labels::REFRESH_SEEDED_FROM.into(), seeded_from.into());
    a.insert(labels::USER_TOKEN_EXPIRES.into(), expires.to_string());
    a.insert(labels::GRANTED_SCOPES.into(), tokens.scopes.join(" "));
    a.insert(labels::LAST_ROTATION.into(), now.to_string());
}

/// How long a new refresh token is held in memory while its write keeps
/// failing (an apiserver restart, an etcd leader election): it is the only
/// token that works now, so outlasting an outage beats giving up.
const PERSIST_FOR: Duration = Duration::from_secs(120);

/// Writes the new tokens, retrying conflicts and outages for up to
/// `PERSIST_FOR`: the refresh token just issued is the only one that works
/// now.
#[allow(clippy::too_many_arguments)]
async fn persist(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    mut state: Option<Secret>,
    tokens: &UserTokens,
    seeded_from: &str,
    expires: Timestamp,
    now: Timestamp,
) -> Result<(), Refusal> {
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let name = crate::state_record::state_name(tc, env);
    let deadline = tokio::time::Instant::now() + PERSIST_FOR;
    let mut pause = Duration::from_millis(200);
    while tokio::time::Instant::now() < deadline {
        let mut record = state.clone().unwrap_or_else(|| new_record(ctx, tc, env));
        record_tokens(&mut record, tokens, seeded_from, expires, now);
        let written = match &state {
            None => api.create(&PostParams::default(), &record).await,
            Some(_) => api.replace(&name, &PostParams::default(), &record).await,
        };
        match written {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                state = api.get_opt(&name).await.ok().flatten();
            }
            Err(e) => {
                tracing::error!(error = %e, "could not store a new refresh token; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                state = api.get_opt(&name).await.ok().flatten();
            }
        }
    }
    Err(Refusal::new(
        Reason::WriteFailed,
        format!("could not store the new refresh token in state Secret {ns}/{name}: the next refresh will need a person to authorize the app again"),
        Teardown::Keep,
    )
    .soon())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn state(seeded_from: &[u8], refresh: Option<&str>, access: bool, expires: &str) -> Secret {
        let mut data = BTreeMap::new();
        if let Some(r) = refresh {
            data.insert(
                "refreshToken".to_string(),
                ByteString(r.as_bytes().to_vec()),
            );
        }
        if access {
            data.insert("userAccessToken".to_string(), ByteString(b"at".to_vec()));
        }
        Secret {
            metadata: kube::api::ObjectMeta {
                annotations: Some(BTreeMap::from([
                    (
                        labels::REFRESH_SEEDED_FROM.to_string(),
                        fingerprint(seeded_from).to_string(),
                    ),
                    (labels::USER_TOKEN_EXPIRES.to_string(), expires.to_string()),
                ])),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        }
    }

    #[test]
    fn a_refresh_without_a_new_refresh_token_leaves_nothing_to_refresh_with() {
        let at = "2026-01-01T02:00:00Z";
        let cases = [
            ("no state yet", b"seed-1".as_slice(), None, false),
            (
                "X gave a refresh token",
                b"seed-1",
                Some(state(b"seed-1", Some("rt-2"), true, at)),
                false,
            ),
            (
                "X gave none (no offline.access)",
                b"seed-1",
                Some(state(b"seed-1", None, true, at)),
                true,
            ),
            (
                "a person seeded a new one since",
                b"seed-2",
                Some(state(b"seed-1", None, true, at)),
                false,
            ),
            (
                "no access token either",
                b"seed-1",
                Some(state(b"seed-1", None, false, at)),
                false,
            ),
        ];
        for (what, seed, st, want) in cases {
            assert_eq!(granted_no_refresh_token(seed, st.as_ref()), want, "{what}");
        }
    }

    #[test]
    fn the_latest_refresh_token_descends_from_the_seed() {
        let ours = state(b"seed-1", Some("rt-3"), true, "2026-01-01T02:00:00Z");
        let cases = [
            (
                "no state: the seed",
                b"seed-1".as_slice(),
                None,
                b"seed-1".to_vec(),
            ),
            (
                "our successor of the seed",
                b"seed-1",
                Some(&ours),
                b"rt-3".to_vec(),
            ),
            (
                "a person seeded a new one",
                b"seed-2",
                Some(&ours),
                b"seed-2".to_vec(),
            ),
        ];
        for (what, seed, s, want) in cases {
            assert_eq!(refresh_token_to_use(seed, s), want, "{what}");
        }
    }

    #[test]
    fn refresh_is_due_before_expiry_or_when_there_is_nothing_current() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let m15 = Duration::from_secs(900);
        let ours = state(b"seed-1", Some("rt"), true, "2026-01-01T02:00:00Z");
        assert_eq!(
            refresh_at(b"seed-1", Some(&ours), m15),
            Some(at("2026-01-01T01:45:00Z"))
        );
        assert_eq!(
            refresh_at(b"seed-2", Some(&ours), m15),
            None,
            "a new seed: now"
        );
        assert_eq!(refresh_at(b"seed-1", None, m15), None, "no token yet: now");
        let no_access = state(b"seed-1", Some("rt"), false, "2026-01-01T02:00:00Z");
        assert_eq!(refresh_at(b"seed-1", Some(&no_access), m15), None);
    }
}

//! The rotation controller: it owns every X API write. Per environment and
//! credential kind, a small state machine whose step is recorded in the
//! state record (`state.rs`) before each external call, so a crash at any
//! step resumes and converges without losing a working credential.
//!
//! - `bearer.rs`: the app-only bearer token (mint, and rotate on schedule
//!   or on request: invalidate → mint → verify → store);
//! - `portal.rs`: a person's new portal values are checked before they
//!   replace a working projection;
//! - `reminders.rs`: `RotationDue` for what only a person can replace;
//! - `retirement.rs`: a replaced OAuth 1.0a access token is invalidated
//!   `gracePeriod` after its successor was projected;
//! - `user.rs`: the OAuth 2.0 user access token (refresh before expiry,
//!   single-use refresh tokens persisted first);
//! - `schedule.rs`: when a rotation is due (intervals and cron);
//! - `state.rs`: the state record sync projects derived values from.
//!
//! A person asks for a rotation now with the annotation
//! `keyguard.dev/rotate-now: <anything new>`; each value is handled once.

pub mod bearer;
pub mod portal;
pub mod reminders;
pub mod retirement;
pub mod schedule;
pub mod state;
pub mod user;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use keyguard_credentials::CredentialKey;
use kube::{Api, ResourceExt};

use crate::controller::Context;
use crate::labels;
use crate::resource::{Environment, Schedule, TwitterCredential};
use crate::sync::check::{secret_data, Refusal};
use crate::sync::observe::AlreadyRead;

/// Places a test can make the operator stop dead, as if killed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The invalidation is recorded, not yet sent.
    BeforeInvalidate,
    /// X invalidated the old token; the next step is not recorded yet.
    AfterInvalidate,
    /// Minting is recorded, not yet sent.
    BeforeMint,
    /// X minted the new token; it is not stored yet.
    AfterMint,
    /// X refreshed the user token (the old refresh token is spent); the
    /// new ones are not stored yet.
    AfterRefresh,
}

/// What status reports about an environment's rotations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotationInfo {
    pub last_rotation: Option<Timestamp>,
    pub next_rotation: Option<Timestamp>,
}

/// Mints and rotates what the environment derives.
pub async fn reconcile(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    previous: &crate::resource::EnvironmentStatus,
    already: &mut AlreadyRead,
) -> Result<RotationInfo, Refusal> {
    let ns = tc.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let read = |e: kube::Error| Refusal::api_error("reading", &e);
    let source = api
        .get_opt(&env.source.secret_ref.name)
        .await
        .map_err(read)?;
    already.source = Some(source.clone());
    let Some(source) = source else {
        return Ok(RotationInfo::default());
    };
    let source = secret_data(&source);
    portal::vet(ctx, tc, env, &source, previous).await?;
    if !state::needs_state(env) {
        return Ok(RotationInfo::default());
    }
    let mut state = api
        .get_opt(&state::state_name(tc, env))
        .await
        .map_err(read)?;
    let mut info = RotationInfo::default();
    if env.target.keys.contains(&CredentialKey::BearerToken) {
        let bearer;
        (bearer, state) = bearer::reconcile(ctx, tc, env, &source, state, Timestamp::now()).await?;
        info = info.merge(bearer);
    }
    if env.target.keys.contains(&CredentialKey::UserAccessToken) {
        info = info.merge(user::reconcile(ctx, tc, env, &source, state, Timestamp::now()).await?);
        // A refresh rewrites the record: sync reads it afresh.
        return Ok(info);
    }
    already.state = Some(state);
    Ok(info)
}

impl RotationInfo {
    /// The latest rotation and the earliest next one of two credentials.
    fn merge(self, other: RotationInfo) -> RotationInfo {
        RotationInfo {
            last_rotation: self.last_rotation.max(other.last_rotation),
            next_rotation: [self.next_rotation, other.next_rotation]
                .into_iter()
                .flatten()
                .min(),
        }
    }
}

/// The bearer token's schedule, when it has one.
pub fn bearer_schedule(env: &Environment) -> Option<&Schedule> {
    env.rotation.as_ref()?.bearer_token.as_ref()
}

/// The rotate-now value a person set and the operator has not handled yet.
pub fn rotate_now_request(tc: &TwitterCredential, state: Option<&Secret>) -> Option<String> {
    let asked = tc
        .annotations()
        .get(labels::ROTATE_NOW)
        .filter(|v| !v.is_empty())?;
    let handled = state.and_then(|s| s.annotations().get(labels::ROTATE_NOW_HANDLED));
    (handled != Some(asked)).then(|| asked.clone())
}

/// Pure: whether the schedule says rotate, counted from the last rotation.
pub fn is_due(schedule: Option<&Schedule>, last: Option<Timestamp>, now: Timestamp) -> bool {
    match (schedule, last) {
        (Some(s), Some(last)) => schedule::next_after(s, last).is_ok_and(|next| next <= now),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_counts_from_the_last_rotation() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let hourly = Schedule {
            every: Some("1h".into()),
            schedule: None,
        };
        let cases = [
            (
                "no schedule",
                None,
                Some(at("2026-01-01T00:00:00Z")),
                at("2026-06-01T00:00:00Z"),
                false,
            ),
            (
                "never rotated: the first mint starts the clock",
                Some(&hourly),
                None,
                at("2026-01-01T00:00:00Z"),
                false,
            ),
            (
                "not yet",
                Some(&hourly),
                Some(at("2026-01-01T00:00:00Z")),
                at("2026-01-01T00:59:59Z"),
                false,
            ),
            (
                "due",
                Some(&hourly),
                Some(at("2026-01-01T00:00:00Z")),
                at("2026-01-01T01:00:00Z"),
                true,
            ),
        ];
        for (what, schedule, last, now, want) in cases {
            assert_eq!(is_due(schedule, last, now), want, "{what}");
        }
    }
}

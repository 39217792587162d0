//! When a rotation is due: on its schedule, counted from the last one, or
//! because a person asked with `keyguard.dev/rotate-now`; and what status
//! reports of an environment's rotations.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::labels;
use crate::resource::{Environment, Schedule, TwitterCredential};
use crate::schedule;

/// What status reports about an environment's rotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationInfo {
    pub last_rotation: Option<Timestamp>,
    pub next_rotation: Option<Timestamp>,
    /// A bearer token rotation is due and this environment cannot start it.
    pub bearer_blocked: Option<BearerBlocked>,
    /// The OAuth 2.0 scopes X granted the user access token, when known.
    pub granted_scopes: Option<Vec<String>>,
}

/// Why a due bearer token rotation was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerBlocked {
    /// The source lacks the app owner's access token (see
    /// `bearer::OWNER_TOKEN_NEEDED`).
    OwnerTokenMissing,
    /// Another environment owns the app's bearer token (`app_owner.rs`);
    /// it is named as a reader of this resource's namespace may see it.
    NotAppOwner { owner: String },
}

impl RotationInfo {
    /// The latest rotation and the earliest next one of two credentials.
    pub fn merge(self, other: RotationInfo) -> RotationInfo {
        RotationInfo {
            last_rotation: self.last_rotation.max(other.last_rotation),
            next_rotation: [self.next_rotation, other.next_rotation]
                .into_iter()
                .flatten()
                .min(),
            bearer_blocked: self.bearer_blocked.or(other.bearer_blocked),
            granted_scopes: self.granted_scopes.or(other.granted_scopes),
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

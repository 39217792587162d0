//! One owner per app's bearer token. X keeps one bearer token per app
//! until it is invalidated, so two environments that derive it from the
//! same keys (of one resource or of two, in any namespaces) would each
//! invalidate the token the other projects. Exactly one of them, the
//! owner, may invalidate it: the environment whose state record for these
//! keys is the oldest (creation time, then namespace, resource and
//! environment name). It stays the owner while others come and go, until
//! it goes itself. The others follow: when the owner's record shows a
//! rotation after their own mint they mint again, which invalidates
//! nothing, and X answers with the app's current token.
//!
//! Only state records whose claim verifies, of a resource that still
//! declares the environment, count: a tenant's look-alike Secret cannot
//! make itself the owner. The operator sees its own scope only; across
//! clusters (or namespaced-mode scopes) see `docs/practices.md`.

use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use keyguard_credentials::CredentialKey;
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use crate::caches::Stores;
use crate::labels;
use crate::object_kind::ObjectKind;
use crate::ownership::ClaimKey;
use crate::resource::TwitterCredential;

/// One environment that derives an app's bearer token, as its state
/// record shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deriver {
    pub namespace: String,
    pub resource: String,
    pub environment: String,
    /// When its state record was created; `None` before it exists.
    pub since: Option<Timestamp>,
    pub last_rotation: Option<Timestamp>,
}

/// What an environment may do with its app's bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRole {
    /// It alone may invalidate the token.
    Owner,
    /// `owner` rotates the token; this environment takes the new one.
    Follower { owner: Deriver },
}

impl Deriver {
    /// The deriver a state record describes, trusting its labels (checked
    /// by the caller).
    pub fn of(state: &Secret) -> Option<Deriver> {
        let owner = crate::ownership::Owner::named_by(&state.metadata)?;
        Some(Deriver {
            namespace: owner.namespace,
            resource: owner.name,
            environment: state.labels().get(labels::ENVIRONMENT)?.clone(),
            since: created(state),
            last_rotation: state
                .annotations()
                .get(labels::LAST_ROTATION)
                .and_then(|t| t.parse().ok()),
        })
    }

    /// Whether `self` is `other`'s environment (not comparing ages).
    fn is(&self, other: &Deriver) -> bool {
        (&self.namespace, &self.resource, &self.environment)
            == (&other.namespace, &other.resource, &other.environment)
    }

    /// How the deriver is named to a reader in `namespace`: another
    /// namespace's resources are not disclosed to a tenant.
    pub fn described_to(&self, namespace: &str) -> String {
        if self.namespace == namespace {
            format!(
                "environment {} of TwitterCredential {}",
                self.environment, self.resource
            )
        } else {
            "an environment in another namespace".to_string()
        }
    }
}

/// When a state record was created: the apiserver's `creationTimestamp`,
/// refined within its second by the operator's own `created-at`. The
/// refinement is ignored outside that second (clock skew, or an edit by
/// someone who may write the record), so an edit can reorder records
/// created in the same second at most.
fn created(state: &Secret) -> Option<Timestamp> {
    let second = state.metadata.creation_timestamp.as_ref()?.0;
    let finer = state
        .annotations()
        .get(labels::CREATED_AT)
        .and_then(|t| t.parse::<Timestamp>().ok());
    match finer {
        Some(t) if t >= second && t < second + std::time::Duration::from_secs(1) => Some(t),
        _ => Some(second),
    }
}

/// Pure: `this` environment's role among the app's `others`.
pub fn role(this: &Deriver, others: &[Deriver]) -> AppRole {
    // A record not created yet sorts after every existing one.
    let age = |d: &Deriver| {
        (
            d.since.is_none(),
            d.since,
            d.namespace.clone(),
            d.resource.clone(),
            d.environment.clone(),
        )
    };
    let oldest = others
        .iter()
        .filter(|d| !d.is(this))
        .chain([this])
        .min_by_key(|d| age(d))
        .unwrap_or(this);
    if oldest.is(this) {
        AppRole::Owner
    } else {
        AppRole::Follower {
            owner: oldest.clone(),
        }
    }
}

/// Pure: whether `owner` rotated the token after this environment's
/// last mint, so this one should take the new token.
pub fn owner_rotated(this: &Deriver, owner: &Deriver) -> bool {
    match (owner.last_rotation, this.last_rotation) {
        (Some(theirs), Some(mine)) => theirs > mine,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The other environments the caches know that derive the bearer token
/// minted from `minted_from`: `None` while the caches cannot tell.
pub fn derivers(stores: &Stores, claims: &ClaimKey, minted_from: &str) -> Option<Vec<Deriver>> {
    let mut found = Vec::new();
    for store in stores.secrets.0.values() {
        store.wait_until_ready().now_or_never()?.ok()?;
        for state in store.state() {
            if state
                .annotations()
                .get(labels::MINTED_FROM)
                .map(String::as_str)
                != Some(minted_from)
            {
                continue;
            }
            found.extend(genuine(&state, stores, claims));
        }
    }
    Some(found)
}

/// The deriver `state` names, when its claim verifies and its resource
/// still derives the bearer token in that environment.
fn genuine(state: &Secret, stores: &Stores, claims: &ClaimKey) -> Option<Deriver> {
    let owner = claims.verified_owner(ObjectKind::Secret, &state.metadata)?;
    if state.labels().get(labels::PART).map(String::as_str) != Some("state") {
        return None;
    }
    let deriver = Deriver::of(state)?;
    let tc = stores
        .credentials
        .get(&ObjectRef::new(&owner.name).within(&owner.namespace))?;
    let declared = tc.uid().as_deref() == Some(owner.uid.as_str())
        && tc.spec.environments.iter().any(|e| {
            e.name == deriver.environment && e.target.keys.contains(&CredentialKey::BearerToken)
        });
    declared.then_some(deriver)
}

/// Resources of the environments following the owner whose state record
/// is `state`, to be told when it changes (a rotation): nothing when
/// `state` is not the owner's.
pub fn followers_of(
    stores: &Stores,
    claims: &ClaimKey,
    state: &Secret,
) -> Vec<ObjectRef<TwitterCredential>> {
    let Some(app) = state.annotations().get(labels::MINTED_FROM) else {
        return Vec::new();
    };
    let Some(this) = genuine(state, stores, claims) else {
        return Vec::new();
    };
    let others = derivers(stores, claims, app).unwrap_or_default();
    if role(&this, &others) != AppRole::Owner {
        return Vec::new();
    }
    others
        .into_iter()
        .filter(|d| !d.is(&this))
        .map(|d| ObjectRef::new(&d.resource).within(&d.namespace))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(1_800_000_000 + seconds).unwrap())
    }

    fn deriver(ns: &str, resource: &str, since: Option<Timestamp>) -> Deriver {
        Deriver {
            namespace: ns.into(),
            resource: resource.into(),
            environment: "prod".into(),
            since,
            last_rotation: since,
        }
    }

    #[test]
    fn the_oldest_record_owns_the_token_and_stays_owner_as_others_come_and_go() {
        let a = deriver("team-a", "bot", at(0));
        let b = deriver("team-b", "bot", at(10));
        let c = deriver("aaa", "bot", at(20));
        let cases: [(&Deriver, Vec<Deriver>, Option<&Deriver>); 6] = [
            (&a, vec![], None),
            (&a, vec![b.clone()], None),
            (&b, vec![a.clone()], Some(&a)),
            // A newer record sorting first by name does not take over.
            (&a, vec![b.clone(), c.clone()], None),
            (&c, vec![a.clone(), b.clone()], Some(&a)),
            // The owner gone: the next oldest takes over.
            (&b, vec![c.clone()], None),
        ];
        for (this, others, owner) in cases {
            let expected = match owner {
                None => AppRole::Owner,
                Some(o) => AppRole::Follower { owner: o.clone() },
            };
            assert_eq!(role(this, &others), expected, "{this:?} among {others:?}");
        }
    }

    #[test]
    fn ties_and_missing_records_are_decided_the_same_way_everywhere() {
        let a = deriver("team-a", "bot", at(0));
        let same_second = deriver("team-b", "bot", at(0));
        let unborn = deriver("aaa", "bot", None);
        assert_eq!(role(&a, std::slice::from_ref(&same_second)), AppRole::Owner);
        assert_eq!(
            role(&same_second, std::slice::from_ref(&a)),
            AppRole::Follower { owner: a.clone() }
        );
        assert_eq!(
            role(&unborn, std::slice::from_ref(&a)),
            AppRole::Follower { owner: a.clone() }
        );
        // Its own record among the others is not a second deriver.
        assert_eq!(role(&a, &[a.clone(), same_second]), AppRole::Owner);
    }

    #[test]
    fn a_follower_takes_the_token_after_the_owner_rotates_it_not_before() {
        let mut owner = deriver("team-a", "bot", at(0));
        let follower = deriver("team-b", "bot", at(10));
        let cases = [
            (at(5), false),
            (at(10), false),
            (at(11), true),
            (None, false),
        ];
        for (rotated, expected) in cases {
            owner.last_rotation = rotated;
            assert_eq!(owner_rotated(&follower, &owner), expected, "{rotated:?}");
        }
    }

    #[test]
    fn the_finer_creation_time_orders_only_within_the_apiserver_second() {
        let record = |created: &str, finer: Option<&str>| {
            let mut annotations = serde_json::json!({});
            if let Some(f) = finer {
                annotations[labels::CREATED_AT] = f.into();
            }
            serde_json::from_value::<Secret>(serde_json::json!({"metadata": {
                "name": "keyguard-state-0", "creationTimestamp": created,
                "annotations": annotations}}))
            .unwrap()
        };
        let t = |s: &str| Some(s.parse::<Timestamp>().unwrap());
        let cases = [
            ("no refinement", None, "2026-12-04T10:00:00Z"),
            (
                "within the second",
                Some("2026-12-04T10:00:00.25Z"),
                "2026-12-04T10:00:00.25Z",
            ),
            (
                "an hour older: ignored",
                Some("2026-12-04T09:00:00Z"),
                "2026-12-04T10:00:00Z",
            ),
            (
                "the next second: ignored",
                Some("2026-12-04T10:00:01Z"),
                "2026-12-04T10:00:00Z",
            ),
            ("not a time", Some("yesterday"), "2026-12-04T10:00:00Z"),
        ];
        for (what, finer, want) in cases {
            assert_eq!(
                created(&record("2026-12-04T10:00:00Z", finer)),
                t(want),
                "{what}"
            );
        }
    }

    #[test]
    fn another_namespace_is_not_disclosed() {
        let owner = deriver("team-a", "bot", at(0));
        assert_eq!(
            owner.described_to("team-a"),
            "environment prod of TwitterCredential bot"
        );
        assert_eq!(
            owner.described_to("team-b"),
            "an environment in another namespace"
        );
    }
}

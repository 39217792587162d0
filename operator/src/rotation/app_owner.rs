//! One owner per app's bearer token. X keeps one bearer token per app
//! until it is invalidated, so two environments that derive it from the
//! same keys (of one resource or of two, in any namespaces) would each
//! invalidate the token the other projects. Exactly one of them, the
//! owner, may invalidate it: of the environments that declare
//! `rotation.bearerToken` (of all, when none does), the one whose state
//! record first minted from these keys (`app-since`; then namespace,
//! resource and environment name). It stays the owner while others come
//! and go, until it goes or its keys change. The others follow: when the
//! owner's record shows a bearer rotation after their own mint, they mint
//! again, which invalidates nothing, and X answers with the app's current
//! token.
//!
//! A record counts only when its claim verifies, its resource still
//! declares the environment, and its app claim (an HMAC under the claim
//! key of `minted-from`, `app-since` and `bearer-rotated-at`) holds: a
//! tenant who may edit their own record cannot backdate it to become the
//! owner of another team's app, nor feign rotations to make followers
//! mint. The operator sees its own scope only; across clusters (or
//! namespaced-mode scopes) see `docs/practices.md`.

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
    /// When its record first minted from these keys; `None` before.
    pub since: Option<Timestamp>,
    /// When its bearer token was last minted or rotated.
    pub last_rotation: Option<Timestamp>,
    /// It declares `rotation.bearerToken`.
    pub rotates: bool,
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
    /// The deriver a state record describes, trusting its labels and
    /// annotations (the caller checks both claims).
    pub fn of(state: &Secret, rotates: bool) -> Option<Deriver> {
        let owner = crate::ownership::Owner::named_by(&state.metadata)?;
        let time = |key: &str| state.annotations().get(key).and_then(|t| t.parse().ok());
        Some(Deriver {
            namespace: owner.namespace,
            resource: owner.name,
            environment: state.labels().get(labels::ENVIRONMENT)?.clone(),
            since: time(labels::APP_SINCE),
            last_rotation: time(labels::BEARER_ROTATED_AT),
            rotates,
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

/// The parts the app claim binds.
fn app_claim_parts(state: &Secret) -> [String; 5] {
    let annotation = |k: &str| state.annotations().get(k).cloned().unwrap_or_default();
    [
        state.namespace().unwrap_or_default(),
        state.name_any(),
        annotation(labels::MINTED_FROM),
        annotation(labels::APP_SINCE),
        annotation(labels::BEARER_ROTATED_AT),
    ]
}

/// Signs the record's app claim; called after every change of the parts.
pub fn sign(claims: &ClaimKey, state: &mut Secret) {
    let parts = app_claim_parts(state);
    let mac = claims.mac(&parts.each_ref().map(String::as_str));
    state
        .annotations_mut()
        .insert(labels::APP_CLAIM.into(), mac);
}

/// Whether the record's app claim holds.
pub fn signed(claims: &ClaimKey, state: &Secret) -> bool {
    let parts = app_claim_parts(state);
    state
        .annotations()
        .get(labels::APP_CLAIM)
        .is_some_and(|given| claims.verify(&parts.each_ref().map(String::as_str), given))
}

/// Pure: `this` environment's role among the app's `others`.
pub fn role(this: &Deriver, others: &[Deriver]) -> AppRole {
    // A record that never minted sorts after every one that did.
    let age = |d: &Deriver| {
        (
            d.since.is_none(),
            d.since,
            d.namespace.clone(),
            d.resource.clone(),
            d.environment.clone(),
        )
    };
    let all: Vec<&Deriver> = others
        .iter()
        .filter(|d| !d.is(this))
        .chain([this])
        .collect();
    let any_rotates = all.iter().any(|d| d.rotates);
    let oldest = all
        .into_iter()
        .filter(|d| d.rotates || !any_rotates)
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
        // State records carry the app they mint from as their key
        // (`caches::minted_from`): only those of this app are read back.
        for entry in store.keyed(minted_from)? {
            found.extend(genuine(&entry.object()?, stores, claims));
        }
    }
    Some(found)
}

/// The deriver `state` names, when both its claims verify and its
/// resource still derives the bearer token in that environment.
fn genuine(state: &Secret, stores: &Stores, claims: &ClaimKey) -> Option<Deriver> {
    let owner = claims.verified_owner(ObjectKind::Secret, &state.metadata)?;
    let is_state = state.labels().get(labels::PART).map(String::as_str) == Some("state");
    if !is_state || !signed(claims, state) {
        return None;
    }
    let tc = stores
        .credentials
        .get(&ObjectRef::new(&owner.name).within(&owner.namespace))?;
    if tc.uid().as_deref() != Some(owner.uid.as_str()) {
        return None;
    }
    let environment = state.labels().get(labels::ENVIRONMENT)?;
    let env =
        tc.spec.environments.iter().find(|e| {
            &e.name == environment && e.target.keys.contains(&CredentialKey::BearerToken)
        })?;
    Deriver::of(state, super::due::bearer_schedule(env).is_some())
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
            rotates: true,
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
    fn ties_records_that_never_minted_and_environments_that_never_rotate() {
        let a = deriver("team-a", "bot", at(0));
        let same_second = deriver("team-b", "bot", at(0));
        let unborn = deriver("aaa", "bot", None);
        let idle_but_older = Deriver {
            since: at(-100),
            rotates: false,
            ..deriver("idle", "bot", at(-100))
        };
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
        // An older environment that never rotates does not block the one
        // that does; when none rotates, the oldest owns the token.
        assert_eq!(
            role(&a, std::slice::from_ref(&idle_but_older)),
            AppRole::Owner
        );
        assert_eq!(
            role(&idle_but_older, std::slice::from_ref(&a)),
            AppRole::Follower { owner: a.clone() }
        );
        let idle_a = Deriver {
            rotates: false,
            ..a.clone()
        };
        assert_eq!(
            role(&idle_a, std::slice::from_ref(&idle_but_older)),
            AppRole::Follower {
                owner: idle_but_older.clone()
            }
        );
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
    fn an_edited_record_loses_its_app_claim() {
        let key = ClaimKey::new(b"k".repeat(32));
        let mut state: Secret = serde_json::from_value(serde_json::json!({"metadata": {
            "name": "keyguard-state-0", "namespace": "team-b",
            "annotations": {
                labels::MINTED_FROM: "sha256:app",
                labels::APP_SINCE: "2026-12-04T10:00:00Z",
                labels::BEARER_ROTATED_AT: "2026-12-04T10:00:00Z"}}}))
        .unwrap();
        assert!(!signed(&key, &state), "unsigned");
        sign(&key, &mut state);
        assert!(signed(&key, &state));
        for (part, edit) in [
            (labels::APP_SINCE, "2020-01-01T00:00:00Z"),
            (labels::BEARER_ROTATED_AT, "2099-01-01T00:00:00Z"),
            (labels::MINTED_FROM, "sha256:other-app"),
        ] {
            let mut edited = state.clone();
            edited.annotations_mut().insert(part.into(), edit.into());
            assert!(!signed(&key, &edited), "{part} edited");
        }
        let mut moved = state.clone();
        moved.metadata.namespace = Some("team-c".into());
        assert!(!signed(&key, &moved), "copied to another namespace");
        assert!(
            !signed(&ClaimKey::new(b"x".repeat(32)), &state),
            "another key"
        );
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

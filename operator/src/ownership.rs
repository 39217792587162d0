//! Proof that the operator created an object, for a given TwitterCredential.
//!
//! Labels, annotations and ownerReferences are hints anyone who may patch
//! the object can copy. Before it overwrites or deletes anything, the
//! operator checks the claim annotation instead: an HMAC, under a key only
//! the operator holds, of the object's kind, namespace and name and of the
//! owning resource's namespace, name and uid. Nobody without the key can
//! compute it for another object or owner, so a forged label never makes
//! the operator write or delete on a tenant's behalf. The claim is known
//! before the object is created, so a crash between creating an object and
//! recording it loses nothing.

use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use sha2::Sha256;

use crate::labels;
use crate::object_kind::ObjectKind;
use crate::resource::TwitterCredential;
use kube::ResourceExt;

/// The key claims are made with. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ClaimKey(Vec<u8>);

impl std::fmt::Debug for ClaimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimKey(..)")
    }
}

/// The resource an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    pub fn of(tc: &TwitterCredential) -> Owner {
        Owner {
            namespace: tc.namespace().unwrap_or_default(),
            name: tc.name_any(),
            uid: tc.uid().unwrap_or_default(),
        }
    }

    /// The owner an object's labels and annotations name (unverified).
    pub fn named_by(meta: &ObjectMeta) -> Option<Owner> {
        let uid = meta.labels.as_ref()?.get(labels::OWNER_UID)?.clone();
        let (namespace, name) = meta
            .annotations
            .as_ref()?
            .get(labels::OWNER)?
            .split_once('/')?;
        Some(Owner {
            namespace: namespace.into(),
            name: name.into(),
            uid,
        })
    }
}

/// Who an existing object belongs to, as far as the operator can prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Created by the operator for this resource.
    Ours,
    /// Created by the operator for an earlier resource of the same
    /// namespace and name (deleted without cleanup): safe to replace.
    Predecessor,
    /// Anything else: never written, never deleted.
    Foreign,
}

impl ClaimKey {
    pub fn new(bytes: impl Into<Vec<u8>>) -> ClaimKey {
        ClaimKey(bytes.into())
    }

    /// A fresh random key.
    pub fn generate() -> std::io::Result<ClaimKey> {
        let mut bytes = vec![0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(ClaimKey(bytes))
    }

    /// The claim for object `kind namespace/name` owned by `owner`.
    pub fn claim(&self, kind: ObjectKind, namespace: &str, name: &str, owner: &Owner) -> String {
        self.mac(&[
            kind.as_str(),
            namespace,
            name,
            &owner.namespace,
            &owner.name,
            &owner.uid,
        ])
    }

    /// An HMAC of `parts` (each length-prefixed, so no two lists collide).
    pub fn mac(&self, parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `given` is the HMAC of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&str], given: &str) -> bool {
        let expected = self.mac(parts);
        given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The owner whose claim `meta` carries, when the claim is genuine.
    pub fn verified_owner(&self, kind: ObjectKind, meta: &ObjectMeta) -> Option<Owner> {
        let owner = Owner::named_by(meta)?;
        let claim = meta.annotations.as_ref()?.get(labels::CLAIM)?;
        let parts = [
            kind.as_str(),
            meta.namespace.as_deref()?,
            meta.name.as_deref()?,
            &owner.namespace,
            &owner.name,
            &owner.uid,
        ];
        self.verify(&parts, claim).then_some(owner)
    }

    /// Whose `meta` is, from `owner`'s point of view.
    pub fn ownership(&self, kind: ObjectKind, meta: &ObjectMeta, owner: &Owner) -> Ownership {
        match self.verified_owner(kind, meta) {
            Some(o) if &o == owner => Ownership::Ours,
            Some(o) if o.namespace == owner.namespace && o.name == owner.name => {
                Ownership::Predecessor
            }
            _ => Ownership::Foreign,
        }
    }
}

/// Reads the claim key from `namespace/name`, creating it on first start.
/// Create-only: two replicas starting together end up with the same key.
pub async fn load_or_create_key(
    client: Client,
    namespace: &str,
    name: &str,
) -> crate::Result<ClaimKey> {
    let api: Api<Secret> = Api::namespaced(client, namespace);
    for _ in 0..3 {
        if let Some(s) = api.get_opt(name).await? {
            let key = s.data.and_then(|d| d.get("key").map(|k| k.0.clone()));
            return match key {
                Some(k) if k.len() >= 32 => Ok(ClaimKey(k)),
                _ => Err(crate::Error::Invalid(format!(
                    "Secret {namespace}/{name} has no 32-byte `key`: delete it to let the operator create one"
                ))),
            };
        }
        let fresh = ClaimKey::generate().map_err(|e| crate::Error::Invalid(e.to_string()))?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    [(
                        labels::MANAGED_BY.0.to_string(),
                        labels::MANAGED_BY.1.to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            immutable: Some(true),
            data: Some([("key".to_string(), k8s_openapi::ByteString(fresh.0.clone()))].into()),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => return Ok(fresh),
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Err(crate::Error::Invalid(format!(
                    "cannot create the claim key Secret {namespace}/{name}: namespace {namespace} not found (set POD_NAMESPACE to the operator's namespace)"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(crate::Error::Invalid(format!(
        "could not read or create Secret {namespace}/{name}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn owner(uid: &str) -> Owner {
        Owner {
            namespace: "team".into(),
            name: "bot".into(),
            uid: uid.into(),
        }
    }

    fn meta(ns: &str, name: &str, owner: &Owner, claim: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                labels::OWNER_UID.into(),
                owner.uid.clone(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    labels::OWNER.into(),
                    format!("{}/{}", owner.namespace, owner.name),
                ),
                (labels::CLAIM.into(), claim.into()),
            ])),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_genuine_claim_for_exactly_that_object_and_owner_is_ours() {
        let key = ClaimKey::new(b"k".repeat(32));
        let me = owner("u1");
        let good = key.claim(ObjectKind::Secret, "prod", "creds", &me);
        let cases: Vec<(&str, ObjectMeta, Ownership)> = vec![
            (
                "genuine",
                meta("prod", "creds", &me, &good),
                Ownership::Ours,
            ),
            (
                "copied to another name",
                meta("prod", "other", &me, &good),
                Ownership::Foreign,
            ),
            (
                "copied to another namespace",
                meta("dev", "creds", &me, &good),
                Ownership::Foreign,
            ),
            (
                "no claim",
                meta("prod", "creds", &me, ""),
                Ownership::Foreign,
            ),
            (
                "forged claim",
                meta("prod", "creds", &me, &"0".repeat(64)),
                Ownership::Foreign,
            ),
            (
                "another key's claim",
                meta(
                    "prod",
                    "creds",
                    &me,
                    &ClaimKey::new(b"x".repeat(32)).claim(ObjectKind::Secret, "prod", "creds", &me),
                ),
                Ownership::Foreign,
            ),
            (
                "an earlier resource of the same name",
                meta(
                    "prod",
                    "creds",
                    &owner("u0"),
                    &key.claim(ObjectKind::Secret, "prod", "creds", &owner("u0")),
                ),
                Ownership::Predecessor,
            ),
            (
                "another resource's genuine claim",
                {
                    let other = Owner {
                        name: "other-bot".into(),
                        ..owner("u9")
                    };
                    meta(
                        "prod",
                        "creds",
                        &other,
                        &key.claim(ObjectKind::Secret, "prod", "creds", &other),
                    )
                },
                Ownership::Foreign,
            ),
        ];
        for (what, m, want) in cases {
            assert_eq!(key.ownership(ObjectKind::Secret, &m, &me), want, "{what}");
        }
        // The kind is part of the claim: a Secret's claim does not make a Role ours.
        assert_eq!(
            key.ownership(ObjectKind::Role, &meta("prod", "creds", &me, &good), &me),
            Ownership::Foreign
        );
    }

    #[test]
    fn the_key_never_shows_in_debug() {
        let key = ClaimKey::new(b"supersecretkeymaterial-000000000".to_vec());
        assert!(!format!("{key:?}").contains("supersecret"));
    }
}

//! A TwitterCredential as the controller's own cache holds it. Metadata and
//! spec stay whole: the triggers and the app-owner scan read them at every
//! event. The status (~6 KB of JSON at three environments: four conditions
//! each with their messages, fingerprints) is read only by a reconcile of
//! that one resource, so it is held deflated (a fraction of that) and read
//! back there. A status that does not read back makes the reconcile GET
//! the resource (`controller/mod.rs`), never run on a guess.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube::runtime::watcher;
use kube::Resource;
use serde::{Deserialize, Deserializer};

use crate::compact::{deflate, inflate, map_event};
use crate::resource::{TwitterCredential, TwitterCredentialSpec, TwitterCredentialStatus};

/// A TwitterCredential with its status deflated (see the module doc).
#[derive(Clone, Debug)]
pub struct StoredCredential {
    pub metadata: ObjectMeta,
    pub spec: TwitterCredentialSpec,
    status: Option<PackedStatus>,
}

/// A status as deflated JSON; empty when it did not serialize, which no
/// status reads back from.
#[derive(Clone)]
struct PackedStatus(Box<[u8]>);

impl std::fmt::Debug for PackedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedStatus({} bytes)", self.0.len())
    }
}

impl StoredCredential {
    pub fn of(tc: TwitterCredential) -> Self {
        StoredCredential {
            metadata: tc.metadata,
            spec: tc.spec,
            status: tc.status.as_ref().map(PackedStatus::of),
        }
    }

    /// `tc` as an entry whose status does not read back (a partial or
    /// corrupt entry): what the tests of the controller's fallback read.
    #[doc(hidden)]
    pub fn with_unreadable_status(tc: TwitterCredential) -> Self {
        StoredCredential {
            status: Some(PackedStatus(Box::new([]))),
            ..Self::of(tc)
        }
    }

    /// The resource whole; `None` if its status does not read back.
    pub fn credential(&self) -> Option<TwitterCredential> {
        let status = match &self.status {
            Some(packed) => Some(packed.status()?),
            None => None,
        };
        Some(TwitterCredential {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status,
        })
    }

    /// A watch event about a TwitterCredential as one about its stored form.
    pub fn event(event: watcher::Event<TwitterCredential>) -> watcher::Event<StoredCredential> {
        map_event(event, Self::of)
    }
}

impl PackedStatus {
    fn of(status: &TwitterCredentialStatus) -> Self {
        let packed = serde_json::to_vec(status)
            .ok()
            .and_then(|json| deflate(&json));
        PackedStatus(packed.unwrap_or_default())
    }

    fn status(&self) -> Option<TwitterCredentialStatus> {
        serde_json::from_slice(&inflate(&self.0)?).ok()
    }
}

impl Resource for StoredCredential {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        TwitterCredential::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        TwitterCredential::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        TwitterCredential::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        TwitterCredential::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Read as a TwitterCredential, then stored (kube-runtime's `Controller`
/// asks its resource type to be deserializable).
impl<'de> Deserialize<'de> for StoredCredential {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        TwitterCredential::deserialize(deserializer).map(Self::of)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn condition(type_: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: "True".into(),
            reason: "Synced".into(),
            message: message.into(),
            last_transition_time: Time(Default::default()),
            observed_generation: Some(3),
        }
    }

    fn credential(status: Option<TwitterCredentialStatus>) -> TwitterCredential {
        let spec: TwitterCredentialSpec = serde_json::from_value(serde_json::json!({
            "environments": [{
                "name": "prod",
                "source": {"secretRef": {"name": "src"}},
                "target": {"secretName": "out", "keys": ["apiKey"]}
            }]
        }))
        .expect("a spec");
        let mut tc = TwitterCredential::new("bot", spec);
        tc.metadata.namespace = Some("team".into());
        tc.status = status;
        tc
    }

    fn status() -> TwitterCredentialStatus {
        TwitterCredentialStatus {
            observed_generation: Some(3),
            conditions: (0..12)
                .map(|i| {
                    condition(
                        &format!("Type{i}"),
                        "the credentials in Secret team/src are synced into Secret team/out",
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_stored_credential_reads_back_exactly() {
        for tc in [credential(Some(status())), credential(None)] {
            let stored = StoredCredential::of(tc.clone());
            assert_eq!(stored.credential(), Some(tc));
        }
    }

    #[test]
    fn a_status_is_held_in_less_than_its_json() {
        let status = status();
        let json = serde_json::to_vec(&status).unwrap().len();
        let packed = PackedStatus::of(&status).0.len();
        assert!(packed * 3 < json, "{packed} bytes packed of {json}");
    }

    #[test]
    fn a_status_that_does_not_read_back_gives_no_credential() {
        let stored = StoredCredential::with_unreadable_status(credential(Some(status())));
        assert_eq!(stored.credential(), None);
        let mut stored = StoredCredential::of(credential(Some(status())));
        stored.status = Some(PackedStatus(b"not deflate".to_vec().into_boxed_slice()));
        assert_eq!(stored.credential(), None);
    }

    #[test]
    fn the_debug_form_shows_no_status_content() {
        let stored = StoredCredential::of(credential(Some(status())));
        let shown = format!("{stored:?}");
        assert!(!shown.contains("synced into"), "{shown}");
        assert!(shown.contains("PackedStatus("), "{shown}");
    }

    #[test]
    fn it_is_addressed_as_a_twitter_credential() {
        assert_eq!(StoredCredential::kind(&()), "TwitterCredential");
        assert_eq!(StoredCredential::api_version(&()), "keyguard.dev/v1alpha1");
        assert_eq!(StoredCredential::plural(&()), "twittercredentials");
    }
}

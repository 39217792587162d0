//! Which TwitterCredentials an event about another object concerns. Every
//! input of a reconcile triggers it: source Secrets by name (they carry no
//! label of ours; the operator never writes to them), target namespaces
//! (opt-in given or withdrawn), the objects the operator created, other
//! resources' source credentials (`CredentialShared`), and the state
//! record of the environment that owns an app's bearer token.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;

use std::collections::HashSet;

use crate::ownership::Owner;
use crate::resource::TwitterCredential;
use crate::resource_index::{Credential, ResourceIndex};
use crate::stored_credential::StoredCredential;
use crate::target::Target;

/// Resources that read the Secret `meta` as a source, plus its owner.
pub fn for_secret(index: &ResourceIndex, meta: &ObjectMeta) -> Vec<ObjectRef<TwitterCredential>> {
    let (ns, name) = (meta.namespace.as_deref(), meta.name.as_deref());
    let mut refs = index.reading(ns.unwrap_or_default(), name.unwrap_or_default());
    refs.extend(owner_of(meta));
    refs
}

/// Other resources whose `CredentialShared` an event about a resource
/// turns (`resource_index::turned`), found in `index`, which takes the
/// event in. Only an event that changes what the resource holds
/// concerns them (not its status writes, which would reconcile every
/// resource sharing a key with it); a deleted resource holds nothing. A
/// resource deleted while the watch was down is seen gone only at the
/// relist, which sends no Delete: the others learn at their next resync.
pub fn for_resource_event(
    index: &ResourceIndex,
    event: &watcher::Event<TwitterCredential>,
) -> Vec<ObjectRef<TwitterCredential>> {
    use watcher::Event;
    let changed = match event {
        Event::Apply(tc) | Event::InitApply(tc) | Event::Delete(tc) => Some(tc),
        Event::Init | Event::InitDone => None,
    };
    let uid = changed.and_then(|tc| tc.uid()).unwrap_or_default();
    let before = index.held_by(&uid);
    index.observe(event);
    let Some(tc) = changed else {
        return Vec::new();
    };
    let now = match event {
        Event::Delete(_) => HashSet::new(),
        _ => held(tc),
    };
    if now == before {
        return Vec::new();
    }
    index.turned_by(&uid, &now, &before)
}

/// A resource's source credentials, as `(key, fingerprint)`, from its status.
fn held(tc: &TwitterCredential) -> HashSet<Credential> {
    tc.status
        .iter()
        .flat_map(|s| &s.environments)
        .flat_map(|e| &e.source_credentials)
        .map(|c| (c.key.clone(), c.fingerprint.clone()))
        .collect()
}

/// Resources following the app whose owner's state record `state` is
/// (`rotation/app_owner.rs`): the owner's rotation reaches them at once,
/// not at their next verification.
pub fn for_app(ctx: &crate::context::Context, state: &Secret) -> Vec<ObjectRef<TwitterCredential>> {
    let Some(stores) = ctx.caches.get() else {
        return Vec::new();
    };
    crate::rotation::app_owner::followers_of(&stores, &ctx.claims, state)
}

/// Resources with an environment targeting namespace `meta`.
pub fn for_namespace(
    credentials: &[Arc<StoredCredential>],
    meta: &ObjectMeta,
) -> Vec<ObjectRef<TwitterCredential>> {
    let name = meta.name.clone().unwrap_or_default();
    credentials
        .iter()
        .filter(|tc| {
            tc.spec
                .environments
                .iter()
                .any(|e| Target::of(tc.as_ref(), e).namespace == name)
        })
        .map(|tc| ObjectRef::new(&tc.name_any()).within(&tc.namespace().unwrap_or_default()))
        .collect()
}

/// The resource an object names as its owner (a hint: the reconcile checks
/// the claim before it writes anything).
pub fn owner_of(meta: &ObjectMeta) -> Option<ObjectRef<TwitterCredential>> {
    let owner = Owner::named_by(meta)?;
    Some(ObjectRef::new(&owner.name).within(&owner.namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resource `name` holding `apiKey` with `fingerprint`, warned or
    /// not, being deleted or not.
    fn holder(
        name: &str,
        fingerprint: Option<&str>,
        warned: bool,
        deleting: bool,
    ) -> TwitterCredential {
        let mut v = serde_json::json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}")},
            "spec": {"environments": []}});
        if let Some(f) = fingerprint {
            let status = if warned { "True" } else { "False" };
            v["status"] = serde_json::json!({"environments": [{"name": "prod", "revision": 1,
                "conditions": [{"type": "CredentialShared", "status": status, "reason": "x", "message": "",
                    "lastTransitionTime": "2026-12-04T00:00:00Z"}],
                "sourceCredentials": [{"key": "apiKey", "fingerprint": f, "since": "2026-12-04T00:00:00Z"}]}]});
        }
        if deleting {
            v["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z".into();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_a_change_of_what_a_resource_holds_concerns_the_others() {
        use kube::runtime::watcher::Event::{Apply, Delete};
        // "other" holds sha256:a and is warned that it shares it; "quiet"
        // holds sha256:b and is not warned (it shares on purpose, say).
        let index = indexed(&[
            Arc::new(holder("other", Some("sha256:a"), true, false)),
            Arc::new(holder("quiet", Some("sha256:b"), false, false)),
        ]);
        let steps = [
            (
                "first seen",
                Apply(holder("bot", None, false, false)),
                vec![],
            ),
            (
                "a status write without credentials",
                Apply(holder("bot", None, false, false)),
                vec![],
            ),
            (
                "it comes to share sha256:a: other stays warned",
                Apply(holder("bot", Some("sha256:a"), false, false)),
                vec![],
            ),
            (
                "another status write",
                Apply(holder("bot", Some("sha256:a"), true, false)),
                vec![],
            ),
            (
                "a key replaced: other shares with nobody now, quiet with it",
                Apply(holder("bot", Some("sha256:b"), true, false)),
                vec!["other", "quiet"],
            ),
            (
                "back to sha256:a: quiet loses a sharer, but is not warned",
                Apply(holder("bot", Some("sha256:a"), true, false)),
                vec![],
            ),
            (
                "being deleted, still holding it: nothing changed",
                Apply(holder("bot", Some("sha256:a"), true, true)),
                vec![],
            ),
            (
                "deleted: it holds nothing",
                Delete(holder("bot", Some("sha256:a"), true, true)),
                vec!["other"],
            ),
        ];
        for (what, event, want) in steps {
            let mut found: Vec<String> = for_resource_event(&index, &event)
                .into_iter()
                .map(|r| r.name)
                .collect();
            found.sort();
            assert_eq!(found, want, "{what}");
        }
        assert!(index.held_by("uid-bot").is_empty(), "forgotten");
    }

    use std::collections::BTreeMap;

    /// An index that has seen `all` applied.
    fn indexed(all: &[Arc<TwitterCredential>]) -> ResourceIndex {
        let index = ResourceIndex::default();
        for tc in all {
            index.observe(&kube::runtime::watcher::Event::Apply(tc.as_ref().clone()));
        }
        index
    }

    fn tc(ns: &str, name: &str, source: &str, target_ns: Option<&str>) -> Arc<TwitterCredential> {
        let target = target_ns
            .map(|t| format!("namespace: {t}, "))
            .unwrap_or_default();
        Arc::new(
            serde_yaml::from_str(&format!(
                "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: {name}, namespace: {ns}, uid: {ns}-{name}}}\nspec: {{environments: [{{name: prod, source: {{secretRef: {{name: {source}}}}}, target: {{{target}secretName: out, keys: [apiKey]}}}}]}}"
            ))
            .unwrap(),
        )
    }

    fn meta(ns: Option<&str>, name: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: ns.map(Into::into),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn names(refs: Vec<ObjectRef<TwitterCredential>>) -> Vec<String> {
        let mut v: Vec<String> = refs
            .iter()
            .map(|r| format!("{}/{}", r.namespace.clone().unwrap_or_default(), r.name))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn each_input_reaches_exactly_its_readers() {
        let all = vec![
            tc("team-a", "one", "keys", Some("prod")),
            tc("team-a", "two", "other", None),
            tc("team-b", "three", "keys", Some("prod")),
        ];
        let stored: Vec<_> = all
            .iter()
            .map(|tc| Arc::new(StoredCredential::of(tc.as_ref().clone())))
            .collect();
        let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
            (
                "source by name, unlabelled",
                names(for_secret(&indexed(&all), &meta(Some("team-a"), "keys"))),
                vec!["team-a/one"],
            ),
            (
                "same name in another namespace",
                names(for_secret(&indexed(&all), &meta(Some("team-c"), "keys"))),
                vec![],
            ),
            (
                "target namespace",
                names(for_namespace(&stored, &meta(None, "prod"))),
                vec!["team-a/one", "team-b/three"],
            ),
            (
                "own namespace as target",
                names(for_namespace(&stored, &meta(None, "team-a"))),
                vec!["team-a/two"],
            ),
            (
                "unrelated namespace",
                names(for_namespace(&stored, &meta(None, "kube-system"))),
                vec![],
            ),
        ];
        for (what, got, want) in cases {
            assert_eq!(got, want, "{what}");
        }
        let mut owned = meta(Some("prod"), "out");
        owned.labels = Some(BTreeMap::from([(
            crate::labels::OWNER_UID.into(),
            "u".into(),
        )]));
        owned.annotations = Some(BTreeMap::from([(
            crate::labels::OWNER.into(),
            "team-b/three".into(),
        )]));
        assert_eq!(names(for_secret(&indexed(&all), &owned)), ["team-b/three"]);
    }
}

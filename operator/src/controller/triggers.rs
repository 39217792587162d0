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
use kube::ResourceExt;

use crate::ownership::Owner;
use crate::resource::TwitterCredential;
use crate::target::Target;

/// Resources that read the Secret `meta` as a source, plus its owner.
pub fn for_secret(
    credentials: &[Arc<TwitterCredential>],
    meta: &ObjectMeta,
) -> Vec<ObjectRef<TwitterCredential>> {
    let ns = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let mut refs: Vec<_> = credentials
        .iter()
        .filter(|tc| tc.namespace().as_deref() == Some(ns.as_str()))
        .filter(|tc| {
            tc.spec
                .environments
                .iter()
                .any(|e| e.source.secret_ref.name == name)
        })
        .map(|tc| ObjectRef::from_obj(tc.as_ref()))
        .collect();
    refs.extend(owner_of(meta));
    refs
}

/// Other resources whose `CredentialShared` a change of `changed` can
/// alter: those holding one of its source credentials, and those already
/// warned (`changed` may have stopped sharing with them).
pub fn for_credential(
    credentials: &[Arc<TwitterCredential>],
    changed: &TwitterCredential,
) -> Vec<ObjectRef<TwitterCredential>> {
    let held = |tc: &TwitterCredential| -> Vec<(String, String)> {
        tc.status
            .iter()
            .flat_map(|s| &s.environments)
            .flat_map(|e| &e.source_credentials)
            .map(|c| (c.key.clone(), c.fingerprint.clone()))
            .collect()
    };
    let warned = |tc: &TwitterCredential| {
        tc.status.iter().flat_map(|s| &s.environments).any(|e| {
            crate::conditions::is_true(
                &e.conditions,
                crate::conditions::ConditionType::CredentialShared,
            )
        })
    };
    let mine = held(changed);
    credentials
        .iter()
        .filter(|tc| tc.uid() != changed.uid())
        .filter(|tc| warned(tc) || held(tc).iter().any(|c| mine.contains(c)))
        .map(|tc| ObjectRef::from_obj(tc.as_ref()))
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
    credentials: &[Arc<TwitterCredential>],
    meta: &ObjectMeta,
) -> Vec<ObjectRef<TwitterCredential>> {
    let name = meta.name.clone().unwrap_or_default();
    credentials
        .iter()
        .filter(|tc| {
            tc.spec
                .environments
                .iter()
                .any(|e| Target::of(tc, e).namespace == name)
        })
        .map(|tc| ObjectRef::from_obj(tc.as_ref()))
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
    use std::collections::BTreeMap;

    fn tc(ns: &str, name: &str, source: &str, target_ns: Option<&str>) -> Arc<TwitterCredential> {
        let target = target_ns
            .map(|t| format!("namespace: {t}, "))
            .unwrap_or_default();
        Arc::new(
            serde_yaml::from_str(&format!(
                "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{environments: [{{name: prod, source: {{secretRef: {{name: {source}}}}}, target: {{{target}secretName: out, keys: [apiKey]}}}}]}}"
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
        let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
            (
                "source by name, unlabelled",
                names(for_secret(&all, &meta(Some("team-a"), "keys"))),
                vec!["team-a/one"],
            ),
            (
                "same name in another namespace",
                names(for_secret(&all, &meta(Some("team-c"), "keys"))),
                vec![],
            ),
            (
                "target namespace",
                names(for_namespace(&all, &meta(None, "prod"))),
                vec!["team-a/one", "team-b/three"],
            ),
            (
                "own namespace as target",
                names(for_namespace(&all, &meta(None, "team-a"))),
                vec!["team-a/two"],
            ),
            (
                "unrelated namespace",
                names(for_namespace(&all, &meta(None, "kube-system"))),
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
        assert_eq!(names(for_secret(&all, &owned)), ["team-b/three"]);
    }
}

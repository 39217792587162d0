//! Pure: the objects an environment should have, and the steps from what
//! exists to that. New objects are created (never upserted), existing ones
//! replaced with their resourceVersion as a precondition, and only pieces
//! this resource provably owns are replaced or deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use kube::ResourceExt;

use super::check::{Inputs, Pieces};
use super::observe::Observed;
use crate::labels;
use crate::objects::ObjectKind;
use crate::objects::{managed_meta, Existing};
use crate::ownership::{ClaimKey, Owner, Ownership};
use crate::projection::{self, Data};
use crate::refusal::Teardown;
use crate::resource::{Environment, TwitterCredential};
use crate::target::Target;

/// One object write.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Create(Object),
    /// Replace, carrying the observed resourceVersion as a precondition.
    Replace(Object),
    Delete(Existing),
}

/// The three kinds of object a target has.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Secret(Secret),
    Role(Role),
    RoleBinding(RoleBinding),
}

/// What a sync writes, and what it projects.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The projected data (kept in memory only, for fingerprints).
    pub data: Data,
    pub content_fingerprint: String,
}

/// The steps that bring the target to what `inputs` say.
pub fn plan(
    key: &ClaimKey,
    tc: &TwitterCredential,
    env: &Environment,
    target: &Target,
    inputs: &Inputs,
    observed: &Observed,
    pieces: &Pieces,
) -> Plan {
    let owner = Owner::of(tc);
    let data = projection::project(&inputs.source, &inputs.derived, &env.target.keys);
    let content_fingerprint = projection::data_fingerprint(&data).to_string();
    let meta = |kind| {
        managed_meta(
            key,
            kind,
            &owner,
            &env.name,
            &target.namespace,
            name_for(target, kind),
        )
    };
    let mut secret_meta = meta(ObjectKind::Secret);
    let policy = match tc.spec.deletion_policy {
        Some(crate::resource::DeletionPolicy::Retain) => "Retain",
        _ => "Delete",
    };
    secret_meta
        .annotations
        .get_or_insert_with(Default::default)
        .insert(labels::DELETION_POLICY.into(), policy.into());
    let secret = desired_secret(secret_meta, &data, &content_fingerprint);
    let accounts: Vec<String> = env
        .access
        .as_ref()
        .map(|a| a.service_accounts.iter().map(|s| s.0.clone()).collect())
        .unwrap_or_default();
    let (role, binding) = if accounts.is_empty() {
        (None, None)
    } else {
        (
            Some(desired_role(meta(ObjectKind::Role), target)),
            Some(desired_binding(
                meta(ObjectKind::RoleBinding),
                target,
                &accounts,
            )),
        )
    };
    let steps = steps_to(observed, pieces, secret, role, binding);
    Plan {
        steps,
        data,
        content_fingerprint,
    }
}

/// The target Secret: the projected data, claimed, with its content
/// fingerprint so a change is seen without reading the values.
fn desired_secret(mut meta: ObjectMeta, data: &Data, content_fingerprint: &str) -> Secret {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(
            labels::CONTENT_FINGERPRINT.into(),
            content_fingerprint.into(),
        );
    Secret {
        metadata: meta,
        type_: Some("Opaque".into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// The writes from what exists to the desired Secret, Role and RoleBinding.
fn steps_to(
    observed: &Observed,
    pieces: &Pieces,
    secret: Secret,
    role: Option<Role>,
    binding: Option<RoleBinding>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    steps.extend(step(
        observed
            .secret
            .as_ref()
            .map(|s| (&s.metadata, pieces.secret.clone())),
        Some(secret),
        observed.secret.as_ref(),
        Piece {
            same: same_secret,
            immutable: |s: &Secret| s.immutable == Some(true),
            wrap: Object::Secret,
            kind: ObjectKind::Secret,
        },
    ));
    steps.extend(step(
        observed
            .role
            .as_ref()
            .map(|r| (&r.metadata, pieces.role.clone())),
        role,
        observed.role.as_ref(),
        Piece {
            same: same_role,
            immutable: |_| false,
            wrap: Object::Role,
            kind: ObjectKind::Role,
        },
    ));
    steps.extend(step(
        observed
            .binding
            .as_ref()
            .map(|b| (&b.metadata, pieces.binding.clone())),
        binding,
        observed.binding.as_ref(),
        Piece {
            same: same_binding,
            immutable: |_| false,
            wrap: Object::RoleBinding,
            kind: ObjectKind::RoleBinding,
        },
    ));
    steps
}

fn name_for(target: &Target, kind: ObjectKind) -> &str {
    if kind == ObjectKind::Secret {
        &target.secret
    } else {
        &target.access
    }
}

/// The step for one piece: create what is missing, replace what differs,
/// delete what is no longer wanted or left by a predecessor.
/// The write(s) that bring one piece from what exists to what is desired.
/// An immutable Secret of ours (someone in the target namespace set
/// `immutable: true`) cannot be replaced: it is deleted, exactly as
/// observed, and created anew, so a rotation's new token always lands.
fn step<K: kube::Resource + Clone>(
    existing: Option<(&ObjectMeta, Option<Ownership>)>,
    desired: Option<K>,
    current: Option<&K>,
    piece: Piece<K>,
) -> Vec<Step> {
    match (existing, desired) {
        (None, Some(d)) => vec![Step::Create((piece.wrap)(d))],
        (None, None) => vec![],
        (Some((meta, Some(Ownership::Ours))), Some(mut d)) => {
            let Some(current) = current else {
                return vec![];
            };
            if (piece.same)(current, &d) {
                return vec![];
            }
            if (piece.immutable)(current) {
                return vec![
                    Step::Delete(Existing::of(piece.kind, meta)),
                    Step::Create((piece.wrap)(d)),
                ];
            }
            d.meta_mut().resource_version = meta.resource_version.clone();
            d.meta_mut().uid = meta.uid.clone();
            vec![Step::Replace((piece.wrap)(d))]
        }
        (Some((meta, Some(Ownership::Ours | Ownership::Predecessor))), _) => {
            vec![Step::Delete(Existing::of(piece.kind, meta))]
        }
        // Foreign pieces never reach here: check() refused them.
        (Some(_), _) => vec![],
    }
}

/// How one kind of piece is compared, wrapped and named.
struct Piece<K> {
    same: fn(&K, &K) -> bool,
    immutable: fn(&K) -> bool,
    wrap: fn(K) -> Object,
    kind: ObjectKind,
}

/// Steps that remove this resource's pieces of a target after a refusal.
pub fn teardown(observed: &Observed, pieces: &Pieces, how: Teardown) -> Vec<Step> {
    let ours = |o: &Option<Ownership>| matches!(o, Some(Ownership::Ours | Ownership::Predecessor));
    let mut steps = Vec::new();
    if how == Teardown::Keep {
        return steps;
    }
    if let (Some(b), true) = (&observed.binding, ours(&pieces.binding)) {
        steps.push(Step::Delete(Existing::of(
            ObjectKind::RoleBinding,
            &b.metadata,
        )));
    }
    if let (Some(r), true) = (&observed.role, ours(&pieces.role)) {
        steps.push(Step::Delete(Existing::of(ObjectKind::Role, &r.metadata)));
    }
    if how == Teardown::RemoveAll {
        if let (Some(s), true) = (&observed.secret, ours(&pieces.secret)) {
            steps.push(Step::Delete(Existing::of(ObjectKind::Secret, &s.metadata)));
        }
    }
    steps
}

fn desired_role(metadata: ObjectMeta, target: &Target) -> Role {
    Role {
        metadata,
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["secrets".into()]),
            resource_names: Some(vec![target.secret.clone()]),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
    }
}

fn desired_binding(metadata: ObjectMeta, target: &Target, accounts: &[String]) -> RoleBinding {
    RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: target.access.clone(),
        },
        subjects: Some(
            accounts
                .iter()
                .map(|a| Subject {
                    kind: "ServiceAccount".into(),
                    name: a.clone(),
                    namespace: Some(target.namespace.clone()),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

/// The operator's labels and annotations are present (others may add
/// their own) and its claim holds.
fn same_meta(current: &ObjectMeta, desired: &ObjectMeta) -> bool {
    let contains = |have: &Option<BTreeMap<String, String>>,
                    want: &Option<BTreeMap<String, String>>| {
        let have = have.clone().unwrap_or_default();
        want.iter().flatten().all(|(k, v)| have.get(k) == Some(v))
    };
    contains(&current.labels, &desired.labels)
        && contains(&current.annotations, &desired.annotations)
}

fn same_secret(current: &Secret, desired: &Secret) -> bool {
    let desired_data = desired.data.clone().unwrap_or_default();
    // A cached copy holds digests of its values (`caches.rs`).
    let desired_data = match crate::caches::is_digested(current) {
        true => crate::caches::digests(desired_data),
        false => desired_data,
    };
    same_meta(&current.metadata, &desired.metadata)
        && current.data.clone().unwrap_or_default() == desired_data
        && current.string_data.is_none()
        && current.type_ == desired.type_
}

fn same_role(current: &Role, desired: &Role) -> bool {
    same_meta(&current.metadata, &desired.metadata) && current.rules == desired.rules
}

fn same_binding(current: &RoleBinding, desired: &RoleBinding) -> bool {
    same_meta(&current.metadata, &desired.metadata)
        && current.subjects == desired.subjects
        && current.role_ref == desired.role_ref
}

/// Name of an object, for messages.
pub fn describe(step: &Step) -> String {
    match step {
        Step::Create(o) | Step::Replace(o) => match o {
            Object::Secret(s) => format!("Secret {}", s.name_any()),
            Object::Role(r) => format!("Role {}", r.name_any()),
            Object::RoleBinding(b) => format!("RoleBinding {}", b.name_any()),
        },
        Step::Delete(e) => format!("{} {}", e.kind, e.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::check::Pieces;
    use std::collections::BTreeMap;

    fn tc(accounts: &str) -> TwitterCredential {
        let mut tc: TwitterCredential = serde_yaml::from_str(&format!(
            "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: bot, namespace: team, uid: u1}}\nspec: {{environments: [{{name: prod, source: {{secretRef: {{name: keys}}}}, target: {{secretName: creds, keys: [apiKey]}}, access: {{serviceAccounts: [{accounts}]}}}}]}}"
        ))
        .unwrap();
        tc.metadata.generation = Some(1);
        tc
    }

    fn inputs(api_key: &str) -> Inputs {
        Inputs {
            source: BTreeMap::from([("apiKey".to_string(), api_key.as_bytes().to_vec())]),
            derived: Data::new(),
        }
    }

    fn kinds(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Create(_) => format!("create {}", describe(s)),
                Step::Replace(_) => format!("replace {}", describe(s)),
                Step::Delete(_) => format!("delete {}", describe(s)),
            })
            .collect()
    }

    /// The objects a first plan creates, as if read back from the cluster.
    fn created(key: &ClaimKey, t: &TwitterCredential, api_key: &str) -> Observed {
        let env = &t.spec.environments[0];
        let target = Target::of(t, env);
        let first = plan(
            key,
            t,
            env,
            &target,
            &inputs(api_key),
            &Observed::default(),
            &Pieces::default(),
        );
        let mut o = Observed {
            own_namespace: true,
            ..Default::default()
        };
        for s in first.steps {
            if let Step::Create(obj) = s {
                match obj {
                    Object::Secret(mut x) => {
                        x.metadata.resource_version = Some("1".into());
                        o.secret = Some(x)
                    }
                    Object::Role(mut x) => {
                        x.metadata.resource_version = Some("1".into());
                        o.role = Some(x)
                    }
                    Object::RoleBinding(mut x) => {
                        x.metadata.resource_version = Some("1".into());
                        o.binding = Some(x)
                    }
                }
            }
        }
        o
    }

    fn owner() -> Owner {
        Owner {
            namespace: "team".into(),
            name: "bot".into(),
            uid: "u1".into(),
        }
    }

    #[test]
    fn steps_go_from_what_exists_to_what_is_declared() {
        let key = ClaimKey::new(b"k".repeat(32));
        let owner = owner();
        let with_sa = tc("reader");
        let env = &with_sa.spec.environments[0];
        let target = Target::of(&with_sa, env);
        let current = created(&key, &with_sa, "k1");
        let pieces = Pieces::of(&key, &current, &owner);
        let mut tampered = current.clone();
        if let Some(s) = tampered.secret.as_mut() {
            s.data
                .as_mut()
                .unwrap()
                .insert("apiKey".into(), ByteString(b"edited".to_vec()));
        }
        let no_sa = tc("");
        let cases: Vec<(&str, &TwitterCredential, Observed, &str, Vec<&str>)> = vec![
            (
                "nothing yet",
                &with_sa,
                Observed::default(),
                "k1",
                vec![
                    "create Secret creds",
                    "create Role keyguard-read-creds",
                    "create RoleBinding keyguard-read-creds",
                ],
            ),
            ("up to date", &with_sa, current.clone(), "k1", vec![]),
            (
                "source changed",
                &with_sa,
                current.clone(),
                "k2",
                vec!["replace Secret creds"],
            ),
            (
                "value edited in the target",
                &with_sa,
                tampered,
                "k1",
                vec!["replace Secret creds"],
            ),
            (
                "accounts removed",
                &no_sa,
                current.clone(),
                "k1",
                vec![
                    "delete Role keyguard-read-creds",
                    "delete RoleBinding keyguard-read-creds",
                ],
            ),
        ];
        for (what, t, observed, api_key, want) in cases {
            let pieces = if observed.secret.is_some() {
                pieces.clone()
            } else {
                Pieces::default()
            };
            let p = plan(
                &key,
                t,
                &t.spec.environments[0],
                &target,
                &inputs(api_key),
                &observed,
                &pieces,
            );
            assert_eq!(kinds(&p.steps), want, "{what}");
        }
        let _ = env;
    }

    #[test]
    fn replaces_carry_the_observed_resource_version() {
        let key = ClaimKey::new(b"k".repeat(32));
        let owner = owner();
        let t = tc("reader");
        let env = &t.spec.environments[0];
        let current = created(&key, &t, "k1");
        let pieces = Pieces::of(&key, &current, &owner);
        let p = plan(
            &key,
            &t,
            env,
            &Target::of(&t, env),
            &inputs("k2"),
            &current,
            &pieces,
        );
        match &p.steps[..] {
            [Step::Replace(Object::Secret(s))] => {
                assert_eq!(s.metadata.resource_version.as_deref(), Some("1"))
            }
            other => panic!("{other:?}"),
        }
    }

    /// Someone in the target namespace made our Secret immutable: it cannot
    /// be replaced, so it is deleted exactly as observed and created anew
    /// (a rotation's new token must land); an unchanged one is left alone.
    #[test]
    fn an_immutable_secret_of_ours_is_recreated_not_replaced() {
        let key = ClaimKey::new(b"k".repeat(32));
        let owner = owner();
        let t = tc("reader");
        let env = &t.spec.environments[0];
        let mut current = created(&key, &t, "k1");
        current.secret.as_mut().unwrap().immutable = Some(true);
        current.secret.as_mut().unwrap().metadata.uid = Some("s1".into());
        let pieces = Pieces::of(&key, &current, &owner);
        let target = Target::of(&t, env);
        let p = plan(&key, &t, env, &target, &inputs("k2"), &current, &pieces);
        match &p.steps[..] {
            [Step::Delete(e), Step::Create(Object::Secret(s))] => {
                assert_eq!(
                    (e.uid.as_deref(), e.resource_version.as_deref()),
                    (Some("s1"), Some("1"))
                );
                assert_eq!(s.immutable, None);
                assert_eq!(s.metadata.resource_version, None);
            }
            other => panic!("{other:?}"),
        }
        let p = plan(&key, &t, env, &target, &inputs("k1"), &current, &pieces);
        assert!(p.steps.is_empty(), "{:?}", p.steps);
    }

    #[test]
    fn teardown_removes_only_what_is_ours() {
        let key = ClaimKey::new(b"k".repeat(32));
        let owner = owner();
        let t = tc("reader");
        let current = created(&key, &t, "k1");
        let mut pieces = Pieces::of(&key, &current, &owner);
        let all = teardown(&current, &pieces, Teardown::RemoveAll);
        assert_eq!(
            kinds(&all),
            [
                "delete RoleBinding keyguard-read-creds",
                "delete Role keyguard-read-creds",
                "delete Secret creds"
            ]
        );
        let access = teardown(&current, &pieces, Teardown::RemoveAccess);
        assert_eq!(access.len(), 2);
        assert!(teardown(&current, &pieces, Teardown::Keep).is_empty());
        pieces.secret = Some(Ownership::Foreign);
        let all = teardown(&current, &pieces, Teardown::RemoveAll);
        assert_eq!(all.len(), 2, "a foreign Secret is never deleted");
    }
}

//! Pure gates: may this environment be synced, and with what inputs? A
//! refusal says why, in words a tenant can act on, and what happens to the
//! objects already there.

use kube::ResourceExt;

use super::observe::Observed;
use crate::conditions::Reason;
use crate::labels;
use crate::objects::{secret_data, ObjectKind};
use crate::ownership::{ClaimKey, Owner, Ownership};
use crate::projection::{self, Data};
use crate::refusal::{Refusal, Teardown};
use crate::resource::{Environment, TwitterCredential};
use crate::state_record;
use crate::target::Target;

/// Whose each existing piece of the target is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pieces {
    pub secret: Option<Ownership>,
    pub role: Option<Ownership>,
    pub binding: Option<Ownership>,
    /// The state record of derived credentials.
    pub state: Option<Ownership>,
}

impl Pieces {
    pub fn of(key: &ClaimKey, observed: &Observed, owner: &Owner) -> Pieces {
        Pieces {
            secret: observed
                .secret
                .as_ref()
                .map(|s| key.ownership(ObjectKind::Secret, &s.metadata, owner)),
            role: observed
                .role
                .as_ref()
                .map(|r| key.ownership(ObjectKind::Role, &r.metadata, owner)),
            binding: observed
                .binding
                .as_ref()
                .map(|b| key.ownership(ObjectKind::RoleBinding, &b.metadata, owner)),
            state: observed
                .state
                .as_ref()
                .map(|s| key.ownership(ObjectKind::Secret, &s.metadata, owner)),
        }
    }

    /// The first piece that belongs to someone else.
    fn foreign(&self) -> Option<ObjectKind> {
        [
            (ObjectKind::Secret, &self.secret),
            (ObjectKind::Role, &self.role),
            (ObjectKind::RoleBinding, &self.binding),
        ]
        .into_iter()
        .find(|(_, o)| *o == &Some(Ownership::Foreign))
        .map(|(kind, _)| kind)
    }
}

/// What a permitted sync works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub source: Data,
    pub derived: Data,
}

/// The gates, in order: one writer per target, consent of the target
/// namespace, exclusive ownership, a usable source, minted derived keys.
pub fn check(
    tc: &TwitterCredential,
    env: &Environment,
    target: &Target,
    duplicate_of: Option<&str>,
    observed: &Observed,
    pieces: &Pieces,
) -> Result<Inputs, Refusal> {
    one_writer(target, duplicate_of)?;
    consented(tc, target, observed, pieces)?;
    exclusive(target, pieces)?;
    let source = usable_source(tc, env, observed)?;
    let derived =
        state_record::derived_for(env, &source, observed.state.as_ref(), pieces.state.as_ref())?;
    Ok(Inputs { source, derived })
}

/// Two environments of one resource never write the same target.
fn one_writer(target: &Target, duplicate_of: Option<&str>) -> Result<(), Refusal> {
    let Some(first) = duplicate_of else {
        return Ok(());
    };
    Err(Refusal::new(
        Reason::DuplicateTarget,
        format!(
            "environment {first} already writes Secret {}; two environments cannot share a target",
            target.secret_ref()
        ),
        Teardown::Keep,
    ))
}

/// Another namespace receives credentials only while it opts in.
fn consented(
    tc: &TwitterCredential,
    target: &Target,
    observed: &Observed,
    pieces: &Pieces,
) -> Result<(), Refusal> {
    let own = tc.namespace().unwrap_or_default();
    if observed.own_namespace || opted_in(observed, &own) {
        return Ok(());
    }
    // One message whether the namespace is missing or unwilling: a
    // tenant learns nothing about which namespaces exist.
    let teardown = match tc.spec.deletion_policy {
        Some(crate::resource::DeletionPolicy::Retain) => Teardown::RemoveAccess,
        _ => Teardown::RemoveAll,
    };
    let kept = if teardown == Teardown::RemoveAccess && pieces.secret == Some(Ownership::Ours) {
        format!(
            " (Secret {} retained, its Role and RoleBinding removed: deletionPolicy Retain)",
            target.secret_ref()
        )
    } else {
        String::new()
    };
    Err(Refusal::new(
        Reason::TargetNotAllowed,
        format!(
            "namespace {} does not accept credentials from {own}: it needs the label `{}=true`{kept}",
            target.namespace,
            labels::allow_from(&own)
        ),
        teardown,
    ))
}

/// Every existing piece of the target is this resource's, or absent.
fn exclusive(target: &Target, pieces: &Pieces) -> Result<(), Refusal> {
    let Some(kind) = pieces.foreign() else {
        return Ok(());
    };
    let name = if kind == ObjectKind::Secret {
        &target.secret
    } else {
        &target.access
    };
    Err(Refusal::new(
        Reason::Conflict,
        format!(
            "{kind} {}/{name} exists and is not managed by this TwitterCredential; it was left untouched",
            target.namespace
        ),
        Teardown::RemoveAll,
    ))
}

/// The source Secret exists and holds what the target's keys need.
fn usable_source(
    tc: &TwitterCredential,
    env: &Environment,
    observed: &Observed,
) -> Result<Data, Refusal> {
    let own = tc.namespace().unwrap_or_default();
    let source_name = format!("{own}/{}", env.source.secret_ref.name);
    let Some(source) = &observed.source else {
        return Err(Refusal::new(
            Reason::SourceNotFound,
            format!("source Secret {source_name} not found"),
            Teardown::Keep,
        ));
    };
    let source = secret_data(source);
    projection::check_source(&source_name, &source, &env.target.keys)
        .map_err(|e| Refusal::new(Reason::SourceInvalid, e.to_string(), Teardown::Keep))?;
    Ok(source)
}

fn opted_in(observed: &Observed, own: &str) -> bool {
    observed.namespace_labels.as_ref().is_some_and(|l| {
        [labels::allow_from(own), labels::allow_from_hashed(own)]
            .iter()
            .any(|k| l.get(k).is_some_and(|v| v == "true"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn tc(yaml: &str) -> TwitterCredential {
        let mut tc: TwitterCredential = serde_yaml::from_str(&format!(
            "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: bot, namespace: team, uid: u1}}\n{yaml}"
        ))
        .unwrap();
        tc.metadata.generation = Some(1);
        tc
    }

    fn source(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    const SPEC: &str = "spec: {environments: [{name: prod, source: {secretRef: {name: keys}}, target: {namespace: prod, secretName: creds, keys: [apiKey]}}]}";

    fn allowed() -> Observed {
        Observed {
            namespace_labels: Some(BTreeMap::from([(
                "keyguard.dev/allow-from-team".into(),
                "true".into(),
            )])),
            source: Some(source(&[("apiKey", "k"), ("apiKeySecret", "s")])),
            ..Default::default()
        }
    }

    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Observed,
        Pieces,
        Option<(Reason, Teardown)>,
    );

    #[test]
    fn gates_refuse_in_order_with_the_right_teardown() {
        let t = tc(SPEC);
        let env = &t.spec.environments[0];
        let target = Target::of(&t, env);
        let foreign = Pieces {
            role: Some(Ownership::Foreign),
            ..Default::default()
        };
        let unwilling = Observed {
            namespace_labels: Some(BTreeMap::new()),
            ..allowed()
        };
        let missing = Observed {
            namespace_labels: None,
            ..allowed()
        };
        let no_source = Observed {
            source: None,
            ..allowed()
        };
        let empty_key = Observed {
            source: Some(source(&[("apiKey", "")])),
            ..allowed()
        };
        let cases: Vec<Case> = vec![
            ("all good", None, allowed(), Pieces::default(), None),
            (
                "duplicate",
                Some("staging"),
                allowed(),
                Pieces::default(),
                Some((Reason::DuplicateTarget, Teardown::Keep)),
            ),
            (
                "no opt-in",
                None,
                unwilling,
                Pieces::default(),
                Some((Reason::TargetNotAllowed, Teardown::RemoveAll)),
            ),
            (
                "missing namespace",
                None,
                missing,
                Pieces::default(),
                Some((Reason::TargetNotAllowed, Teardown::RemoveAll)),
            ),
            (
                "foreign role",
                None,
                allowed(),
                foreign,
                Some((Reason::Conflict, Teardown::RemoveAll)),
            ),
            (
                "no source",
                None,
                no_source,
                Pieces::default(),
                Some((Reason::SourceNotFound, Teardown::Keep)),
            ),
            (
                "empty key",
                None,
                empty_key,
                Pieces::default(),
                Some((Reason::SourceInvalid, Teardown::Keep)),
            ),
        ];
        for (what, dup, observed, pieces, want) in cases {
            let got = check(&t, env, &target, dup, &observed, &pieces)
                .err()
                .map(|r| (r.reason, r.teardown));
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn missing_and_unwilling_namespaces_read_the_same() {
        let t = tc(SPEC);
        let env = &t.spec.environments[0];
        let target = Target::of(&t, env);
        let msg = |o: Observed| {
            check(&t, env, &target, None, &o, &Pieces::default())
                .unwrap_err()
                .message
        };
        assert_eq!(
            msg(Observed {
                namespace_labels: None,
                ..allowed()
            }),
            msg(Observed {
                namespace_labels: Some(BTreeMap::new()),
                ..allowed()
            })
        );
    }

    #[test]
    fn retain_keeps_the_secret_but_not_access_when_consent_goes() {
        let t = tc(&format!(
            "{}\n",
            SPEC.replace("spec: {", "spec: {deletionPolicy: Retain, ")
        ));
        let env = &t.spec.environments[0];
        let target = Target::of(&t, env);
        let pieces = Pieces {
            secret: Some(Ownership::Ours),
            ..Default::default()
        };
        let r = check(
            &t,
            env,
            &target,
            None,
            &Observed {
                namespace_labels: Some(BTreeMap::new()),
                ..allowed()
            },
            &pieces,
        )
        .unwrap_err();
        assert_eq!(r.teardown, Teardown::RemoveAccess);
        assert!(r.message.contains("retained"), "{}", r.message);
    }
}

//! Pure gates: may this environment be synced, and with what inputs? A
//! refusal says why, in words a tenant can act on, and what happens to the
//! objects already there.

use kube::ResourceExt;

use super::observe::Observed;
use super::Target;
use crate::conditions::Reason;
use crate::labels;
use crate::ownership::{ClaimKey, Owner, Ownership};
use crate::projection::{self, Data};
use crate::resource::{Environment, TwitterCredential};
use crate::rotation::state;

/// What happens to this environment's existing objects on a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Teardown {
    /// Leave them: the refusal may be temporary (a broken source must not
    /// break running workloads) or the objects are another environment's.
    Keep,
    /// Remove the Role and RoleBinding, keep the Secret (`Retain`).
    RemoveAccess,
    /// Remove every piece this resource owns for the target.
    RemoveAll,
}

/// Why an environment is not synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
    pub teardown: Teardown,
    /// Transient: check again soon rather than at the resync.
    pub retry_soon: bool,
    /// When it is worth trying again (an X API rate limit's reset).
    pub retry_after: Option<std::time::Duration>,
    /// Some writes succeeded before the one that was refused.
    pub wrote: bool,
}

impl Refusal {
    pub fn new(reason: Reason, message: impl Into<String>, teardown: Teardown) -> Refusal {
        Refusal {
            reason,
            message: message.into(),
            teardown,
            retry_soon: false,
            retry_after: None,
            wrote: false,
        }
    }

    /// A refusal for an X API failure: transient ones are retried, a rate
    /// limit only after its reset.
    pub fn x_api(doing: &str, e: &crate::xapi::XApiError) -> Refusal {
        let r = Refusal::new(
            Reason::XApiError,
            format!("{doing} failed: {e}"),
            Teardown::Keep,
        );
        let r = if e.is_transient() { r.soon() } else { r };
        Refusal {
            retry_after: e.retry_after(),
            ..r
        }
    }

    pub fn soon(mut self) -> Refusal {
        self.retry_soon = true;
        self
    }

    /// A Kubernetes API call that failed; the apiserver's message is kept
    /// short (it names fields, never Secret values).
    pub fn api_error(doing: &str, e: &kube::Error) -> Refusal {
        let reason = if doing == "reading" {
            Reason::NotSynced
        } else {
            Reason::WriteFailed
        };
        let detail = match e {
            kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
            other => other.to_string(),
        };
        // Server text can echo what was sent: scrub it like X's.
        let detail = keyguard_credentials::scrub_server_text(&detail, 400);
        Refusal::new(reason, format!("{doing} failed: {detail}"), Teardown::Keep).soon()
    }
}

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
                .map(|s| key.ownership("Secret", &s.metadata, owner)),
            role: observed
                .role
                .as_ref()
                .map(|r| key.ownership("Role", &r.metadata, owner)),
            binding: observed
                .binding
                .as_ref()
                .map(|b| key.ownership("RoleBinding", &b.metadata, owner)),
            state: observed
                .state
                .as_ref()
                .map(|s| key.ownership("Secret", &s.metadata, owner)),
        }
    }

    /// The first piece that belongs to someone else.
    fn foreign(&self) -> Option<&'static str> {
        [
            ("Secret", &self.secret),
            ("Role", &self.role),
            ("RoleBinding", &self.binding),
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
    let own = tc.namespace().unwrap_or_default();
    if let Some(first) = duplicate_of {
        return Err(Refusal::new(
            Reason::DuplicateTarget,
            format!(
                "environment {first} already writes Secret {}; two environments cannot share a target",
                target.secret_ref()
            ),
            Teardown::Keep,
        ));
    }
    if !observed.own_namespace && !opted_in(observed, &own) {
        // One message whether the namespace is missing or unwilling: a
        // tenant learns nothing about which namespaces exist.
        let teardown = match tc.spec.deletion_policy {
            Some(crate::resource::DeletionPolicy::Retain) => Teardown::RemoveAccess,
            _ => Teardown::RemoveAll,
        };
        let kept = if teardown == Teardown::RemoveAccess && pieces.secret == Some(Ownership::Ours) {
            format!(
                " (Secret {} retained, its RoleBinding removed: deletionPolicy Retain)",
                target.secret_ref()
            )
        } else {
            String::new()
        };
        return Err(Refusal::new(
            Reason::TargetNotAllowed,
            format!(
                "namespace {} does not accept credentials from {own}: it needs the label `{}=true`{kept}",
                target.namespace,
                labels::allow_from(&own)
            ),
            teardown,
        ));
    }
    if let Some(kind) = pieces.foreign() {
        let name = if kind == "Secret" {
            &target.secret
        } else {
            &target.access
        };
        return Err(Refusal::new(
            Reason::Conflict,
            format!(
                "{kind} {}/{name} exists and is not managed by this TwitterCredential; it was left untouched",
                target.namespace
            ),
            Teardown::RemoveAll,
        ));
    }
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
    let derived = state::derived_for(env, &source, observed.state.as_ref(), pieces.state.as_ref())?;
    Ok(Inputs { source, derived })
}

fn opted_in(observed: &Observed, own: &str) -> bool {
    observed
        .namespace_labels
        .as_ref()
        .and_then(|l| l.get(&labels::allow_from(own)))
        .is_some_and(|v| v == "true")
}

/// A Secret's data by key.
pub fn secret_data(secret: &k8s_openapi::api::core::v1::Secret) -> Data {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
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

//! Key reuse: an environment whose source credential (same key, same
//! fingerprint) another environment also projects, of this resource or of
//! any other the operator sees, gets the `CredentialShared` warning, unless
//! it says `allowSharedCredentials`. Keys shared between environments are
//! rotated, revoked and leaked together. The other environment is named
//! only inside one namespace: a tenant learns of another namespace's
//! environment only that one exists (the cluster admin sees every pair
//! through `keyguard_environment_credential_shared`).

use kube::ResourceExt;

use crate::conditions::{self, ConditionType, News, Reason};
use crate::context::Context;
use crate::outcome::EnvOutcome;
use crate::resource::{CredentialFingerprint, Environment, TwitterCredential};

pub use crate::resource_index::Holder;

impl Holder {
    fn of(
        namespace: &str,
        resource: &str,
        environment: &str,
        creds: &[CredentialFingerprint],
    ) -> Self {
        Holder {
            namespace: namespace.to_string(),
            resource: resource.to_string(),
            environment: environment.to_string(),
            credentials: creds
                .iter()
                .map(|c| (c.key.clone(), c.fingerprint.clone()))
                .collect(),
        }
    }

    fn is(&self, other: &Holder) -> bool {
        (&self.namespace, &self.resource, &self.environment)
            == (&other.namespace, &other.resource, &other.environment)
    }
}

/// Pure: which of `this`'s credential keys another holder also has, and
/// who, as the message may name them (sorted, each once; no more names
/// than the message shows and one to say there are others, so a key a
/// thousand environments share costs a few names, not a thousand).
pub fn shared(this: &Holder, others: &[Holder]) -> (Vec<String>, Vec<String>) {
    let mut keys = Vec::new();
    let mut inside = Vec::new();
    let mut elsewhere = false;
    for other in others.iter().filter(|o| !this.is(o)) {
        let before = keys.len();
        keys.extend(
            this.credentials
                .iter()
                .filter(|c| other.credentials.contains(c))
                .map(|(key, _)| key.clone()),
        );
        if keys.len() == before {
            continue;
        }
        if other.namespace == this.namespace {
            inside.push((&other.namespace, &other.resource, &other.environment));
        } else {
            elsewhere = true;
        }
    }
    keys.sort();
    keys.dedup();
    inside.sort();
    inside.dedup();
    let mut who: Vec<String> = inside
        .into_iter()
        .take(NAMED_AT_MOST + 1)
        .map(|(ns, resource, env)| format!("{ns}/{resource} environment {env}"))
        .collect();
    if elsewhere {
        who.push("an environment in another namespace".to_string());
    }
    who.sort();
    (keys, who)
}

/// Holders a message names at most.
const NAMED_AT_MOST: usize = 3;

/// Pure: the first holders (sorted) and "others" beyond them. Not a count:
/// a message that changed with every new holder would rewrite the status of
/// every environment sharing a key, and warn again, each time one is added.
pub fn named(who: &[String]) -> String {
    let mut text = who
        .iter()
        .take(NAMED_AT_MOST)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if who.len() > NAMED_AT_MOST {
        text.push_str(" and others");
    }
    text
}

/// `tc`'s environments as this reconcile found them, and every other
/// environment holding one of their credentials, as the controller's
/// watch of TwitterCredentials last saw them (their last written status,
/// looked up in `resource_index.rs`, not by walking every resource).
fn holders(
    ctx: &Context,
    tc: &TwitterCredential,
    outcomes: &[(&Environment, EnvOutcome)],
) -> Vec<Holder> {
    let (ns, name) = (tc.namespace().unwrap_or_default(), tc.name_any());
    let mut all: Vec<Holder> = outcomes
        .iter()
        .map(|(env, o)| Holder::of(&ns, &name, &env.name, &o.status.source_credentials))
        .collect();
    if ctx.caches.get().is_none() {
        return all;
    }
    let ours = all
        .iter()
        .flat_map(|h| h.credentials.iter().cloned())
        .collect();
    all.extend(ctx.index.holding(&ours, &tc.uid().unwrap_or_default()));
    all
}

/// Sets each environment's `CredentialShared` condition, with a Warning
/// Event when it starts.
pub async fn mark(
    ctx: &Context,
    tc: &TwitterCredential,
    outcomes: &mut [(&Environment, EnvOutcome)],
) {
    let all = holders(ctx, tc, outcomes);
    let (ns, name) = (tc.namespace().unwrap_or_default(), tc.name_any());
    for (env, outcome) in outcomes.iter_mut() {
        let status = &mut outcome.status;
        if env.allow_shared_credentials {
            conditions::clear(&mut status.conditions, ConditionType::CredentialShared);
            continue;
        }
        let this = Holder::of(&ns, &name, &env.name, &status.source_credentials);
        let (keys, who) = shared(&this, &all);
        if keys.is_empty() {
            let message = "no other environment projects these source credentials";
            conditions::set(
                &mut status.conditions,
                ConditionType::CredentialShared,
                false,
                Reason::NotShared,
                message,
                tc.metadata.generation,
            );
            continue;
        }
        let message = format!(
            "source credential {} also projected by {}: give each environment its own keys, or set allowSharedCredentials if the sharing is deliberate",
            keys.join(", "),
            named(&who)
        );
        let warn = conditions::set_warning(
            &mut status.conditions,
            ConditionType::CredentialShared,
            true,
            Reason::CredentialShared,
            message.clone(),
            tc.metadata.generation,
            true,
            News::StatusOrMessageChanged,
        );
        if warn {
            let note = format!("{}: {message}", env.name);
            let reference = kube::Resource::object_ref(tc, &());
            ctx.events
                .publish(
                    &reference,
                    crate::events::Kind::Warning,
                    "CredentialShared",
                    "Check",
                    &note,
                    None,
                )
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_a_few_holders_and_does_not_grow() {
        let who = |n: usize| {
            (0..n)
                .map(|i| format!("team/bot-{i} environment prod"))
                .collect::<Vec<_>>()
        };
        assert_eq!(named(&who(1)), "team/bot-0 environment prod");
        assert_eq!(
            named(&who(3)),
            "team/bot-0 environment prod, team/bot-1 environment prod, team/bot-2 environment prod"
        );
        assert_eq!(named(&who(4)), named(&who(1000)), "no count that changes");
        assert!(named(&who(1000)).ends_with(" and others"));
    }

    #[test]
    fn a_key_a_thousand_environments_share_costs_a_few_names() {
        let this = holder("team", "bot", "prod", &[("apiKey", "sha256:a")]);
        let mut others: Vec<Holder> = (0..1000)
            .map(|i| {
                holder(
                    "team",
                    &format!("bot-{i}"),
                    "prod",
                    &[("apiKey", "sha256:a")],
                )
            })
            .collect();
        others.push(holder("other", "app", "prod", &[("apiKey", "sha256:a")]));
        let (keys, who) = shared(&this, &others);
        assert_eq!(keys, ["apiKey"]);
        assert_eq!(who.len(), NAMED_AT_MOST + 2, "{who:?}");
        assert_eq!(
            named(&who),
            "an environment in another namespace, team/bot-0 environment prod, team/bot-1 environment prod and others"
        );
    }

    fn holder(ns: &str, resource: &str, env: &str, creds: &[(&str, &str)]) -> Holder {
        Holder {
            namespace: ns.into(),
            resource: resource.into(),
            environment: env.into(),
            credentials: creds
                .iter()
                .map(|(k, f)| (k.to_string(), f.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_shared_key_names_its_holders_only_inside_the_namespace() {
        let this = holder(
            "team",
            "bot",
            "prod",
            &[("apiKey", "sha256:a"), ("apiKeySecret", "sha256:b")],
        );
        type Case = (
            &'static str,
            Vec<Holder>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: [Case; 5] = [
            ("alone", vec![this.clone()], vec![], vec![]),
            (
                "another environment of the resource",
                vec![
                    this.clone(),
                    holder("team", "bot", "staging", &[("apiKey", "sha256:a")]),
                ],
                vec!["apiKey"],
                vec!["team/bot environment staging"],
            ),
            (
                "another namespace is not named",
                vec![holder(
                    "other",
                    "app",
                    "prod",
                    &[("apiKeySecret", "sha256:b")],
                )],
                vec!["apiKeySecret"],
                vec!["an environment in another namespace"],
            ),
            (
                "the same value under another key is no key reuse",
                vec![holder("team", "x", "e", &[("accessToken", "sha256:a")])],
                vec![],
                vec![],
            ),
            (
                "other values",
                vec![holder("team", "x", "e", &[("apiKey", "sha256:c")])],
                vec![],
                vec![],
            ),
        ];
        for (what, others, keys, who) in cases {
            assert_eq!(
                shared(&this, &others),
                (
                    keys.iter().map(|s| s.to_string()).collect(),
                    who.iter().map(|s| s.to_string()).collect()
                ),
                "{what}"
            );
        }
    }
}

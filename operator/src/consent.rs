//! Consent over time. The chart's admission policy checks, as the person
//! who writes a TwitterCredential, that they may read its sources and
//! restart its workloads, but only at that moment. A resource that names
//! a ServiceAccount (`spec.serviceAccountName`), and every resource when
//! the operator has a `--default-service-account`, is held to those
//! ServiceAccounts' rights (all of them) on every reconcile, as Flux and Argo CD hold their tenants: before any
//! X API call or write, the apiserver is asked (SubjectAccessReview)
//! whether it may `get` each source Secret and `patch` each restart
//! target. Whoever administers RBAC in the namespace withdraws consent by
//! removing a binding; the operator then projects nothing new and makes no
//! X call for that environment, and keeps what is already projected.

use kube::ResourceExt;

use crate::authorization::{self, Action, Subject};
use crate::conditions::Reason;
use crate::context::Context;
use crate::refusal::{Refusal, Teardown};
use crate::resource::{Environment, TwitterCredential, WorkloadKind};
use crate::target::Target;

/// Pure: the ServiceAccounts a resource is held to: the one it names and
/// the operator's default. Both, when both are set, so a tenant cannot
/// escape the admin's default by naming a broadly bound ServiceAccount.
pub fn service_accounts<'a>(tc: &'a TwitterCredential, default: Option<&'a str>) -> Vec<&'a str> {
    let named = tc.spec.service_account_name.as_ref().map(|s| s.0.as_str());
    let mut all: Vec<&str> = [named, default]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    all.dedup();
    all
}

/// Pure: what the ServiceAccount must be allowed for `env`: `get` on its
/// source Secret, `patch` on each restart target.
pub fn needed(tc: &TwitterCredential, env: &Environment) -> Vec<Action> {
    let own = tc.namespace().unwrap_or_default();
    let target = Target::of(tc, env).namespace;
    let mut actions = vec![Action::Object {
        namespace: own,
        group: String::new(),
        resource: "secrets".into(),
        name: env.source.secret_ref.name.clone(),
        verb: "get".into(),
    }];
    for w in &env.restart_targets {
        let resource = match w.kind {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        };
        actions.push(Action::Object {
            namespace: target.clone(),
            group: "apps".into(),
            resource: resource.into(),
            name: w.name.clone(),
            verb: "patch".into(),
        });
    }
    actions
}

/// A refusal when the resource's ServiceAccount may not do all that `env`
/// needs (or the apiserver cannot say); `None` when it may, or when the
/// resource is not held to a ServiceAccount.
pub async fn check(ctx: &Context, tc: &TwitterCredential, env: &Environment) -> Option<Refusal> {
    let ns = tc.namespace().unwrap_or_default();
    for sa in service_accounts(tc, ctx.default_service_account.as_deref()) {
        let subject = Subject::service_account(&ns, sa);
        for action in needed(tc, env) {
            match authorization::allowed(&ctx.client, &subject, &action).await {
                Ok(true) => {}
                Ok(false) => return Some(withdrawn(&ns, sa, &action)),
                Err(e) => return Some(Refusal::read_failed(&e)),
            }
        }
    }
    None
}

/// Pure: whether an environment's consent was withdrawn at this reconcile
/// (stages after sync, such as restarts and usage polling, then act for it
/// no more than sync does).
pub fn withdrawn_in(status: &crate::resource::EnvironmentStatus) -> bool {
    crate::conditions::find(&status.conditions, crate::conditions::ConditionType::Synced)
        .is_some_and(|c| c.reason == Reason::ConsentWithdrawn.as_str())
}

/// Pure: the refusal for a right the ServiceAccount lacks.
fn withdrawn(ns: &str, sa: &str, action: &Action) -> Refusal {
    let what = match action {
        Action::Object {
            namespace,
            resource,
            name,
            verb,
            ..
        } => format!("{verb} {resource} {namespace}/{name}"),
        Action::Path { path, verb } => format!("{verb} {path}"),
    };
    Refusal::new(
        Reason::ConsentWithdrawn,
        format!("ServiceAccount {ns}/{sa} (the resource's serviceAccountName) may not {what}: nothing new is projected and no X API call is made for this environment; what is already projected is kept. Grant the right, or remove the projection"),
        Teardown::Keep,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(yaml_spec: &str) -> TwitterCredential {
        serde_yaml::from_str(&format!(
            "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: bot, namespace: team}}\nspec: {yaml_spec}"
        ))
        .unwrap()
    }

    const ENV: &str = "environments: [{name: prod, source: {secretRef: {name: keys}}, target: {namespace: prod, secretName: out, keys: [apiKey]}, restartTargets: [{kind: Deployment, name: web}, {kind: DaemonSet, name: agent}]}]";

    #[test]
    fn a_resource_is_held_to_its_own_service_account_and_the_default() {
        let named = tc(&format!("{{serviceAccountName: keyguard-bot, {ENV}}}"));
        let unnamed = tc(&format!("{{{ENV}}}"));
        let cases: [(&TwitterCredential, Option<&str>, &[&str]); 6] = [
            (&named, None, &["keyguard-bot"]),
            (&named, Some("default"), &["keyguard-bot", "default"]),
            (&named, Some("keyguard-bot"), &["keyguard-bot"]),
            (&unnamed, Some("default"), &["default"]),
            (&unnamed, Some(""), &[]),
            (&unnamed, None, &[]),
        ];
        for (tc, default, want) in cases {
            assert_eq!(service_accounts(tc, default), want, "{default:?}");
        }
    }

    #[test]
    fn the_source_is_read_in_the_own_namespace_and_workloads_patched_in_the_target() {
        let tc = tc(&format!("{{{ENV}}}"));
        let asked: Vec<String> = needed(&tc, &tc.spec.environments[0])
            .iter()
            .map(|a| match a {
                Action::Object {
                    namespace,
                    group,
                    resource,
                    name,
                    verb,
                } => format!("{verb} {group}/{resource} {namespace}/{name}"),
                Action::Path { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(
            asked,
            [
                "get /secrets team/keys",
                "patch apps/deployments prod/web",
                "patch apps/daemonsets prod/agent"
            ]
        );
    }

    #[test]
    fn a_withdrawn_right_is_named_with_its_service_account() {
        let action = Action::Object {
            namespace: "team".into(),
            group: String::new(),
            resource: "secrets".into(),
            name: "keys".into(),
            verb: "get".into(),
        };
        let r = withdrawn("team", "keyguard-bot", &action);
        assert_eq!(r.reason, Reason::ConsentWithdrawn);
        assert_eq!(r.teardown, Teardown::Keep);
        assert!(r.message.starts_with(
            "ServiceAccount team/keyguard-bot (the resource's serviceAccountName) may not get secrets team/keys:"
        ), "{}", r.message);
    }
}

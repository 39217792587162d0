//! The resource's status: each environment's previous status, the
//! roll-up of the environments into Ready and the flag conditions, and the
//! server-side apply that writes it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::conditions::{self, ConditionType, Reason};
use crate::context::Context;
use crate::labels::FIELD_MANAGER;
use crate::resource::{EnvironmentStatus, TwitterCredential, TwitterCredentialStatus};
use crate::target::Target;
use crate::Result;

/// The status an environment had, or an empty one for a new environment.
pub fn previous(tc: &TwitterCredential, name: &str) -> EnvironmentStatus {
    tc.status
        .as_ref()
        .and_then(|s| s.environments.iter().find(|e| e.name == name).cloned())
        .unwrap_or_else(|| EnvironmentStatus {
            name: name.into(),
            ..Default::default()
        })
}

/// Pure: for each environment, the earlier one writing the same target.
pub fn duplicates(tc: &TwitterCredential) -> Vec<Option<String>> {
    let mut first: BTreeMap<(String, String), String> = BTreeMap::new();
    tc.spec
        .environments
        .iter()
        .map(|env| {
            let t = Target::of(tc, env);
            match first.get(&(t.namespace.clone(), t.secret.clone())) {
                Some(earlier) => Some(earlier.clone()),
                None => {
                    first.insert((t.namespace, t.secret), env.name.clone());
                    None
                }
            }
        })
        .collect()
}

/// Pure: the resource-level status from the environments'.
pub fn summarize(
    tc: &TwitterCredential,
    environments: Vec<EnvironmentStatus>,
) -> TwitterCredentialStatus {
    let generation = tc.metadata.generation;
    let mut status = tc.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    status.environments = environments;
    let total = status.environments.len();
    let failing: Vec<(&str, &Condition)> = status
        .environments
        .iter()
        .filter_map(|e| {
            conditions::find(&e.conditions, ConditionType::Synced)
                .filter(|_| !conditions::is_true(&e.conditions, ConditionType::Synced))
                .map(|c| (e.name.as_str(), c))
        })
        .collect();
    status.ready_environments = Some(format!("{}/{total}", total - failing.len()));
    let reason = failing
        .first()
        .map(|(_, c)| Reason::parse(&c.reason).unwrap_or(Reason::NotSynced))
        .unwrap_or(Reason::Synced);
    let message = if failing.is_empty() {
        format!("all {total} environment(s) synced")
    } else {
        failing
            .iter()
            .map(|(n, c)| format!("{n}: {}", c.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let ok = failing.is_empty();
    let mut conds = status.conditions.clone();
    conditions::set(
        &mut conds,
        ConditionType::Ready,
        ok,
        reason,
        message.clone(),
        generation,
    );
    conditions::set(
        &mut conds,
        ConditionType::Synced,
        ok,
        reason,
        message,
        generation,
    );
    roll_up(&mut conds, &status.environments, generation);
    status.conditions = conds;
    status
}

/// Pure: a resource-level flag condition for each one any environment
/// raises, naming the environments.
fn roll_up(
    conds: &mut Vec<Condition>,
    environments: &[EnvironmentStatus],
    generation: Option<i64>,
) {
    let flags = [
        (ConditionType::TargetNotAllowed, Reason::TargetNotAllowed),
        (ConditionType::Conflict, Reason::Conflict),
        (ConditionType::RotationDue, Reason::MaxAgeExceeded),
        (ConditionType::OverPrivileged, Reason::OverPrivileged),
        (
            ConditionType::ReauthorizationRequired,
            Reason::ReauthorizationRequired,
        ),
        (ConditionType::RotationBlocked, Reason::OwnerTokenMissing),
    ];
    for (flag, reason) in flags {
        let hits: Vec<&str> = environments
            .iter()
            .filter(|e| conditions::is_true(&e.conditions, flag))
            .map(|e| e.name.as_str())
            .collect();
        if hits.is_empty() {
            conditions::clear(conds, flag);
        } else {
            let message = format!("environments: {}", hits.join(", "));
            conditions::set(conds, flag, true, reason, message, generation);
        }
    }
}

pub async fn patch(
    tc: &TwitterCredential,
    status: &TwitterCredentialStatus,
    ctx: &Context,
) -> Result<()> {
    let api: Api<TwitterCredential> =
        Api::namespaced(ctx.client.clone(), &tc.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "keyguard.dev/v1alpha1",
        "kind": "TwitterCredential",
        "status": status,
    });
    api.patch_status(
        &tc.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Namespaced mode, a resource outside the namespaces that granted the
/// operator: Ready=False with the reason, once.
pub async fn not_managed(tc: &TwitterCredential, why: String, ctx: &Context) -> Result<()> {
    let mut status = TwitterCredentialStatus {
        observed_generation: tc.metadata.generation,
        conditions: tc
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let ready = ConditionType::Ready;
    conditions::set(
        &mut status.conditions,
        ready,
        false,
        Reason::NamespaceNotManaged,
        why,
        tc.metadata.generation,
    );
    status.conditions.retain(|c| c.type_ == ready.as_str());
    if tc.status.as_ref() != Some(&status) {
        patch(tc, &status, ctx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(envs: &str) -> TwitterCredential {
        serde_yaml::from_str(&format!(
            "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: bot, namespace: team, generation: 4}}\nspec: {{environments: [{envs}]}}"
        ))
        .unwrap()
    }

    #[test]
    fn an_omitted_namespace_is_the_resources_own_when_finding_duplicates() {
        let cases = [
            ("{name: a, source: {secretRef: {name: k}}, target: {secretName: s, keys: [apiKey]}}, {name: b, source: {secretRef: {name: k}}, target: {namespace: team, secretName: s, keys: [apiKey]}}", vec![None, Some("a".to_string())]),
            ("{name: a, source: {secretRef: {name: k}}, target: {secretName: s, keys: [apiKey]}}, {name: b, source: {secretRef: {name: k}}, target: {namespace: prod, secretName: s, keys: [apiKey]}}", vec![None, None]),
        ];
        for (envs, want) in cases {
            assert_eq!(duplicates(&tc(envs)), want, "{envs}");
        }
    }

    /// An environment's status from `(condition, true?, reason, message)`.
    fn env(name: &str, conds: &[(ConditionType, bool, Reason, &str)]) -> EnvironmentStatus {
        let mut status = EnvironmentStatus {
            name: name.into(),
            ..Default::default()
        };
        for (type_, on, reason, message) in conds {
            conditions::set(
                &mut status.conditions,
                *type_,
                *on,
                *reason,
                *message,
                Some(4),
            );
        }
        status
    }

    /// (environments, Ready, its reason, its message, readyEnvironments,
    /// resource-level flags raised with their message)
    type RollUpCase = (
        Vec<EnvironmentStatus>,
        bool,
        Reason,
        &'static str,
        &'static str,
        Vec<(ConditionType, &'static str)>,
    );

    fn roll_up_cases() -> Vec<RollUpCase> {
        use ConditionType::{Conflict, OverPrivileged, Synced};
        let synced = (Synced, true, Reason::Synced, "fine");
        let missing = (Synced, false, Reason::SourceNotFound, "no Secret keys");
        let invalid = (Synced, false, Reason::SourceInvalid, "no key apiKey");
        let over = (OverPrivileged, true, Reason::OverPrivileged, "read-write");
        let conflict = (Conflict, true, Reason::Conflict, "another writer");
        vec![
            (
                vec![env("a", &[synced]), env("b", &[synced])],
                true,
                Reason::Synced,
                "all 2 environment(s) synced",
                "2/2",
                vec![],
            ),
            (
                vec![env("a", &[synced]), env("b", &[missing])],
                false,
                Reason::SourceNotFound,
                "b: no Secret keys",
                "1/2",
                vec![],
            ),
            (
                vec![env("a", &[invalid]), env("b", &[missing])],
                false,
                Reason::SourceInvalid,
                "a: no key apiKey; b: no Secret keys",
                "0/2",
                vec![],
            ),
            (
                vec![
                    env("a", &[synced, over]),
                    env("b", &[synced, conflict]),
                    env("c", &[synced, over]),
                ],
                true,
                Reason::Synced,
                "all 3 environment(s) synced",
                "3/3",
                vec![
                    (OverPrivileged, "environments: a, c"),
                    (Conflict, "environments: b"),
                ],
            ),
        ]
    }

    #[test]
    fn the_roll_up_of_environments_into_the_resource() {
        use ConditionType::{Conflict, OverPrivileged};
        let cases = roll_up_cases();
        let t = tc(
            "{name: a, source: {secretRef: {name: k}}, target: {secretName: s, keys: [apiKey]}}",
        );
        for (environments, ready, reason, message, count, flags) in cases {
            let s = summarize(&t, environments);
            let r = conditions::find(&s.conditions, ConditionType::Ready).unwrap();
            let what = format!("{count} {message}");
            assert_eq!(
                conditions::is_true(&s.conditions, ConditionType::Ready),
                ready,
                "{what}"
            );
            assert_eq!(
                (r.reason.as_str(), r.message.as_str()),
                (reason.as_str(), message),
                "{what}"
            );
            assert_eq!(s.ready_environments.as_deref(), Some(count), "{what}");
            let raised: Vec<(ConditionType, &str)> = [OverPrivileged, Conflict]
                .into_iter()
                .filter_map(|f| conditions::find(&s.conditions, f).map(|c| (f, c.message.as_str())))
                .collect();
            let mut want = flags.clone();
            want.sort_by_key(|(f, _)| f.as_str());
            let mut raised = raised;
            raised.sort_by_key(|(f, _)| f.as_str());
            assert_eq!(raised, want, "{what}");
        }
    }

    #[test]
    fn a_flag_no_environment_raises_any_more_is_cleared() {
        let mut t = tc(
            "{name: a, source: {secretRef: {name: k}}, target: {secretName: s, keys: [apiKey]}}",
        );
        let over = (
            ConditionType::OverPrivileged,
            true,
            Reason::OverPrivileged,
            "read-write",
        );
        let synced = (ConditionType::Synced, true, Reason::Synced, "fine");
        t.status = Some(summarize(&t, vec![env("a", &[synced, over])]));
        let flagged = t.status.as_ref().unwrap();
        assert!(conditions::is_true(
            &flagged.conditions,
            ConditionType::OverPrivileged
        ));
        let s = summarize(&t, vec![env("a", &[synced])]);
        assert!(conditions::find(&s.conditions, ConditionType::OverPrivileged).is_none());
    }

    #[test]
    fn readiness_names_the_first_failing_environment() {
        let t = tc(
            "{name: a, source: {secretRef: {name: k}}, target: {secretName: s, keys: [apiKey]}}",
        );
        let mut ok = EnvironmentStatus {
            name: "a".into(),
            ..Default::default()
        };
        conditions::set(
            &mut ok.conditions,
            ConditionType::Synced,
            true,
            Reason::Synced,
            "fine",
            Some(4),
        );
        let mut bad = EnvironmentStatus {
            name: "b".into(),
            ..Default::default()
        };
        conditions::set(
            &mut bad.conditions,
            ConditionType::Synced,
            false,
            Reason::WriteFailed,
            "immutable",
            Some(4),
        );
        let s = summarize(&t, vec![ok.clone(), bad]);
        let ready = conditions::find(&s.conditions, ConditionType::Ready).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "WriteFailed")
        );
        assert_eq!(ready.message, "b: immutable");
        assert_eq!(s.ready_environments.as_deref(), Some("1/2"));
        assert_eq!(s.observed_generation, Some(4));
        let s = summarize(&t, vec![ok]);
        assert!(conditions::is_true(&s.conditions, ConditionType::Ready));
    }
}

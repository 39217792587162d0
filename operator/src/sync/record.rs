//! Pure: what an environment's status says after a sync or a refusal
//! (revision, fingerprints, conditions), plus the Events that announce a
//! change or the start of a refusal.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;

use super::plan::Plan;
use crate::conditions::{self, ConditionType, Reason};
use crate::context::Context;
use crate::events::Kind;
use crate::outcome::EnvOutcome;
use crate::refusal::{Refusal, Teardown};
use crate::resource::{CredentialFingerprint, Environment, EnvironmentStatus, TwitterCredential};
use crate::target::Target;
use crate::wake::WakeUp;

/// The status after a sync that reached the declared state.
pub fn synced(
    mut status: EnvironmentStatus,
    target: &Target,
    plan: &Plan,
    source: &crate::projection::Data,
    wrote: bool,
    generation: Option<i64>,
) -> EnvOutcome {
    let earlier = status.fingerprint.clone();
    let changed = earlier.as_deref() != Some(plan.content_fingerprint.as_str());
    status.target_secret = Some(target.secret_ref());
    if changed {
        status.revision += 1;
        status.fingerprint = Some(plan.content_fingerprint.clone());
    }
    if changed || wrote || status.last_synced.is_none() {
        status.last_synced = Some(conditions::now());
    }
    status.credentials = credentials(&status.credentials, &plan.data, conditions::now());
    let known: crate::projection::Data = source
        .iter()
        .filter(|(k, _)| keyguard_credentials::CredentialKey::from_secret_key(k).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    status.source_credentials = credentials(&status.source_credentials, &known, conditions::now());
    conditions::set(
        &mut status.conditions,
        ConditionType::Synced,
        true,
        Reason::Synced,
        format!(
            "Secret {} holds {} key(s)",
            target.secret_ref(),
            plan.data.len()
        ),
        generation,
    );
    conditions::clear(&mut status.conditions, ConditionType::TargetNotAllowed);
    conditions::clear(&mut status.conditions, ConditionType::Conflict);
    conditions::clear(
        &mut status.conditions,
        ConditionType::ReauthorizationRequired,
    );
    EnvOutcome {
        status,
        // A first projection has no workload running on older content.
        changed: changed && earlier.is_some(),
        wake: WakeUp::default(),
        projected_from: Some(source.clone()),
    }
}

/// Per-key fingerprints; `since` stays while the value does.
pub fn credentials(
    previous: &[CredentialFingerprint],
    data: &crate::projection::Data,
    now: Time,
) -> Vec<CredentialFingerprint> {
    data.iter()
        .map(|(key, value)| {
            let fingerprint = keyguard_credentials::fingerprint(value).to_string();
            let since = previous
                .iter()
                .find(|c| &c.key == key && c.fingerprint == fingerprint)
                .map(|c| c.since.clone())
                .unwrap_or_else(|| now.clone());
            CredentialFingerprint {
                key: key.clone(),
                fingerprint,
                since,
            }
        })
        .collect()
}

/// The status after a refusal.
pub fn refused(
    mut status: EnvironmentStatus,
    target: &Target,
    refusal: &Refusal,
    generation: Option<i64>,
) -> EnvOutcome {
    status.target_secret = Some(target.secret_ref());
    if refusal.teardown == Teardown::RemoveAll {
        status.fingerprint = None;
        status.credentials.clear();
    }
    conditions::set(
        &mut status.conditions,
        ConditionType::Synced,
        false,
        refusal.reason,
        refusal.message.clone(),
        generation,
    );
    for flag in [
        ConditionType::TargetNotAllowed,
        ConditionType::Conflict,
        ConditionType::ReauthorizationRequired,
    ] {
        if refusal.reason.flag() == Some(flag) {
            conditions::set(
                &mut status.conditions,
                flag,
                true,
                refusal.reason,
                refusal.message.clone(),
                generation,
            );
        } else {
            conditions::clear(&mut status.conditions, flag);
        }
    }
    EnvOutcome {
        status,
        changed: false,
        wake: refusal.wake(),
        projected_from: None,
    }
}

/// True when `refusal` starts now (not the same one as last time).
pub fn is_new_refusal(previous: &EnvironmentStatus, refusal: &Refusal) -> bool {
    !conditions::find(&previous.conditions, ConditionType::Synced).is_some_and(|c| {
        conditions::status(&previous.conditions, ConditionType::Synced) == Some(false)
            && c.reason == refusal.reason.as_str()
            && c.message == refusal.message
    })
}

/// One Warning Event when a refusal starts, not one per reconcile.
pub async fn warn_if_new(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    previous: &EnvironmentStatus,
    refusal: &Refusal,
) {
    if refusal.reason == Reason::NotSynced || !is_new_refusal(previous, refusal) {
        return;
    }
    let note = format!("{}: {}", env.name, refusal.message);
    ctx.events
        .publish(
            &tc.object_ref(&()),
            Kind::Warning,
            refusal.reason.as_str(),
            "Sync",
            &note,
            None,
        )
        .await;
}

/// A Normal Event for a write.
pub async fn announce(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    target: &Target,
    status: &EnvironmentStatus,
    existed: bool,
) {
    let verb = if existed {
        "restored or updated"
    } else {
        "created"
    };
    tracing::info!(target = %target.secret_ref(), fingerprint = ?status.fingerprint, revision = status.revision, "projected Secret {verb}");
    let note = format!(
        "{}: Secret {} {verb} with {} key(s), revision {}, fingerprint {}",
        env.name,
        target.secret_ref(),
        env.target.keys.len(),
        status.revision,
        status.fingerprint.clone().unwrap_or_default()
    );
    ctx.events
        .publish(
            &tc.object_ref(&()),
            Kind::Normal,
            "Synced",
            "Sync",
            &note,
            None,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn plan(value: &str) -> Plan {
        let data = BTreeMap::from([("apiKey".to_string(), value.as_bytes().to_vec())]);
        Plan {
            content_fingerprint: crate::projection::data_fingerprint(&data).to_string(),
            data,
            steps: vec![],
        }
    }

    fn target() -> Target {
        Target {
            namespace: "prod".into(),
            secret: "creds".into(),
            access: "keyguard-read-creds".into(),
        }
    }

    #[test]
    fn revision_moves_with_content_and_a_first_projection_restarts_nothing() {
        let first = synced(
            EnvironmentStatus::default(),
            &target(),
            &plan("a"),
            &plan("a").data,
            true,
            Some(1),
        );
        assert_eq!(
            first.status.source_credentials.len(),
            1,
            "apiKey is a credential key"
        );
        assert_eq!(first.status.revision, 1);
        assert!(!first.changed, "nothing ran on older content");
        let same = synced(
            first.status.clone(),
            &target(),
            &plan("a"),
            &Default::default(),
            false,
            Some(1),
        );
        assert_eq!(same.status.revision, 1);
        assert!(!same.changed);
        let restored = synced(
            first.status.clone(),
            &target(),
            &plan("a"),
            &Default::default(),
            true,
            Some(1),
        );
        assert_eq!(
            restored.status.revision, 1,
            "putting back a tampered value is no new revision"
        );
        let next = synced(
            first.status.clone(),
            &target(),
            &plan("b"),
            &Default::default(),
            true,
            Some(1),
        );
        assert_eq!(next.status.revision, 2);
        assert!(next.changed);
    }

    #[test]
    fn credential_fingerprints_keep_their_since_while_unchanged_and_hold_no_value() {
        let t0 = conditions::now();
        let a = credentials(&[], &plan("value-a").data, t0.clone());
        assert_eq!(a.len(), 1);
        assert!(a[0].fingerprint.starts_with("sha256:") && !a[0].fingerprint.contains("value-a"));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let again = credentials(&a, &plan("value-a").data, conditions::now());
        assert_eq!(again[0].since, t0);
        let changed = credentials(&a, &plan("value-b").data, conditions::now());
        assert_ne!(changed[0].since, t0);
        assert_ne!(changed[0].fingerprint, a[0].fingerprint);
    }

    #[test]
    fn refusals_raise_their_flag_and_clear_the_other() {
        let r = Refusal::new(Reason::Conflict, "taken", Teardown::RemoveAll);
        let out = refused(EnvironmentStatus::default(), &target(), &r, Some(3));
        assert!(conditions::is_true(
            &out.status.conditions,
            ConditionType::Conflict
        ));
        assert!(!conditions::is_true(
            &out.status.conditions,
            ConditionType::Synced
        ));
        assert!(
            conditions::find(&out.status.conditions, ConditionType::TargetNotAllowed).is_none()
        );
        assert!(is_new_refusal(&EnvironmentStatus::default(), &r));
        assert!(
            !is_new_refusal(&out.status, &r),
            "the same refusal again is not news"
        );
        let other = Refusal::new(Reason::TargetNotAllowed, "no", Teardown::RemoveAll);
        let out = refused(out.status, &target(), &other, Some(3));
        assert!(conditions::find(&out.status.conditions, ConditionType::Conflict).is_none());
        assert!(conditions::is_true(
            &out.status.conditions,
            ConditionType::TargetNotAllowed
        ));
    }
}

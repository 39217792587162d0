//! Restarting declared workloads after their credentials change: once per
//! content (a pod-template annotation holding a hash of every fingerprint
//! the workload depends on), at most once per minimum interval per
//! workload (the last content wins), and never because the operator itself
//! restarted. Each rollout is its own Event naming workload and revisions.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::context::Context;
use crate::events::Kind;
use crate::labels;
use crate::outcome::EnvOutcome;
use crate::resource::{Environment, TwitterCredential, WorkloadKind};
use crate::target::Target;

/// What to do about one workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    UpToDate,
    Now,
    /// Restarted too recently: try again after this long.
    After(Duration),
}

/// Pure: restart when the content the workload runs on is not the content
/// projected, unless it was restarted less than `min_interval` ago. A
/// workload the operator never restarted runs on whatever it started with,
/// so only a change seen now restarts it.
pub fn decide(
    applied: Option<&str>,
    desired: &str,
    changed_now: bool,
    last_restart: Option<Timestamp>,
    now: Timestamp,
    min_interval: Duration,
) -> Decision {
    if applied == Some(desired) || (applied.is_none() && !changed_now) {
        return Decision::UpToDate;
    }
    let Some(last) = last_restart else {
        return Decision::Now;
    };
    let since = now.duration_since(last).unsigned_abs();
    if since >= min_interval {
        Decision::Now
    } else {
        Decision::After(min_interval - since)
    }
}

/// One workload and what it depends on.
#[derive(Debug, Default)]
struct Dependents {
    changed: bool,
    fingerprints: Vec<String>,
    revisions: Vec<String>,
}

/// A workload: namespace, kind, name.
type Workload = (String, WorkloadKind, String);

/// Restarts what needs it. Marks `restart_pending` on each environment
/// whose workload could not be restarted (so a later reconcile still
/// owes it the restart); returns how soon to look again.
pub async fn restart_workloads(
    ctx: &Context,
    tc: &TwitterCredential,
    outcomes: &mut [(&Environment, EnvOutcome)],
) -> Option<Duration> {
    let mut workloads: BTreeMap<Workload, Dependents> = BTreeMap::new();
    for (env, outcome) in outcomes.iter() {
        if crate::consent::withdrawn_in(&outcome.status) {
            continue;
        }
        let ns = Target::of(tc, env).namespace;
        for w in &env.restart_targets {
            let d = workloads
                .entry((ns.clone(), w.kind, w.name.clone()))
                .or_default();
            d.changed |= outcome.changed || outcome.status.restart_pending;
            d.fingerprints
                .push(outcome.status.fingerprint.clone().unwrap_or_default());
            d.revisions
                .push(format!("{} revision {}", env.name, outcome.status.revision));
        }
    }
    let mut next: Option<Duration> = None;
    let mut failed: Vec<Workload> = Vec::new();
    for ((ns, kind, name), mut d) in workloads {
        d.fingerprints.sort();
        let hash =
            keyguard_credentials::fingerprint(d.fingerprints.join(",").as_bytes()).to_string();
        let hash = hash.trim_start_matches("sha256:").to_string();
        let wait = match restart_one(ctx, tc, &ns, kind, &name, &hash, &d).await {
            Ok(wait) => wait,
            Err(()) => {
                failed.push((ns, kind, name));
                Some(ctx.retry)
            }
        };
        if let Some(wait) = wait {
            next = Some(next.map_or(wait, |n| n.min(wait)));
        }
    }
    for (env, outcome) in outcomes.iter_mut() {
        outcome.status.restart_pending = owes_restart(&Target::of(tc, env).namespace, env, &failed);
    }
    next
}

/// Pure: whether one of `env`'s workloads is among those that failed.
fn owes_restart(ns: &str, env: &Environment, failed: &[Workload]) -> bool {
    env.restart_targets.iter().any(|w| {
        failed
            .iter()
            .any(|(n, k, name)| n == ns && *k == w.kind && *name == w.name)
    })
}

async fn restart_one(
    ctx: &Context,
    tc: &TwitterCredential,
    ns: &str,
    kind: WorkloadKind,
    name: &str,
    hash: &str,
    d: &Dependents,
) -> Result<Option<Duration>, ()> {
    let resource = match kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &resource);
    let workload = match api.get_opt(name).await {
        Ok(Some(w)) => w,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(workload = %format!("{ns}/{name}"), error = %e, "reading a restart target failed");
            return if d.changed {
                Err(())
            } else {
                Ok(Some(ctx.retry))
            };
        }
    };
    let applied = workload.data["spec"]["template"]["metadata"]["annotations"]
        [labels::RESTARTED_FOR]
        .as_str();
    let last = workload
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::RESTARTED_AT))
        .and_then(|t| t.parse::<Timestamp>().ok());
    let now = Timestamp::now();
    match decide(
        applied,
        hash,
        d.changed,
        last,
        now,
        ctx.restart_min_interval,
    ) {
        Decision::UpToDate => Ok(None),
        Decision::After(wait) => Ok(Some(wait)),
        Decision::Now => {
            let what = format!("{kind:?} {ns}/{name}");
            restart_now(ctx, tc, &api, &what, name, hash, now, d)
                .await
                .map(|_| None)
        }
    }
}

/// Patches the pod template (a rollout) and says so in an Event.
#[allow(clippy::too_many_arguments)]
async fn restart_now(
    ctx: &Context,
    tc: &TwitterCredential,
    api: &Api<DynamicObject>,
    what: &str,
    name: &str,
    hash: &str,
    now: Timestamp,
    d: &Dependents,
) -> Result<(), ()> {
    let patch = json!({
        "metadata": {"annotations": {labels::RESTARTED_AT: now.to_string()}},
        "spec": {"template": {"metadata": {"annotations": {labels::RESTARTED_FOR: hash}}}}
    });
    let result = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
    let (event_kind, reason, note) = match &result {
        Ok(_) => (
            Kind::Normal,
            "Restarted",
            format!("{what} restarted for {}", d.revisions.join(", ")),
        ),
        Err(e) => (
            Kind::Warning,
            "RestartFailed",
            format!("{what}: {e}; will retry"),
        ),
    };
    ctx.events
        .publish(
            &tc.object_ref(&()),
            event_kind,
            reason,
            "Restart",
            &note,
            None,
        )
        .await;
    result.map(|_| ()).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_environment_owes_a_restart_only_for_its_own_failed_workloads() {
        let env: Environment = serde_json::from_value(json!({
            "name": "prod",
            "source": {"secretRef": {"name": "keys"}},
            "target": {"secretName": "out", "keys": ["apiKey"]},
            "restartTargets": [{"kind": "Deployment", "name": "bot"}]
        }))
        .unwrap();
        let failed = |ns: &str, kind, name: &str| vec![(ns.to_string(), kind, name.to_string())];
        let cases = [
            (
                "its workload failed",
                failed("team", WorkloadKind::Deployment, "bot"),
                true,
            ),
            ("nothing failed", vec![], false),
            (
                "same name, other namespace",
                failed("other", WorkloadKind::Deployment, "bot"),
                false,
            ),
            (
                "same name, other kind",
                failed("team", WorkloadKind::StatefulSet, "bot"),
                false,
            ),
            (
                "another workload",
                failed("team", WorkloadKind::Deployment, "web"),
                false,
            ),
        ];
        for (what, failed, want) in cases {
            assert_eq!(owes_restart("team", &env, &failed), want, "{what}");
        }
    }

    #[test]
    fn restarts_once_per_content_and_no_more_often_than_the_interval() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let min = Duration::from_secs(60);
        let at = |s: i64| {
            t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s))
                .unwrap()
        };
        let cases = [
            (
                "same content",
                Some("h1"),
                "h1",
                true,
                None,
                t0,
                Decision::UpToDate,
            ),
            (
                "never restarted, nothing changed (operator restart)",
                None,
                "h1",
                false,
                None,
                t0,
                Decision::UpToDate,
            ),
            (
                "never restarted, content changed",
                None,
                "h2",
                true,
                None,
                t0,
                Decision::Now,
            ),
            (
                "new content, long ago",
                Some("h1"),
                "h2",
                false,
                Some(t0),
                at(61),
                Decision::Now,
            ),
            (
                "new content, just restarted",
                Some("h1"),
                "h2",
                true,
                Some(t0),
                at(10),
                Decision::After(Duration::from_secs(50)),
            ),
            (
                "deferred restart comes due",
                Some("h1"),
                "h3",
                false,
                Some(t0),
                at(60),
                Decision::Now,
            ),
        ];
        for (what, applied, desired, changed, last, now, want) in cases {
            assert_eq!(
                decide(applied, desired, changed, last, now, min),
                want,
                "{what}"
            );
        }
    }
}

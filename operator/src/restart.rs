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

use crate::controller::Context;
use crate::events::Kind;
use crate::labels;
use crate::resource::{Environment, TwitterCredential, WorkloadKind};
use crate::sync::{EnvOutcome, Target};

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

/// Restarts what needs it; returns how soon to look again for a deferred one.
pub async fn restart_workloads(
    ctx: &Context,
    tc: &TwitterCredential,
    outcomes: &[(&Environment, EnvOutcome)],
) -> Option<Duration> {
    let mut workloads: BTreeMap<(String, WorkloadKind, String), Dependents> = BTreeMap::new();
    for (env, outcome) in outcomes {
        let ns = Target::of(tc, env).namespace;
        for w in &env.restart_targets {
            let d = workloads
                .entry((ns.clone(), w.kind, w.name.clone()))
                .or_default();
            d.changed |= outcome.changed;
            d.fingerprints
                .push(outcome.status.fingerprint.clone().unwrap_or_default());
            d.revisions
                .push(format!("{} revision {}", env.name, outcome.status.revision));
        }
    }
    let mut next: Option<Duration> = None;
    for ((ns, kind, name), mut d) in workloads {
        d.fingerprints.sort();
        let hash =
            keyguard_credentials::fingerprint(d.fingerprints.join(",").as_bytes()).to_string();
        let hash = hash.trim_start_matches("sha256:").to_string();
        if let Some(wait) = restart_one(ctx, tc, &ns, kind, &name, &hash, &d).await {
            next = Some(next.map_or(wait, |n| n.min(wait)));
        }
    }
    next
}

async fn restart_one(
    ctx: &Context,
    tc: &TwitterCredential,
    ns: &str,
    kind: WorkloadKind,
    name: &str,
    hash: &str,
    d: &Dependents,
) -> Option<Duration> {
    let resource = match kind {
        WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
        WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &resource);
    let workload = match api.get_opt(name).await {
        Ok(Some(w)) => w,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(workload = %format!("{ns}/{name}"), error = %e, "reading a restart target failed");
            return Some(ctx.retry);
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
        Decision::UpToDate => None,
        Decision::After(wait) => Some(wait),
        Decision::Now => {
            let patch = json!({
                "metadata": {"annotations": {labels::RESTARTED_AT: now.to_string()}},
                "spec": {"template": {"metadata": {"annotations": {labels::RESTARTED_FOR: hash}}}}
            });
            let what = format!("{kind:?} {ns}/{name}");
            let (event_kind, reason, note) = match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => (
                    Kind::Normal,
                    "Restarted",
                    format!("{what} restarted for {}", d.revisions.join(", ")),
                ),
                Err(e) => (Kind::Warning, "RestartFailed", format!("{what}: {e}")),
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
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

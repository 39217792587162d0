//! Removing what a TwitterCredential owned once it no longer declares it,
//! is deleted, or vanished without its finalizer (a tenant can strip it).
//!
//! Only objects whose claim verifies (see `ownership.rs`) are touched, each
//! deleted with its uid and resourceVersion as preconditions; labels alone
//! never make the operator delete. Deletions are noticed from a watch of
//! the resources, and a sweep after every (re)list catches those missed
//! while the operator was down, so an idle operator sends no requests.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::context::Context;
use crate::events::Kind;
use crate::labels::{self, MANAGED_BY};
use crate::objects::{delete, Existing, ObjectKind};
use crate::ownership::Owner;
use crate::resource::{DeletionPolicy, TwitterCredential};
use crate::series::{self, Seen};

/// What to do with one owned object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    Keep,
    Delete,
    /// Keep the object but drop the operator's labels and claim, so it is
    /// no longer managed (a retained Secret).
    Release,
}

/// An object the operator can prove it created.
#[derive(Debug, Clone)]
pub struct Owned {
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
    pub is_state: bool,
    /// A projected Secret whose resource said `deletionPolicy: Retain`.
    pub retained: bool,
    pub existing: Existing,
}

/// Objects with a genuine claim for `owner` (or, when `owner` is `None`,
/// for anyone), found by label.
pub async fn list_owned(ctx: &Context, owner: Option<&Owner>) -> kube::Result<Vec<(Owner, Owned)>> {
    let selector = match owner {
        Some(o) => format!(
            "{}={},{}={}",
            MANAGED_BY.0,
            MANAGED_BY.1,
            labels::OWNER_UID,
            o.uid
        ),
        None => format!("{}={}", MANAGED_BY.0, MANAGED_BY.1),
    };
    let lp = ListParams::default().labels(&selector);
    let mut metas: Vec<(ObjectKind, ObjectMeta)> = Vec::new();
    list_metadata::<Secret>(ctx, &lp, ObjectKind::Secret, &mut metas).await?;
    list_metadata::<Role>(ctx, &lp, ObjectKind::Role, &mut metas).await?;
    list_metadata::<RoleBinding>(ctx, &lp, ObjectKind::RoleBinding, &mut metas).await?;
    Ok(metas
        .into_iter()
        .filter_map(|(kind, meta)| {
            let verified = ctx.claims.verified_owner(kind, &meta)?;
            if owner.is_some_and(|o| o != &verified) {
                return None;
            }
            Some((verified, owned(kind, &meta)))
        })
        .collect())
}

/// The metadata of every `K` the selector picks, in every namespace the
/// operator watches.
async fn list_metadata<K>(
    ctx: &Context,
    lp: &ListParams,
    kind: ObjectKind,
    out: &mut Vec<(ObjectKind, ObjectMeta)>,
) -> kube::Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    for api in ctx.scope.apis::<K>(&ctx.client) {
        let items = api.list_metadata(lp).await?.items;
        out.extend(items.into_iter().map(|m| (kind, m.metadata)));
    }
    Ok(())
}

/// Pure: what the operator knows of one object it owns.
fn owned(kind: ObjectKind, meta: &ObjectMeta) -> Owned {
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key));
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
    Owned {
        retained: annotation(labels::DELETION_POLICY).is_some_and(|p| p == "Retain"),
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        is_state: label(labels::PART).is_some_and(|p| p == "state"),
        existing: Existing {
            kind,
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
        },
    }
}

/// Disposes of `owner`'s objects as `decide` says; returns how many went.
pub async fn dispose(
    ctx: &Context,
    owner: &Owner,
    decide: impl Fn(&Owned) -> Disposal,
) -> kube::Result<usize> {
    let mut removed = 0;
    // RoleBindings first: access goes before what it grants.
    let mut owned = list_owned(ctx, Some(owner)).await?;
    owned.sort_by_key(|(_, o)| match o.kind {
        ObjectKind::RoleBinding => 0,
        ObjectKind::Role => 1,
        _ => 2,
    });
    // A 409 (the object changed since it was listed) is not a deletion:
    // the others are still disposed of, and the error makes the caller
    // look again, so a lost race never leaves a piece behind for good.
    let mut lost_race = None;
    for (_, o) in owned {
        match decide(&o) {
            Disposal::Keep => {}
            Disposal::Delete => {
                match delete(&ctx.client, &o.namespace, &o.existing).await {
                    Ok(()) => removed += 1,
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        lost_race = Some(kube::Error::Api(e));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                info!(owner = %format!("{}/{}", owner.namespace, owner.name), object = %format!("{} {}/{}", o.kind, o.namespace, o.name), "removed an object no longer declared");
            }
            Disposal::Release => release(ctx, &o).await?,
        }
    }
    match lost_race {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

/// Drops the operator's labels and claim from a retained Secret.
async fn release(ctx: &Context, o: &Owned) -> kube::Result<()> {
    let patch = json!({"metadata": {
        "resourceVersion": o.existing.resource_version,
        "labels": {MANAGED_BY.0: null, labels::OWNER_UID: null},
        "annotations": {labels::CLAIM: null, labels::OWNER: null},
    }});
    Api::<Secret>::namespaced(ctx.client.clone(), &o.namespace)
        .patch(&o.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// How a deleted resource's objects go: everything, except projected
/// Secrets that `Retain` keeps (released from management).
pub fn on_delete(policy: Option<DeletionPolicy>) -> impl Fn(&Owned) -> Disposal {
    move |o| match (policy, o.kind, o.is_state) {
        (Some(DeletionPolicy::Retain), ObjectKind::Secret, false) => Disposal::Release,
        _ => Disposal::Delete,
    }
}

/// How a vanished resource's objects go, when only they are left to say
/// what its deletion policy was: as [`on_delete`] with that policy.
pub fn as_recorded(o: &Owned) -> Disposal {
    let policy = o.retained.then_some(DeletionPolicy::Retain);
    on_delete(policy)(o)
}

/// Watches resources for deletions and sweeps after every (re)list.
pub async fn run(ctx: Arc<Context>) {
    let api: Api<TwitterCredential> = Api::all(ctx.client.clone());
    let mut seen = SeenResources::default();
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(error = %e, "watching TwitterCredentials for deletions");
                continue;
            }
        };
        for went in seen.observe(&event) {
            ctx.metrics.forget_gone(&went);
        }
        match event {
            watcher::Event::InitDone => {
                if let Err(e) = sweep(&ctx, &seen.uids()).await {
                    warn!(error = %e, "orphan sweep failed; the next relist tries again");
                }
            }
            watcher::Event::Delete(tc) => dispose_deleted(&ctx, &tc).await,
            _ => {}
        }
    }
}

/// What the deletion watch has seen of every resource, by uid, and what a
/// relist in progress has listed so far.
#[derive(Debug, Default)]
pub struct SeenResources {
    live: HashMap<String, Seen>,
    listing: HashMap<String, Seen>,
}

impl SeenResources {
    /// Pure: takes in one watch event; returns the metric series that
    /// went with it. No Delete event comes for what vanished during a
    /// relist, so the relist's end compares the listing with what was live.
    pub fn observe(&mut self, event: &watcher::Event<TwitterCredential>) -> Vec<series::Gone> {
        let uid = |tc: &TwitterCredential| tc.uid().unwrap_or_default();
        match event {
            watcher::Event::Init => {
                self.listing.clear();
                vec![]
            }
            watcher::Event::InitApply(tc) => {
                self.listing.insert(uid(tc), Seen::of(tc));
                vec![]
            }
            watcher::Event::InitDone => {
                let went = series::gone(&self.live, &self.listing);
                self.live = std::mem::take(&mut self.listing);
                went
            }
            watcher::Event::Apply(tc) => {
                let seen = Seen::of(tc);
                let dropped = self
                    .live
                    .get(&uid(tc))
                    .and_then(|old| series::dropped_environments(old, &seen));
                self.live.insert(uid(tc), seen);
                dropped
                    .map(series::Gone::Environments)
                    .into_iter()
                    .collect()
            }
            watcher::Event::Delete(tc) => {
                self.live.remove(&uid(tc));
                vec![series::Gone::Resource(Seen::of(tc))]
            }
        }
    }

    /// The uids of the resources that exist, as of the last event.
    pub fn uids(&self) -> HashSet<String> {
        self.live.keys().cloned().collect()
    }
}

/// Removes a deleted resource's objects, as its deletion policy says.
async fn dispose_deleted(ctx: &Context, tc: &TwitterCredential) {
    let owner = Owner::of(tc);
    match dispose(ctx, &owner, on_delete(tc.spec.deletion_policy)).await {
        Ok(0) => {}
        Ok(n) => report(ctx, &owner, n).await,
        Err(e) => {
            warn!(error = %e, "removing a deleted resource's objects failed; the next sweep tries again")
        }
    }
}

/// Removes objects whose owner no longer exists.
async fn sweep(ctx: &Context, live: &HashSet<String>) -> kube::Result<()> {
    let mut gone: Vec<Owner> = Vec::new();
    for (owner, _) in list_owned(ctx, None).await? {
        if live.contains(&owner.uid) || gone.contains(&owner) {
            continue;
        }
        // Created since the list? Ask the apiserver before deleting.
        let api: Api<TwitterCredential> = Api::namespaced(ctx.client.clone(), &owner.namespace);
        if api
            .get_opt(&owner.name)
            .await?
            .is_some_and(|tc| tc.uid().as_deref() == Some(owner.uid.as_str()))
        {
            continue;
        }
        gone.push(owner);
    }
    for owner in gone {
        let n = dispose(ctx, &owner, as_recorded).await?;
        report(ctx, &owner, n).await;
    }
    Ok(())
}

/// Orphans are logged, counted and announced in the owner's namespace.
async fn report(ctx: &Context, owner: &Owner, removed: usize) {
    info!(owner = %format!("{}/{}", owner.namespace, owner.name), removed, "removed the objects of a deleted TwitterCredential");
    ctx.metrics.orphans_removed(removed as u64);
    let about = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("keyguard.dev/v1alpha1".into()),
        kind: Some("TwitterCredential".into()),
        namespace: Some(owner.namespace.clone()),
        name: Some(owner.name.clone()),
        uid: Some(owner.uid.clone()),
        ..Default::default()
    };
    let note = format!(
        "removed {removed} object(s) left by deleted TwitterCredential {}/{} (uid {})",
        owner.namespace, owner.name, owner.uid
    );
    ctx.events
        .publish(
            &about,
            Kind::Normal,
            "OrphansRemoved",
            "Cleanup",
            &note,
            None,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(kind: ObjectKind, is_state: bool, retained: bool) -> Owned {
        Owned {
            kind,
            namespace: "prod".into(),
            name: "out".into(),
            is_state,
            retained,
            existing: Existing {
                kind,
                name: "out".into(),
                uid: None,
                resource_version: None,
            },
        }
    }

    #[test]
    fn retain_keeps_projected_secrets_whether_the_resource_or_its_objects_say_so() {
        use Disposal::{Delete, Release};
        let retain = Some(DeletionPolicy::Retain);
        let cases = [
            (
                "projected Secret, Retain",
                owned(ObjectKind::Secret, false, true),
                retain,
                Release,
            ),
            (
                "projected Secret, Delete",
                owned(ObjectKind::Secret, false, false),
                None,
                Delete,
            ),
            (
                "state record, Retain",
                owned(ObjectKind::Secret, true, true),
                retain,
                Delete,
            ),
            (
                "Role, Retain",
                owned(ObjectKind::Role, false, true),
                retain,
                Delete,
            ),
            (
                "RoleBinding, Retain",
                owned(ObjectKind::RoleBinding, false, true),
                retain,
                Delete,
            ),
        ];
        for (what, o, policy, want) in cases {
            assert_eq!(on_delete(policy)(&o), want, "{what}: deleted resource");
            assert_eq!(
                as_recorded(&o),
                want,
                "{what}: vanished resource, as recorded"
            );
        }
    }

    fn resource(uid: &str, name: &str, envs: &[&str]) -> TwitterCredential {
        let envs: Vec<serde_json::Value> = envs
            .iter()
            .map(|e| json!({"name": e, "source": {"secretRef": {"name": "keys"}}, "target": {"secretName": format!("out-{e}"), "keys": ["apiKey"]}}))
            .collect();
        serde_json::from_value(
            json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": name, "namespace": "team", "uid": uid},
            "spec": {"environments": envs}}),
        )
        .unwrap()
    }

    /// The deletion flake: a resource deleted while the watch relisted sends
    /// no Delete event. Forces that relist and checks, on the metrics the
    /// operator serves, that its series go and the survivor's stay.
    #[test]
    fn a_resource_that_vanished_during_a_relist_leaves_no_series() {
        use watcher::Event::*;
        let metrics = crate::metrics::Metrics::default();
        let (gone, kept) = (
            resource("1", "gone-bot", &["prod"]),
            resource("2", "kept-bot", &["prod"]),
        );
        let mut seen = SeenResources::default();
        for tc in [&gone, &kept] {
            assert!(seen.observe(&Apply(tc.clone())).is_empty());
            metrics.reconciled(tc, std::time::Duration::from_millis(1));
            metrics.verified(tc, "prod", true);
        }
        let relist = [Init, InitApply(kept.clone()), InitDone];
        let went: Vec<series::Gone> = relist.iter().flat_map(|e| seen.observe(e)).collect();
        for g in &went {
            metrics.forget_gone(g);
        }
        let text = metrics.render();
        assert!(
            !text.contains("gone-bot"),
            "series of the vanished resource stay:\n{text}"
        );
        assert!(
            text.contains("kept-bot"),
            "the survivor's series went too:\n{text}"
        );
        assert_eq!(seen.uids(), HashSet::from(["2".to_string()]));
    }

    #[test]
    fn deletions_and_dropped_environments_are_what_goes() {
        use watcher::Event::*;
        let mut seen = SeenResources::default();
        seen.observe(&Apply(resource("1", "bot", &["prod", "staging"])));
        assert_eq!(
            seen.observe(&Apply(resource("1", "bot", &["prod"]))),
            [series::Gone::Environments(Seen::of(&resource(
                "1",
                "bot",
                &["staging"]
            )))]
        );
        assert_eq!(
            seen.observe(&Delete(resource("1", "bot", &["prod"]))),
            [series::Gone::Resource(Seen::of(&resource(
                "1",
                "bot",
                &["prod"]
            )))]
        );
        assert!(seen.uids().is_empty());
        assert!(seen.observe(&Init).is_empty() && seen.observe(&InitDone).is_empty());
    }
}

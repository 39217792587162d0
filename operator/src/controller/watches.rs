//! What triggers a reconcile: TwitterCredentials; every Secret as metadata
//! only and without a cache, so memory does not grow with the cluster; the
//! operator's own Secrets, Roles and RoleBindings, and namespaces'
//! metadata, cached so a resync reads them without a GET (`caches.rs`).
//! `triggers.rs` maps each event to the resources it concerns.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::Api;

use super::triggers;
use crate::caches;
use crate::context::Context;
use crate::labels::{self, MANAGED_BY};
use crate::resource::TwitterCredential;
use crate::stored_credential::StoredCredential;

/// Adds every input of a reconcile to `controller` as a trigger
/// (`triggers.rs` maps each event to the resources it concerns) and
/// returns the caches that the watches of the operator's own objects and
/// of namespaces fill (`caches.rs`). Other Secrets (sources, and the
/// cluster's unrelated ones) are watched as metadata only and not cached,
/// so memory does not grow with the cluster.
pub fn watch_inputs(
    controller: Controller<StoredCredential>,
    ctx: &Arc<Context>,
    credentials: kube::runtime::reflector::Store<StoredCredential>,
) -> (Controller<StoredCredential>, caches::Stores) {
    let client = &ctx.client;
    let managed = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let watch = watcher(Api::all(client.clone()), watcher::Config::default());
    let (namespaces, touched) = caches::cached(watch, caches::slim_namespace, caches::no_key);
    let store = credentials.clone();
    let controller = controller.watches_stream(touched, move |n: PartialObjectMeta<Namespace>| {
        stored(triggers::for_namespace(&store.state(), &n.metadata))
    });
    let (controller, secrets) = watch_secrets(controller, ctx, &managed);
    let (controller, roles) = watch_owned(controller, ctx, &managed, caches::slim_role);
    let (controller, bindings) = watch_owned(controller, ctx, &managed, caches::slim_binding);
    let stores = caches::Stores {
        credentials,
        namespaces,
        secrets,
        roles,
        bindings,
    };
    (controller, stores)
}

/// Source Secrets (by name, metadata only) and the operator's own
/// Secrets (cached, by label) as triggers; the caches of the latter.
fn watch_secrets(
    mut controller: Controller<StoredCredential>,
    ctx: &Arc<Context>,
    managed: &watcher::Config,
) -> (Controller<StoredCredential>, caches::Scoped<Secret>) {
    let client = &ctx.client;
    // Secrets not labeled as ours: sources (by name), as metadata only.
    // Secrets, Roles and RoleBindings labeled as ours are cached in full and
    // trigger from the same stream that fills their cache, so a reconcile
    // they trigger finds them in it. Cluster-wide, or one watch per
    // namespace in scope (namespaced mode has no cluster-wide rights).
    for api in ctx.scope.apis::<PartialObjectMeta<Secret>>(client) {
        let ctx = ctx.clone();
        controller = controller.watches(api, watcher::Config::default(), move |s| {
            if labels::is_managed(&s.metadata) || ctx.own_writes.is_own(&s.metadata) {
                return Vec::new();
            }
            let refs = triggers::for_secret(&ctx.index, &s.metadata);
            // When a source's change reached the operator (latency benches).
            tracing::trace!(namespace = ?s.metadata.namespace, secret = ?s.metadata.name, readers = refs.len(), "Secret event");
            stored(refs)
        });
    }
    let mut secrets = BTreeMap::new();
    for (namespace, api) in ctx.scope.scoped_apis::<Secret>(client) {
        let (reader, touched) = caches::cached(
            watcher(api, managed.clone()),
            caches::slim_secret,
            caches::minted_from,
        );
        let ctx = ctx.clone();
        controller = controller.watches_stream(touched, move |s: Secret| {
            // The owner's rotation is the operator's own write, and
            // still news to the environments that follow it.
            let mut refs = triggers::for_app(&ctx, &s);
            if !ctx.own_writes.is_own(&s.metadata) {
                refs.extend(triggers::for_secret(&ctx.index, &s.metadata));
            }
            stored(refs)
        });
        secrets.insert(namespace, reader);
    }
    (controller, caches::Scoped(secrets))
}

/// Watches, caches and triggers on the operator's own objects of kind `K`
/// (Roles, RoleBindings): an event triggers the resource they name as
/// owner, unless it is the operator's own write.
fn watch_owned<K>(
    mut controller: Controller<StoredCredential>,
    ctx: &Arc<Context>,
    managed: &watcher::Config,
    slim: fn(&mut K),
) -> (Controller<StoredCredential>, caches::Scoped<K>)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut stores = BTreeMap::new();
    for (namespace, api) in ctx.scope.scoped_apis::<K>(&ctx.client) {
        let (reader, touched) = caches::cached(watcher(api, managed.clone()), slim, caches::no_key);
        let ctx = ctx.clone();
        controller = controller.watches_stream(touched, move |o: K| {
            stored(triggers::owner_of(o.meta()).filter(|_| !ctx.own_writes.is_own(o.meta())))
        });
        stores.insert(namespace, reader);
    }
    (controller, caches::Scoped(stores))
}

/// The triggers name resources as TwitterCredentials; the controller's
/// queue holds them as stored in its cache (`stored_credential.rs`).
fn stored(
    refs: impl IntoIterator<Item = ObjectRef<TwitterCredential>>,
) -> Vec<ObjectRef<StoredCredential>> {
    refs.into_iter().map(stored_ref).collect()
}

pub(super) fn stored_ref(r: ObjectRef<TwitterCredential>) -> ObjectRef<StoredCredential> {
    let mut stored = ObjectRef::new(&r.name);
    stored.namespace = r.namespace;
    stored
}

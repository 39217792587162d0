//! Every read one environment's sync needs, done before anything is
//! decided. Values are read from the source Secret and the state record
//! only; a target Secret is read to compare, never as a source of values.
//!
//! The target's namespace, Secret, Role and RoleBinding come from the
//! watches' caches when they can tell (`caches.rs`), else from a GET; the
//! source and the state record are always read afresh (they hold the
//! values, and rotation must never act on a stale step).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::{Api, ResourceExt};

use crate::caches::Scoped;
use crate::context::Context;
use crate::reads::AlreadyRead;
use crate::resource::{Environment, TwitterCredential};
use crate::state_record;
use crate::target::Target;

/// What the cluster holds for one environment.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The target namespace's labels, when it is another namespace that
    /// exists; `None` for a missing one.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// True when the target is the resource's own namespace.
    pub own_namespace: bool,
    pub source: Option<Secret>,
    /// The state record holding derived credentials (see `state_record.rs`).
    pub state: Option<Secret>,
    pub secret: Option<Secret>,
    pub role: Option<Role>,
    pub binding: Option<RoleBinding>,
    /// Some of the above came from a cache, which may lag by an event.
    pub from_cache: bool,
}

/// Where the target's objects are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// The watches' caches where they can tell, GETs for the rest.
    Cached,
    /// GETs only: to confirm before refusing or tearing down.
    Fresh,
}

pub async fn observe(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    target: &Target,
    read: AlreadyRead,
    reads: Reads,
) -> kube::Result<Observed> {
    let own = tc.namespace().unwrap_or_default();
    let stores = ctx.caches.get().filter(|_| reads == Reads::Cached);
    let mut observed = Observed {
        own_namespace: target.namespace == own,
        ..Default::default()
    };
    if !observed.own_namespace {
        let cached = stores.as_ref().and_then(|s| s.namespace(&target.namespace));
        let namespace = match cached {
            Some(n) => {
                observed.from_cache = true;
                n.map(|n| n.labels().clone())
            }
            None => Api::<PartialObjectMeta<Namespace>>::all(ctx.client.clone())
                .get_metadata_opt(&target.namespace)
                .await?
                .map(|n| n.labels().clone()),
        };
        match namespace {
            Some(labels) => observed.namespace_labels = Some(labels),
            None => return Ok(observed),
        }
    }
    let sources: Api<Secret> = Api::namespaced(ctx.client.clone(), &own);
    observed.source = match read.source {
        Some(source) => source,
        None => sources.get_opt(&env.source.secret_ref.name).await?,
    };
    if state_record::needs_state(env) {
        observed.state = match read.state {
            Some(state) => state,
            None => sources.get_opt(&state_record::state_name(tc, env)).await?,
        };
    }
    let (ns, c) = (&target.namespace, &ctx.client);
    let stores = stores.as_deref();
    let (secret, a) = cached_or_get(c, ns, &target.secret, stores.map(|s| &s.secrets)).await?;
    let (role, b) = cached_or_get(c, ns, &target.access, stores.map(|s| &s.roles)).await?;
    let (binding, d) = cached_or_get(c, ns, &target.access, stores.map(|s| &s.bindings)).await?;
    // Only the cache's own copies hold digests: a marker someone put on
    // the object itself means nothing.
    observed.secret = secret.map(|s| match a {
        true => s,
        false => crate::caches::without_digest_marker(s),
    });
    observed.role = role;
    observed.binding = binding;
    observed.from_cache |= a || b || d;
    Ok(observed)
}

/// The object from `cache` when it can tell (present or absent), else
/// from a GET; and whether it came from the cache.
async fn cached_or_get<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    cache: Option<&Scoped<K>>,
) -> kube::Result<(Option<K>, bool)>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
        + 'static,
{
    if let Some(cached) = cache.and_then(|c| c.get(namespace, name)) {
        return Ok((cached, true));
    }
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    Ok((api.get_opt(name).await?, false))
}

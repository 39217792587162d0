//! Every read one environment's sync needs, done before anything is
//! decided. Values are read from the source Secret and the state record
//! only; a target Secret is read to compare, never as a source of values.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::core::PartialObjectMeta;
use kube::{Api, ResourceExt};

use super::Target;
use crate::controller::Context;
use crate::resource::{Environment, TwitterCredential};
use crate::rotation::state;

/// What the cluster holds for one environment.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The target namespace's labels, when it is another namespace that
    /// exists; `None` for a missing one.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// True when the target is the resource's own namespace.
    pub own_namespace: bool,
    pub source: Option<Secret>,
    /// The state record holding derived credentials (see `mint.rs`).
    pub state: Option<Secret>,
    pub secret: Option<Secret>,
    pub role: Option<Role>,
    pub binding: Option<RoleBinding>,
}

/// What this reconcile already read (the rotation step reads the source
/// and the state record first), so it is not read again: `None` is not
/// read yet, `Some(None)` read and absent.
#[derive(Debug, Clone, Default)]
pub struct AlreadyRead {
    pub source: Option<Option<Secret>>,
    pub state: Option<Option<Secret>>,
}

pub async fn observe(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &Environment,
    target: &Target,
    read: AlreadyRead,
) -> kube::Result<Observed> {
    let own = tc.namespace().unwrap_or_default();
    let mut observed = Observed {
        own_namespace: target.namespace == own,
        ..Default::default()
    };
    if !observed.own_namespace {
        let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
        match namespaces.get_metadata_opt(&target.namespace).await? {
            Some(ns) => observed.namespace_labels = Some(ns.labels().clone()),
            None => return Ok(observed),
        }
    }
    let sources: Api<Secret> = Api::namespaced(ctx.client.clone(), &own);
    observed.source = match read.source {
        Some(source) => source,
        None => sources.get_opt(&env.source.secret_ref.name).await?,
    };
    if state::needs_state(env) {
        observed.state = match read.state {
            Some(state) => state,
            None => sources.get_opt(&state::state_name(tc, env)).await?,
        };
    }
    let c = ctx.client.clone();
    observed.secret = Api::<Secret>::namespaced(c.clone(), &target.namespace)
        .get_opt(&target.secret)
        .await?;
    observed.role = Api::<Role>::namespaced(c.clone(), &target.namespace)
        .get_opt(&target.access)
        .await?;
    observed.binding = Api::<RoleBinding>::namespaced(c, &target.namespace)
        .get_opt(&target.access)
        .await?;
    Ok(observed)
}

//! The writes of a sync, and nothing else. Creates fail when the name is
//! taken (two owners racing for one target cannot both win a piece);
//! replaces and deletes carry the observed resourceVersion (and uid), so an
//! object that changed hands in between is never overwritten or deleted.
//! When a create loses a race, what this pass created is rolled back, so
//! a target's Secret, Role and RoleBinding belong to one resource or none.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PostParams;
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::debug;

use super::plan::{describe, Object, Step};
use crate::conditions::Reason;
use crate::context::Context;
use crate::objects::ObjectKind;
use crate::objects::{delete, Existing};
use crate::refusal::{Refusal, Teardown};
use crate::target::Target;

/// Runs `steps` in order. Returns whether anything was written; a refusal
/// says whether any step succeeded before it.
pub async fn apply(
    ctx: &Context,
    target: &Target,
    steps: &[Step],
    teardown: bool,
) -> Result<bool, Refusal> {
    let mut created: Vec<Existing> = Vec::new();
    for (done, step) in steps.iter().enumerate() {
        let result = run(ctx, &target.namespace, step).await;
        match result {
            Err(e) => {
                let mut refusal = refuse(ctx, target, step, &created, e, teardown).await;
                refusal.wrote = done > 0;
                return Err(refusal);
            }
            Ok(Some(made)) => created.push(made),
            Ok(None) => {}
        }
    }
    Ok(!steps.is_empty())
}

/// Rolls back this pass's creates and says why `step` failed: a create
/// that lost to someone else is a conflict; a replace or delete of
/// something that changed (or, tearing down, vanished) is retried soon.
async fn refuse(
    ctx: &Context,
    target: &Target,
    step: &Step,
    created: &[Existing],
    error: kube::Error,
    teardown: bool,
) -> Refusal {
    rollback(&ctx.client, &target.namespace, created).await;
    let ns = &target.namespace;
    match error {
        kube::Error::Api(e) if e.code == 409 && matches!(step, Step::Create(_)) => Refusal::new(
            Reason::Conflict,
            format!(
                "{} in namespace {ns} was created by someone else at the same moment; it was left untouched",
                describe(step)
            ),
            Teardown::RemoveAll,
        ),
        kube::Error::Api(e) if e.code == 409 || (e.code == 404 && teardown) => Refusal::new(
            Reason::NotSynced,
            format!("{} changed while syncing; retrying", describe(step)),
            Teardown::Keep,
        )
        .soon(),
        e => Refusal::write_failed(&format!("writing {} in namespace {ns}", describe(step)), &e),
    }
}

/// A namespaced kind the apply step writes (Secret, Role, RoleBinding).
trait Namespaced:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
{
}

impl<K> Namespaced for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
{
}

/// Performs one step; a create returns what it made, for rollback.
async fn run(ctx: &Context, namespace: &str, step: &Step) -> kube::Result<Option<Existing>> {
    let client = &ctx.client;
    match step {
        Step::Create(o) => {
            let made = match o {
                Object::Secret(s) => {
                    create::<Secret>(client, namespace, s, ObjectKind::Secret).await?
                }
                Object::Role(r) => create::<Role>(client, namespace, r, ObjectKind::Role).await?,
                Object::RoleBinding(b) => {
                    create::<RoleBinding>(client, namespace, b, ObjectKind::RoleBinding).await?
                }
            };
            ctx.own_writes.record(&made.1);
            Ok(Some(made.0))
        }
        Step::Replace(o) => {
            let written = match o {
                Object::Secret(s) => replace::<Secret>(client, namespace, s).await?,
                Object::Role(r) => replace::<Role>(client, namespace, r).await?,
                Object::RoleBinding(b) => replace::<RoleBinding>(client, namespace, b).await?,
            };
            ctx.own_writes.record(&written);
            Ok(None)
        }
        Step::Delete(e) => {
            delete(client, namespace, e).await?;
            Ok(None)
        }
    }
}

async fn create<K>(
    client: &Client,
    namespace: &str,
    object: &K,
    kind: ObjectKind,
) -> kube::Result<(Existing, kube::api::ObjectMeta)>
where
    K: Namespaced,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let made = api.create(&PostParams::default(), object).await?;
    debug!(kind = %kind, namespace, name = ?made.meta().name, "created");
    let existing = Existing {
        kind,
        name: made.meta().name.clone().unwrap_or_default(),
        uid: made.meta().uid.clone(),
        resource_version: made.meta().resource_version.clone(),
    };
    Ok((existing, made.meta().clone()))
}

async fn replace<K>(
    client: &Client,
    namespace: &str,
    object: &K,
) -> kube::Result<kube::api::ObjectMeta>
where
    K: Namespaced,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    let written = api.replace(&name, &PostParams::default(), object).await?;
    Ok(written.meta().clone())
}

/// Undoes this pass's creates, newest first. Failures are left for the
/// next reconcile, which sees the pieces as its own and finishes the job.
async fn rollback(client: &Client, namespace: &str, created: &[Existing]) {
    for e in created.iter().rev() {
        if let Err(err) = delete(client, namespace, e).await {
            tracing::warn!(kind = %e.kind, namespace, name = %e.name, error = %err, "rollback of a created object failed; will retry");
        }
    }
}

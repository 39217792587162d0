//! The reconcile of one TwitterCredential, inside its finalizer: every
//! environment through its stage pipeline (`environment.rs`), then what
//! spans environments (undeclared objects, restarts, usage), then status
//! (`status.rs`) and when to look again (`wake.rs`). On deletion, cleanup.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::{Api, ResourceExt};
use tracing::Instrument;

use crate::context::Context;
use crate::events::Kind;
use crate::labels::FINALIZER;
use crate::objects::ObjectKind;
use crate::orphans::{self, Disposal};
use crate::ownership::Owner;
use crate::resource::TwitterCredential;
use crate::target::Target;
use crate::wake::{Wake, WakeUp};
use crate::{monitoring, restart, rotation, state_record, Error, Result};

mod environment;
pub mod status;

/// The reconcile entry point: waits for its namespace's turn at a slot
/// (`workers.rs`), then runs.
pub async fn reconcile(tc: Arc<TwitterCredential>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = tc.metadata.namespace.clone().unwrap_or_default();
    reconcile_at_turn(&namespace, || async { Ok(tc) }, ctx).await
}

/// Waits for `namespace`'s turn at a slot, then reads the resource with
/// `load` and runs. A waiting reconcile holds only this small future and
/// what `load` captures (the controller's: its cached resource, whose
/// status it inflates once the turn came); the running one's state
/// (~15 KiB) is boxed once it has a slot, so a queue of every resource at
/// once does not cost that much memory per resource.
pub async fn reconcile_at_turn<Load, Loaded>(
    namespace: &str,
    load: Load,
    ctx: Arc<Context>,
) -> Result<Action>
where
    Load: FnOnce() -> Loaded,
    Loaded: std::future::Future<Output = Result<Arc<TwitterCredential>>>,
{
    let asked = std::time::Instant::now();
    let _slot = ctx.workers.slot(namespace, &ctx.metrics).await;
    let waited_ms = asked.elapsed().as_millis() as u64;
    let tc = load().await?;
    // Every log line of one reconcile carries the same resource and id.
    let span = tracing::info_span!(
        "reconcile",
        namespace = %tc.namespace().unwrap_or_default(),
        resource = %tc.name_any(),
        id = RECONCILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    span.in_scope(|| tracing::debug!(waited_ms, "reconcile has its slot"));
    // Its requests to the apiserver take this namespace's turns too.
    let run = run_reconcile(tc, ctx.clone()).instrument(span);
    Box::pin(crate::apiserver_turns::as_tenant(namespace, run)).await
}

/// Numbers each reconcile's span.
static RECONCILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Apply or clean up, inside the finalizer.
async fn run_reconcile(tc: Arc<TwitterCredential>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let ns = tc.namespace().ok_or(Error::Invalid(
        "TwitterCredential without a namespace".into(),
    ))?;
    if let Some(why) = ctx.scope.refusal(&ns) {
        // No finalizer, no reads: only a condition saying why.
        status::not_managed(&tc, why, &ctx).await?;
        return Ok(Action::await_change());
    }
    let api: Api<TwitterCredential> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, tc.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(tc) => apply(&tc, &ctx).await,
            FinalizerEvent::Cleanup(tc) => cleanup(&tc, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if tc.metadata.deletion_timestamp.is_none() {
        ctx.metrics.reconciled(&tc, started.elapsed());
    }
    result
}

async fn apply(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    let mut synced = environment::rotate_and_sync_all(ctx, tc).await;
    // Workloads restart on their new credentials before the stages after
    // sync (X calls among them), to keep a rotation's window short.
    let restarted = restart::restart_workloads(ctx, tc, &mut synced.outcomes).await;
    let mut outcomes = environment::after_sync_all(ctx, tc, synced).await;
    // Objects become undeclared only when the spec changes; status records
    // the generation after cleanup, so a crash in between cleans up later.
    let observed = tc.status.as_ref().and_then(|s| s.observed_generation);
    if observed.is_none() || observed != tc.metadata.generation {
        remove_undeclared(tc, ctx).await?;
    }
    crate::sharing::mark(ctx, tc, &mut outcomes).await;
    let mut wake = WakeUp::default();
    wake.add_opt(restarted.map(Wake::After));
    let mut status =
        status::summarize(tc, outcomes.iter().map(|(_, o)| o.status.clone()).collect());
    wake.add_opt(
        monitoring::monitor(ctx, tc, &mut status, Timestamp::now())
            .await
            .map(Wake::At),
    );
    wake.add_opt(
        crate::review_reminder::remind(ctx, tc, &mut status, Timestamp::now())
            .await
            .map(Wake::At),
    );
    if tc.status.as_ref() != Some(&status) {
        match status::patch(tc, &status, ctx).await {
            Err(Error::Kube(kube::Error::Api(e))) if e.code == 404 => {
                return gone_mid_reconcile(tc, ctx).await;
            }
            other => other?,
        }
    }
    ctx.metrics.observe_status(tc, &status);
    for (_, outcome) in &outcomes {
        wake.merge(outcome.wake);
    }
    // Spread out, so resources that failed together (an X outage) do not
    // all come back in the same second.
    let soon = ctx.retry.mul_f64(1.0 + fastrand::f64() / 2.0);
    Ok(Action::requeue(wake.delay(
        Timestamp::now(),
        soon,
        ctx.resync,
    )))
}

/// The resource was deleted while this reconcile wrote for it (its
/// finalizer stripped, so nothing waited for cleanup): the orphan sweep ran
/// at the deletion, maybe before these writes, so they are removed here.
async fn gone_mid_reconcile(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    tracing::info!("deleted while reconciling: removing what it wrote");
    let policy = orphans::on_delete(tc.spec.deletion_policy);
    orphans::dispose(ctx, &Owner::of(tc), policy).await?;
    Ok(Action::await_change())
}

/// Objects this resource created for targets it no longer declares.
async fn remove_undeclared(tc: &TwitterCredential, ctx: &Context) -> Result<()> {
    let mut wanted: BTreeSet<(ObjectKind, String, String)> = BTreeSet::new();
    for env in &tc.spec.environments {
        let t = Target::of(tc, env);
        wanted.insert((ObjectKind::Secret, t.namespace.clone(), t.secret.clone()));
        wanted.insert((ObjectKind::Role, t.namespace.clone(), t.access.clone()));
        wanted.insert((
            ObjectKind::RoleBinding,
            t.namespace.clone(),
            t.access.clone(),
        ));
        if state_record::needs_state(env) {
            wanted.insert((
                ObjectKind::Secret,
                tc.namespace().unwrap_or_default(),
                state_record::state_name(tc, env),
            ));
        }
        if rotation::retirement::applies(env) {
            wanted.insert((
                ObjectKind::Secret,
                tc.namespace().unwrap_or_default(),
                rotation::retirement::record_of(tc, env),
            ));
        }
    }
    orphans::dispose(ctx, &Owner::of(tc), |o| {
        if wanted.contains(&(o.kind, o.namespace.clone(), o.name.clone())) {
            Disposal::Keep
        } else {
            Disposal::Delete
        }
    })
    .await?;
    Ok(())
}

/// Deletion: remove what this resource created (projected Secrets are
/// released rather than deleted with `deletionPolicy: Retain`).
async fn cleanup(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    let retain = tc.spec.deletion_policy == Some(crate::resource::DeletionPolicy::Retain);
    orphans::dispose(
        ctx,
        &Owner::of(tc),
        orphans::on_delete(tc.spec.deletion_policy),
    )
    .await?;
    let note = if retain {
        "removed Roles, RoleBindings and state; projected Secrets retained (deletionPolicy: Retain) and no longer managed"
    } else {
        "removed projected Secrets, Roles, RoleBindings and state"
    };
    ctx.events
        .publish(
            &kube::Resource::object_ref(tc, &()),
            Kind::Normal,
            "CleanedUp",
            "Cleanup",
            note,
            None,
        )
        .await;
    ctx.metrics.forget(tc);
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::Client;

    use super::*;
    use crate::metrics::Metrics;
    use crate::ownership::ClaimKey;

    fn tc(envs: &str) -> TwitterCredential {
        serde_yaml::from_str(&format!(
            "apiVersion: keyguard.dev/v1alpha1\nkind: TwitterCredential\nmetadata: {{name: bot, namespace: team, generation: 4}}\nspec: {{environments: [{envs}]}}"
        ))
        .unwrap()
    }

    /// Every resource can wait for a slot at once (a resync of all of
    /// them): a waiting reconcile must not hold the running one's state.
    #[tokio::test]
    async fn a_waiting_reconcile_is_small() {
        let url = "http://127.0.0.1:1";
        let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        let xapi = crate::xapi::XApiClient::new(url, Duration::from_secs(1)).unwrap();
        let claims = ClaimKey::new(vec![1u8; 32]);
        let ctx = Arc::new(Context::new(client, xapi, Metrics::default(), claims));
        let waiting = reconcile(Arc::new(tc("")), ctx);
        let size = std::mem::size_of_val(&waiting);
        assert!(size < 2048, "a waiting reconcile takes {size} bytes");
    }
}

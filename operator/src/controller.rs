//! The reconcile loop: for each TwitterCredential, inside a finalizer, mint
//! what is derived (`mint.rs`), sync every environment (`sync/`), restart
//! declared workloads (`restart.rs`), remove what is no longer declared
//! (`orphans.rs`), and report status.
//!
//! Watches (`watch_inputs`): TwitterCredentials; every Secret as metadata
//! only and without a cache, so memory does not grow with the cluster; the
//! operator's own Secrets, Roles and RoleBindings, and namespaces'
//! metadata, cached so a resync reads them without a GET (`caches.rs`).
//! `triggers.rs` maps each event to the resources it concerns.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::{watcher, Controller, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::conditions::{self, ConditionType, Reason};
use crate::events::{EventSink, Kind};
use crate::labels::{FIELD_MANAGER, FINALIZER, MANAGED_BY};
use crate::metrics::Metrics;
use crate::orphans::{self, Disposal};
use crate::ownership::{ClaimKey, Owner};
use crate::resource::{EnvironmentStatus, TwitterCredential, TwitterCredentialStatus};
use crate::sync::{self, EnvOutcome, Target};
use crate::xapi::XApi;
use crate::{
    caches, labels, monitoring, restart, rotation, triggers, verification, AbortOnDrop, Error,
    Result,
};

/// Reconciles at once unless configured: each holds a few API calls in
/// flight, so this bounds the operator's load on the apiserver.
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: usize = 32;

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    /// The X API (the real client, or a fake in unit tests).
    pub xapi: Arc<dyn XApi>,
    pub events: EventSink,
    pub metrics: Metrics,
    /// The key of ownership claims (see `ownership.rs`).
    pub claims: ClaimKey,
    /// How often a healthy resource is checked again without any change.
    pub resync: Duration,
    /// How soon an environment that failed transiently is tried again.
    pub retry: Duration,
    /// The least time between two restarts of one workload.
    pub restart_min_interval: Duration,
    /// How often credentials are verified when nothing changed.
    pub verify_interval: Duration,
    /// Versions the operator wrote, whose events trigger nothing (see
    /// `own_writes.rs`).
    pub own_writes: crate::own_writes::OwnWrites,
    /// How many reconciles run at once (see `workers.rs`).
    pub workers: crate::workers::Workers,
    /// What the watches last saw of the objects a sync compares against
    /// (see `caches.rs`).
    pub caches: crate::caches::Caches,
    /// The namespaces the operator may act in (see `scope.rs`).
    pub scope: crate::scope::Scope,
    /// Tests only: stop dead at this point of a rotation, as if killed.
    pub crash_at: Option<rotation::CrashPoint>,
    /// Tests only: told when `crash_at` was reached.
    pub crashed: Arc<tokio::sync::Notify>,
}

impl Context {
    pub fn new(
        client: Client,
        xapi: impl XApi + 'static,
        metrics: Metrics,
        claims: ClaimKey,
    ) -> Self {
        Context {
            events: EventSink::new(client.clone()),
            client,
            xapi: Arc::new(xapi),
            metrics,
            claims,
            resync: Duration::from_secs(600),
            retry: Duration::from_secs(30),
            restart_min_interval: Duration::from_secs(60),
            verify_interval: Duration::from_secs(3600),
            scope: crate::scope::Scope::Cluster,
            workers: crate::workers::Workers::new(DEFAULT_MAX_CONCURRENT_RECONCILES),
            own_writes: Default::default(),
            caches: Default::default(),
            crash_at: None,
            crashed: Arc::default(),
        }
    }

    /// A crash point of a rotation: never returns when a test chose it.
    pub async fn crash_point(&self, point: rotation::CrashPoint) {
        if self.crash_at == Some(point) {
            tracing::warn!(?point, "stopping dead at a crash point (test hook)");
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the controller until `shutdown` resolves.
///
/// After a watch fails (the apiserver restarted, a network blip), the
/// controller is rebuilt once the failing instance has run for
/// `rebuild_delay` (10 s, doubling while instances keep failing that
/// early): its watches start over from a fresh list instead of resuming
/// from a resource version. Seen with a restarted apiserver: a
/// watch resumed from before the restart can stay silent, and a resource
/// created just before the outage is then never reconciled.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // Aborted with this future, even when the future is dropped mid-way.
    let _sweeper = AbortOnDrop(tokio::spawn(orphans::run(ctx.clone())));
    let shutdown = shutdown.shared();
    let mut quick_failures = 0;
    loop {
        let wait = rebuild_delay(quick_failures);
        let rebuild = Arc::new(tokio::sync::Notify::new());
        let stop = {
            let (shutdown, rebuild) = (shutdown.clone(), rebuild.clone());
            async move {
                tokio::select! {
                    _ = shutdown => {},
                    _ = rebuild.notified() => {},
                }
            }
        };
        let failed_early = run_once(ctx.clone(), stop, rebuild, wait).await;
        if futures::FutureExt::now_or_never(shutdown.clone()).is_some() {
            return;
        }
        quick_failures = if failed_early { quick_failures + 1 } else { 0 };
        tracing::info!(next_wait = ?rebuild_delay(quick_failures), "watches failed: rebuilding the controller to list everything afresh");
        ctx.metrics.controller_rebuilt();
    }
}

/// Pure: how long an instance runs before a watch failure rebuilds it,
/// after `quick_failures` instances in a row failed early. During an
/// outage a rebuild every few seconds would only add load, and a watch
/// that keeps failing (a 403 for a missing RoleBinding) would relist every
/// Secret every 10 s for ever: the wait doubles, up to 5 minutes.
pub fn rebuild_delay(quick_failures: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(10);
    const MOST: Duration = Duration::from_secs(300);
    FIRST
        .saturating_mul(2u32.saturating_pow(quick_failures.min(16)))
        .min(MOST)
}

/// One controller instance; `rebuild` is notified after a watch failure,
/// no sooner than `rebuild_after` after the instance started. Returns
/// whether its first watch failure came before that (it never got going).
async fn run_once(
    ctx: Arc<Context>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    rebuild: Arc<tokio::sync::Notify>,
    rebuild_after: Duration,
) -> bool {
    let client = ctx.client.clone();
    let (reader, writer) = kube::runtime::reflector::store();
    let credentials = watcher(
        Api::<TwitterCredential>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .modify(caches::slim);
    let controller = Controller::for_stream(
        kube::runtime::reflector(writer, credentials).applied_objects(),
        reader,
    );
    let store = controller.store();
    let (controller, stores) = watch_inputs(controller, &ctx, store);
    ctx.caches.set(Some(Arc::new(stores)));
    let rebuild_at = tokio::time::Instant::now() + rebuild_after;
    let rebuilder = Arc::new(Rebuilder {
        at: rebuild_at,
        rebuild,
        pending: Default::default(),
    });
    let on_result = rebuilder.clone();
    controller
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(move |result| {
            match result {
                Err(kube::runtime::controller::Error::QueueError(e)) => {
                    warn!(error = %e, "watch failed");
                    on_result.watch_failed();
                }
                Err(e) => warn!(error = %e, "reconcile failed"),
                Ok(_) => {}
            }
            std::future::ready(())
        })
        .await;
    ctx.caches.set(None);
    rebuilder.failed_early()
}

/// Adds every input of a reconcile to `controller` as a trigger
/// (`triggers.rs` maps each event to the resources it concerns) and
/// returns the caches that the watches of the operator's own objects and
/// of namespaces fill (`caches.rs`). Other Secrets (sources, and the
/// cluster's unrelated ones) are watched as metadata only and not cached,
/// so memory does not grow with the cluster.
fn watch_inputs(
    controller: Controller<TwitterCredential>,
    ctx: &Arc<Context>,
    credentials: kube::runtime::reflector::Store<TwitterCredential>,
) -> (Controller<TwitterCredential>, caches::Stores) {
    let client = &ctx.client;
    let managed = watcher::Config::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let (namespaces, writer) = kube::runtime::reflector::store();
    let watch = watcher(Api::all(client.clone()), watcher::Config::default()).modify(caches::slim);
    let store = credentials.clone();
    let mut controller = controller.watches_stream(
        kube::runtime::reflector(writer, watch).touched_objects(),
        move |n: PartialObjectMeta<Namespace>| triggers::for_namespace(&store.state(), &n.metadata),
    );
    // Secrets not labeled as ours: sources (by name), as metadata only.
    // Secrets, Roles and RoleBindings labeled as ours are cached in full and
    // trigger from the same stream that fills their cache, so a reconcile
    // they trigger finds them in it. Cluster-wide, or one watch per
    // namespace in scope (namespaced mode has no cluster-wide rights).
    for api in ctx.scope.apis::<PartialObjectMeta<Secret>>(client) {
        let (store, ctx) = (credentials.clone(), ctx.clone());
        controller = controller.watches(api, watcher::Config::default(), move |s| {
            if labels::is_managed(&s.metadata) || ctx.own_writes.is_own(&s.metadata) {
                return Vec::new();
            }
            triggers::for_secret(&store.state(), &s.metadata)
        });
    }
    let mut secrets = BTreeMap::new();
    for (namespace, api) in ctx.scope.scoped_apis::<Secret>(client) {
        let (reader, writer) = kube::runtime::reflector::store();
        let watch = watcher(api, managed.clone()).modify(caches::slim_secret);
        let (store, ctx) = (credentials.clone(), ctx.clone());
        controller = controller.watches_stream(
            kube::runtime::reflector(writer, watch).touched_objects(),
            move |s: Secret| {
                if ctx.own_writes.is_own(&s.metadata) {
                    return Vec::new();
                }
                triggers::for_secret(&store.state(), &s.metadata)
            },
        );
        secrets.insert(namespace, reader);
    }
    let (controller, roles) = watch_owned(controller, ctx, &managed, caches::slim_role);
    let (controller, bindings) = watch_owned(controller, ctx, &managed, caches::slim_binding);
    let stores = caches::Stores {
        namespaces,
        secrets: caches::Scoped(secrets),
        roles: caches::Scoped(roles),
        bindings: caches::Scoped(bindings),
    };
    (controller, stores)
}

/// Watches, caches and triggers on the operator's own objects of kind `K`
/// (Roles, RoleBindings): an event triggers the resource they name as
/// owner, unless it is the operator's own write.
fn watch_owned<K>(
    mut controller: Controller<TwitterCredential>,
    ctx: &Arc<Context>,
    managed: &watcher::Config,
    slim: fn(&mut K),
) -> (
    Controller<TwitterCredential>,
    BTreeMap<Option<String>, kube::runtime::reflector::Store<K>>,
)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut stores = BTreeMap::new();
    for (namespace, api) in ctx.scope.scoped_apis::<K>(&ctx.client) {
        let (reader, writer) = kube::runtime::reflector::store();
        let watch = watcher(api, managed.clone()).modify(slim);
        let ctx = ctx.clone();
        controller = controller.watches_stream(
            kube::runtime::reflector(writer, watch).touched_objects(),
            move |o: K| triggers::owner_of(o.meta()).filter(|_| !ctx.own_writes.is_own(o.meta())),
        );
        stores.insert(namespace, reader);
    }
    (controller, stores)
}

/// Schedules one rebuild of a controller instance after its first watch
/// failure, no sooner than `at`; remembers whether that failure came early.
struct Rebuilder {
    at: tokio::time::Instant,
    rebuild: Arc<tokio::sync::Notify>,
    /// The scheduled rebuild (aborted with the instance) and whether the
    /// failure that scheduled it came before `at`.
    pending: std::sync::Mutex<Option<(AbortOnDrop, bool)>>,
}

impl Rebuilder {
    fn watch_failed(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_some() {
            return;
        }
        let (at, rebuild) = (self.at, self.rebuild.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            rebuild.notify_one();
        });
        *pending = Some((AbortOnDrop(task), tokio::time::Instant::now() < self.at));
    }

    fn failed_early(&self) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.as_ref().is_some_and(|(_, early)| *early)
    }
}

fn error_policy(tc: Arc<TwitterCredential>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(name = %tc.name_any(), namespace = ?tc.namespace(), %error, "will retry");
    ctx.metrics.reconcile_failed(&tc);
    Action::requeue(retry_after(error).mul_f64(1.0 + fastrand::f64() / 2.0))
}

/// Pure: how soon to retry a failed reconcile. A lost race (409, or 422
/// when the finalizer patch's test of a stale copy fails) is settled by
/// reading afresh, so it is retried at once; anything else waits.
pub fn retry_after(error: &Error) -> Duration {
    use kube::runtime::finalizer::Error as F;
    let api = match error {
        Error::Kube(kube::Error::Api(e)) => Some(e),
        Error::Finalizer(f) => match f.as_ref() {
            F::AddFinalizer(kube::Error::Api(e)) | F::RemoveFinalizer(kube::Error::Api(e)) => {
                Some(e)
            }
            F::ApplyFailed(Error::Kube(kube::Error::Api(e)))
            | F::CleanupFailed(Error::Kube(kube::Error::Api(e))) => Some(e),
            _ => None,
        },
        _ => None,
    };
    match api.map(|e| e.code) {
        Some(409 | 422) => Duration::from_secs(1),
        _ => Duration::from_secs(15),
    }
}

/// The reconcile entry point: waits for a slot (`workers.rs`), then runs.
/// A waiting reconcile holds only this small future; the running one's
/// state (~15 KiB) is boxed once it has a slot, so a queue of every
/// resource at once does not cost that much memory per resource.
pub async fn reconcile(tc: Arc<TwitterCredential>, ctx: Arc<Context>) -> Result<Action> {
    let _slot = ctx.workers.slot(&ctx.metrics).await;
    Box::pin(run_reconcile(tc, ctx.clone())).await
}

/// Apply or clean up, inside the finalizer.
async fn run_reconcile(tc: Arc<TwitterCredential>, ctx: Arc<Context>) -> Result<Action> {
    let started = std::time::Instant::now();
    let ns = tc.namespace().ok_or(Error::Invalid(
        "TwitterCredential without a namespace".into(),
    ))?;
    if let Some(why) = ctx.scope.refusal(&ns) {
        // No finalizer, no reads: only a condition saying why.
        not_managed(&tc, why, &ctx).await?;
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

/// Namespaced mode, a resource outside the namespaces that granted the
/// operator: Ready=False with the reason, once.
async fn not_managed(tc: &TwitterCredential, why: String, ctx: &Context) -> Result<()> {
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
        patch_status(tc, &status, ctx).await?;
    }
    Ok(())
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

async fn apply(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    let previous = |name: &str| {
        tc.status
            .as_ref()
            .and_then(|s| s.environments.iter().find(|e| e.name == name).cloned())
            .unwrap_or_else(|| EnvironmentStatus {
                name: name.into(),
                ..Default::default()
            })
    };
    let mut outcomes: Vec<(&crate::resource::Environment, EnvOutcome)> = Vec::new();
    let mut look_again: Option<Timestamp> = None;
    for (env, duplicate_of) in tc.spec.environments.iter().zip(duplicates(tc)) {
        let (outcome, at) = environment(ctx, tc, env, previous(&env.name), duplicate_of).await;
        look_again = [look_again, at].into_iter().flatten().min();
        outcomes.push((env, outcome));
    }
    // Objects become undeclared only when the spec changes; status records
    // the generation after cleanup, so a crash in between cleans up later.
    let observed = tc.status.as_ref().and_then(|s| s.observed_generation);
    if observed.is_none() || observed != tc.metadata.generation {
        remove_undeclared(tc, ctx).await?;
    }
    let deferred_restart = restart::restart_workloads(ctx, tc, &mut outcomes).await;
    let mut status = summarize(tc, outcomes.iter().map(|(_, o)| o.status.clone()).collect());
    let poll_at = monitoring::monitor(ctx, tc, &mut status, Timestamp::now()).await;
    look_again = [look_again, poll_at].into_iter().flatten().min();
    if tc.status.as_ref() != Some(&status) {
        match patch_status(tc, &status, ctx).await {
            Err(Error::Kube(kube::Error::Api(e))) if e.code == 404 => {
                return gone_mid_reconcile(tc, ctx).await;
            }
            other => other?,
        }
    }
    ctx.metrics.observe_status(tc, &status);
    let rate_limited = outcomes.iter().filter_map(|(_, o)| o.retry_after).min();
    let mut next = if let Some(reset) = rate_limited {
        // Not before X's rate-limit window resets; nothing sooner helps.
        reset.max(Duration::from_secs(1))
    } else if outcomes.iter().any(|(_, o)| o.retry_soon) {
        // Spread out, so resources that failed together (an X outage) do
        // not all come back in the same second.
        ctx.retry.mul_f64(1.0 + fastrand::f64() / 2.0)
    } else {
        ctx.resync
    };
    if let Some(wait) = deferred_restart {
        next = next.min(wait);
    }
    if let Some(at) = look_again {
        // At least a second: a rotation that just came due is not retried
        // in a tight loop while it fails.
        let wait = rotation::schedule::until(at, Timestamp::now());
        next = next.min(wait.max(Duration::from_secs(1)));
    }
    Ok(Action::requeue(next))
}

/// One environment: rotation (every X API write), then sync, then the
/// reminders; returns its outcome and when it wants looking at again.
async fn environment(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &crate::resource::Environment,
    prev: EnvironmentStatus,
    duplicate_of: Option<String>,
) -> (EnvOutcome, Option<Timestamp>) {
    let target = Target::of(tc, env);
    if let Some(why) = ctx.scope.refusal(&target.namespace) {
        let refusal = sync::check::Refusal::new(
            Reason::TargetNotAllowed,
            format!("target {}: {why}", target.secret_ref()),
            sync::check::Teardown::Keep,
        );
        sync::record::warn_if_new(ctx, tc, env, &prev, &refusal).await;
        let generation = tc.metadata.generation;
        return (
            sync::record::refused(prev, &target, &refusal, generation),
            None,
        );
    }
    let mut already = sync::observe::AlreadyRead::default();
    let info = match rotation::reconcile(ctx, tc, env, &prev, &mut already).await {
        Ok(info) => info,
        Err(refusal) => {
            sync::record::warn_if_new(ctx, tc, env, &prev, &refusal).await;
            let target = Target::of(tc, env);
            return (
                sync::record::refused(prev, &target, &refusal, tc.metadata.generation),
                None,
            );
        }
    };
    let mut outcome = sync::environment(ctx, tc, env, prev, duplicate_of.as_deref(), already).await;
    outcome.status.last_rotation = info.last_rotation.map(conditions::whole_seconds);
    outcome.status.next_rotation = info.next_rotation.map(conditions::whole_seconds);
    let now = Timestamp::now();
    let remind_at = rotation::reminders::remind(ctx, tc, env, &mut outcome.status, now).await;
    let (retry, verify_at) =
        verification::verify(ctx, tc, env, &mut outcome.status, outcome.changed, now).await;
    outcome.retry_soon |= retry;
    let retire_at = retire(ctx, tc, env, &outcome).await;
    outcome.retry_soon |= retire_at.is_err();
    let at = [
        info.next_rotation,
        remind_at,
        verify_at,
        retire_at.ok().flatten(),
    ]
    .into_iter()
    .flatten()
    .min();
    (outcome, at)
}

/// After a successful sync: a replaced OAuth 1.0a access token's
/// retirement; a failure is a Warning Event and an early retry.
async fn retire(
    ctx: &Context,
    tc: &TwitterCredential,
    env: &crate::resource::Environment,
    outcome: &EnvOutcome,
) -> Result<Option<Timestamp>, ()> {
    let synced = conditions::find(&outcome.status.conditions, ConditionType::Synced)
        .is_some_and(|c| c.status == "True");
    let Some(source) = outcome.projected_from.as_ref().filter(|_| synced) else {
        return Ok(None);
    };
    match rotation::retirement::reconcile(ctx, tc, env, source, Timestamp::now()).await {
        Ok(at) => Ok(at),
        Err(refusal) => {
            ctx.events
                .publish(
                    &kube::Resource::object_ref(tc, &()),
                    Kind::Warning,
                    "AccessTokenRetirementFailed",
                    "Retire",
                    &format!("{}: {}", env.name, refusal.message),
                    None,
                )
                .await;
            Err(())
        }
    }
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
                .filter(|c| c.status != "True")
                .map(|c| (e.name.as_str(), c))
        })
        .collect();
    status.ready_environments = Some(format!("{}/{total}", total - failing.len()));
    let reason = failing
        .first()
        .map(|(_, c)| reason_named(&c.reason))
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

fn reason_named(name: &str) -> Reason {
    [
        Reason::TargetNotAllowed,
        Reason::Conflict,
        Reason::DuplicateTarget,
        Reason::SourceNotFound,
        Reason::SourceInvalid,
        Reason::DerivedPending,
        Reason::XApiError,
        Reason::WriteFailed,
        Reason::ReauthorizationRequired,
    ]
    .into_iter()
    .find(|r| r.as_str() == name)
    .unwrap_or(Reason::NotSynced)
}

async fn patch_status(
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

/// The resource was deleted while this reconcile wrote for it (its
/// finalizer stripped, so nothing waited for cleanup): the orphan sweep ran
/// at the deletion, maybe before these writes, so they are removed here.
async fn gone_mid_reconcile(tc: &TwitterCredential, ctx: &Context) -> Result<Action> {
    tracing::info!(credential = %tc.name_any(), "deleted while reconciling: removing what it wrote");
    let policy = orphans::on_delete(tc.spec.deletion_policy);
    orphans::dispose(ctx, &Owner::of(tc), policy).await?;
    Ok(Action::await_change())
}

/// Objects this resource created for targets it no longer declares.
async fn remove_undeclared(tc: &TwitterCredential, ctx: &Context) -> Result<()> {
    let mut wanted: BTreeSet<(String, String, String)> = BTreeSet::new();
    for env in &tc.spec.environments {
        let t = Target::of(tc, env);
        wanted.insert(("Secret".into(), t.namespace.clone(), t.secret.clone()));
        wanted.insert(("Role".into(), t.namespace.clone(), t.access.clone()));
        wanted.insert(("RoleBinding".into(), t.namespace.clone(), t.access.clone()));
        if rotation::state::needs_state(env) {
            wanted.insert((
                "Secret".into(),
                tc.namespace().unwrap_or_default(),
                rotation::state::state_name(tc, env),
            ));
        }
        if rotation::retirement::applies(env) {
            wanted.insert((
                "Secret".into(),
                tc.namespace().unwrap_or_default(),
                rotation::retirement::record_of(tc, env),
            ));
        }
    }
    orphans::dispose(ctx, &Owner::of(tc), |o| {
        if wanted.contains(&(o.kind.to_string(), o.namespace.clone(), o.name.clone())) {
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
    use super::*;

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

    #[test]
    fn rebuilds_after_quick_failures_back_off_to_five_minutes() {
        let cases = [
            (0, 10),
            (1, 20),
            (2, 40),
            (3, 80),
            (4, 160),
            (5, 300),
            (30, 300),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                rebuild_delay(failures),
                Duration::from_secs(secs),
                "{failures}"
            );
        }
    }

    #[test]
    fn lost_races_are_retried_at_once_other_failures_later() {
        use kube::runtime::finalizer::Error as F;
        let api = |code: u16| {
            kube::Error::Api(Box::new(
                serde_json::from_value(json!({"code": code, "status": "Failure"})).unwrap(),
            ))
        };
        let finalizer = |f: F<Error>| Error::Finalizer(Box::new(f));
        let cases = [
            ("status patch lost a race", Error::Kube(api(409)), 1),
            (
                "stale copy failed the finalizer patch's test",
                finalizer(F::AddFinalizer(api(422))),
                1,
            ),
            (
                "finalizer removal lost a race",
                finalizer(F::RemoveFinalizer(api(409))),
                1,
            ),
            (
                "apply lost a race",
                finalizer(F::ApplyFailed(Error::Kube(api(409)))),
                1,
            ),
            ("forbidden", Error::Kube(api(403)), 15),
            (
                "apiserver error",
                finalizer(F::ApplyFailed(Error::Kube(api(500)))),
                15,
            ),
            (
                "invalid resource",
                Error::Invalid("no namespace".into()),
                15,
            ),
        ];
        for (what, error, secs) in cases {
            assert_eq!(retry_after(&error), Duration::from_secs(secs), "{what}");
        }
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

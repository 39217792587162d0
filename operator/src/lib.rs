//! keyguard-operator: keeps X (Twitter) API credentials synced into scoped
//! Secrets, verified, and rotated, as declared by `TwitterCredential`
//! resources.
//!
//! Layers, each importing only the ones below it:
//!
//! | layer | modules |
//! |---|---|
//! | the binary | `main.rs`, `cli.rs`, `telemetry.rs`, `server.rs`, `metrics_auth.rs`, `leader.rs` |
//! | watches | `controller/` (watches, triggers, rebuilds, error policy) |
//! | one resource | `reconcile/` (finalizer, the per-environment stage pipeline, status) |
//! | stages | `consent.rs` (the resource's ServiceAccount still allows it), `rotation/` (every X API write), `sync/` (observe, check, plan, apply, record), `verification.rs`, `monitoring.rs`, `review_reminder.rs`, `restart.rs`, `orphans.rs` |
//! | shared by the stages | `authorization.rs`, `context.rs`, `reads.rs`, `outcome.rs`, `refusal.rs`, `wake.rs`, `target.rs`, `state_record.rs`, `objects.rs`, `schedule.rs` |
//! | vocabulary | `resource.rs` (what people declare), `conditions.rs`, `events.rs`, `labels.rs`, `object_kind.rs`, `ownership.rs`, `projection.rs`, `caches.rs` (over `cache_store.rs`), `stored_credential.rs` (the controller's cache of resources), `resource_index.rs` (who reads which Secret, who holds which credential), `scope.rs`, `own_writes.rs`, `workers.rs`, `apiserver_turns.rs` (the client's requests take turns too), `metrics.rs`, and the X API client (crate `keyguard-xapi`) |
//!
//! Start at `reconcile/mod.rs` to follow one TwitterCredential from its
//! watch event to the Secrets it writes.

#![forbid(unsafe_code)]

pub mod apiserver_turns;
pub mod authorization;
pub mod cache_store;
pub mod caches;
pub mod cli;
pub mod compact;
pub mod conditions;
pub mod consent;
pub mod context;
pub mod controller;
pub mod crd_reference;
pub mod events;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod metrics_auth;
pub mod monitoring;
pub mod object_kind;
pub mod objects;
pub mod orphans;
pub mod outcome;
pub mod own_writes;
pub mod ownership;
pub mod projection;
pub mod reads;
pub mod reconcile;
pub mod refusal;
pub mod refused_tokens;
pub mod resource;
pub mod resource_index;
pub mod restart;
pub mod review_reminder;
pub mod rotation;
pub mod schedule;
pub mod scope;
pub mod series;
pub mod server;
pub mod sharing;
pub mod state_record;
pub mod stored_credential;
pub mod sync;
pub mod target;
pub mod telemetry;
pub mod verification;
pub mod wake;
pub mod workers;
pub mod x_api_metrics;

use std::sync::Arc;
use std::time::Duration;

/// The X API client (its own crate, shared with `keyguard scan --verify`).
pub use keyguard_xapi as xapi;
pub use resource::{TwitterCredential, TwitterCredentialSpec, TwitterCredentialStatus};

/// Errors of the operator library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("serializing the CRD: {0}")]
    Yaml(#[from] serde_yaml::Error),

    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kube client, its requests taking turns by namespace when
/// `in_flight` bounds them (`apiserver_turns.rs`).
async fn apiserver_client(
    in_flight: usize,
    metrics: &metrics::Metrics,
) -> anyhow::Result<kube::Client> {
    let config = kube::Config::infer().await?;
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(match in_flight {
        0 => builder.build(),
        n => builder
            .with_layer(&apiserver_turns::TakeTurnsLayer::new(n, metrics.clone()))
            .build(),
    })
}

/// Runs the operator: logging, HTTP endpoints, the controller.
pub async fn run(args: cli::RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_filter)?;
    let metrics = metrics::Metrics::default();
    let client = apiserver_client(args.max_apiserver_requests, &metrics).await?;
    let xapi = xapi::XApiClient::with_roots(
        &args.x_api_base,
        Duration::from_secs(args.x_api_timeout),
        concat!("keyguard-operator/", env!("CARGO_PKG_VERSION")),
        &xapi::extra_roots_from_env()?,
    )?
    .with_concurrency(args.x_api_concurrency);
    let claims = ownership::load_or_create_key(
        client.clone(),
        &args.lease_namespace,
        &args.claim_key_secret,
    )
    .await?;
    let mut ctx = context::Context::new(client, xapi, metrics.clone(), claims);
    ctx.resync = Duration::from_secs(args.resync_seconds);
    ctx.restart_min_interval = Duration::from_secs(args.restart_min_interval_seconds);
    ctx.verify_interval = Duration::from_secs(args.verify_interval_seconds);
    ctx.scope = scope::Scope::from_list(&args.watch_namespaces);
    ctx.default_service_account =
        Some(args.default_service_account.clone()).filter(|s| !s.is_empty());
    ctx.workers = workers::Workers::new(args.max_concurrent_reconciles);
    let secure =
        (args.metrics_auth == cli::MetricsAuthMode::Kubernetes).then(|| server::SecureMetrics {
            addr: args.metrics_addr,
            auth: Arc::new(metrics_auth::MetricsAuth::new(ctx.client.clone())),
            cert_and_key: args
                .metrics_tls_cert_file
                .clone()
                .zip(args.metrics_tls_key_file.clone()),
        });
    let server = tokio::spawn(server::serve(args.http_addr, metrics, secure));
    tracing::info!(x_api = %args.x_api_base, http = %args.http_addr, metrics_auth = ?args.metrics_auth, metrics = %args.metrics_addr, "keyguard-operator starting");
    let election = args.leader_election.then(|| {
        leader::LeaderElection::new(
            ctx.client.clone(),
            &args.lease_namespace,
            &args.lease_name,
            &args.identity,
            Duration::from_secs(args.lease_seconds),
        )
    });
    let lost = run_led(Arc::new(ctx), election, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    server.abort();
    if lost {
        // Exit non-zero so the Pod restarts and rejoins the election.
        anyhow::bail!("lost leadership");
    }
    Ok(())
}

/// A spawned task that ends with its owner, even when the owner's future
/// is dropped rather than run to completion.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the controller, only while leading when `election` is given.
/// Returns true when leadership was lost (rather than a shutdown).
pub async fn run_led(
    ctx: Arc<context::Context>,
    election: Option<leader::LeaderElection>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> bool {
    let Some(election) = election else {
        controller::run(ctx, shutdown).await;
        return false;
    };
    let mut shutdown = std::pin::pin!(shutdown);
    tokio::select! {
        _ = election.acquire() => {}
        _ = &mut shutdown => return false,
    }
    tracing::info!(identity = %election.identity(), "leading; starting the controller");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut controller = AbortOnDrop(tokio::spawn(controller::run(ctx, async move {
        let _ = stop_rx.await;
    })));
    let lost = tokio::select! {
        _ = election.hold() => true,
        _ = &mut shutdown => false,
    };
    let _ = stop_tx.send(());
    let _ = (&mut controller.0).await;
    if !lost {
        election.release().await;
    }
    lost
}

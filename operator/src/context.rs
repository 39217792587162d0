//! What every reconcile shares: the clients, the settings from the command
//! line, the caches and counters, and the test hooks.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;

use crate::caches::Caches;
use crate::events::EventSink;
use crate::metrics::Metrics;
use crate::own_writes::OwnWrites;
use crate::ownership::ClaimKey;
use crate::scope::Scope;
use crate::workers::Workers;
use crate::xapi::XApi;

/// Reconciles at once unless configured: each holds a few API calls in
/// flight, so this bounds the operator's load on the apiserver.
pub const DEFAULT_MAX_CONCURRENT_RECONCILES: usize = 32;
/// `--max-apiserver-requests`: see `apiserver_turns.rs`.
pub const DEFAULT_MAX_APISERVER_REQUESTS: usize = 8;

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
    pub own_writes: OwnWrites,
    /// How many reconciles run at once (see `workers.rs`).
    pub workers: Workers,
    /// What the watches last saw of the objects a sync compares against
    /// (see `caches.rs`).
    pub caches: Caches,
    /// Which resources read which Secret and hold which credential (see
    /// `resource_index.rs`).
    pub index: crate::resource_index::ResourceIndex,
    /// The namespaces the operator may act in (see `scope.rs`).
    pub scope: Scope,
    /// The ServiceAccount of a resource's namespace it is held to when it
    /// names none (see `consent.rs`).
    pub default_service_account: Option<String>,
    /// Refresh tokens X refused (see `refused_tokens.rs`).
    pub refused_refresh_tokens: crate::refused_tokens::RefusedTokens,
    /// Tests only (cargo feature `test-hooks`, which release builds do not
    /// enable): stop dead at this point of a rotation, as if killed.
    #[cfg(feature = "test-hooks")]
    pub crash_at: Option<CrashPoint>,
    /// Tests only: told when `crash_at` was reached.
    #[cfg(feature = "test-hooks")]
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
            xapi: Arc::new(crate::x_api_metrics::MeteredXApi::new(
                xapi,
                metrics.clone(),
            )),
            metrics,
            claims,
            resync: Duration::from_secs(600),
            retry: Duration::from_secs(30),
            restart_min_interval: Duration::from_secs(60),
            verify_interval: Duration::from_secs(3600),
            scope: Scope::Cluster,
            default_service_account: None,
            workers: Workers::new(DEFAULT_MAX_CONCURRENT_RECONCILES),
            own_writes: Default::default(),
            caches: Default::default(),
            index: Default::default(),
            refused_refresh_tokens: Default::default(),
            #[cfg(feature = "test-hooks")]
            crash_at: None,
            #[cfg(feature = "test-hooks")]
            crashed: Arc::default(),
        }
    }

    /// A crash point of a rotation: never returns when a test chose it.
    pub async fn crash_point(&self, point: CrashPoint) {
        #[cfg(feature = "test-hooks")]
        if self.crash_at == Some(point) {
            tracing::warn!(?point, "stopping dead at a crash point (test hook)");
            self.crashed.notify_one();
            std::future::pending::<()>().await;
        }
        #[cfg(not(feature = "test-hooks"))]
        let _ = point;
    }
}

/// Places a test can make the operator stop dead, as if killed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The invalidation is recorded, not yet sent.
    BeforeInvalidate,
    /// X invalidated the old token; the next step is not recorded yet.
    AfterInvalidate,
    /// Minting is recorded, not yet sent.
    BeforeMint,
    /// X minted the new token; it is not stored yet.
    AfterMint,
    /// X refreshed the user token (the old refresh token is spent); the
    /// new ones are not stored yet.
    AfterRefresh,
}

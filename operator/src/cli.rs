//! Command-line interface of `keyguard-operator`. Every flag has an
//! environment variable, for the chart.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Who may read /metrics (`--metrics-auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsAuthMode {
    /// TLS, and the apiserver authorizes each scraper.
    Kubernetes,
    /// Plain HTTP, anyone who can reach the port.
    None,
}

#[derive(Debug, Parser)]
#[command(
    name = "keyguard-operator",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("KEYGUARD_REVISION"), ")"),
    about = "Keeps X (Twitter) API credentials synced, verified and rotated in Kubernetes."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the TwitterCredential CustomResourceDefinition as YAML.
    Crd,
    /// Print the CRD reference (Markdown, docs/crd-reference.md).
    CrdReference,
    /// Run the controller.
    Run(Box<RunArgs>),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// X API base URL. Operator configuration, never part of a resource: a
    /// tenant who could point it elsewhere would receive the keys. https://
    /// only (http:// is accepted for a loopback address, an emulator); a
    /// redirect is never followed and an answer over 1 MiB is not read.
    #[arg(long, env = "KEYGUARD_X_API_BASE", default_value = "https://api.x.com")]
    pub x_api_base: String,

    /// Timeout of one X API request, in seconds.
    #[arg(long, env = "KEYGUARD_X_API_TIMEOUT", default_value_t = 10)]
    pub x_api_timeout: u64,

    /// X API calls in flight at once, across all resources.
    #[arg(long, env = "KEYGUARD_X_API_CONCURRENCY", default_value_t = crate::xapi::DEFAULT_CONCURRENCY)]
    pub x_api_concurrency: usize,

    /// Reconciles running at once; the rest wait, namespaces taking turns
    /// and each namespace's in arrival order (`keyguard_reconcile_queue_depth`).
    /// One namespace holds at most all but an eighth of them, so another's
    /// change finds a slot free while it floods.
    #[arg(long, env = "KEYGUARD_MAX_CONCURRENT_RECONCILES", default_value_t = crate::context::DEFAULT_MAX_CONCURRENT_RECONCILES)]
    pub max_concurrent_reconciles: usize,

    /// Requests to the apiserver in flight at once (watches aside); the
    /// rest wait, namespaces taking turns, so a namespace changing
    /// thousands of resources does not queue another's requests behind its
    /// own at the apiserver; one namespace holds at most all but an eighth
    /// of them. 0: no bound.
    #[arg(long, env = "KEYGUARD_MAX_APISERVER_REQUESTS", default_value_t = crate::context::DEFAULT_MAX_APISERVER_REQUESTS)]
    pub max_apiserver_requests: usize,

    /// Address of the /healthz and /readyz endpoints (plain HTTP), and of
    /// /metrics with `--metrics-auth=none`.
    #[arg(long, env = "KEYGUARD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Who may read /metrics, which names every tenant's namespaces,
    /// resources and environments: `kubernetes` serves it over TLS on
    /// `--metrics-addr` to bearer tokens the apiserver authenticates whose
    /// user may `get` the non-resource URL /metrics (TokenReview and
    /// SubjectAccessReview); `none` serves it to anyone on `--http-addr`.
    #[arg(
        long,
        env = "KEYGUARD_METRICS_AUTH",
        value_enum,
        default_value = "kubernetes"
    )]
    pub metrics_auth: MetricsAuthMode,

    /// Address of /metrics with `--metrics-auth=kubernetes` (TLS).
    #[arg(long, env = "KEYGUARD_METRICS_ADDR", default_value = "0.0.0.0:8443")]
    pub metrics_addr: SocketAddr,

    /// PEM certificate chain for /metrics (with `--metrics-tls-key-file`);
    /// a self-signed certificate is made at start when absent.
    #[arg(
        long,
        env = "KEYGUARD_METRICS_TLS_CERT_FILE",
        requires = "metrics_tls_key_file"
    )]
    pub metrics_tls_cert_file: Option<std::path::PathBuf>,

    /// PEM private key of `--metrics-tls-cert-file`.
    #[arg(
        long,
        env = "KEYGUARD_METRICS_TLS_KEY_FILE",
        requires = "metrics_tls_cert_file"
    )]
    pub metrics_tls_key_file: Option<std::path::PathBuf>,

    /// A ServiceAccount name every resource is held to in its own
    /// namespace, besides the one it may name (`spec.serviceAccountName`):
    /// its rights are checked on every reconcile (see `consent.rs`).
    /// Empty: resources naming none are checked at admission only.
    #[arg(long, env = "KEYGUARD_DEFAULT_SERVICE_ACCOUNT", default_value = "")]
    pub default_service_account: String,

    /// Log line format.
    #[arg(long, env = "KEYGUARD_LOG_FORMAT", value_enum, default_value = "plain")]
    pub log_format: LogFormat,

    /// Log filter, in RUST_LOG syntax.
    #[arg(long, env = "KEYGUARD_LOG_FILTER", default_value = "info")]
    pub log_filter: String,

    /// Elect a leader among replicas through a Lease; only the leader
    /// reconciles.
    #[arg(long, env = "KEYGUARD_LEADER_ELECTION")]
    pub leader_election: bool,

    /// The operator's own namespace: the leader Lease and the claim key
    /// Secret live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "keyguard-system")]
    pub lease_namespace: String,

    /// Name of the leader Lease.
    #[arg(long, env = "KEYGUARD_LEASE_NAME", default_value = "keyguard-operator")]
    pub lease_name: String,

    /// This replica's identity in the election (the Pod name).
    #[arg(long, env = "POD_NAME", default_value = "keyguard-operator")]
    pub identity: String,

    /// Seconds a Lease lasts without renewal.
    #[arg(long, env = "KEYGUARD_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,

    /// The Secret, in the operator's namespace, holding the key that proves
    /// which objects the operator created (made on first start).
    #[arg(
        long,
        env = "KEYGUARD_CLAIM_KEY_SECRET",
        default_value = "keyguard-operator-claim-key"
    )]
    pub claim_key_secret: String,

    /// The least time between two restarts of one workload; changes in
    /// between are rolled out together at the end of it.
    #[arg(
        long,
        env = "KEYGUARD_RESTART_MIN_INTERVAL_SECONDS",
        default_value_t = 60
    )]
    pub restart_min_interval_seconds: u64,

    /// Seconds between read-only verifications of an environment's
    /// credentials when nothing changed (jittered by up to 10%).
    #[arg(long, env = "KEYGUARD_VERIFY_INTERVAL_SECONDS", default_value_t = 3600)]
    pub verify_interval_seconds: u64,

    /// Seconds between checks of a resource when nothing changed.
    #[arg(long, env = "KEYGUARD_RESYNC_SECONDS", default_value_t = 600)]
    pub resync_seconds: u64,

    /// Namespaced mode: act only in these namespaces (comma-separated),
    /// which grant the operator its Secret, Role and workload rights by
    /// RoleBindings. Empty: the whole cluster.
    #[arg(long, env = "KEYGUARD_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
}

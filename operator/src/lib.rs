//! keyguard-operator: keeps X (Twitter) API credentials synced into scoped
//! Secrets, verified, and rotated, as declared by `TwitterCredential`
//! resources.
//!
//! Reading order: `resource.rs` (what people declare), `controller.rs` (the
//! reconcile loop), `projection.rs` (what a target Secret holds),
//! `xapi/` (the X API client), `labels.rs`, `metrics.rs`, `telemetry.rs`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod conditions;
pub mod controller;
pub mod labels;
pub mod metrics;
pub mod projection;
pub mod resource;
pub mod server;
pub mod telemetry;
pub mod xapi;

use std::sync::Arc;
use std::time::Duration;

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
    XApi(#[from] xapi::XApiError),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs the operator: logging, HTTP endpoints, the controller.
pub async fn run(args: cli::RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format, &args.log_filter)?;
    let client = kube::Client::try_default().await?;
    let xapi = xapi::XApiClient::new(&args.x_api_base, Duration::from_secs(args.x_api_timeout))?;
    let metrics = metrics::Metrics::default();
    let mut ctx = controller::Context::new(client, xapi, metrics.clone());
    ctx.resync = Duration::from_secs(args.resync_seconds);
    let server = tokio::spawn(server::serve(args.http_addr, metrics));
    tracing::info!(x_api = %args.x_api_base, http = %args.http_addr, "keyguard-operator starting");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    controller::run(Arc::new(ctx), shutdown).await;
    server.abort();
    Ok(())
}

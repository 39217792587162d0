//! The operator's HTTP endpoints: `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

pub async fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || async move {
                // prometheus-client writes the OpenMetrics text format.
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

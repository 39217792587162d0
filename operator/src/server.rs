//! The operator's HTTP endpoints: `/healthz` and `/readyz` on plain HTTP
//! for the kubelet, and `/metrics`: over TLS to scrapers the apiserver
//! authorizes (`metrics_auth.rs`), or, with `--metrics-auth=none`, on the
//! plain HTTP address beside the probes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;
use crate::metrics_auth::{Decision, MetricsAuth};

/// `/metrics` behind TLS and the apiserver's authorization.
pub struct SecureMetrics {
    pub addr: SocketAddr,
    pub auth: Arc<MetricsAuth>,
    /// PEM certificate chain and key; a self-signed pair when absent.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

/// Serves the probes on `http_addr`, and the metrics as `secure` says.
pub async fn serve(
    http_addr: SocketAddr,
    metrics: Metrics,
    secure: Option<SecureMetrics>,
) -> std::io::Result<()> {
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let Some(secure) = secure else {
        let app = probes.route("/metrics", get(move || exposition(metrics.clone())));
        return axum::serve(TcpListener::bind(http_addr).await?, app).await;
    };
    let tls = tls_config(secure.cert_and_key.as_ref())?;
    let listener = TlsListener::new(
        TcpListener::bind(secure.addr).await?,
        tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
    )?;
    let app = Router::new()
        .route("/metrics", get(authorized_exposition))
        .with_state((secure.auth, metrics));
    let plain = axum::serve(TcpListener::bind(http_addr).await?, probes);
    tokio::select! {
        r = plain => r,
        r = axum::serve(listener, app) => r,
    }
}

async fn exposition(metrics: Metrics) -> Response {
    // prometheus-client writes the OpenMetrics text format.
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn authorized_exposition(
    State((auth, metrics)): State<(Arc<MetricsAuth>, Metrics)>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.decide(authorization).await {
        Decision::Allowed => exposition(metrics).await,
        Decision::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token the Kubernetes API authenticates is required\n",
        )
            .into_response(),
        Decision::Forbidden => (
            StatusCode::FORBIDDEN,
            "this user may not get the non-resource URL /metrics (bind the metrics-reader ClusterRole)\n",
        )
            .into_response(),
        Decision::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the Kubernetes API could not review the token; try again\n",
        )
            .into_response(),
    }
}

/// The TLS configuration from PEM files, or a self-signed certificate
/// (scrapers then skip verification, as with kube-rbac-proxy's default;
/// the bearer token is still never sent in the clear).
fn tls_config(files: Option<&(PathBuf, PathBuf)>) -> std::io::Result<rustls::ServerConfig> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let (chain, key) = match files {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(&format!("reading {}", cert.display()), &e))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| invalid(&format!("reading {}", key.display()), &e))?;
            (chain, key)
        }
        None => {
            let names = vec![
                "localhost".to_string(),
                "keyguard-operator-metrics".to_string(),
            ];
            let pair = rcgen::generate_simple_self_signed(names)
                .map_err(|e| invalid("generating a certificate", &e))?;
            let key = PrivateKeyDer::Pkcs8(pair.signing_key.serialize_der().into());
            (vec![pair.cert.der().clone()], key)
        }
    };
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("the metrics certificate", &e))
}

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// TLS handshakes in flight at most; connections beyond are dropped.
const HANDSHAKES_AT_ONCE: usize = 64;

type TlsConnection = (tokio_rustls::server::TlsStream<TcpStream>, SocketAddr);

/// Accepts TLS connections. Each handshake runs in its own task, so a
/// client that connects and says nothing delays no one else; a failed or
/// slow one is dropped.
struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<TlsConnection>,
    local: SocketAddr,
    _accepting: crate::AbortOnDrop,
}

impl TlsListener {
    fn new(tcp: TcpListener, acceptor: tokio_rustls::TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(HANDSHAKES_AT_ONCE);
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_AT_ONCE));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((tcp, addr)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    continue; // too many handshakes at once: drop this one
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slot = slot;
                    let handshake = acceptor.accept(tcp);
                    if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        let _ = tx.send((tls, addr)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            _accepting: crate::AbortOnDrop(accepting),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended (never, short of a panic): no more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

//! Running the operator in-process against the local control plane and the
//! X API emulator, with every log line (at TRACE) captured for tests that
//! prove no credential value is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use keyguard_operator::controller::Context;
use keyguard_operator::metrics::Metrics;
use keyguard_operator::xapi::XApiClient;

use crate::x_api::XApiEmulator;
use crate::ControlPlane;

/// Every log line written by operators in this test process.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .try_init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The least time between two restarts of a workload, for operators
/// started by tests.
pub const RESTART_MIN_INTERVAL: Duration = Duration::from_secs(3);

/// The claim key of in-process operators: one per test process, so an
/// operator restarted by a test recognises what its predecessor created
/// (as the real one does by reading its key Secret).
pub fn test_claim_key() -> keyguard_operator::ownership::ClaimKey {
    static KEY: OnceLock<keyguard_operator::ownership::ClaimKey> = OnceLock::new();
    KEY.get_or_init(|| keyguard_operator::ownership::ClaimKey::generate().expect("randomness"))
        .clone()
}

/// An operator running in this process.
pub struct RunningOperator {
    pub metrics: Metrics,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningOperator {
    /// Starts the controller with an admin client against `cp`, talking to
    /// the emulator `x`.
    pub async fn start(cp: &ControlPlane, x: &XApiEmulator) -> Self {
        Self::start_with(cp.client().await.expect("client"), x, None).await
    }

    /// Starts the controller with `client` (e.g. a ServiceAccount's), led
    /// by `election` when given.
    pub async fn start_with(
        client: kube::Client,
        x: &XApiEmulator,
        election: Option<keyguard_operator::leader::LeaderElection>,
    ) -> Self {
        Self::start_configured(client, x, election, |_| {}).await
    }

    /// Like `start_with`, with `configure` adjusting the context (e.g. a
    /// resync too long to hide a missing watch).
    pub async fn start_configured(
        client: kube::Client,
        x: &XApiEmulator,
        election: Option<keyguard_operator::leader::LeaderElection>,
        configure: impl FnOnce(&mut Context),
    ) -> Self {
        log_buffer();
        let xapi = XApiClient::new(x.base_url(), Duration::from_secs(5)).unwrap();
        let metrics = Metrics::default();
        let mut ctx = Context::new(client, xapi, metrics.clone(), test_claim_key());
        ctx.resync = Duration::from_secs(30);
        ctx.retry = Duration::from_secs(2);
        ctx.restart_min_interval = RESTART_MIN_INTERVAL;
        configure(&mut ctx);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            keyguard_operator::run_led(Arc::new(ctx), election, async move {
                let _ = rx.await;
            })
            .await;
        });
        RunningOperator {
            metrics,
            stop: Some(tx),
            task,
        }
    }

    /// Stops the controller and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for RunningOperator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

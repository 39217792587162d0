//! Running the operator in-process against the local control plane and the
//! X API emulator, with every log line (at TRACE) captured for tests that
//! prove no credential value is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use keyguard_operator::context::Context;
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

/// The `keyguard-operator` binary (debug build) as the chart runs it,
/// against `cp` and `x`: flags from the environment, JSON logs at
/// `log_filter` on a piped stderr, probes on 127.0.0.1:`port` and the
/// authorized TLS metrics on a free port of its own.
pub fn binary_command(
    cp: &ControlPlane,
    x: &XApiEmulator,
    log_filter: &str,
    port: u16,
) -> std::process::Command {
    let metrics_port = crate::control_plane::free_port().expect("a free port");
    binary_command_with_metrics(cp, x, log_filter, port, metrics_port)
}

/// `binary_command`, with the TLS metrics on 127.0.0.1:`metrics_port`.
pub fn binary_command_with_metrics(
    cp: &ControlPlane,
    x: &XApiEmulator,
    log_filter: &str,
    port: u16,
    metrics_port: u16,
) -> std::process::Command {
    let binary = crate::repo_root().join("target/debug/keyguard-operator");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p keyguard-operator` (scripts/test.sh does)",
        binary.display()
    );
    let mut command = std::process::Command::new(binary);
    command
        .arg("run")
        .env("KUBECONFIG", cp.kubeconfig())
        .env("POD_NAMESPACE", "default")
        .env("KEYGUARD_X_API_BASE", x.base_url())
        .env("KEYGUARD_LOG_FORMAT", "json")
        .env("KEYGUARD_LOG_FILTER", log_filter)
        .env("KEYGUARD_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("KEYGUARD_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    command
}

/// Reads the child's stderr as it comes (TRACE fills a pipe in no time);
/// the thread returns everything once the process ended.
pub fn drain_logs(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        let mut logs = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut logs);
        logs
    })
}

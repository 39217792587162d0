//! Small helpers for tests that talk to the control plane.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client};

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a CRD reports `Established=True`.
pub async fn wait_established(client: &Client, name: &str) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    eventually(
        &format!("CRD {name} to be Established"),
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let crd = api.get_opt(name).await.ok()??;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        },
    )
    .await
}

/// Applies the committed TwitterCredential CRD with kubectl and waits until
/// it is Established and kubectl's discovery knows its short name.
pub async fn install_crd(cp: &crate::ControlPlane) {
    let out = cp
        .kubectl()
        .arg("apply")
        .arg("-f")
        .arg(crate::repo_root().join("crds/twittercredentials.keyguard.dev.yaml"))
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "CRD apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A schema the apiserver accepts silently: an unknown `format` (schemars'
    // `uint8`) made every `kubectl apply` of the CRD print a warning.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Warning"),
        "applying the CRD printed a warning: {stderr}"
    );
    let client = cp.client().await.unwrap();
    wait_established(&client, "twittercredentials.keyguard.dev").await;
    // Discovery and the published OpenAPI (which `kubectl explain` reads)
    // lag a moment behind Established.
    eventually(
        "kubectl discovery and OpenAPI to know twcred",
        Duration::from_secs(30),
        || async {
            let out = cp.kubectl().args(["explain", "twcred"]).output().ok()?;
            out.status.success().then_some(())
        },
    )
    .await
}

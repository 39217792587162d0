//! The `keyguard-operator` binary as the chart runs it: flags from the
//! environment, JSON logs at TRACE without a single credential value,
//! and its /metrics, /healthz and /readyz endpoints.

use std::io::{Read, Write};

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use keyguard_operator::TwitterCredential;
use keyguard_tests::control_plane::free_port;
use keyguard_tests::kube_helpers::{eventually, install_crd};
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::{binary_command, drain_logs};
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};
use keyguard_tests::ControlPlane;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_logs_json_without_values_and_serves_metrics_and_health() {
    let cp = ControlPlane::start().await.unwrap();
    install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let app = x.create_app(AccessLevel::Read);
    let port = free_port().unwrap();
    let mut child = binary_command(&cp, &x, "trace", port).spawn().unwrap();
    let reader = drain_logs(&mut child);

    let client = cp.client().await.unwrap();
    let source = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"}, "stringData": {
        "apiKey": app.api_key, "apiKeySecret": app.api_key_secret, "accessToken": app.access_token, "accessTokenSecret": app.access_token_secret}});
    Api::<Secret>::namespaced(client.clone(), "default")
        .patch("keys", &PatchParams::apply("test"), &Patch::Apply(&source))
        .await
        .unwrap();
    let tc = json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential", "metadata": {"name": "bot"},
        "spec": {"environments": [{"name": "production", "source": {"secretRef": {"name": "keys"}},
            "target": {"secretName": "out", "keys": ["bearerToken", "apiKey", "apiKeySecret", "accessToken", "accessTokenSecret"]}}]}});
    Api::<TwitterCredential>::namespaced(client.clone(), "default")
        .patch("bot", &PatchParams::apply("test"), &Patch::Apply(&tc))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    eventually("the binary syncs", Duration::from_secs(30), || async {
        secrets.get_opt("out").await.ok()?
    })
    .await;

    let metrics = eventually("/metrics", Duration::from_secs(10), || async {
        http_get(port, "/metrics")
    })
    .await;
    assert!(metrics.contains("keyguard_reconciles_total"), "{metrics}");
    assert!(
        metrics
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "the exposition's content type: {metrics}"
    );
    assert!(
        metrics.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    assert!(http_get(port, "/healthz").is_some() && http_get(port, "/readyz").is_some());

    child.kill().unwrap();
    child.wait().unwrap();
    let logs = reader.join().unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10, "TRACE logs were written: {logs}");
    for line in &lines {
        let parsed: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(parsed.get("level").is_some(), "{line}");
    }
    let bearer = x.current_bearer(&app.api_key).unwrap();
    let secrets = Secrets::new([
        &app.api_key,
        &app.api_key_secret,
        &app.access_token,
        &app.access_token_secret,
        &bearer,
    ])
    .pair(&app.api_key, &app.api_key_secret);
    assert_no_leak("the operator's JSON logs at TRACE", &logs, &secrets);
    assert_no_leak("the metrics", &metrics, &secrets);
}

//! The `keyguard-operator` binary as the chart runs it: flags from the
//! environment, JSON logs at TRACE without a single credential value, its
//! /healthz and /readyz endpoints, and /metrics over TLS only to scrapers
//! the apiserver authorizes.

use std::io::{Read, Write};

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use keyguard_tests::control_plane::free_port;
use keyguard_tests::credential::CredentialKey::{
    AccessToken, AccessTokenSecret, ApiKey, ApiKeySecret, BearerToken,
};
use keyguard_tests::credential::{Credential, Env};
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::{eventually, install_crd};
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::{binary_command_with_metrics, drain_logs};
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
    let metrics_port = free_port().unwrap();
    let mut child = binary_command_with_metrics(&cp, &x, "trace", port, metrics_port)
        .spawn()
        .unwrap();
    let reader = drain_logs(&mut child);

    let client = cp.client().await.unwrap();
    let source = [
        ("apiKey", app.api_key.as_str()),
        ("apiKeySecret", app.api_key_secret.as_str()),
        ("accessToken", app.access_token.as_str()),
        ("accessTokenSecret", app.access_token_secret.as_str()),
    ];
    fixtures::apply_source(&client, "default", "keys", &source).await;
    let resource = Credential::named("bot").environment(
        Env::new("production").source("keys").target("out").keys([
            BearerToken,
            ApiKey,
            ApiKeySecret,
            AccessToken,
            AccessTokenSecret,
        ]),
    );
    fixtures::apply_credential(&client, "default", resource).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    eventually("the binary syncs", Duration::from_secs(30), || async {
        secrets.get_opt("out").await.ok()?
    })
    .await;

    let scraper = Scraper::new(&cp, metrics_port).await;
    // Connections that never start their TLS handshake delay no one: each
    // handshake has its own task (serially, ten would hold a scrape 50 s).
    let mut idle = Vec::new();
    while idle.len() < 10 {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", metrics_port)) {
            idle.push(c);
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let metrics = eventually("/metrics", Duration::from_secs(10), || async {
        let (status, body) = scraper.get(Some(&scraper.allowed)).await?;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(scraper.get(None).await.unwrap().0, 401, "no token");
    assert_eq!(
        scraper.get(Some("not-a-token")).await.unwrap().0,
        401,
        "a token the apiserver does not authenticate"
    );
    assert_eq!(
        scraper.get(Some(&scraper.stranger)).await.unwrap().0,
        403,
        "a ServiceAccount not bound to the metrics reader"
    );
    assert!(
        http_get(port, "/metrics").is_none(),
        "no metrics on the plain address"
    );
    drop(idle);
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
    // A line logged inside a reconcile names the resource, the reconcile
    // and the environment, in the same fields wherever it comes from.
    let projected: serde_json::Value = lines
        .iter()
        .find(|l| l.contains("projected Secret"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("no 'projected Secret' line: {logs}"));
    let spans = projected["spans"].as_array().expect("a span list");
    assert!(
        spans.iter().any(|s| s["name"] == "reconcile"
            && s["namespace"] == "default"
            && s["resource"] == "bot"
            && s["id"].is_u64()),
        "{projected}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "environment" && s["environment"] == "production"),
        "{projected}"
    );
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

/// A client of the TLS metrics endpoint, with the tokens of two
/// ServiceAccounts: one bound to a ClusterRole like the chart's
/// metrics-reader, one bound to nothing.
struct Scraper {
    http: reqwest::Client,
    url: String,
    allowed: String,
    stranger: String,
}

impl Scraper {
    async fn new(cp: &ControlPlane, metrics_port: u16) -> Scraper {
        let admin = cp.client().await.unwrap();
        let apply = |kind: &str, body: serde_json::Value| {
            let (admin, kind) = (admin.clone(), kind.to_string());
            async move {
                let (group, version) = match kind.as_str() {
                    "ServiceAccount" => ("", "v1"),
                    _ => ("rbac.authorization.k8s.io", "v1"),
                };
                let gvk = kube::api::GroupVersionKind::gvk(group, version, &kind);
                let (resource, _) = kube::discovery::pinned_kind(&admin, &gvk).await.unwrap();
                let api: Api<kube::api::DynamicObject> = match kind.as_str() {
                    "ServiceAccount" => Api::namespaced_with(admin, "default", &resource),
                    _ => Api::all_with(admin, &resource),
                };
                let name = body["metadata"]["name"].as_str().unwrap().to_string();
                let mut body = body;
                body["apiVersion"] = json!(resource.api_version);
                body["kind"] = json!(kind);
                api.patch(&name, &PatchParams::apply("test"), &Patch::Apply(&body))
                    .await
                    .unwrap();
            }
        };
        for name in ["scraper", "stranger"] {
            apply("ServiceAccount", json!({"metadata": {"name": name}})).await;
        }
        apply(
            "ClusterRole",
            json!({"metadata": {"name": "metrics-reader"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}),
        )
        .await;
        apply("ClusterRoleBinding", json!({"metadata": {"name": "metrics-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "metrics-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": "default"}]}))
        .await;
        Scraper {
            // The operator's certificate is self-signed, as Prometheus
            // meets it with insecureSkipVerify.
            http: reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .build()
                .unwrap(),
            url: format!("https://127.0.0.1:{metrics_port}/metrics"),
            allowed: cp
                .service_account_token("default", "scraper")
                .await
                .unwrap(),
            stranger: cp
                .service_account_token("default", "stranger")
                .await
                .unwrap(),
        }
    }

    /// The status and body of a scrape with `token`, once the endpoint
    /// answers.
    async fn get(&self, token: Option<&str>) -> Option<(u16, String)> {
        let request = self.http.get(&self.url);
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.text().await.ok()?;
        Some((status, format!("content-type: {content_type}\n{body}")))
    }
}

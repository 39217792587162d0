//! The local control plane itself: it starts, enforces RBAC, and stops.

use k8s_openapi::api::core::v1::Namespace;
use keyguard_tests::ControlPlane;
use kube::api::{Api, ListParams, PostParams};

#[tokio::test]
async fn starts_with_rbac_enforced_and_stops_cleanly() {
    let mut cp = ControlPlane::start().await.expect("control plane starts");
    let admin = cp.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");

    // RBAC is on: a ServiceAccount with no bindings may not list namespaces.
    let nobody = cp.impersonating("default", "nobody").await.unwrap();
    let err = Api::<Namespace>::all(nobody)
        .list(&ListParams::default())
        .await
        .expect_err("an unbound ServiceAccount must be forbidden");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403),
        "expected 403, got {err}"
    );

    // kubectl works against it as a user would use it.
    let out = cp
        .kubectl()
        .args(["get", "ns", "default", "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default"
    );

    // A ServiceAccount token from the TokenRequest API authenticates.
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some("tokens".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin, "tokens");
    sa.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "robot"}})).unwrap(),
    )
    .await
    .unwrap();
    let kubeconfig = cp
        .service_account_kubeconfig("tokens", "robot")
        .await
        .unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "system:serviceaccount:tokens:robot",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = cp.server();
    cp.stop();
    let client = reqwest_free_probe(&server);
    assert!(client.is_err(), "the apiserver must be gone after stop()");
}

/// A plain TCP connect: after stop() nothing listens on the port.
fn reqwest_free_probe(server: &str) -> std::io::Result<std::net::TcpStream> {
    let addr = server.trim_start_matches("https://");
    std::net::TcpStream::connect(addr)
}

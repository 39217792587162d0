//! Two replicas, one Lease: only the leader reconciles; when it stops, the
//! other takes over.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use keyguard_operator::controller::Context;
use keyguard_operator::leader::LeaderElection;
use keyguard_operator::metrics::Metrics;
use keyguard_operator::xapi::XApiClient;
use keyguard_operator::TwitterCredential;
use keyguard_tests::kube_helpers::{eventually, install_crd};
use keyguard_tests::x_api::XApiEmulator;
use keyguard_tests::ControlPlane;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

struct Replica {
    metrics: Metrics,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<bool>,
}

async fn replica(cp: &ControlPlane, x: &XApiEmulator, identity: &str) -> Replica {
    let client = cp.client().await.unwrap();
    let metrics = Metrics::default();
    let ctx = Context::new(
        client.clone(),
        XApiClient::new(x.base_url(), Duration::from_secs(5)).unwrap(),
        metrics.clone(),
    );
    let election = LeaderElection::new(
        client,
        "default",
        "keyguard-operator",
        identity,
        Duration::from_secs(3),
    );
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keyguard_operator::run_led(
        Arc::new(ctx),
        Some(election),
        async move {
            let _ = rx.await;
        },
    ));
    Replica {
        metrics,
        stop,
        task,
    }
}

fn reconciles(m: &Metrics) -> usize {
    m.render()
        .lines()
        .filter(|l| l.starts_with("keyguard_reconciles_total{"))
        .count()
}

async fn credential(client: &kube::Client, name: &str) {
    let tc = json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential", "metadata": {"name": name},
        "spec": {"environments": [{"name": "dev", "source": {"secretRef": {"name": "src"}}, "target": {"secretName": format!("{name}-out"), "keys": ["accessToken"]}}]}});
    Api::<TwitterCredential>::namespaced(client.clone(), "default")
        .patch(name, &PatchParams::apply("test"), &Patch::Apply(&tc))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_leader_reconciles_and_the_other_takes_over() {
    let cp = ControlPlane::start().await.unwrap();
    install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await.unwrap();
    let src = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src"}, "stringData": {"accessToken": "1-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"}});
    Api::<Secret>::namespaced(client.clone(), "default")
        .patch("src", &PatchParams::apply("test"), &Patch::Apply(&src))
        .await
        .unwrap();

    let a = replica(&cp, &x, "replica-a").await;
    let b = replica(&cp, &x, "replica-b").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let leader = eventually("a leader", Duration::from_secs(20), || async {
        leases
            .get_opt("keyguard-operator")
            .await
            .ok()??
            .spec?
            .holder_identity
    })
    .await;
    credential(&client, "first").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    eventually("the leader syncs", Duration::from_secs(20), || async {
        secrets.get_opt("first-out").await.ok()?
    })
    .await;

    let (leading, standing_by) = if leader == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    assert!(reconciles(&leading.metrics) > 0);
    assert_eq!(
        reconciles(&standing_by.metrics),
        0,
        "the standby never reconciles"
    );

    // The leader shuts down and hands over.
    leading.stop.send(()).unwrap();
    assert!(
        !leading.task.await.unwrap(),
        "a shutdown is not a lost election"
    );
    let new_leader = eventually("a new leader", Duration::from_secs(20), || async {
        leases
            .get_opt("keyguard-operator")
            .await
            .ok()??
            .spec?
            .holder_identity
            .filter(|h| *h != leader)
    })
    .await;
    assert_ne!(new_leader, leader);
    credential(&client, "second").await;
    eventually("the new leader syncs", Duration::from_secs(20), || async {
        secrets.get_opt("second-out").await.ok()?
    })
    .await;
    assert!(reconciles(&standing_by.metrics) > 0);
    standing_by.stop.send(()).unwrap();
}

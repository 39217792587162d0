//! Two replicas, one Lease: only the leader reconciles; when it stops, the
//! other takes over.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use keyguard_operator::context::Context;
use keyguard_operator::leader::LeaderElection;
use keyguard_operator::metrics::Metrics;
use keyguard_operator::xapi::XApiClient;
use keyguard_tests::credential::{Credential, CredentialKey::AccessToken, Env};
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::{eventually, install_crd};
use keyguard_tests::x_api::XApiEmulator;
use keyguard_tests::ControlPlane;
use kube::api::Api;

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
        keyguard_tests::operator::test_claim_key(),
    );
    let election = LeaderElection::new(
        client,
        "default",
        "keyguard-operator",
        identity,
        // Renewed every third of it: 8 s leaves a loaded machine room to
        // renew in time (a 3 s lease could lapse under load and change
        // leaders the test did not ask for), at the cost of a longer wait
        // where a test takes an expired Lease over.
        Duration::from_secs(8),
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
    let resource = Credential::named(name).environment(
        Env::new("dev")
            .source("src")
            .target(&format!("{name}-out"))
            .keys([AccessToken]),
    );
    fixtures::apply_credential(client, "default", resource).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_leader_reconciles_and_the_other_takes_over() {
    let cp = ControlPlane::start().await.unwrap();
    install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await.unwrap();
    let token = "1-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    fixtures::apply_source(&client, "default", "src", &[("accessToken", token)]).await;

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

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_taken_over_and_a_leader_that_loses_it_stops() {
    let cp = ControlPlane::start().await.unwrap();
    install_crd(&cp).await;
    let x = XApiEmulator::start().await;
    let client = cp.client().await.unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let holder = || async {
        leases
            .get_opt("keyguard-operator")
            .await
            .ok()??
            .spec?
            .holder_identity
    };

    // A leader that dies without releasing: the other waits for expiry.
    let a = replica(&cp, &x, "replica-a").await;
    eventually("a leads", Duration::from_secs(20), || async {
        holder().await.filter(|h| h == "replica-a")
    })
    .await;
    let b = replica(&cp, &x, "replica-b").await;
    a.task.abort();
    eventually(
        "b takes over the expired Lease",
        Duration::from_secs(20),
        || async { holder().await.filter(|h| h == "replica-b") },
    )
    .await;
    let transitions = leases
        .get("keyguard-operator")
        .await
        .unwrap()
        .spec
        .unwrap()
        .lease_transitions;
    assert_eq!(transitions, Some(1));

    // Someone else takes the Lease from b: b stops and says it lost.
    let mut lease = leases.get("keyguard-operator").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    spec.lease_duration_seconds = Some(60);
    leases
        .replace("keyguard-operator", &Default::default(), &lease)
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(20), b.task)
        .await
        .expect("b stops")
        .unwrap();
    assert!(lost, "losing the Lease is reported as lost leadership");
    drop(b.stop);
}

//! The Helm chart, installed with helm into the real control plane, and the
//! operator running with exactly the chart's ServiceAccount and RBAC.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use keyguard_operator::leader::LeaderElection;
use keyguard_operator::TwitterCredential;
use keyguard_tests::control_plane::ensure_helm;
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::operator::RunningOperator;
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};
use keyguard_tests::{repo_root, ControlPlane};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

pub fn helm(cp: Option<&ControlPlane>, args: &[&str]) -> (bool, String, String) {
    let helm = ensure_helm().expect("helm builds from tests/helm/go.mod (needs Go)");
    let mut cmd = Command::new(helm);
    if let Some(cp) = cp {
        cmd.arg("--kubeconfig").arg(cp.kubeconfig());
    }
    let out = cmd.args(args).current_dir(repo_root()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn chart_lints_renders_hardened_and_ships_the_current_crd() {
    let (ok, out, err) = helm(None, &["lint", "--strict", "charts/twitter-keyguard"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = helm(
        None,
        &[
            "template",
            "kg",
            "charts/twitter-keyguard",
            "-n",
            "keyguard-system",
        ],
    );
    assert!(ok, "{err}");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &serde_yaml::Value| !d.is_null())
        .collect();
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0]["securityContext"];
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["capabilities"]["drop"][0], "ALL");
    let clusterrole = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let text = serde_yaml::to_string(clusterrole).unwrap();
    assert!(
        !text.contains("'*'"),
        "no wildcards in the operator's RBAC:\n{text}"
    );

    let chart_crd = std::fs::read_to_string(
        repo_root().join("charts/twitter-keyguard/files/crds/twittercredentials.keyguard.dev.yaml"),
    )
    .unwrap();
    assert_eq!(
        chart_crd,
        keyguard_operator::resource::crd_yaml().unwrap(),
        "the chart's CRD is stale: cp crds/twittercredentials.keyguard.dev.yaml charts/twitter-keyguard/files/crds/"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_works_with_exactly_the_charts_rbac() {
    let cp = ControlPlane::start().await.unwrap();
    let (ok, out, err) = helm(
        Some(&cp),
        &[
            "install",
            "kg",
            "charts/twitter-keyguard",
            "-n",
            "keyguard-system",
            "--create-namespace",
        ],
    );
    assert!(ok, "helm install failed: {out}{err}");
    let admin = cp.client().await.unwrap();
    keyguard_tests::kube_helpers::wait_established(&admin, "twittercredentials.keyguard.dev").await;

    // The operator, authenticated as the chart's ServiceAccount.
    let kubeconfig = cp
        .service_account_kubeconfig("keyguard-system", "kg")
        .await
        .unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let operator_client = kube::Client::try_from(config).unwrap();
    // Its RBAC lets it make (and then read back) its claim key.
    for _ in 0..2 {
        keyguard_operator::ownership::load_or_create_key(
            operator_client.clone(),
            "keyguard-system",
            "keyguard-operator-claim-key",
        )
        .await
        .expect("the chart's ServiceAccount can create and read the claim key");
    }
    let x = XApiEmulator::start().await;
    let election = LeaderElection::new(
        operator_client.clone(),
        "keyguard-system",
        "kg",
        "kg-0",
        Duration::from_secs(5),
    );
    let _operator = RunningOperator::start_with(operator_client.clone(), &x, Some(election)).await;

    // It may not do more than its job.
    for (what, result) in [
        ("list ConfigMaps", Api::<ConfigMap>::all(operator_client.clone()).list(&ListParams::default()).await.map(|_| ())),
        ("create Pods", Api::<Pod>::namespaced(operator_client.clone(), "default").create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}})).unwrap()).await.map(|_| ())),
        ("delete Namespaces", Api::<Namespace>::all(operator_client.clone()).delete("default", &DeleteParams::default()).await.map(|_| ())),
    ] {
        assert!(matches!(result, Err(kube::Error::Api(ref s)) if s.code == 403), "the operator could {what}: {result:?}");
    }

    // A real job: cross-namespace projection with a minted bearer token,
    // access RBAC, a restart, and cleanup.
    let app = x.create_app(AccessLevel::Read);
    fixtures::create_namespace(&admin, "team", &[]).await;
    fixtures::create_namespace(&admin, "prod", &[("keyguard.dev/allow-from-team", "true")]).await;
    fixtures::apply_consumer_keys(&admin, "team", "keys", &app).await;
    Api::<Deployment>::namespaced(admin.clone(), "prod")
        .create(&PostParams::default(), &fixtures::deployment("bot"))
        .await
        .unwrap();
    fixtures::apply_credential(&admin, "team", fixtures::chart_job("prod")).await;
    let credentials: Api<TwitterCredential> = Api::namespaced(admin.clone(), "team");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "prod");
    eventually(
        "the projected Secret, written as the chart's ServiceAccount",
        Duration::from_secs(30),
        || async { secrets.get_opt("x").await.ok()? },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "keyguard-system");
    let holder = leases
        .get("kg")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity;
    assert_eq!(holder.as_deref(), Some("kg-0"));
    eventually("Ready", Duration::from_secs(30), || async {
        let tc = credentials.get("bot").await.ok()?;
        tc.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin.clone(), "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Synced")),
        "Events are allowed"
    );

    credentials
        .delete("bot", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "cleanup as the ServiceAccount",
        Duration::from_secs(30),
        || async {
            (credentials.get_opt("bot").await.ok()?.is_none()
                && secrets.get_opt("x").await.ok()?.is_none())
            .then_some(())
        },
    )
    .await;

    let (ok, out, err) = helm(Some(&cp), &["uninstall", "kg", "-n", "keyguard-system"]);
    assert!(ok, "{out}{err}");
}

//! The kubectl-only install (`deploy/`, rendered from the chart by
//! `scripts/render-manifests.sh`): it is exactly the chart, and applied with
//! kubectl alone it runs the operator as its ServiceAccount, which syncs an
//! example.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use keyguard_operator::TwitterCredential;
use keyguard_tests::fixtures;
use keyguard_tests::kube_helpers::{eventually, wait_established};
use keyguard_tests::operator::RunningOperator;
use keyguard_tests::x_api::{AccessLevel, XApiEmulator};
use keyguard_tests::{repo_root, ControlPlane};
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::chart::helm;

const HEADER: &str =
    "# Generated from charts/twitter-keyguard by scripts/render-manifests.sh: do not edit.\n";
const NAMESPACE: &str =
    "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: keyguard-system\n";

fn rendered(extra: &[&str]) -> String {
    let mut args = vec![
        "template",
        "twitter-keyguard",
        "charts/twitter-keyguard",
        "-n",
        "keyguard-system",
    ];
    args.extend(extra);
    let (ok, out, err) = helm(None, &args);
    assert!(ok, "{err}");
    out
}

#[test]
fn deploy_manifests_are_the_chart_rendered() {
    let read = |f: &str| std::fs::read_to_string(repo_root().join("deploy").join(f)).unwrap();
    let stale = "deploy/ is stale: run scripts/render-manifests.sh";
    assert_eq!(
        read("crds.yaml"),
        format!(
            "{HEADER}{}",
            rendered(&["--show-only", "templates/crds.yaml"])
        ),
        "{stale}"
    );
    assert_eq!(
        read("install.yaml"),
        format!("{HEADER}{NAMESPACE}{}", rendered(&[])),
        "{stale}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubectl_only_install_runs_and_syncs_an_example() {
    let cp = ControlPlane::start().await.unwrap();
    let out = cp
        .kubectl()
        .args(["apply", "-f"])
        .arg(repo_root().join("deploy/install.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = cp.client().await.unwrap();
    wait_established(&admin, "twittercredentials.keyguard.dev").await;

    // No kubelet here: the operator runs beside the control plane, as the
    // ServiceAccount and with the RBAC the manifests created.
    let kubeconfig = cp
        .service_account_kubeconfig("keyguard-system", "twitter-keyguard")
        .await
        .unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&kubeconfig).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let operator_client = kube::Client::try_from(config).unwrap();
    let x = XApiEmulator::start().await;
    let _operator = RunningOperator::start_with(operator_client, &x, None).await;

    let app = x.create_app(AccessLevel::Read);
    fixtures::create_namespace(&admin, "team-news", &[]).await;
    fixtures::apply_consumer_keys(&admin, "team-news", "dev-keys", &app).await;
    // examples/minimal.yaml, as a user applies it.
    let example: TwitterCredential = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("examples/minimal.yaml")).unwrap(),
    )
    .unwrap();
    let name = example.metadata.name.clone().unwrap();
    Api::<TwitterCredential>::namespaced(admin.clone(), "team-news")
        .create(&PostParams::default(), &example)
        .await
        .unwrap();
    let target = example.spec.environments[0].target.secret_name.clone();
    eventually(
        "the example's Secret, written by the operator of the kubectl-only install",
        Duration::from_secs(60),
        || async {
            Api::<Secret>::namespaced(admin.clone(), "team-news")
                .get_opt(&target)
                .await
                .ok()?
        },
    )
    .await;
    let ready = eventually("Ready", Duration::from_secs(60), || async {
        let tc = Api::<TwitterCredential>::namespaced(admin.clone(), "team-news")
            .get(&name)
            .await
            .ok()?;
        let ready = tc
            .status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "True").then_some(ready)
    })
    .await;
    assert_eq!(ready.status, "True");
}

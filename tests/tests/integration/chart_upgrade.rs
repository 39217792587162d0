//! CRD upgrades through the chart: `helm upgrade` with a changed CRD
//! serves the new schema, and `helm uninstall` keeps the CRD (and with it
//! every TwitterCredential).

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keyguard_tests::{repo_root, ControlPlane};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::chart::helm;

const CRD: &str = "twittercredentials.keyguard.dev";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The next release of the chart: a CRD whose spec gains a field.
fn next_release(chart: &Path) {
    let file = chart.join("files/crds/twittercredentials.keyguard.dev.yaml");
    let mut crd: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let spec = &mut crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"];
    spec.as_mapping_mut().unwrap().insert(
        "upgradeProbe".into(),
        serde_yaml::to_value(json!({"type": "string", "description": "added by the next release"}))
            .unwrap(),
    );
    std::fs::write(&file, serde_yaml::to_string(&crd).unwrap()).unwrap();
    let chart_yaml = chart.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(
        &chart_yaml,
        text.replace("version: 0.1.0", "version: 0.1.1-next"),
    )
    .unwrap();
}

async fn spec_fields(crds: &Api<CustomResourceDefinition>) -> Vec<String> {
    let crd = crds.get(CRD).await.unwrap();
    let schema = crd.spec.versions[0].schema.clone().unwrap();
    let props = schema.open_api_v3_schema.unwrap().properties.unwrap();
    props["spec"]
        .properties
        .clone()
        .unwrap()
        .into_keys()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_upgrade_updates_the_crd_and_uninstall_keeps_it() {
    let cp = ControlPlane::start().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let chart = work.path().join("twitter-keyguard");
    copy_dir(&repo_root().join("charts/twitter-keyguard"), &chart);
    let chart_arg = chart.to_str().unwrap();
    let ns = ["-n", "keyguard-system"];

    let (ok, out, err) = helm(
        Some(&cp),
        &[&["install", "kg", chart_arg, "--create-namespace"], &ns[..]].concat(),
    );
    assert!(ok, "helm install: {out}{err}");
    let admin = cp.client().await.unwrap();
    keyguard_tests::kube_helpers::wait_established(&admin, CRD).await;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    assert!(!spec_fields(&crds)
        .await
        .contains(&"upgradeProbe".to_string()));

    next_release(&chart);
    let (ok, out, err) = helm(
        Some(&cp),
        &[&["upgrade", "kg", chart_arg], &ns[..]].concat(),
    );
    assert!(ok, "helm upgrade: {out}{err}");
    assert!(
        spec_fields(&crds)
            .await
            .contains(&"upgradeProbe".to_string()),
        "helm upgrade did not update the CRD"
    );
    // The new field is served: a resource using it keeps it. Raw JSON: the
    // field is unknown to this release's type, which the builder writes.
    let tc = json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
        "metadata": {"name": "bot", "namespace": "default"},
        "spec": {"upgradeProbe": "kept", "environments": [{"name": "production",
            "source": {"secretRef": {"name": "keys"}}, "target": {"secretName": "x", "keys": ["apiKey"]}}]}});
    let api: Api<keyguard_operator::TwitterCredential> = Api::namespaced(admin.clone(), "default");
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        admin.clone(),
        "default",
        &kube::api::ApiResource::erase::<keyguard_operator::TwitterCredential>(&()),
    );
    raw.patch("bot", &PatchParams::apply("test"), &Patch::Apply(&tc))
        .await
        .expect("a resource with the new field");
    let stored = raw.get("bot").await.unwrap();
    assert_eq!(stored.data["spec"]["upgradeProbe"], "kept");

    let (ok, out, err) = helm(Some(&cp), &[&["uninstall", "kg"], &ns[..]].concat());
    assert!(ok, "helm uninstall: {out}{err}");
    assert!(
        crds.get_opt(CRD).await.unwrap().is_some(),
        "helm uninstall deleted the CRD (and every TwitterCredential)"
    );
    assert!(api.get_opt("bot").await.unwrap().is_some());
}

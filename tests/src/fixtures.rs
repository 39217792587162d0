//! The objects many tests set up, in one place instead of a copy each:
//! namespaces with their opt-in labels, source Secrets, the Deployment a
//! restart target names, and the TwitterCredentials several tests share.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use keyguard_operator::TwitterCredential;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

use crate::credential::{Credential, CredentialKey, Env, Permission, WorkloadKind};
use crate::x_api::AppCredentials;

/// Creates namespace `name` with `labels` (e.g. an opt-in
/// `keyguard.dev/allow-from-team: "true"`).
pub async fn create_namespace(client: &Client, name: &str, labels: &[(&str, &str)]) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(owned(labels)),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// Server-side applies (as manager `test`) the Secret `ns/name` holding
/// `data` as its `stringData`: a source of credentials.
pub async fn apply_source(client: &Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&source(name, data)),
        )
        .await
        .unwrap();
}

/// Applies the source Secret `ns/name` holding `app`'s API key and secret.
pub async fn apply_consumer_keys(client: &Client, ns: &str, name: &str, app: &AppCredentials) {
    let keys = [
        ("apiKey", app.api_key.as_str()),
        ("apiKeySecret", app.api_key_secret.as_str()),
    ];
    apply_source(client, ns, name, &keys).await;
}

fn source(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        string_data: Some(owned(data)),
        ..Default::default()
    }
}

/// Server-side applies (as manager `test`) a TwitterCredential in `ns`.
pub async fn apply_credential(client: &Client, ns: &str, resource: impl Into<TwitterCredential>) {
    let resource: TwitterCredential = resource.into();
    let name = resource
        .metadata
        .name
        .clone()
        .expect("a TwitterCredential has a name");
    Api::<TwitterCredential>::namespaced(client.clone(), ns)
        .patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&resource),
        )
        .await
        .unwrap();
}

/// A Deployment `name` (pods labelled `app: name`, one container `bot`):
/// something for a restart target to name. Never runs: no kubelet.
pub fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "bot", "image": "bot"}]}}}
    }))
    .unwrap()
}

/// Environment `production`: `bot-keys` projected as `keys` into
/// `target_ns/twitter-credentials`, readable by ServiceAccount `reader`,
/// permission `read`.
pub fn production(target_ns: &str, keys: impl IntoIterator<Item = CredentialKey>) -> Env {
    Env::new("production")
        .source("bot-keys")
        .target_namespace(target_ns)
        .target("twitter-credentials")
        .keys(keys)
        .permission(Permission::Read)
        .service_accounts(["reader"])
}

/// The chart tests' real job, `bot`: a bearer token minted from `keys`
/// and projected into `target_ns/x`, readable by ServiceAccount `bot`, and
/// Deployment `bot` there restarted on a change.
pub fn chart_job(target_ns: &str) -> Credential {
    Credential::named("bot").environment(
        Env::new("production")
            .source("keys")
            .target_namespace(target_ns)
            .target("x")
            .keys([CredentialKey::BearerToken])
            .service_accounts(["bot"])
            .restart(WorkloadKind::Deployment, "bot"),
    )
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_is_the_environment_tests_wrote_by_hand() {
        let resource: TwitterCredential = Credential::named("bot")
            .environment(production(
                "prod",
                [CredentialKey::BearerToken, CredentialKey::AccessToken],
            ))
            .into();
        let env = serde_json::to_value(&resource.spec.environments[0]).unwrap();
        assert_eq!(
            env,
            json!({
                "name": "production",
                "source": {"secretRef": {"name": "bot-keys"}},
                "target": {"namespace": "prod", "secretName": "twitter-credentials", "keys": ["bearerToken", "accessToken"]},
                "access": {"permission": "read", "serviceAccounts": ["reader"]}
            })
        );
    }

    #[test]
    fn the_chart_job_is_the_resource_the_chart_tests_wrote_by_hand() {
        let resource = serde_json::to_value(TwitterCredential::from(chart_job("prod"))).unwrap();
        assert_eq!(
            resource,
            json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential", "metadata": {"name": "bot"},
                "spec": {"environments": [{"name": "production", "source": {"secretRef": {"name": "keys"}},
                    "target": {"namespace": "prod", "secretName": "x", "keys": ["bearerToken"]},
                    "access": {"permission": "read", "serviceAccounts": ["bot"]},
                    "restartTargets": [{"kind": "Deployment", "name": "bot"}]}]}})
        );
    }

    #[test]
    fn a_source_is_the_secret_tests_applied_by_hand() {
        let secret = source("keys", &[("apiKey", "k"), ("apiKeySecret", "s")]);
        assert_eq!(
            serde_json::to_value(&secret).unwrap(),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keys"},
                "stringData": {"apiKey": "k", "apiKeySecret": "s"}})
        );
    }
}

//! Key reuse: an environment whose source credential another environment
//! also projects is warned (`CredentialShared`), naming the other only
//! inside its namespace; the warning clears once each has its own keys or
//! the other is deleted, and an environment that shares deliberately can
//! say so.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use keyguard_tests::credential::{Credential, CredentialKey::ApiKey, Env};
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::status::{Conditions, StatusReads};
use keyguard_tests::x_api::AccessLevel;

use keyguard_tests::world::{World, WAIT};

/// Environment `name` projecting `apiKey` from `source` into `<name>-out`,
/// sharing its source credential on purpose when `allow`.
fn env(name: &str, source: &str, allow: bool) -> Env {
    Env::new(name)
        .source(source)
        .target(&format!("{name}-out"))
        .keys([ApiKey])
        .allow_shared_credentials(allow)
}

/// A source Secret `ns/name` holding a new X app's own key and secret.
async fn new_app_keys(w: &World, ns: &str, name: &str) {
    let app = w.x.create_app(AccessLevel::Read);
    let keys = [
        ("apiKey", app.api_key.as_str()),
        ("apiKeySecret", app.api_key_secret.as_str()),
    ];
    w.source(ns, name, &keys).await;
}

/// Whether the operator's metrics say `ns/name`'s `env` shares a key.
fn shared_metric(w: &World, ns: &str, name: &str, env: &str) -> Option<String> {
    let rendered = w.operator.as_ref()?.metrics.render();
    let series = format!("namespace=\"{ns}\",name=\"{name}\",environment=\"{env}\"");
    rendered
        .lines()
        .filter(|l| l.starts_with("keyguard_environment_credential_shared{"))
        .find(|l| l.contains(&series))
        .and_then(|l| l.rsplit(' ').next().map(str::to_string))
}

/// The environment's CredentialShared condition once it has one.
async fn shared(w: &World, ns: &str, name: &str, env: &str) -> Option<Condition> {
    let status = w.status(ns, name).await;
    status
        .environment(env)?
        .condition("CredentialShared")
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_source_credential_is_flagged_named_only_in_its_namespace_and_cleared() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("other", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.source("other", "keys", &w.full_source()).await;

    // Two environments of one resource from one source.
    w.apply(
        "team",
        Credential::named("bot")
            .environments([env("prod", "keys", false), env("staging", "keys", false)]),
    )
    .await;
    let c = w
        .wait_condition("team", "bot", Some("staging"), "CredentialShared", "True")
        .await;
    assert_eq!(c.reason, "CredentialShared");
    let message = &c.message;
    assert!(
        message.contains("apiKey") && message.contains("team/bot environment prod"),
        "{message}"
    );
    w.wait_event("team", "CredentialShared").await;
    eventually("the metric to say so", WAIT, || async {
        (shared_metric(&w, "team", "bot", "staging")? == "1").then_some(())
    })
    .await;

    // Another namespace's resource with the same keys: each learns of the
    // other, and neither learns whose.
    w.apply(
        "other",
        Credential::named("copy").environment(env("prod", "keys", false)),
    )
    .await;
    let c = w
        .wait_condition("other", "copy", Some("prod"), "CredentialShared", "True")
        .await;
    let message = c.message;
    assert!(
        message.contains("an environment in another namespace"),
        "{message}"
    );
    assert!(
        !message.contains("team"),
        "no name from another namespace: {message}"
    );
    eventually(
        "team/bot prod to learn of the other namespace",
        WAIT,
        || async {
            let c = shared(&w, "team", "bot", "prod").await?;
            c.message.contains("another namespace").then_some(())
        },
    )
    .await;

    // Resolved: the other namespace gets its own app, staging its own keys.
    new_app_keys(&w, "other", "own-keys").await;
    w.apply(
        "other",
        Credential::named("copy").environment(env("prod", "own-keys", false)),
    )
    .await;
    new_app_keys(&w, "team", "staging-keys").await;
    w.apply(
        "team",
        Credential::named("bot").environments([
            env("prod", "keys", false),
            env("staging", "staging-keys", false),
        ]),
    )
    .await;
    let c = w
        .wait_condition("team", "bot", Some("prod"), "CredentialShared", "False")
        .await;
    assert_eq!(c.reason, "NotShared");
    eventually("the metric to clear", WAIT, || async {
        (shared_metric(&w, "team", "bot", "prod")? == "0").then_some(())
    })
    .await;
    w.wait_condition("other", "copy", Some("prod"), "CredentialShared", "False")
        .await;

    // Deliberate sharing, said: no warning on the environment that says so.
    w.apply(
        "team",
        Credential::named("bot")
            .environments([env("prod", "keys", false), env("staging", "keys", true)]),
    )
    .await;
    w.wait_condition("team", "bot", Some("prod"), "CredentialShared", "True")
        .await;
    eventually(
        "staging, which shares deliberately, to carry no CredentialShared",
        WAIT,
        || async {
            shared(&w, "team", "bot", "staging")
                .await
                .is_none()
                .then_some(())
        },
    )
    .await;
}

/// The other holder deleted: the environment left alone with its key is
/// told at once. The resync is longer than the test, so only the
/// key-reuse trigger can bring the news.
#[tokio::test(flavor = "multi_thread")]
async fn the_deletion_of_the_other_holder_clears_the_warning() {
    let w = World::start_configured(|ctx| ctx.resync = std::time::Duration::from_secs(3600)).await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot").environment(env("prod", "keys", false)),
    )
    .await;
    w.apply(
        "team",
        Credential::named("copy").environment(env("staging", "keys", false)),
    )
    .await;
    w.wait_condition("team", "copy", Some("staging"), "CredentialShared", "True")
        .await;
    w.wait_condition("team", "bot", Some("prod"), "CredentialShared", "True")
        .await;

    kube::Api::<keyguard_operator::TwitterCredential>::namespaced(w.client.clone(), "team")
        .delete("bot", &Default::default())
        .await
        .expect("team/bot deleted");
    let c = w
        .wait_condition("team", "copy", Some("staging"), "CredentialShared", "False")
        .await;
    assert_eq!(c.reason, "NotShared");
}

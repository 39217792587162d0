//! The operator against a real control plane and the X API emulator:
//! projection with scoped RBAC, refusals, drift repair, restarts, cleanup,
//! and no credential value anywhere a person or a log can see.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use keyguard_operator::TwitterCredential;
use keyguard_tests::credential::CredentialKey::{
    AccessToken, AccessTokenSecret, ApiKey, BearerToken,
};
use keyguard_tests::credential::{Credential, CredentialKey, DeletionPolicy, Env, WorkloadKind};
use keyguard_tests::fixtures::{deployment, production};
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::{captured_logs, RunningOperator};
use keyguard_tests::status::StatusReads;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use keyguard_tests::world::{keys, value, World, WAIT};

#[tokio::test(flavor = "multi_thread")]
async fn projects_declared_keys_with_scoped_rbac_and_status() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("prod", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "bot-keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot").environment(production("prod", [BearerToken, AccessToken])),
    )
    .await;

    let secret = w
        .wait_secret(
            "prod",
            "twitter-credentials",
            "the projected Secret",
            |_| true,
        )
        .await;
    assert_eq!(
        keys(&secret),
        vec!["accessToken", "bearerToken"],
        "only the declared keys"
    );
    assert_eq!(
        value(&secret, "accessToken").as_deref(),
        Some(w.app.access_token.as_str())
    );
    assert_eq!(
        value(&secret, "bearerToken"),
        w.x.current_bearer(&w.app.api_key),
        "the bearer minted by X"
    );
    assert_eq!(
        secret
            .labels()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("keyguard-operator")
    );
    assert_eq!(
        secret
            .annotations()
            .get("keyguard.dev/owner")
            .map(String::as_str),
        Some("team/bot")
    );

    let roles = Api::<Role>::namespaced(w.client.clone(), "prod");
    let role = eventually("the reader Role", WAIT, || async {
        roles
            .get_opt("keyguard-read-twitter-credentials")
            .await
            .ok()?
    })
    .await;
    let rule = &role.rules.unwrap()[0];
    assert_eq!(rule.verbs, vec!["get"]);
    assert_eq!(
        rule.resource_names.as_deref(),
        Some(&["twitter-credentials".to_string()][..])
    );
    let bindings = Api::<RoleBinding>::namespaced(w.client.clone(), "prod");
    let binding = eventually("the RoleBinding", WAIT, || async {
        bindings
            .get_opt("keyguard-read-twitter-credentials")
            .await
            .ok()?
    })
    .await;
    assert_eq!(binding.subjects.unwrap()[0].name, "reader");

    let ready = w.wait_condition("team", "bot", None, "Ready", "True").await;
    assert_eq!(ready.reason, "Synced");
    let status = w.status("team", "bot").await;
    assert_eq!(status.ready_environments.as_deref(), Some("1/1"));
    let env = &status.environments[0];
    assert_eq!(env.revision, 1);
    assert_eq!(
        env.target_secret.as_deref(),
        Some("prod/twitter-credentials")
    );
    assert!(env.fingerprint.as_deref().unwrap().starts_with("sha256:"));

    // A listed ServiceAccount can read exactly this Secret; others cannot.
    let reader = w.cp.impersonating("prod", "reader").await.unwrap();
    Api::<Secret>::namespaced(reader.clone(), "prod")
        .get("twitter-credentials")
        .await
        .expect("reader can get it");
    let err = Api::<Secret>::namespaced(reader, "prod")
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );
    let other = w.cp.impersonating("prod", "someone-else").await.unwrap();
    let err = Api::<Secret>::namespaced(other, "prod")
        .get("twitter-credentials")
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err}"
    );

    // kubectl shows it.
    let out =
        w.cp.kubectl()
            .args(["get", "twcred", "-n", "team"])
            .output()
            .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("True") && l.contains("1/1")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_namespaces_without_opt_in_and_secrets_it_does_not_own() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.namespace("closed", &[]).await;
    w.namespace("shared", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "bot-keys", &w.full_source()).await;
    // Somebody else's Secret where ours would go.
    w.source(
        "shared",
        "twitter-credentials",
        &[("owner", "another team")],
    )
    .await;
    w.apply(
        "team",
        Credential::named("bot").environments([
            production("closed", [AccessToken]),
            Env::new("staging")
                .source("bot-keys")
                .target_namespace("shared")
                .target("twitter-credentials")
                .keys([AccessToken]),
        ]),
    )
    .await;

    let refused = w
        .wait_condition(
            "team",
            "bot",
            Some("production"),
            "TargetNotAllowed",
            "True",
        )
        .await;
    assert!(
        refused
            .message
            .contains("keyguard.dev/allow-from-team=true"),
        "{refused:?}"
    );
    let conflict = w
        .wait_condition("team", "bot", Some("staging"), "Conflict", "True")
        .await;
    assert!(
        conflict.message.contains("shared/twitter-credentials"),
        "{conflict:?}"
    );
    let ready = w
        .wait_condition("team", "bot", None, "Ready", "False")
        .await;
    assert!(ready.message.contains("production"), "{ready:?}");
    w.wait_condition("team", "bot", None, "Conflict", "True")
        .await;

    assert!(
        w.secret("closed", "twitter-credentials").await.is_none(),
        "nothing written without opt-in"
    );
    let theirs = w.secret("shared", "twitter-credentials").await.unwrap();
    assert_eq!(
        keys(&theirs),
        vec!["owner"],
        "an unowned Secret is left untouched"
    );
    assert!(!theirs.labels().contains_key("keyguard.dev/owner-uid"));

    // Events say why.
    let events = eventually("Warning events", WAIT, || async {
        let list = Api::<Event>::namespaced(w.client.clone(), "team")
            .list(&ListParams::default())
            .await
            .ok()?;
        let reasons: Vec<String> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
        (reasons.contains(&"TargetNotAllowed".to_string())
            && reasons.contains(&"Conflict".to_string()))
        .then_some(reasons)
    })
    .await;
    assert!(!events.is_empty());

    // Opting in later is picked up on the next sync (force it now).
    let ns_patch = json!({"metadata": {"labels": {"keyguard.dev/allow-from-team": "true"}}});
    Api::<Namespace>::all(w.client.clone())
        .patch("closed", &PatchParams::default(), &Patch::Merge(&ns_patch))
        .await
        .unwrap();
    let force = json!({"metadata": {"annotations": {"keyguard.dev/force-sync": "1"}}});
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .patch("bot", &PatchParams::default(), &Patch::Merge(&force))
        .await
        .unwrap();
    w.wait_secret(
        "closed",
        "twitter-credentials",
        "projection after opt-in",
        |_| true,
    )
    .await;
    w.wait_condition("team", "bot", Some("production"), "Synced", "True")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_sources_become_conditions_not_crashes() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "partial", &[("apiKey", w.app.api_key.as_str())])
        .await;
    let dev = |source: &str, target: &str, key: CredentialKey| {
        Env::new("dev").source(source).target(target).keys([key])
    };
    w.apply(
        "team",
        Credential::named("missing-key").environment(dev("partial", "out", BearerToken)),
    )
    .await;
    w.apply(
        "team",
        Credential::named("no-source").environment(dev("nowhere", "out2", ApiKey)),
    )
    .await;
    // A Secret of another type with nothing in it.
    let empty: Secret = serde_json::from_value(json!({"metadata": {"name": "empty"}, "type": "kubernetes.io/basic-auth", "stringData": {"username": ""}})).unwrap();
    Api::<Secret>::namespaced(w.client.clone(), "team")
        .create(&PostParams::default(), &empty)
        .await
        .unwrap();
    w.apply(
        "team",
        Credential::named("empty-source").environment(dev("empty", "out3", ApiKey)),
    )
    .await;

    let c = w
        .wait_condition("team", "missing-key", Some("dev"), "Synced", "False")
        .await;
    assert_eq!(c.reason, "SourceInvalid");
    assert!(c.message.contains("no key `apiKeySecret`"), "{c:?}");
    let c = w
        .wait_condition("team", "no-source", Some("dev"), "Synced", "False")
        .await;
    assert_eq!(c.reason, "SourceNotFound");
    assert!(c.message.contains("team/nowhere"), "{c:?}");
    let c = w
        .wait_condition("team", "empty-source", Some("dev"), "Synced", "False")
        .await;
    assert_eq!(c.reason, "SourceInvalid");

    // Fixing the source heals it, through the source watch.
    w.source(
        "team",
        "partial",
        &[
            ("apiKey", w.app.api_key.as_str()),
            ("apiKeySecret", w.app.api_key_secret.as_str()),
        ],
    )
    .await;
    w.wait_condition("team", "missing-key", Some("dev"), "Synced", "True")
        .await;
    w.wait_secret("team", "out", "the healed projection", |s| {
        keys(s) == ["bearerToken"]
    })
    .await;

    // Wrong credentials: X refuses, and that is a condition with X's words.
    w.source(
        "team",
        "wrong",
        &[
            ("apiKey", "AbCdEfGhIjKlMnOpQrStUvWxY"),
            (
                "apiKeySecret",
                "wrongwrongwrongwrongwrongwrongwrongWRONG123",
            ),
        ],
    )
    .await;
    w.apply(
        "team",
        Credential::named("wrong-keys").environment(dev("wrong", "out4", BearerToken)),
    )
    .await;
    let c = w
        .wait_condition("team", "wrong-keys", Some("dev"), "Synced", "False")
        .await;
    assert_eq!(c.reason, "XApiError");
    assert!(c.message.contains("code 99"), "{c:?}");
    assert!(!c.message.contains("wrongwrong"), "{c:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_repaired_and_source_changes_reach_only_their_targets() {
    let w = World::start_configured(|ctx| ctx.resync = Duration::from_secs(3600)).await;
    w.namespace("team", &[]).await;
    w.source("team", "prod-keys", &w.full_source()).await;
    w.source(
        "team",
        "dev-keys",
        &[("accessToken", "12345-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")],
    )
    .await;
    w.apply(
        "team",
        Credential::named("bot").environments([
            Env::new("production")
                .source("prod-keys")
                .target("prod-out")
                .keys([AccessToken]),
            Env::new("development")
                .source("dev-keys")
                .target("dev-out")
                .keys([AccessToken]),
        ]),
    )
    .await;
    w.wait_secret("team", "prod-out", "prod projection", |_| true)
        .await;
    let dev = w
        .wait_secret("team", "dev-out", "dev projection", |_| true)
        .await;
    let dev_version = dev.metadata.resource_version.clone();

    // Deleted by a person: restored.
    Api::<Secret>::namespaced(w.client.clone(), "team")
        .delete("prod-out", &DeleteParams::default())
        .await
        .unwrap();
    w.wait_secret("team", "prod-out", "the deleted Secret restored", |_| true)
        .await;

    // Edited by a person: restored.
    let edit = json!({"data": {"accessToken": "aGFja2Vk"}});
    Api::<Secret>::namespaced(w.client.clone(), "team")
        .patch("prod-out", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let token = w.app.access_token.clone();
    w.wait_secret("team", "prod-out", "the edited Secret restored", |s| {
        value(s, "accessToken").as_deref() == Some(token.as_str())
    })
    .await;

    // The source changes: the target follows by a watch (this operator's
    // resync is an hour), and the other environment is not rewritten.
    // (Values a person puts in are checked with X first: a real new app's.)
    let next_app = w.x.create_app(keyguard_tests::x_api::AccessLevel::Read);
    let new_token = next_app.access_token.as_str();
    let src = [
        ("apiKey", next_app.api_key.as_str()),
        ("apiKeySecret", next_app.api_key_secret.as_str()),
        ("accessToken", new_token),
        ("accessTokenSecret", next_app.access_token_secret.as_str()),
    ];
    w.source("team", "prod-keys", &src).await;
    w.wait_secret("team", "prod-out", "the source change", |s| {
        value(s, "accessToken").as_deref() == Some(new_token)
    })
    .await;
    eventually("production at revision 2", WAIT, || async {
        let status = w.status("team", "bot").await;
        (status.environment("production")?.revision == 2).then_some(())
    })
    .await;
    let status = w.status("team", "bot").await;
    let dev = status.environment("development").unwrap();
    assert_eq!(dev.revision, 1, "{status:#?}");
    assert_eq!(
        w.secret("team", "dev-out")
            .await
            .unwrap()
            .metadata
            .resource_version,
        dev_version,
        "dev untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workloads_restart_once_per_change_and_never_for_an_operator_restart() {
    let mut w = World::start().await;
    w.namespace("team", &[]).await;
    // Two environments read one source, so one edit changes both at once.
    let keys = |a: &str, b: &str| {
        vec![
            ("accessToken", a.to_string()),
            ("accessTokenSecret", b.to_string()),
        ]
    };
    let first_keys = keys(
        "111-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg",
    );
    let first: Vec<(&str, &str)> = first_keys.iter().map(|(a, b)| (*a, b.as_str())).collect();
    w.source("team", "keys", &first).await;
    let deployments: Api<Deployment> = Api::namespaced(w.client.clone(), "team");
    let created = deployments
        .create(&PostParams::default(), &deployment("bot"))
        .await
        .unwrap();
    let restarting = |name: &str, target: &str, key: CredentialKey| {
        Env::new(name)
            .source("keys")
            .target(target)
            .keys([key])
            .restart(WorkloadKind::Deployment, "bot")
    };
    w.apply(
        "team",
        Credential::named("bot").environments([
            restarting("a", "a-out", AccessToken),
            restarting("b", "b-out", AccessTokenSecret),
        ]),
    )
    .await;
    w.wait_condition("team", "bot", None, "Ready", "True").await;
    let annotation = |d: &Deployment| {
        d.spec
            .as_ref()?
            .template
            .metadata
            .as_ref()?
            .annotations
            .as_ref()?
            .get("keyguard.dev/restarted-for")
            .cloned()
    };
    let before = deployments.get("bot").await.unwrap();
    assert_eq!(
        annotation(&before),
        None,
        "no restart for the first projection"
    );
    assert_eq!(before.metadata.generation, created.metadata.generation);

    // Both environments change in one write: exactly one restart.
    let second = keys(
        "111-ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210",
        "ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210abcdefg",
    );
    let second: Vec<(&str, &str)> = second.iter().map(|(a, b)| (*a, b.as_str())).collect();
    w.source("team", "keys", &second).await;
    let restarted = eventually("a restart after both reached revision 2", WAIT, || async {
        let status = w.status("team", "bot").await;
        let envs = &status.environments;
        let both = !envs.is_empty() && envs.iter().all(|e| e.revision == 2);
        let d = deployments.get("bot").await.ok()?;
        (both && annotation(&d).is_some()).then_some(d)
    })
    .await;
    let one_restart = created.metadata.generation.map(|g| g + 1);
    assert_eq!(
        restarted.metadata.generation, one_restart,
        "one restart for one change"
    );

    // Positive evidence that the operator looked again, then nothing more.
    w.force_sync_and_wait("team", "bot", "again").await;
    let settled = deployments.get("bot").await.unwrap();
    assert_eq!(
        settled.metadata.generation, one_restart,
        "no restart for a forced sync"
    );

    // A restarted operator restarts nothing.
    w.operator.take().unwrap().stop().await;
    w.operator = Some(RunningOperator::start(&w.cp, &w.x).await);
    w.force_sync_and_wait("team", "bot", "after-operator-restart")
        .await;
    let after = deployments.get("bot").await.unwrap();
    assert_eq!(annotation(&after), annotation(&settled));
    assert_eq!(
        after.metadata.generation, one_restart,
        "no restart without a change"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_environments_and_resources_cleans_up() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    let env = |name: &str, secret: &str| {
        Env::new(name)
            .source("keys")
            .target(secret)
            .keys([AccessToken])
            .service_accounts(["app"])
    };
    w.apply(
        "team",
        Credential::named("bot").environments([env("a", "a-out"), env("b", "b-out")]),
    )
    .await;
    w.apply(
        "team",
        Credential::named("kept")
            .deletion_policy(DeletionPolicy::Retain)
            .environment(env("c", "c-out")),
    )
    .await;
    w.wait_secret("team", "a-out", "a", |_| true).await;
    w.wait_secret("team", "b-out", "b", |_| true).await;
    w.wait_secret("team", "c-out", "c", |_| true).await;

    // Dropping environment b removes its Secret, Role and RoleBinding.
    w.apply(
        "team",
        Credential::named("bot").environment(env("a", "a-out")),
    )
    .await;
    eventually("b's objects removed", WAIT, || async {
        let role = Api::<Role>::namespaced(w.client.clone(), "team")
            .get_opt("keyguard-read-b-out")
            .await
            .ok()?;
        (w.secret("team", "b-out").await.is_none() && role.is_none()).then_some(())
    })
    .await;
    assert!(w.secret("team", "a-out").await.is_some());

    // Deleting the resource removes the rest; Retain keeps the Secret.
    let api = Api::<TwitterCredential>::namespaced(w.client.clone(), "team");
    api.delete("bot", &DeleteParams::default()).await.unwrap();
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    eventually("cleanup on delete", WAIT, || async {
        let gone =
            api.get_opt("bot").await.ok()?.is_none() && api.get_opt("kept").await.ok()?.is_none();
        (gone && w.secret("team", "a-out").await.is_none()).then_some(())
    })
    .await;
    assert!(
        w.secret("team", "c-out").await.is_some(),
        "Retain keeps the Secret"
    );
    let bindings = Api::<RoleBinding>::namespaced(w.client.clone(), "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        !bindings
            .items
            .iter()
            .any(|b| b.name_any().starts_with("keyguard-read-")),
        "RBAC removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credential_value_in_logs_events_status_or_metrics() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot").environment(
            Env::new("production").source("keys").target("out").keys([
                BearerToken,
                ApiKey,
                AccessToken,
                AccessTokenSecret,
            ]),
        ),
    )
    .await;
    w.wait_condition("team", "bot", None, "Ready", "True").await;
    // A refused one too, so error paths log as well.
    w.source(
        "team",
        "bad",
        &[
            ("apiKey", w.app.api_key.as_str()),
            ("apiKeySecret", "notTheRightSecretButLongEnough1234567890"),
        ],
    )
    .await;
    w.apply(
        "team",
        Credential::named("bad").environment(
            Env::new("production")
                .source("bad")
                .target("bad-out")
                .keys([BearerToken]),
        ),
    )
    .await;
    w.wait_condition("team", "bad", Some("production"), "Synced", "False")
        .await;

    let status = serde_json::to_string(&w.status("team", "bot").await).unwrap()
        + &serde_json::to_string(&w.status("team", "bad").await).unwrap();
    let events = serde_json::to_string(
        &Api::<Event>::namespaced(w.client.clone(), "team")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    let logs = captured_logs();
    assert!(
        logs.contains("projected Secret"),
        "the operator's logs were captured"
    );
    assert!(metrics.contains("keyguard_credential_ready"), "{metrics}");
    let mut values = w.values();
    values.push("notTheRightSecretButLongEnough1234567890".into());
    let secrets = Secrets::new(values)
        .pair(&w.app.api_key, &w.app.api_key_secret)
        .pair(&w.app.api_key, "notTheRightSecretButLongEnough1234567890");
    for (what, text) in [
        ("status", &status),
        ("Events", &events),
        ("metrics", &metrics),
        ("logs at TRACE (hyper, h2, reqwest included)", &logs),
    ] {
        assert_no_leak(what, text, &secrets);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_it_does_not_own_is_a_conflict_too() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "bot-keys", &w.full_source()).await;
    let theirs: Role = serde_json::from_value(
        json!({"metadata": {"name": "keyguard-read-twitter-credentials"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]}),
    )
    .unwrap();
    Api::<Role>::namespaced(w.client.clone(), "team")
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    w.apply(
        "team",
        Credential::named("bot").environment(
            Env::new("production")
                .source("bot-keys")
                .target("twitter-credentials")
                .keys([AccessToken])
                .service_accounts(["reader"]),
        ),
    )
    .await;
    let c = w
        .wait_condition("team", "bot", Some("production"), "Conflict", "True")
        .await;
    assert!(
        c.message
            .contains("Role team/keyguard-read-twitter-credentials"),
        "{c:?}"
    );
    let role = Api::<Role>::namespaced(w.client.clone(), "team")
        .get("keyguard-read-twitter-credentials")
        .await
        .unwrap();
    assert_eq!(
        role.rules.unwrap()[0].resources.as_deref(),
        Some(&["configmaps".to_string()][..]),
        "left untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transient_x_api_failure_is_reported_and_retried() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    // Two reconciles' worth of failures (the client tries each idempotent
    // call 4 times; another call may take one of them): the condition
    // stays long enough to be seen before a retry heals it.
    w.x.inject([keyguard_tests::x_api::Fault::ServerError(503); 8]);
    w.apply(
        "team",
        Credential::named("bot").environment(
            Env::new("production")
                .source("keys")
                .target("out")
                .keys([BearerToken]),
        ),
    )
    .await;
    let c = w
        .wait_condition("team", "bot", Some("production"), "Synced", "False")
        .await;
    assert_eq!(c.reason, "XApiError");
    assert!(c.message.contains("HTTP 503"), "{c:?}");
    // Retried without any change to the resource.
    w.wait_condition("team", "bot", Some("production"), "Synced", "True")
        .await;
    w.wait_secret("team", "out", "the projection after the retry", |s| {
        keys(s) == ["bearerToken"]
    })
    .await;
}

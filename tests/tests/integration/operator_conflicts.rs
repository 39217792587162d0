//! Write conflicts (409) on every write path: the operator's client answers
//! the first write of each object, and every second one after, with the
//! apiserver's "modified" or "already exists" itself. Sync, drift repair,
//! restarts, rotation, cleanup and deletion must all still converge, and a
//! rotation must not be repeated for it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use keyguard_operator::TwitterCredential;
use keyguard_tests::conflicts::Conflicts;
use keyguard_tests::credential::CredentialKey::{AccessToken, ApiKey, ApiKeySecret, BearerToken};
use keyguard_tests::credential::{Credential, CredentialKey, Env, WorkloadKind};
use keyguard_tests::fixtures::{deployment, production};
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::{captured_logs, RunningOperator};
use keyguard_tests::world::{value, World, WAIT};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// `bot`: `production_env` when given, then environment `local`
/// projecting `local_keys` and restarting Deployment `bot`.
fn resource(production_env: Option<Env>, local_keys: &[CredentialKey]) -> Credential {
    let local = Env::new("local")
        .source("bot-keys")
        .target("local-out")
        .keys(local_keys.iter().copied())
        .restart(WorkloadKind::Deployment, "bot");
    Credential::named("bot").environments(production_env.into_iter().chain([local]))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_path_converges_through_conflicts() {
    let mut w = World::start().await;
    let conflicts = Conflicts::every(2);
    drop(w.operator.take());
    let client = conflicts
        .client(w.cp.admin_config().await.unwrap())
        .unwrap();
    w.operator = Some(RunningOperator::start_configured(client, &w.x, None, |_| {}).await);
    w.namespace("team", &[]).await;
    w.namespace("prod", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "bot-keys", &w.full_source()).await;
    let deployments: Api<Deployment> = Api::namespaced(w.client.clone(), "team");
    deployments
        .create(&PostParams::default(), &deployment("bot"))
        .await
        .unwrap();

    // Creates: Secrets, Role, RoleBinding, the state record, finalizer, status.
    let prod = production("prod", [BearerToken, AccessToken]);
    w.apply("team", resource(Some(prod.clone()), &[ApiKey]))
        .await;
    w.wait_condition("team", "bot", None, "Ready", "True").await;
    let projected = w.secret("prod", "twitter-credentials").await.unwrap();
    assert_eq!(
        value(&projected, "accessToken").as_deref(),
        Some(w.app.access_token.as_str())
    );

    // Replaces: a Secret whose keys changed (and its workload restarted),
    // a RoleBinding whose subjects changed, a Role tampered with.
    let wider = prod.service_accounts(["reader", "writer"]);
    w.apply("team", resource(Some(wider), &[ApiKey, ApiKeySecret]))
        .await;
    w.wait_secret("team", "local-out", "the second key", |s| {
        value(s, "apiKeySecret").is_some()
    })
    .await;
    eventually("the restart of the workload", WAIT, || async {
        let d = deployments.get("bot").await.ok()?;
        let template = d.spec?.template.metadata?.annotations?;
        template
            .contains_key("keyguard.dev/restarted-for")
            .then_some(())
    })
    .await;
    let roles: Api<Role> = Api::namespaced(w.client.clone(), "prod");
    let bindings: Api<RoleBinding> = Api::namespaced(w.client.clone(), "prod");
    let access = "keyguard-read-twitter-credentials";
    eventually("both ServiceAccounts bound", WAIT, || async {
        let b = bindings.get(access).await.ok()?;
        (b.subjects?.len() == 2).then_some(())
    })
    .await;
    let widen =
        json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]});
    roles
        .patch(access, &PatchParams::default(), &Patch::Merge(&widen))
        .await
        .unwrap();
    eventually("the tampered Role repaired", WAIT, || async {
        let r = roles.get(access).await.ok()?;
        let rule = r.rules?.into_iter().next()?;
        (rule.verbs == ["get"] && rule.resource_names.is_some()).then_some(())
    })
    .await;

    // Rotation: the state record's steps and the Secret's replace.
    let old = w.x.current_bearer(&w.app.api_key).unwrap();
    let rotate =
        json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": "through-conflicts"}}});
    let resources: Api<TwitterCredential> = Api::namespaced(w.client.clone(), "team");
    resources
        .patch("bot", &PatchParams::default(), &Patch::Merge(&rotate))
        .await
        .unwrap();
    w.wait_secret("prod", "twitter-credentials", "the rotated bearer", |s| {
        let now = value(s, "bearerToken");
        now.is_some() && now != Some(old.clone()) && now == w.x.current_bearer(&w.app.api_key)
    })
    .await;
    assert_eq!(
        w.x.bearer_invalidations(&w.app.api_key),
        1,
        "conflicts must not repeat the invalidation: {:?}",
        w.x.requests()
    );

    // Deletes: an environment dropped, then the whole resource.
    w.apply("team", resource(None, &[ApiKey, ApiKeySecret]))
        .await;
    eventually("production's pieces removed", WAIT, || async {
        let gone = w.secret("prod", "twitter-credentials").await.is_none()
            && roles.get_opt(access).await.ok()?.is_none()
            && bindings.get_opt(access).await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
    resources
        .delete("bot", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the resource and its Secret gone", WAIT, || async {
        let gone = resources.get_opt("bot").await.ok()?.is_none()
            && w.secret("team", "local-out").await.is_none();
        gone.then_some(())
    })
    .await;

    let secrets = Secrets::new(w.values().into_iter().chain([old]));
    assert_no_leak("logs at TRACE", &captured_logs(), &secrets);

    let injected = conflicts.injected();
    for path in [
        "POST secrets",
        "PUT secrets",
        "DELETE secrets",
        "POST roles",
        "PUT roles",
        "DELETE roles",
        "POST rolebindings",
        "PUT rolebindings",
        "DELETE rolebindings",
        "PATCH deployments",
        "PATCH twittercredentials",
        "PATCH twittercredentials/status",
    ] {
        assert!(
            injected.contains(path),
            "no conflict was injected on {path}, so this test did not prove it converges: {injected:?}"
        );
    }
}

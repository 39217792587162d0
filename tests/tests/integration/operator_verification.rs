//! Verification with read-only X API calls: `Verified`, the observed
//! `accessLevel`, `OverPrivileged` past `access.permission`, and a refused
//! credential reported without anything destructive happening.

use keyguard_tests::credential::CredentialKey::{AccessToken, AccessTokenSecret, BearerToken};
use keyguard_tests::credential::{rotation, Credential, Env, Permission};
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::status::{Conditions, StatusReads};
use keyguard_tests::world::{value, World, WAIT};
use keyguard_tests::x_api::AccessLevel;
use keyguard_tests::x_api::Fault;
use serde_json::json;

/// `bot`, projecting the OAuth 1.0a access token from Secret `keys`.
fn access_token_resource() -> Credential {
    Credential::named("bot").environment(
        Env::new("prod")
            .source("keys")
            .target("out")
            .keys([AccessToken, AccessTokenSecret]),
    )
}

/// Environment `prod` projecting the bearer token and the access token
/// from Secret `keys`.
fn bearer_and_access_token() -> Env {
    Env::new("prod").source("keys").target("out").keys([
        BearerToken,
        AccessToken,
        AccessTokenSecret,
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_verified_and_more_permission_than_declared_is_reported() {
    let w = World::start().await;
    let app = w.x.create_app(AccessLevel::ReadWriteDirectMessages);
    w.namespace("team", &[]).await;
    w.source(
        "team",
        "keys",
        &[
            ("apiKey", app.api_key.as_str()),
            ("apiKeySecret", app.api_key_secret.as_str()),
            ("accessToken", app.access_token.as_str()),
            ("accessTokenSecret", app.access_token_secret.as_str()),
        ],
    )
    .await;
    w.apply(
        "team",
        Credential::named("bot")
            .environment(bearer_and_access_token().permission(Permission::Read)),
    )
    .await;
    let verified = w
        .wait_condition("team", "bot", Some("prod"), "Verified", "True")
        .await;
    assert!(
        verified.message.contains("bearerToken and accessToken"),
        "{verified:?}"
    );
    let over = w
        .wait_condition("team", "bot", Some("prod"), "OverPrivileged", "True")
        .await;
    assert!(
        over.message.contains("read-write-directmessages"),
        "{over:?}"
    );
    w.wait_condition("team", "bot", None, "OverPrivileged", "True")
        .await;
    let status = w.status("team", "bot").await;
    let env = &status.environments[0];
    assert_eq!(
        env.access_level.as_deref(),
        Some("read-write-directmessages")
    );
    assert!(env.last_verified.is_some());
    let (remaining, limit) = (env.rate_limit_remaining, env.rate_limit_limit);
    assert!(
        matches!((remaining, limit), (Some(r), Some(l)) if r <= l && l > 0),
        "{status:?}"
    );
    w.wait_event("team", "OverPrivileged").await;
    // Verification only reads: the signed call went through, nothing was
    // invalidated or refreshed.
    let requests = w.x.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == "GET /1.1/account/verify_credentials.json"),
        "{requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("invalidate") || r.contains("/2/oauth2/token")),
        "{requests:?}"
    );

    // Declaring the permission X reports clears the condition.
    w.apply(
        "team",
        Credential::named("bot")
            .environment(bearer_and_access_token().permission(Permission::ReadWriteDirectMessages)),
    )
    .await;
    w.force_sync_and_wait("team", "bot", "declared").await;
    let cleared = w
        .wait_condition("team", "bot", Some("prod"), "OverPrivileged", "False")
        .await;
    assert_eq!(cleared.reason, "WithinPermission");
}

/// An app whose access tier lacks the read endpoints: X answers its valid
/// credentials 403 with code 453, which authenticated them. Verification
/// says `Verified=True` with the limitation, a rotation finishes instead of
/// stopping with the old token invalidated, and new portal values are
/// accepted.
#[tokio::test(flavor = "multi_thread")]
async fn an_access_tier_without_the_read_endpoints_is_not_a_refusal() {
    let w = World::start().await;
    w.x.limit_access_tier(&w.app.api_key);
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot")
            .environment(bearer_and_access_token().rotation(rotation().bearer_every("720h"))),
    )
    .await;
    let verified = w
        .wait_condition("team", "bot", Some("prod"), "Verified", "True")
        .await;
    let message = &verified.message;
    assert!(
        message.contains("access tier") && message.contains("453"),
        "{message}"
    );
    let old = value(&w.secret("team", "out").await.unwrap(), "bearerToken").unwrap();

    // A rotation whose new-token check gets 453 is finished, not stuck.
    let patch = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": "1"}}});
    kube::Api::<keyguard_operator::TwitterCredential>::namespaced(w.client.clone(), "team")
        .patch(
            "bot",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let new = eventually("the rotated token projected", WAIT, || async {
        let now = value(&w.secret("team", "out").await?, "bearerToken")?;
        (now != old && Some(&now) == w.x.current_bearer(&w.app.api_key).as_ref()).then_some(now)
    })
    .await;
    assert_ne!(new, old);
    assert_eq!(w.x.bearer_invalidations(&w.app.api_key), 1);

    // New portal values (another access token of the owner) are accepted.
    let (token, secret) = w.x.issue_access_token(&w.app.api_key);
    let mut source = w.full_source();
    source.retain(|(k, _)| !k.starts_with("accessToken"));
    source.push(("accessToken", token.as_str()));
    source.push(("accessTokenSecret", secret.as_str()));
    w.source("team", "keys", &source).await;
    eventually("the new access token projected", WAIT, || async {
        (value(&w.secret("team", "out").await?, "accessToken")? == token).then_some(())
    })
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_credential_is_a_condition_and_nothing_is_revoked() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    let wrong = "WrongTokenSecretWrongTokenSecretWrongToken12";
    w.source(
        "team",
        "keys",
        &[
            ("apiKey", w.app.api_key.as_str()),
            ("apiKeySecret", w.app.api_key_secret.as_str()),
            ("accessToken", w.app.access_token.as_str()),
            ("accessTokenSecret", wrong),
        ],
    )
    .await;
    w.apply("team", access_token_resource()).await;
    let refused = w
        .wait_condition("team", "bot", Some("prod"), "Verified", "False")
        .await;
    assert_eq!(refused.reason, "VerificationFailed");
    assert!(refused.message.contains("accessToken"), "{refused:?}");
    w.wait_event("team", "VerificationFailed").await;
    let requests = w.x.requests();
    assert!(
        !requests.iter().any(|r| r.contains("invalidate")),
        "a 401 never triggers a destructive step: {requests:?}"
    );
    let secrets = Secrets::new([
        w.app.access_token.as_str(),
        wrong,
        w.app.api_key_secret.as_str(),
    ]);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
}

/// A verification due after a change that X rate-limits is done at the
/// reset, not an hour later: the reconcile at the reset no longer sees the
/// change itself, so status keeps it owed (`verificationOwed`).
#[tokio::test(flavor = "multi_thread")]
async fn a_verification_x_rate_limits_after_a_change_is_done_at_the_reset() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply("team", access_token_resource()).await;
    w.wait_condition("team", "bot", Some("prod"), "Verified", "True")
        .await;
    let verify = "GET /1.1/account/verify_credentials.json";
    let calls = |w: &World| w.x.requests().iter().filter(|r| *r == verify).count();

    // A person re-authorizes the app. The new token is checked before it
    // is projected (answered normally); the verification after the change
    // meets a 429 whose window resets 2 s later.
    let (token, secret) = w.x.issue_access_token(&w.app.api_key);
    let before = calls(&w);
    w.x.inject([
        Fault::Latency(std::time::Duration::ZERO),
        Fault::RateLimited,
    ]);
    let mut source = w.full_source();
    source.retain(|(k, _)| !k.starts_with("accessToken"));
    source.extend([
        ("accessToken", token.as_str()),
        ("accessTokenSecret", secret.as_str()),
    ]);
    w.source("team", "keys", &source).await;
    w.wait_secret("team", "out", "the new token", |s| {
        value(s, "accessToken").as_deref() == Some(token.as_str())
    })
    .await;
    // The check before projecting, the refused verification, then the
    // verification owed, at the reset.
    eventually("the verification after the reset", WAIT, || async {
        (calls(&w) >= before + 3).then_some(())
    })
    .await;
    eventually("the owed verification recorded", WAIT, || async {
        let status = w.status("team", "bot").await;
        let env = status.environments.first()?;
        (env.verification_owed.is_none() && env.has_condition("Verified", "True")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_near_the_cap_raises_usage_high() {
    let w = World::start().await;
    w.x.set_usage(&w.app.api_key, 9_100, 10_000);
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot")
            .usage_monitoring("1h", 90)
            .environment(
                Env::new("prod")
                    .source("keys")
                    .target("out")
                    .keys([BearerToken]),
            ),
    )
    .await;
    let high = w
        .wait_condition("team", "bot", None, "UsageHigh", "True")
        .await;
    assert_eq!(
        high.message,
        "9100 of 10000 posts used this period (91%; warning at 90%)"
    );
    let status = w.status("team", "bot").await;
    let usage = status.usage.as_ref().unwrap();
    assert_eq!(usage.percent, 91, "{status:?}");
    assert_eq!(usage.project_cap, 10_000);
    w.wait_event("team", "UsageHigh").await;
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keyguard_usage_ratio{") && l.ends_with(" 0.91")),
        "{metrics}"
    );
}

/// A careless X answers with an error message that quotes the credentials
/// it was sent (the `Authorization` header and the form body). The error
/// text the operator keeps is scrubbed: no value reaches status, Events or
/// logs at any level, and the refusal is still reported.
#[tokio::test(flavor = "multi_thread")]
async fn an_error_body_that_echoes_credentials_leaks_nothing() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.x.inject_at(
        "GET /1.1/account/verify_credentials.json",
        Fault::RefusedEchoing,
    );
    w.apply("team", access_token_resource()).await;
    let refused = w
        .wait_condition("team", "bot", Some("prod"), "Verified", "False")
        .await;
    assert_eq!(
        w.x.faulted(),
        vec![(
            "GET /1.1/account/verify_credentials.json".to_string(),
            Fault::RefusedEchoing
        )]
    );
    assert!(
        refused.message.contains("403"),
        "the refusal is still reported: {refused:?}"
    );
    let event = w.wait_event("team", "VerificationFailed").await;
    let secrets = Secrets::new([
        w.app.access_token_secret.as_str(),
        w.app.api_key_secret.as_str(),
        w.app.access_token.as_str(),
        w.app.api_key.as_str(),
    ]);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
    assert_no_leak("Event", &serde_json::to_string(&event).unwrap(), &secrets);
    assert_no_leak(
        "logs at TRACE",
        &keyguard_tests::operator::captured_logs(),
        &secrets,
    );
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert_no_leak("metrics", &metrics, &secrets);
}

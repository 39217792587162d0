//! Verification with read-only X API calls: `Verified`, the observed
//! `accessLevel`, `OverPrivileged` past `access.permission`, and a refused
//! credential reported without anything destructive happening.

use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::world::World;
use keyguard_tests::x_api::AccessLevel;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_verified_and_more_permission_than_declared_is_reported() {
    let w = World::start().await;
    let app = w.x.create_app(AccessLevel::ReadWriteDirectMessages);
    w.namespace("team", json!({})).await;
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
    w.apply("team", json!({"metadata": {"name": "bot"}, "spec": {"environments": [{
        "name": "prod",
        "source": {"secretRef": {"name": "keys"}},
        "target": {"secretName": "out", "keys": ["bearerToken", "accessToken", "accessTokenSecret"]},
        "access": {"permission": "read"}
    }]}}))
    .await;
    let verified = w
        .wait_condition("team", "bot", Some("prod"), "Verified", "True")
        .await;
    assert!(
        verified["message"]
            .as_str()
            .unwrap()
            .contains("bearerToken and accessToken"),
        "{verified}"
    );
    let over = w
        .wait_condition("team", "bot", Some("prod"), "OverPrivileged", "True")
        .await;
    assert!(
        over["message"]
            .as_str()
            .unwrap()
            .contains("read-write-directmessages"),
        "{over}"
    );
    w.wait_condition("team", "bot", None, "OverPrivileged", "True")
        .await;
    let status = w.status("team", "bot").await;
    assert_eq!(
        status["environments"][0]["accessLevel"],
        "read-write-directmessages"
    );
    assert!(status["environments"][0]["lastVerified"].is_string());
    let (remaining, limit) = (
        status["environments"][0]["rateLimitRemaining"].as_i64(),
        status["environments"][0]["rateLimitLimit"].as_i64(),
    );
    assert!(
        matches!((remaining, limit), (Some(r), Some(l)) if r <= l && l > 0),
        "{status}"
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
    w.apply("team", json!({"metadata": {"name": "bot"}, "spec": {"environments": [{
        "name": "prod",
        "source": {"secretRef": {"name": "keys"}},
        "target": {"secretName": "out", "keys": ["bearerToken", "accessToken", "accessTokenSecret"]},
        "access": {"permission": "read-write-directmessages"}
    }]}}))
    .await;
    w.force_sync_and_wait("team", "bot", "declared").await;
    let cleared = w
        .wait_condition("team", "bot", Some("prod"), "OverPrivileged", "False")
        .await;
    assert_eq!(cleared["reason"], "WithinPermission");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_credential_is_a_condition_and_nothing_is_revoked() {
    let w = World::start().await;
    w.namespace("team", json!({})).await;
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
    w.apply(
        "team",
        json!({"metadata": {"name": "bot"}, "spec": {"environments": [{
            "name": "prod",
            "source": {"secretRef": {"name": "keys"}},
            "target": {"secretName": "out", "keys": ["accessToken", "accessTokenSecret"]}
        }]}}),
    )
    .await;
    let refused = w
        .wait_condition("team", "bot", Some("prod"), "Verified", "False")
        .await;
    assert_eq!(refused["reason"], "VerificationFailed");
    assert!(
        refused["message"].as_str().unwrap().contains("accessToken"),
        "{refused}"
    );
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
    assert_no_leak(
        "status",
        &w.status("team", "bot").await.to_string(),
        &secrets,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_near_the_cap_raises_usage_high() {
    let w = World::start().await;
    w.x.set_usage(&w.app.api_key, 9_100, 10_000);
    w.namespace("team", json!({})).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        json!({"metadata": {"name": "bot"}, "spec": {
            "monitoring": {"usage": {"every": "1h", "warnAtPercent": 90}},
            "environments": [{
                "name": "prod",
                "source": {"secretRef": {"name": "keys"}},
                "target": {"secretName": "out", "keys": ["bearerToken"]}
            }]
        }}),
    )
    .await;
    let high = w
        .wait_condition("team", "bot", None, "UsageHigh", "True")
        .await;
    assert_eq!(
        high["message"],
        "9100 of 10000 posts used this period (91%; warning at 90%)"
    );
    let status = w.status("team", "bot").await;
    assert_eq!(status["usage"]["percent"], 91, "{status}");
    assert_eq!(status["usage"]["projectCap"], 10_000);
    w.wait_event("team", "UsageHigh").await;
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keyguard_usage_ratio{") && l.ends_with(" 0.91")),
        "{metrics}"
    );
}

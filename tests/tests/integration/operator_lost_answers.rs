//! X processed the call and its answer never arrived (the emulator's
//! `Fault::AnswerLost`, a 504 after the work was done), at each call a
//! rotation cannot simply repeat: the bearer token's invalidation (and its
//! mint), a user token's refresh, and a replaced access token's
//! invalidation. Each test first proves its fault hit the call it names.

use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::captured_logs;
use keyguard_tests::world::{value, World, WAIT};
use keyguard_tests::x_api::Fault;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use keyguard_operator::TwitterCredential;
use keyguard_tests::kube_helpers::eventually;

const INVALIDATE_BEARER: &str = "POST /oauth2/invalidate_token";
const MINT_BEARER: &str = "POST /oauth2/token";
const REFRESH: &str = "POST /2/oauth2/token";
const INVALIDATE_ACCESS_TOKEN: &str = "POST /1.1/oauth/invalidate_token";

fn lost(endpoints: &[&str]) -> Vec<(String, Fault)> {
    endpoints
        .iter()
        .map(|e| (e.to_string(), Fault::AnswerLost))
        .collect()
}

fn calls(w: &World, endpoint: &str) -> usize {
    w.x.requests().iter().filter(|r| *r == endpoint).count()
}

/// What X answers a request made with bearer `token`: status, v1.1 code.
async fn x_answers(w: &World, token: &str) -> (u16, Option<i64>) {
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/1.1/application/rate_limit_status.json",
            w.x.base_url()
        ))
        .bearer_auth(keyguard_credentials::bearer_for_header(token.as_bytes()))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, body["errors"][0]["code"].as_i64())
}

/// The invalidation is done at X but the operator hears a 504: the
/// rotation stays at its recorded step, and when it resumes, X's 401 for
/// the old token says the invalidation happened, so it is not sent again.
/// The new token's mint is lost too: X answers the same token again.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_invalidation_answer_resumes_at_the_mint_without_invalidating_twice() {
    let w = World::start().await;
    w.namespace("team", json!({})).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        json!({"metadata": {"name": "bot"}, "spec": {"environments": [{
            "name": "prod",
            "source": {"secretRef": {"name": "keys"}},
            "target": {"secretName": "out", "keys": ["bearerToken"]},
            "rotation": {"bearerToken": {"every": "720h"}}
        }]}}),
    )
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let old = value(&w.secret("team", "out").await.unwrap(), "bearerToken").unwrap();

    w.x.inject_at(INVALIDATE_BEARER, Fault::AnswerLost);
    w.x.inject_at(MINT_BEARER, Fault::AnswerLost);
    let patch = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": "1"}}});
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let new = eventually("the new, working token projected", WAIT, || async {
        let now = value(&w.secret("team", "out").await?, "bearerToken")?;
        let live = w.x.current_bearer(&w.app.api_key)?;
        (now != old && now == live).then_some(now)
    })
    .await;

    assert_eq!(w.x.faulted(), lost(&[INVALIDATE_BEARER, MINT_BEARER]));
    assert_eq!(calls(&w, INVALIDATE_BEARER), 1, "never invalidated twice");
    assert_eq!(w.x.bearer_invalidations(&w.app.api_key), 1);
    assert_eq!(x_answers(&w, &old).await, (401, Some(89)));
    assert_eq!(x_answers(&w, &new).await.0, 200);
    w.wait_event("team", "BearerTokenRotated").await;
    let secrets = Secrets::new([old, new]).pair(&w.app.api_key, &w.app.api_key_secret);
    assert_no_leak("logs at TRACE", &captured_logs(), &secrets);
}

/// X spent the refresh token and issued a new one that never arrived: the
/// spent one is all the operator has, X refuses it, and only a person can
/// authorize again. The operator says so, naming the source Secret, and
/// does not keep sending X the spent token.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_refresh_answer_ends_in_reauthorization_required() {
    let w = World::start().await;
    w.namespace("team", json!({})).await;
    let seed = w.app.refresh_token.clone();
    w.source(
        "team",
        "user-keys",
        &[
            ("clientId", w.app.client_id.as_str()),
            ("clientSecret", w.app.client_secret.as_str()),
            ("refreshToken", seed.as_str()),
        ],
    )
    .await;
    w.x.inject_at(REFRESH, Fault::AnswerLost);
    w.apply(
        "team",
        json!({"metadata": {"name": "bot"}, "spec": {"environments": [{
            "name": "prod",
            "source": {"secretRef": {"name": "user-keys"}},
            "target": {"secretName": "out", "keys": ["userAccessToken"]}
        }]}}),
    )
    .await;
    let c = w
        .wait_condition("team", "bot", Some("prod"), "ReauthorizationRequired", "True")
        .await;
    assert_eq!(w.x.faulted(), lost(&[REFRESH]));
    assert!(
        c["message"].as_str().unwrap_or_default().contains("team/user-keys"),
        "names the Secret to update: {c}"
    );
    assert!(w.secret("team", "out").await.is_none(), "nothing projected");
    let sent = calls(&w, REFRESH);
    assert_eq!(sent, 2, "the lost refresh, then one try of the spent token");
    w.force_sync_and_wait("team", "bot", "after").await;
    assert_eq!(calls(&w, REFRESH), sent, "the spent token is not sent again");
    let secrets = Secrets::new([seed]).pair(&w.app.client_id, &w.app.client_secret);
    assert_no_leak("logs at TRACE", &captured_logs(), &secrets);
    assert_no_leak("status", &w.status("team", "bot").await.to_string(), &secrets);
}

/// A replaced access token's invalidation is done at X but the answer is
/// lost: the next try, signed with that token, gets X's 401, which means
/// it is gone; the retirement ends once, and the token in use is never
/// touched.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_access_token_invalidation_answer_retires_the_token_once() {
    let w = World::start().await;
    w.namespace("team", json!({})).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        json!({"metadata": {"name": "bot"}, "spec": {"environments": [{
            "name": "prod",
            "source": {"secretRef": {"name": "keys"}},
            "target": {"secretName": "out", "keys": ["accessToken", "accessTokenSecret"]},
            "rotation": {"gracePeriod": "1s"}
        }]}}),
    )
    .await;
    let old = w.app.access_token.clone();
    w.wait_secret("team", "out", "the first projection", |s| {
        value(s, "accessToken").as_deref() == Some(old.as_str())
    })
    .await;

    w.x.inject_at(INVALIDATE_ACCESS_TOKEN, Fault::AnswerLost);
    let (token, token_secret) = w.x.issue_access_token(&w.app.api_key);
    let mut replaced = w.full_source();
    replaced[2].1 = &token;
    replaced[3].1 = &token_secret;
    w.source("team", "keys", &replaced).await;
    w.wait_event("team", "AccessTokenInvalidated").await;

    assert_eq!(w.x.faulted(), lost(&[INVALIDATE_ACCESS_TOKEN]));
    assert_eq!(calls(&w, INVALIDATE_ACCESS_TOKEN), 2, "the lost call and one retry");
    assert_eq!(w.x.revoked_access_tokens(&w.app.api_key), vec![old.clone()]);
    w.force_sync_and_wait("team", "bot", "after").await;
    assert_eq!(calls(&w, INVALIDATE_ACCESS_TOKEN), 2, "retired once");
    assert_eq!(
        value(&w.secret("team", "out").await.unwrap(), "accessToken").as_deref(),
        Some(token.as_str())
    );
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
}

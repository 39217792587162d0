//! X processed the call and its answer never arrived (the emulator's
//! `Fault::AnswerLost`, a 504 after the work was done), at each call a
//! rotation cannot simply repeat: the bearer token's invalidation (and its
//! mint), a user token's refresh, and a replaced access token's
//! invalidation. Each test first proves its fault hit the call it names.

use keyguard_tests::credential::rotation;
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::captured_logs;
use keyguard_tests::status::StatusReads;
use keyguard_tests::world::{value, World};
use keyguard_tests::x_api::Fault;

use crate::operator_rotation::{
    apply_user_resource, project_access_token, replace_access_token, rotate_now, rotated_from,
    setup, user_source, x_answers,
};

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

/// The invalidation is done at X but the operator hears a 504: the
/// rotation stays at its recorded step, and when it resumes, X's 401 for
/// the old token says the invalidation happened, so it is not sent again.
/// The new token's mint is lost too: X answers the same token again.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_invalidation_answer_resumes_at_the_mint_without_invalidating_twice() {
    let w = World::start().await;
    let old = setup(&w, rotation().bearer_every("720h")).await;

    w.x.inject_at(INVALIDATE_BEARER, Fault::AnswerLost);
    w.x.inject_at(MINT_BEARER, Fault::AnswerLost);
    rotate_now(&w, "1").await;
    let new = rotated_from(&w, &old).await;

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
    w.namespace("team", &[]).await;
    let seed = w.app.refresh_token.clone();
    user_source(&w, &seed).await;
    w.x.inject_at(REFRESH, Fault::AnswerLost);
    apply_user_resource(&w, None).await;
    let c = w
        .wait_condition(
            "team",
            "bot",
            Some("prod"),
            "ReauthorizationRequired",
            "True",
        )
        .await;
    assert_eq!(w.x.faulted(), lost(&[REFRESH]));
    assert!(
        c.message.contains("team/user-keys"),
        "names the Secret to update: {c:?}"
    );
    assert!(w.secret("team", "out").await.is_none(), "nothing projected");
    let sent = calls(&w, REFRESH);
    assert_eq!(sent, 2, "the lost refresh, then one try of the spent token");
    w.force_sync_and_wait("team", "bot", "after").await;
    assert_eq!(
        calls(&w, REFRESH),
        sent,
        "the spent token is not sent again"
    );
    let secrets = Secrets::new([seed]).pair(&w.app.client_id, &w.app.client_secret);
    assert_no_leak("logs at TRACE", &captured_logs(), &secrets);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
}

/// A replaced access token's invalidation is done at X but the answer is
/// lost: the next try, signed with that token, gets X's 401, which means
/// it is gone; the retirement ends once, and the token in use is never
/// touched.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_access_token_invalidation_answer_retires_the_token_once() {
    let w = World::start().await;
    let old = project_access_token(&w, "1s").await;
    w.x.inject_at(INVALIDATE_ACCESS_TOKEN, Fault::AnswerLost);
    let (token, _) = replace_access_token(&w).await;
    w.wait_event("team", "AccessTokenInvalidated").await;

    assert_eq!(w.x.faulted(), lost(&[INVALIDATE_ACCESS_TOKEN]));
    assert_eq!(
        calls(&w, INVALIDATE_ACCESS_TOKEN),
        2,
        "the lost call and one retry"
    );
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

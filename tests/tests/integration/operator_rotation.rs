//! Rotation of the app-only bearer token against the X API emulator: on
//! request, on schedule, through X API faults, and after a crash at every
//! step, always ending with one working token and the old one invalidated
//! exactly once.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use keyguard_operator::context::CrashPoint;
use keyguard_operator::xapi::XApiClient;
use keyguard_operator::TwitterCredential;
use keyguard_tests::credential::CredentialKey::{
    AccessToken, AccessTokenSecret, ApiKey, ApiKeySecret, BearerToken, UserAccessToken,
};
use keyguard_tests::credential::{rotation, Credential, CredentialKey, Env, Permission, Rotate};
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::leaks::{assert_no_leak, Secrets};
use keyguard_tests::operator::{captured_logs, RunningOperator};
use keyguard_tests::status::{Conditions, StatusReads};
use keyguard_tests::world::{value, World, WAIT};
use keyguard_tests::x_api::Fault;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;

pub(crate) async fn setup(w: &World, rotation: Rotate) -> String {
    setup_from(w, &w.full_source(), rotation).await
}

/// `bot` deriving the bearer token from Secret `keys` into `out`, with
/// `rotation` (`None`: none).
fn bearer(rotation: impl Into<Option<Rotate>>) -> Credential {
    Credential::named("bot").environment(
        Env::new("prod")
            .source("keys")
            .target("out")
            .keys([BearerToken])
            .rotation(rotation),
    )
}

async fn setup_from(w: &World, source: &[(&str, &str)], rotation: Rotate) -> String {
    w.namespace("team", &[]).await;
    w.source("team", "keys", source).await;
    w.apply("team", bearer(rotation)).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    value(&w.secret("team", "out").await.unwrap(), "bearerToken").unwrap()
}

pub(crate) async fn rotate_now(w: &World, token: &str) {
    let patch = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": token}}});
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Waits until the target holds a bearer token other than `old`, the one
/// X now accepts, and returns it.
pub(crate) async fn rotated_from(w: &World, old: &str) -> String {
    eventually(
        "the target to hold the new, working token",
        WAIT,
        || async {
            let now = value(&w.secret("team", "out").await?, "bearerToken")?;
            let live = w.x.current_bearer(&w.app.api_key)?;
            (now != old && now == live).then_some(now)
        },
    )
    .await
}

/// What X answers a request made with `token` (as a client sends it):
/// the HTTP status and the v1.1 error code, if any.
pub(crate) async fn x_answers(w: &World, token: &str) -> (u16, Option<i64>) {
    let header = keyguard_credentials::bearer_for_header(token.as_bytes());
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/1.1/application/rate_limit_status.json",
            w.x.base_url()
        ))
        .header("Authorization", format!("Bearer {header}"))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    (status, body["errors"][0]["code"].as_i64())
}

/// Bearer tokens X has invalidated for the app.
fn invalidations(w: &World) -> usize {
    w.x.bearer_invalidations(&w.app.api_key)
}

pub(crate) async fn state_step(w: &World) -> Option<String> {
    let states = Api::<Secret>::namespaced(w.client.clone(), "team")
        .list(&ListParams::default().labels("keyguard.dev/part=state"))
        .await
        .unwrap();
    states
        .items
        .first()?
        .annotations()
        .get("keyguard.dev/rotation-step")
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_now_replaces_the_bearer_token_once_and_the_old_one_stops_working() {
    let w = World::start().await;
    let old = setup(&w, rotation().bearer_every("720h")).await;
    let status = w.status("team", "bot").await;
    assert!(status.environments[0].last_rotation.is_some(), "{status:?}");
    assert!(status.environments[0].next_rotation.is_some(), "{status:?}");
    assert_eq!(invalidations(&w), 0);

    assert_eq!(x_answers(&w, &old).await.0, 200);
    rotate_now(&w, "1").await;
    let new = rotated_from(&w, &old).await;
    assert_eq!(invalidations(&w), 1);
    // As a client sees it: X refuses the old token (401, code 89) and
    // accepts the new one.
    assert_eq!(
        x_answers(&w, &old).await,
        (401, Some(89)),
        "the old token is refused"
    );
    assert_eq!(x_answers(&w, &new).await.0, 200, "the new token works");
    w.wait_event("team", "BearerTokenRotated").await;
    // Status is written after the Secret and the Event: wait for it.
    eventually("status revision 2", WAIT, || async {
        let status = w.status("team", "bot").await;
        (status.environments.first()?.revision == 2).then_some(())
    })
    .await;

    // The same request again is handled already: no second rotation.
    w.force_sync_and_wait("team", "bot", "after").await;
    assert_eq!(invalidations(&w), 1);
    assert_eq!(
        value(&w.secret("team", "out").await.unwrap(), "bearerToken").as_deref(),
        Some(new.as_str())
    );

    let metrics = w.operator.as_ref().unwrap().metrics.render();
    for series in [
        "keyguard_next_rotation_timestamp_seconds{",
        "keyguard_rotations_total{",
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with(series) && l.contains("environment=\"prod\"")),
            "{series}: {metrics}"
        );
    }

    let logs = captured_logs();
    let secrets = Secrets::new([old, new]).pair(&w.app.api_key, &w.app.api_key_secret);
    assert_no_leak("logs at TRACE", &logs, &secrets);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
}

/// X invalidates a bearer token only with OAuth 1.0a signed by the app
/// owner's access token. Without it in the source, a due rotation is
/// refused before any call to X (nothing invalidated, the working token
/// stays projected) and a person is told which keys to add; once they are
/// there, the rotation runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_without_the_owner_token_is_refused_before_any_call_to_x() {
    let w = World::start().await;
    let consumer_only = [
        ("apiKey", w.app.api_key.as_str()),
        ("apiKeySecret", w.app.api_key_secret.as_str()),
    ];
    let old = setup_from(&w, &consumer_only, rotation().bearer_every("720h")).await;
    rotate_now(&w, "1").await;
    let blocked = w
        .wait_condition("team", "bot", Some("prod"), "RotationBlocked", "True")
        .await;
    let message = &blocked.message;
    assert!(
        message.contains("accessToken") && message.contains("accessTokenSecret"),
        "the condition names the keys to add: {message}"
    );
    assert_eq!(blocked.reason, "OwnerTokenMissing");
    w.wait_condition("team", "bot", None, "RotationBlocked", "True")
        .await;
    let event = w.wait_event("team", "RotationBlocked").await;
    assert!(event.note.unwrap_or_default().contains("accessTokenSecret"));
    assert_eq!(invalidations(&w), 0, "nothing was sent to X");
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    assert_eq!(
        value(&w.secret("team", "out").await.unwrap(), "bearerToken").as_deref(),
        Some(old.as_str()),
        "the working token stays projected"
    );
    assert_eq!(x_answers(&w, &old).await.0, 200);

    // The owner's token added: the requested rotation runs.
    w.source("team", "keys", &w.full_source()).await;
    let new = rotated_from(&w, &old).await;
    assert_eq!(invalidations(&w), 1);
    assert_eq!(x_answers(&w, &old).await, (401, Some(89)));
    assert_eq!(x_answers(&w, &new).await.0, 200);
    eventually("RotationBlocked to clear", WAIT, || async {
        let status = w.status("team", "bot").await;
        let env = status.environments.first()?;
        (!env.conditions.is_empty() && env.condition("RotationBlocked").is_none()).then_some(())
    })
    .await;
}

/// Two teams' resources on one X app (X keeps one bearer token per app):
/// when one rotates, the other's projected token dies at X. Its next
/// verification sees the 401 on a token it never invalidated, and it mints
/// again, which invalidates nothing: X answers with the app's current
/// token, and both end on it with exactly one invalidation.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_another_resource_of_the_app_invalidated_is_minted_again() {
    let w = World::start_configured(|ctx| ctx.verify_interval = std::time::Duration::from_secs(2))
        .await;
    for team in ["team", "other"] {
        bearer_resource(&w, team, Some(rotation().bearer_every("720h"))).await;
        w.wait_condition(team, "bot", Some("prod"), "Verified", "True")
            .await;
    }
    let old = value(&w.secret("other", "out").await.unwrap(), "bearerToken").unwrap();
    rotate_now(&w, "1").await;
    let new = rotated_from(&w, &old).await;
    eventually(
        "the other team's target to hold the app's current token",
        WAIT,
        || async {
            let theirs = value(&w.secret("other", "out").await?, "bearerToken")?;
            (theirs == new).then_some(())
        },
    )
    .await;
    assert_eq!(invalidations(&w), 1, "the follower invalidated nothing");
    assert_eq!(x_answers(&w, &new).await.0, 200);
    eventually("the other team verified again", WAIT, || async {
        let status = w.status("other", "bot").await;
        let env = status.environments.first()?;
        (env.has_condition("Verified", "True") && env.bearer_rejected.is_none()).then_some(())
    })
    .await;
}

/// A TwitterCredential `bot` in `team` deriving the app's bearer token,
/// with `rotation` (`None` for none).
async fn bearer_resource(w: &World, team: &str, rotation: Option<Rotate>) {
    w.namespace(team, &[]).await;
    w.source(team, "keys", &w.full_source()).await;
    w.apply(team, bearer(rotation)).await;
    w.wait_condition(team, "bot", Some("prod"), "Synced", "True")
        .await;
}

async fn ask_rotation(w: &World, team: &str, request: &str) {
    let patch = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": request}}});
    Api::<TwitterCredential>::namespaced(w.client.clone(), team)
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Practices issue, one owner per app's bearer token: of two resources
/// (two teams) on one app, only the older one's environment invalidates;
/// the other is told who rotates, takes each new token at once (without
/// waiting for a verification), and becomes the owner when the first goes.
#[tokio::test(flavor = "multi_thread")]
async fn two_resources_on_one_app_have_one_owner_and_the_follower_never_invalidates() {
    let w = World::start().await;
    let schedule = rotation().bearer_every("720h");
    bearer_resource(&w, "team", Some(schedule.clone())).await;
    bearer_resource(&w, "other", Some(schedule)).await;
    let first = value(&w.secret("other", "out").await.unwrap(), "bearerToken").unwrap();

    ask_rotation(&w, "other", "from-the-follower").await;
    let blocked = w
        .wait_condition("other", "bot", Some("prod"), "RotationBlocked", "True")
        .await;
    assert_eq!(blocked.reason, "NotAppOwner", "{blocked:?}");
    let message = &blocked.message;
    assert!(
        message.contains("an environment in another namespace") && !message.contains("team"),
        "the owner is not disclosed to another namespace: {message}"
    );
    assert_eq!(
        invalidations(&w),
        0,
        "a follower invalidated the app's token"
    );
    assert_eq!(x_answers(&w, &first).await.0, 200);

    // The follower's team may edit its own state record: backdating it
    // breaks its app claim, so its age starts now and it stays a follower.
    let states = Api::<Secret>::namespaced(w.client.clone(), "other");
    let record = states
        .list(&ListParams::default().labels("keyguard.dev/part=state"))
        .await
        .unwrap()
        .items
        .remove(0);
    let backdate =
        json!({"metadata": {"annotations": {"keyguard.dev/app-since": "2000-01-01T00:00:00Z"}}});
    states
        .patch(
            &record.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&backdate),
        )
        .await
        .unwrap();
    ask_rotation(&w, "other", "after-backdating").await;
    eventually(
        "the backdated record signed again with a fresh age",
        WAIT,
        || async {
            let r = states.get(&record.name_any()).await.ok()?;
            let since = r.annotations().get("keyguard.dev/app-since")?.clone();
            (!since.starts_with("2000")).then_some(())
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let blocked = w
        .wait_condition("other", "bot", Some("prod"), "RotationBlocked", "True")
        .await;
    assert_eq!(blocked.reason, "NotAppOwner", "{blocked:?}");
    assert_eq!(
        invalidations(&w),
        0,
        "a backdated record made itself the owner"
    );

    rotate_now(&w, "from-the-owner").await;
    let new = rotated_from(&w, &first).await;
    eventually(
        "the follower to take the owner's new token",
        WAIT,
        || async {
            let theirs = value(&w.secret("other", "out").await?, "bearerToken")?;
            (theirs == new).then_some(())
        },
    )
    .await;
    assert_eq!(invalidations(&w), 1, "only the owner invalidated");
    // The follower's request was answered by the owner's rotation.
    eventually("the follower no longer RotationBlocked", WAIT, || async {
        let status = w.status("other", "bot").await;
        let env = status.environments.first()?;
        let blocked = env.has_condition("RotationBlocked", "True");
        (!env.conditions.is_empty() && !blocked).then_some(())
    })
    .await;

    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .delete("bot", &Default::default())
        .await
        .unwrap();
    eventually("the first resource gone", WAIT, || async {
        let gone = Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
            .get_opt("bot")
            .await
            .ok()?
            .is_none();
        gone.then_some(())
    })
    .await;
    ask_rotation(&w, "other", "now-the-owner").await;
    let newest = eventually("the new owner to rotate", WAIT, || async {
        let theirs = value(&w.secret("other", "out").await?, "bearerToken")?;
        let live = w.x.current_bearer(&w.app.api_key)?;
        (theirs != new && theirs == live).then_some(theirs)
    })
    .await;
    assert_eq!(invalidations(&w), 2);
    assert_eq!(x_answers(&w, &newest).await.0, 200);
}

/// Across clusters no operator sees the other side: the documented mode
/// is `rotation.bearerToken` on one side only; the other side learns of a
/// rotation from X's 401 at its next verification and mints again.
#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_on_one_app_rotate_on_one_side_and_follow_on_the_other() {
    let w = World::start().await;
    let fast_verification = |ctx: &mut keyguard_operator::context::Context| {
        ctx.verify_interval = std::time::Duration::from_secs(2)
    };
    let far = w.beside(fast_verification).await;
    bearer_resource(&w, "team", Some(rotation().bearer_every("720h"))).await;
    bearer_resource(&far, "team", None).await;
    let first = value(&far.secret("team", "out").await.unwrap(), "bearerToken").unwrap();
    assert_eq!(
        first,
        value(&w.secret("team", "out").await.unwrap(), "bearerToken").unwrap(),
        "X returns one token per app"
    );
    rotate_now(&w, "1").await;
    let new = rotated_from(&w, &first).await;
    eventually("the far side to mint the app's new token", WAIT, || async {
        let theirs = value(&far.secret("team", "out").await?, "bearerToken")?;
        (theirs == new).then_some(())
    })
    .await;
    assert_eq!(invalidations(&w), 1, "the far side invalidated nothing");
    far.wait_condition("team", "bot", Some("prod"), "Verified", "True")
        .await;
}

/// Round two, item 4: nothing that must follow an invalidation at X can
/// fail for a reason known beforehand. A target someone made immutable is
/// recreated (not replaced) with the new token, and a 262,000-byte
/// rotate-now value is handled once (the operator keeps its fingerprint).
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_lands_in_an_immutable_target_and_a_huge_request_is_handled_once() {
    let w = World::start().await;
    let old = setup(&w, rotation().bearer_every("720h")).await;
    let immutable = json!({"immutable": true});
    Api::<Secret>::namespaced(w.client.clone(), "team")
        .patch("out", &PatchParams::default(), &Patch::Merge(&immutable))
        .await
        .unwrap();
    rotate_now(&w, &"r".repeat(262_000)).await;
    let new = rotated_from(&w, &old).await;
    assert_eq!(invalidations(&w), 1);
    assert_eq!(x_answers(&w, &new).await.0, 200);
    let target = w.secret("team", "out").await.unwrap();
    assert_ne!(target.immutable, Some(true), "recreated by the operator");
    w.force_sync_and_wait("team", "bot", "again").await;
    assert_eq!(
        invalidations(&w),
        1,
        "the same request is not handled twice"
    );
}

/// Writes an older last rotation into the state record, as someone who may
/// edit Secrets in the namespace could.
async fn forge_last_rotation(w: &World, secs: i64) {
    let states = Api::<Secret>::namespaced(w.client.clone(), "team");
    let state = states
        .list(&ListParams::default().labels("keyguard.dev/part=state"))
        .await
        .unwrap()
        .items
        .remove(0);
    let past = (k8s_openapi::jiff::Timestamp::now()
        - k8s_openapi::jiff::SignedDuration::from_secs(secs))
    .to_string();
    let patch = json!({"metadata": {"annotations": {
        "keyguard.dev/last-rotation": past,
        "keyguard.dev/bearer-rotated-at": past
    }}});
    states
        .patch(
            &state.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
}

/// The README's cron form: a bearer rotation on `schedule:` comes at the
/// schedule's next time after the last rotation, and the next one is
/// announced on the schedule (here every minute, on the minute). A last
/// rotation forged into the state record does not make one due: the
/// record's age is signed, and a broken signature starts it anew.
#[tokio::test(flavor = "multi_thread")]
async fn a_bearer_rotation_on_a_cron_schedule_comes_when_it_says() {
    let w = World::start().await;
    let old = setup(&w, rotation().bearer_on("0 3 * * *")).await;
    forge_last_rotation(&w, 2 * 24 * 3600).await;
    w.force_sync_and_wait("team", "bot", "forged").await;
    assert_eq!(invalidations(&w), 0, "a forged age rotates nothing");

    let every_minute = bearer(rotation().bearer_on("* * * * *"));
    w.apply("team", every_minute).await;
    let new = eventually("the rotation on the next minute", 2 * WAIT, || async {
        let now = value(&w.secret("team", "out").await?, "bearerToken")?;
        (now != old && Some(&now) == w.x.current_bearer(&w.app.api_key).as_ref()).then_some(now)
    })
    .await;
    assert_eq!(invalidations(&w), 1);
    assert_eq!(x_answers(&w, &new).await.0, 200);
    let (last, next) = eventually("status after the rotation", WAIT, || async {
        let status = w.status("team", "bot").await;
        let env = status.environments.first()?;
        let at = |t: &Option<Time>| t.as_ref().map(|t| t.0);
        (env.revision == 2).then(|| Some((at(&env.last_rotation)?, at(&env.next_rotation)?)))?
    })
    .await;
    let utc = next.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
    assert_eq!(utc.second(), 0, "on the minute: {next}");
    let gap = next.duration_since(last).as_secs();
    assert!(
        (1..=60).contains(&gap),
        "the next minute after {last}: {next}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_comes_when_its_schedule_says() {
    let w = World::start().await;
    let old = setup(&w, rotation().bearer_every("1m")).await;
    // The interval passes (the record's age is signed: a test cannot
    // backdate it, see the cron test).
    let new = eventually("the scheduled rotation", 2 * WAIT, || async {
        let now = value(&w.secret("team", "out").await?, "bearerToken")?;
        (now != old && Some(&now) == w.x.current_bearer(&w.app.api_key).as_ref()).then_some(now)
    })
    .await;
    assert_ne!(new, old);
    assert_eq!(invalidations(&w), 1);
    let status = w.status("team", "bot").await;
    let env = &status.environments[0];
    let last = env.last_rotation.as_ref().unwrap().0;
    let next = env.next_rotation.as_ref().unwrap().0;
    assert_eq!(next.duration_since(last).as_secs(), 60, "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_and_server_errors_delay_a_rotation_but_do_not_break_it() {
    let w = World::start().await;
    let old = setup(&w, rotation()).await;
    w.x.inject([
        Fault::ServerError(503),
        Fault::RateLimited,
        Fault::ServerError(502),
        Fault::ServerError(500),
    ]);
    rotate_now(&w, "through-faults").await;
    rotated_from(&w, &old).await;
    assert_eq!(invalidations(&w), 1, "{:?}", w.x.requests());
    assert_eq!(state_step(&w).await, None, "the rotation finished");
}

/// For each step, the operator stops dead right there (as if killed), a new
/// one starts, and the environment ends with a verified working token, the
/// old one invalidated exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_any_step_resumes_without_losing_or_repeating_anything() {
    let mut w = World::start().await;
    let mut old = setup(&w, rotation()).await;
    let points = [
        CrashPoint::BeforeInvalidate,
        CrashPoint::AfterInvalidate,
        CrashPoint::BeforeMint,
        CrashPoint::AfterMint,
    ];
    for (round, point) in points.into_iter().enumerate() {
        drop(w.operator.take());
        let crashed = Arc::new(tokio::sync::Notify::new());
        let hook = crashed.clone();
        let crashing = RunningOperator::start_configured(
            w.cp.client().await.unwrap(),
            &w.x,
            None,
            move |ctx| {
                ctx.crash_at = Some(point);
                ctx.crashed = hook;
            },
        )
        .await;
        rotate_now(&w, &format!("round-{round}")).await;
        tokio::time::timeout(WAIT, crashed.notified())
            .await
            .unwrap_or_else(|_| panic!("the operator never reached {point:?}"));
        drop(crashing);
        assert!(
            state_step(&w).await.is_some(),
            "{point:?}: the step was recorded before the crash"
        );

        w.operator = Some(RunningOperator::start(&w.cp, &w.x).await);
        let new = rotated_from(&w, &old).await;
        assert_eq!(
            invalidations(&w),
            round + 1,
            "{point:?}: the old token was invalidated exactly once"
        );
        eventually("the recorded step to clear", WAIT, || async {
            state_step(&w).await.is_none().then_some(())
        })
        .await;
        old = new;
    }
}

/// The README's promise: a crash between X's answer to a refresh and the
/// write of the new refresh token loses that token (X spent the old one).
/// The result is `ReauthorizationRequired` naming the source Secret, never
/// a silent failure, and a new refresh token there recovers.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_a_refresh_answer_ends_in_reauthorization_required() {
    let mut w = World::start().await;
    drop(w.operator.take());
    w.namespace("team", &[]).await;
    user_source(&w, &w.app.refresh_token).await;
    let crashed = Arc::new(tokio::sync::Notify::new());
    let hook = crashed.clone();
    let crashing =
        RunningOperator::start_configured(w.cp.client().await.unwrap(), &w.x, None, move |ctx| {
            ctx.crash_at = Some(CrashPoint::AfterRefresh);
            ctx.crashed = hook;
        })
        .await;
    apply_user_resource(&w, None).await;
    tokio::time::timeout(WAIT, crashed.notified())
        .await
        .expect("the operator reached the crash point after X's refresh answer");
    drop(crashing);
    assert_eq!(refreshes(&w), 1, "X spent the seeded refresh token");

    w.operator = Some(RunningOperator::start(&w.cp, &w.x).await);
    let c = w
        .wait_condition(
            "team",
            "bot",
            Some("prod"),
            "ReauthorizationRequired",
            "True",
        )
        .await;
    assert!(
        c.message.contains("team/user-keys"),
        "names the Secret to update: {c:?}"
    );
    assert!(
        w.secret("team", "out").await.is_none(),
        "nothing was projected"
    );

    let fresh = w.x.authorize_again(&w.app.api_key);
    user_source(&w, &fresh).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let token = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    assert_eq!(users_me(&w, &token).await, 200);
}

/// X returns a refresh token only when the authorization has
/// `offline.access`. Without it the operator refreshes once with the seed,
/// then says `ReauthorizationRequired` (naming the scope) before the access
/// token expires, without sending X the spent seed.
#[tokio::test(flavor = "multi_thread")]
async fn without_offline_access_reauthorization_is_asked_for_before_expiry() {
    let w = World::start().await;
    w.x.without_offline_access(&w.app.api_key);
    w.x.set_user_token_lifetime(std::time::Duration::from_secs(3600));
    w.namespace("team", &[]).await;
    user_source(&w, &w.app.refresh_token).await;
    apply_user_resource(&w, Some(rotation().refresh_before("3599s"))).await;
    let c = w
        .wait_condition(
            "team",
            "bot",
            Some("prod"),
            "ReauthorizationRequired",
            "True",
        )
        .await;
    assert!(c.message.contains("offline.access"), "{c:?}");
    assert_eq!(refreshes(&w), 1, "the spent seed was not sent again");
    let token = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    assert_eq!(
        users_me(&w, &token).await,
        200,
        "the projected token still works"
    );
}

/// Two hours pass for source credential `key` (as far as status knows)
/// until `RotationDue` turns on; returns that condition. The operator may
/// be writing status at the same moment and win: backdate until it takes.
async fn aged_past_max_age(w: &World, key: &str) -> Condition {
    let api = Api::<TwitterCredential>::namespaced(w.client.clone(), "team");
    let past =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(7200);
    eventually("RotationDue after the key aged", WAIT, || async {
        let mut status = w.status("team", "bot").await;
        let env = status.environments.first_mut()?;
        if env.conditions.is_empty() {
            return None;
        }
        if let Some(c) = env
            .conditions
            .iter()
            .find(|c| c.type_ == "RotationDue" && c.status == "True")
        {
            return Some(c.clone());
        }
        if env.source_credentials.is_empty() {
            return None;
        }
        for c in &mut env.source_credentials {
            if c.key == key {
                c.since = Time(past);
            }
        }
        api.patch_status(
            "bot",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
        .ok()?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        None
    })
    .await
}

/// `bot` projecting `keys` with `rotation.<rule>.maxAge: 1h`: fresh at
/// first, then `key` aged two hours is `RotationDue` naming it and the
/// Secret, with a Warning Event (returned).
async fn reminded_past_max_age(
    w: &World,
    keys: [CredentialKey; 2],
    rule: fn(Rotate, &str) -> Rotate,
    key: &str,
) -> k8s_openapi::api::events::v1::Event {
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply(
        "team",
        Credential::named("bot").environment(
            Env::new("prod")
                .source("keys")
                .target("out")
                .keys(keys)
                .rotation(rule(rotation(), "1h")),
        ),
    )
    .await;
    let fresh = w
        .wait_condition("team", "bot", Some("prod"), "RotationDue", "False")
        .await;
    assert_eq!(fresh.reason, "WithinMaxAge");
    let due = aged_past_max_age(w, key).await;
    assert_eq!(due.reason, "MaxAgeExceeded");
    let message = &due.message;
    assert!(
        message.starts_with(&format!("{key} is 2h old (maxAge 1h)"))
            && message.contains("team/keys"),
        "{message}"
    );
    let event = w.wait_event("team", "RotationDue").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    event
}

/// `rotation.accessTokens.maxAge`: an OAuth 1.0a access token only a
/// person can replace is reminded past its age, naming the key and the
/// Secret; the person's new token starts a new age.
#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_are_reminded_past_their_max_age() {
    let w = World::start().await;
    let keys = [AccessToken, AccessTokenSecret];
    let event = reminded_past_max_age(&w, keys, Rotate::access_tokens_max_age, "accessToken").await;

    let (token, token_secret) = replace_access_token(&w).await;
    w.wait_condition("team", "bot", Some("prod"), "RotationDue", "False")
        .await;
    let secrets = Secrets::new([
        w.app.access_token.as_str(),
        w.app.access_token_secret.as_str(),
        token.as_str(),
        token_secret.as_str(),
    ]);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
    assert_no_leak("Event", &serde_json::to_string(&event).unwrap(), &secrets);
}

/// Credentials only a person can replace are tracked from when the
/// operator first saw them and reminded past `maxAge`; a new value (put in
/// the source by a person) starts a new age.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_only_a_person_can_replace_are_reminded_past_their_max_age() {
    let w = World::start().await;
    let keys = [ApiKey, ApiKeySecret];
    reminded_past_max_age(&w, keys, Rotate::consumer_keys_max_age, "apiKey").await;
    w.wait_condition("team", "bot", None, "RotationDue", "True")
        .await;
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keyguard_credential_age_seconds{")
                && l.contains("credential=\"apiKey\"")),
        "{metrics}"
    );

    // A person puts a new key in the source: its age starts again.
    let portal = w.x.create_app(keyguard_tests::x_api::AccessLevel::Read);
    let mut src = w.full_source();
    src[0] = ("apiKey", portal.api_key.as_str());
    src[1] = ("apiKeySecret", portal.api_key_secret.as_str());
    w.source("team", "keys", &src).await;
    w.wait_condition("team", "bot", Some("prod"), "RotationDue", "False")
        .await;
    let secrets = Secrets::new([
        w.app.api_key.as_str(),
        w.app.api_key_secret.as_str(),
        portal.api_key.as_str(),
        portal.api_key_secret.as_str(),
    ]);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
}

pub(crate) async fn user_source(w: &World, refresh_token: &str) {
    w.source(
        "team",
        "user-keys",
        &[
            ("clientId", w.app.client_id.as_str()),
            ("clientSecret", w.app.client_secret.as_str()),
            ("refreshToken", refresh_token),
        ],
    )
    .await;
}

/// Environment `prod` projecting the user access token refreshed from
/// `user-keys`.
fn user_token() -> Env {
    Env::new("prod")
        .source("user-keys")
        .target("out")
        .keys([UserAccessToken])
}

/// `bot`, projecting the user access token refreshed from `user-keys`,
/// with `rotation` when it is given.
pub(crate) async fn apply_user_resource(w: &World, rotation: Option<Rotate>) {
    w.apply(
        "team",
        Credential::named("bot").environment(user_token().rotation(rotation)),
    )
    .await;
}

/// Practices issue, OAuth 2.0 scopes: the scopes X granted the user token
/// are compared with `access.permission`. A `read` environment granted
/// `tweet.write` and `dm.read` is `OverPrivileged` naming those two and no
/// other; raising the permission (no new X call) ends it.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_environment_granted_write_scopes_is_over_privileged() {
    let w = World::start().await;
    w.x.grant_scopes(
        &w.app.api_key,
        &["tweet.read", "users.read", "tweet.write", "dm.read"],
    );
    w.namespace("team", &[]).await;
    user_source(&w, &w.app.refresh_token).await;
    let resource =
        |permission| Credential::named("bot").environment(user_token().permission(permission));
    w.apply("team", resource(Permission::Read)).await;
    let over = w
        .wait_condition("team", "bot", Some("prod"), "OverPrivileged", "True")
        .await;
    let message = &over.message;
    for scope in ["`tweet.write`", "`dm.read`"] {
        assert!(message.contains(scope), "{scope} named: {message}");
    }
    for scope in ["`tweet.read`", "`users.read`", "`offline.access`"] {
        assert!(
            !message.contains(scope),
            "{scope} is within read: {message}"
        );
    }
    let status = w.status("team", "bot").await;
    assert_eq!(
        status.environments[0].granted_scopes,
        [
            "tweet.read",
            "users.read",
            "tweet.write",
            "dm.read",
            "offline.access"
        ]
    );
    w.wait_event("team", "OverPrivileged").await;
    let refreshed = refreshes(&w);
    w.apply("team", resource(Permission::ReadWriteDirectMessages))
        .await;
    let within = w
        .wait_condition("team", "bot", Some("prod"), "OverPrivileged", "False")
        .await;
    assert_eq!(within.reason, "WithinPermission");
    assert_eq!(
        refreshes(&w),
        refreshed,
        "a spec change needs no new X call"
    );
}

async fn users_me(w: &World, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/2/users/me", w.x.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub(crate) fn refreshes(w: &World) -> usize {
    w.x.requests()
        .iter()
        .filter(|r| r.as_str() == "POST /2/oauth2/token")
        .count()
}

/// User access tokens are refreshed before they expire; each refresh spends
/// the refresh token it sends, and the operator keeps the new one.
#[tokio::test(flavor = "multi_thread")]
async fn user_tokens_are_refreshed_before_expiry_keeping_each_new_refresh_token() {
    let w = World::start().await;
    // Tokens that live 15 minutes and 4 seconds, refreshed 15 minutes before
    // they expire: a refresh every few seconds.
    w.x.set_user_token_lifetime(std::time::Duration::from_secs(15 * 60 + 4));
    w.namespace("team", &[]).await;
    user_source(&w, &w.app.refresh_token).await;
    apply_user_resource(&w, Some(rotation().refresh_before("15m"))).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let first = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    assert_eq!(users_me(&w, &first).await, 200);
    // Two more refreshes, each with the refresh token the last one issued
    // (the emulator refuses a spent one).
    let latest = eventually("two more refreshes, projected", WAIT, || async {
        let now = value(&w.secret("team", "out").await?, "userAccessToken")?;
        (refreshes(&w) >= 3 && now != first).then_some(now)
    })
    .await;
    assert_eq!(users_me(&w, &latest).await, 200);
    let status = w.status("team", "bot").await;
    assert!(status.environments[0].next_rotation.is_some(), "{status:?}");
    assert!(
        status.environments[0]
            .condition("ReauthorizationRequired")
            .is_none(),
        "{status:?}"
    );
    // OAuth 2.0 values, searched everywhere output goes.
    let secrets = Secrets::new([w.app.refresh_token.clone(), first, latest])
        .pair(&w.app.client_id, &w.app.client_secret);
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(w.client.clone(), "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_no_leak("Events", &serde_json::to_string(&events).unwrap(), &secrets);
    assert_no_leak("status", &status.to_json(), &secrets);
    assert_no_leak("logs at TRACE", &captured_logs(), &secrets);
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert_no_leak("metrics", &metrics, &secrets);
}

/// A spent refresh token is reported; nothing is overwritten; a person's
/// new refresh token recovers.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_refresh_token_requires_reauthorization_and_a_new_one_recovers() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    // Someone else spends the seeded refresh token first.
    let form = format!(
        "grant_type=refresh_token&client_id={}&refresh_token={}",
        w.app.client_id, w.app.refresh_token
    );
    let basic = keyguard_credentials::basic_authorization(
        w.app.client_id.as_bytes(),
        w.app.client_secret.as_bytes(),
    );
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/2/oauth2/token", w.x.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", basic)
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = answer["refresh_token"].as_str().unwrap().to_string();
    user_source(&w, &w.app.refresh_token).await;
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
    assert!(c.message.contains("team/user-keys"), "{c:?}");
    w.wait_condition("team", "bot", None, "ReauthorizationRequired", "True")
        .await;
    assert!(
        w.secret("team", "out").await.is_none(),
        "nothing projected from a refused token"
    );

    // A person authorizes again and puts the new refresh token in the source.
    user_source(&w, &fresh).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let token = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    assert_eq!(users_me(&w, &token).await, 200);
    let secrets = Secrets::new([w.app.refresh_token.clone(), fresh, token])
        .pair(&w.app.client_id, &w.app.client_secret);
    assert_no_leak("logs at TRACE", &captured_logs(), &secrets);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
}

/// X API calls are bounded across resources: a slow X API and many
/// environments minting at once never see more calls in flight than allowed.
#[tokio::test(flavor = "multi_thread")]
async fn x_api_calls_in_flight_are_bounded() {
    let mut w = World::start().await;
    drop(w.operator.take());
    w.operator = Some(
        RunningOperator::start_configured(w.cp.client().await.unwrap(), &w.x, None, |ctx| {
            let x = XApiClient::new(w.x.base_url(), std::time::Duration::from_secs(5)).unwrap();
            ctx.xapi = Arc::new(x.with_concurrency(2));
        })
        .await,
    );
    w.namespace("team", &[]).await;
    const RESOURCES: usize = 8;
    let mut apps = Vec::new();
    for i in 0..RESOURCES {
        let app = w.x.create_app(keyguard_tests::x_api::AccessLevel::Read);
        w.source(
            "team",
            &format!("keys-{i}"),
            &[
                ("apiKey", app.api_key.as_str()),
                ("apiKeySecret", app.api_key_secret.as_str()),
            ],
        )
        .await;
        apps.push(app);
    }
    w.x.inject(std::iter::repeat_n(
        Fault::Latency(std::time::Duration::from_millis(300)),
        2 * RESOURCES,
    ));
    for i in 0..RESOURCES {
        w.apply(
            "team",
            Credential::named(&format!("bot-{i}")).environment(
                Env::new("prod")
                    .source(&format!("keys-{i}"))
                    .target(&format!("out-{i}"))
                    .keys([BearerToken]),
            ),
        )
        .await;
    }
    for i in 0..RESOURCES {
        w.wait_condition("team", &format!("bot-{i}"), Some("prod"), "Synced", "True")
            .await;
    }
    let most = w.x.max_in_flight();
    assert!(
        (1..=2).contains(&most),
        "{most} X API calls were in flight at once (allowed: 2)"
    );
}

/// New values a person puts in the source are checked with X first: values
/// X refuses never replace a working projection.
#[tokio::test(flavor = "multi_thread")]
async fn new_values_x_refuses_never_replace_a_working_projection() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply("team", access_token_resource(None)).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let working = w.secret("team", "out").await.unwrap();

    // A typo in the new token secret: X refuses it, the projection stays.
    let mut typo = w.full_source();
    typo[3] = (
        "accessTokenSecret",
        "TypoTypoTypoTypoTypoTypoTypoTypoTypoTypo12345",
    );
    w.source("team", "keys", &typo).await;
    let c = w
        .wait_condition("team", "bot", Some("prod"), "Synced", "False")
        .await;
    assert_eq!(c.reason, "VerificationFailed", "{c:?}");
    assert!(
        c.message.contains("the previous projection is kept"),
        "{c:?}"
    );
    let kept = w.secret("team", "out").await.unwrap();
    assert_eq!(kept.data, working.data, "the working values stay");
    assert_eq!(
        kept.metadata.resource_version, working.metadata.resource_version,
        "not even rewritten"
    );

    // Values X accepts are projected.
    let next = w.x.create_app(keyguard_tests::x_api::AccessLevel::Read);
    w.source(
        "team",
        "keys",
        &[
            ("apiKey", next.api_key.as_str()),
            ("apiKeySecret", next.api_key_secret.as_str()),
            ("accessToken", next.access_token.as_str()),
            ("accessTokenSecret", next.access_token_secret.as_str()),
        ],
    )
    .await;
    w.wait_secret("team", "out", "the accepted values", |s| {
        value(s, "accessToken").as_deref() == Some(next.access_token.as_str())
    })
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
}

/// `bot` projecting the app's OAuth 1.0a access token from `keys` into
/// `out`, with `rotation` when it is given.
fn access_token_resource(rotation: Option<Rotate>) -> Credential {
    Credential::named("bot").environment(
        Env::new("prod")
            .source("keys")
            .target("out")
            .keys([AccessToken, AccessTokenSecret])
            .rotation(rotation),
    )
}

/// A person authorizes the app again and puts the new OAuth 1.0a access
/// token in the source: it is checked, projected, and the replaced token
/// keeps working for `gracePeriod`, then X invalidates it, exactly once.
/// `bot` projecting the app's OAuth 1.0a access token with `gracePeriod`;
/// waits for the first projection and returns that token.
pub(crate) async fn project_access_token(w: &World, grace: &str) -> String {
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    let resource = access_token_resource(Some(rotation().grace_period(grace)));
    w.apply("team", resource).await;
    let old = w.app.access_token.clone();
    w.wait_secret("team", "out", "the first projection", |s| {
        value(s, "accessToken").as_deref() == Some(old.as_str())
    })
    .await;
    old
}

/// A person authorizes the app again and puts the new access token and
/// secret in the source; returns them.
pub(crate) async fn replace_access_token(w: &World) -> (String, String) {
    let (token, token_secret) = w.x.issue_access_token(&w.app.api_key);
    let mut replaced = w.full_source();
    replaced[2].1 = &token;
    replaced[3].1 = &token_secret;
    w.source("team", "keys", &replaced).await;
    (token, token_secret)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_access_token_is_invalidated_after_its_grace_period() {
    let w = World::start().await;
    let old = project_access_token(&w, "6s").await;
    let (token, token_secret) = replace_access_token(&w).await;
    w.wait_secret("team", "out", "the new token projected", |s| {
        value(s, "accessToken").as_deref() == Some(token.as_str())
    })
    .await;
    // That it stays valid during the grace period is asserted where the
    // period outlasts the test (grace_periods_end_early_…): here it is
    // 6 s, which a loaded machine can spend before any assertion.
    let retired = w.wait_event("team", "AccessTokenRetired").await;

    w.wait_event("team", "AccessTokenInvalidated").await;
    assert_eq!(w.x.revoked_access_tokens(&w.app.api_key), vec![old.clone()]);
    w.force_sync_and_wait("team", "bot", "after-retirement")
        .await;
    assert_eq!(
        w.x.revoked_access_tokens(&w.app.api_key),
        vec![old.clone()],
        "invalidated once, and never the token in use"
    );
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;

    let secrets = Secrets::new([
        old.as_str(),
        w.app.access_token_secret.as_str(),
        token.as_str(),
        token_secret.as_str(),
        w.app.api_key_secret.as_str(),
    ]);
    assert_no_leak("Event", &serde_json::to_string(&retired).unwrap(), &secrets);
    assert_no_leak("status", &w.status("team", "bot").await.to_json(), &secrets);
}

/// Practices issue, access reviews: a declared review (`accessReview`)
/// overdue since the last one raises `AccessReviewDue` with a Warning
/// Event and the metric the alert reads; recording a review clears it and
/// says when the next is due. The environment stays synced throughout.
#[tokio::test(flavor = "multi_thread")]
async fn a_declared_access_review_is_reminded_when_due_and_cleared_when_recorded() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &[("apiKey", "AAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    let resource = |last| {
        Credential::named("bot")
            .access_review("24h", Some(last), Some("alice"))
            .environment(Env::new("prod").source("keys").target("out").keys([ApiKey]))
    };
    let two_days_ago =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_hours(48);
    w.apply("team", resource(two_days_ago)).await;
    let due = w
        .wait_condition("team", "bot", None, "AccessReviewDue", "True")
        .await;
    assert_eq!(due.reason, "ReviewOverdue", "{due:?}");
    assert!(due.message.contains("last by alice"), "{due:?}");
    w.wait_event("team", "AccessReviewDue").await;
    let series = "keyguard_access_review_due{namespace=\"team\",name=\"bot\"}";
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert!(metrics.contains(&format!("{series} 1")), "{metrics}");
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;

    let now = k8s_openapi::jiff::Timestamp::now();
    w.apply("team", resource(now)).await;
    let recent = w
        .wait_condition("team", "bot", None, "AccessReviewDue", "False")
        .await;
    assert_eq!(recent.reason, "ReviewedRecently", "{recent:?}");
    let status = w.status("team", "bot").await;
    assert!(status.next_access_review.is_some(), "{status:?}");
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert!(metrics.contains(&format!("{series} 0")), "{metrics}");
}

/// A public OAuth 2.0 client (a native or single-page app: no client
/// secret) refreshes with its client id alone, as X's OAuth 2.0 guide
/// says; the emulator refuses Basic-less refreshes only for confidential
/// clients.
#[tokio::test(flavor = "multi_thread")]
async fn a_public_client_refreshes_with_its_client_id_alone() {
    let w = World::start().await;
    w.x.make_public_client(&w.app.api_key);
    w.namespace("team", &[]).await;
    w.source(
        "team",
        "user-keys",
        &[
            ("clientId", w.app.client_id.as_str()),
            ("refreshToken", w.app.refresh_token.as_str()),
        ],
    )
    .await;
    apply_user_resource(&w, None).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let token = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    assert_eq!(users_me(&w, &token).await, 200);
    assert_eq!(refreshes(&w), 1);
}

/// The README's grace-period promises, with a grace period (1h) that never
/// ends during the test, so each outcome comes from a swap, not a clock:
/// putting the old token back cancels its invalidation; a second swap
/// within the grace period ends the first one's early; deleting the
/// resource during a grace period leaves the retired token valid.
#[tokio::test(flavor = "multi_thread")]
async fn grace_periods_end_early_on_a_second_swap_and_never_for_a_token_put_back() {
    let w = World::start().await;
    let a = project_access_token(&w, "1h").await;
    let projected = |token: String| {
        let w = &w;
        async move {
            w.wait_secret("team", "out", "the token projected", |s| {
                value(s, "accessToken").as_deref() == Some(token.as_str())
            })
            .await;
        }
    };
    let (b, _) = replace_access_token(&w).await;
    projected(b.clone()).await;
    w.wait_event("team", "AccessTokenRetired").await;
    w.force_sync_and_wait("team", "bot", "a-retired").await;
    assert!(
        w.x.revoked_access_tokens(&w.app.api_key).is_empty(),
        "a retired token stays valid during its grace period"
    );

    // A person puts A back: A's retirement is forgotten (B, now replaced,
    // is retired instead).
    w.source("team", "keys", &w.full_source()).await;
    projected(a.clone()).await;
    w.force_sync_and_wait("team", "bot", "a-is-back").await;
    assert!(w.x.revoked_access_tokens(&w.app.api_key).is_empty());

    // A second swap within B's grace period ends it early: B is invalidated
    // now, and A (the token put back) never is.
    let (c, _) = replace_access_token(&w).await;
    projected(c.clone()).await;
    eventually("B's grace period to end early", WAIT, || async {
        (w.x.revoked_access_tokens(&w.app.api_key) == vec![b.clone()]).then_some(())
    })
    .await;

    // A is retired now, in its grace period. Deleting the resource leaves
    // it valid: the operator invalidates nothing on the way out.
    let secrets = Api::<Secret>::namespaced(w.client.clone(), "team");
    let records = secrets.list(&ListParams::default()).await.unwrap();
    assert!(
        records
            .items
            .iter()
            .any(|s| s.name_any().starts_with("keyguard-retired-")),
        "a retirement record holds A"
    );
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .delete("bot", &Default::default())
        .await
        .unwrap();
    let secrets = Api::<Secret>::namespaced(w.client.clone(), "team");
    eventually(
        "the retirement record deleted with the resource",
        WAIT,
        || async {
            let records = secrets.list(&ListParams::default()).await.ok()?;
            let left = records
                .items
                .iter()
                .any(|s| s.name_any().starts_with("keyguard-retired-"));
            (!left).then_some(())
        },
    )
    .await;
    assert_eq!(
        w.x.revoked_access_tokens(&w.app.api_key),
        vec![b],
        "only B was ever invalidated"
    );
}

/// Without `gracePeriod` a replaced access token is left for the person to
/// revoke: nothing is retired, nothing invalidated.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_grace_period_a_replaced_access_token_is_left_alone() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply("team", access_token_resource(None)).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let (b, _) = replace_access_token(&w).await;
    w.wait_secret("team", "out", "the new token projected", |s| {
        value(s, "accessToken").as_deref() == Some(b.as_str())
    })
    .await;
    w.force_sync_and_wait("team", "bot", "after-swap").await;
    assert!(w.x.revoked_access_tokens(&w.app.api_key).is_empty());
    assert!(!w
        .x
        .requests()
        .iter()
        .any(|r| r == "POST /1.1/oauth/invalidate_token"));
    let records = Api::<Secret>::namespaced(w.client.clone(), "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        !records
            .items
            .iter()
            .any(|s| s.name_any().starts_with("keyguard-retired-")),
        "no retirement record without a grace period"
    );
}

async fn user_keys_with_secret(w: &World, secret: &str) {
    let pairs = [
        ("clientId", w.app.client_id.as_str()),
        ("clientSecret", secret),
        ("refreshToken", w.app.refresh_token.as_str()),
    ];
    w.source("team", "user-keys", &pairs).await;
}

/// A client that fails to authenticate (a client secret rotated in the
/// portal before the source was updated) did not spend the refresh token:
/// once the source holds the right secret, that same token refreshes.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_client_secret_is_not_held_against_the_refresh_token() {
    let w = World::start().await;
    w.namespace("team", &[]).await;
    let wrong = format!("{}x", &w.app.client_secret[1..]);
    user_keys_with_secret(&w, &wrong).await;
    apply_user_resource(&w, None).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "False")
        .await;
    assert!(refreshes(&w) >= 1, "the client was refused");

    user_keys_with_secret(&w, &w.app.client_secret).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let token = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    assert_eq!(users_me(&w, &token).await, 200);
}

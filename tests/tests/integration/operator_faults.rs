//! Faults the operator lives through without a restart of its own: etcd and
//! kube-apiserver killed and started again mid-sync, mid-rotation and
//! between a refresh and the write of its new refresh token.

use std::sync::Arc;
use std::time::Duration;

use keyguard_operator::xapi::XApiClient;
use keyguard_operator::TwitterCredential;
use keyguard_tests::credential::CredentialKey::{ApiKey, BearerToken, UserAccessToken};
use keyguard_tests::credential::{rotation, Credential, Env};
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::operator::RunningOperator;
use keyguard_tests::status::Conditions;
use keyguard_tests::world::{reconciles, value, World, WAIT};
use keyguard_tests::x_api::{AccessLevel, Fault};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// Long enough that only the watches (not a periodic resync) can explain
/// how fast a change after the restart is seen.
const RESYNC: Duration = Duration::from_secs(600);
/// How long the control plane stays down.
const DOWN: Duration = Duration::from_secs(3);
const INVALIDATE: &str = "POST /oauth2/invalidate_token";
const REFRESH: &str = "POST /2/oauth2/token";

fn bearer_resource(name: &str, source: &str, target: &str) -> Credential {
    Credential::named(name).environment(
        Env::new("prod")
            .source(source)
            .target(target)
            .keys([BearerToken, ApiKey]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_control_plane_restart_mid_rotation_and_mid_sync_loses_and_repeats_nothing() {
    let mut w = World::start_configured(|ctx| ctx.resync = RESYNC).await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    w.apply("team", bearer_resource("bot", "keys", "out")).await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let first = value(&w.secret("team", "out").await.unwrap(), "bearerToken").unwrap();

    // Mid-rotation: X answers the invalidation slowly, and while its
    // answer is on the way the control plane goes down.
    w.x.inject_at(INVALIDATE, Fault::Latency(Duration::from_secs(3)));
    let patch = json!({"metadata": {"annotations": {"keyguard.dev/rotate-now": "during-outage"}}});
    Api::<TwitterCredential>::namespaced(w.client.clone(), "team")
        .patch("bot", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually("the invalidation to reach X", WAIT, || async {
        w.x.requests().iter().any(|r| r == INVALIDATE).then_some(())
    })
    .await;
    assert_eq!(
        crate::operator_rotation::state_step(&w).await.as_deref(),
        Some("invalidating"),
        "the step is recorded before X is asked"
    );
    w.cp.restart(DOWN).await.unwrap();
    assert_eq!(
        w.x.faulted(),
        vec![(
            INVALIDATE.to_string(),
            Fault::Latency(Duration::from_secs(3))
        )],
        "the slow answer was the invalidation's"
    );
    let rotated = eventually("the rotation, finished after the outage", WAIT, || async {
        let now = value(&w.secret("team", "out").await?, "bearerToken")?;
        let live = w.x.current_bearer(&w.app.api_key)?;
        (now != first && now == live).then_some(now)
    })
    .await;
    assert_eq!(
        w.x.bearer_invalidations(&w.app.api_key),
        1,
        "the old token is invalidated exactly once: {:?}",
        w.x.requests()
    );

    // Mid-sync: a new resource, and the control plane gone right away.
    let other = w.x.create_app(AccessLevel::Read);
    let other_source = [
        ("apiKey", other.api_key.as_str()),
        ("apiKeySecret", other.api_key_secret.as_str()),
    ];
    w.source("team", "other-keys", &other_source).await;
    w.apply("team", bearer_resource("other", "other-keys", "other-out"))
        .await;
    w.cp.restart(DOWN).await.unwrap();
    w.wait_condition("team", "other", Some("prod"), "Synced", "True")
        .await;

    // The watches are back: a change made now is projected long before a
    // resync would notice it.
    let third = w.x.create_app(AccessLevel::Read);
    let changed = [
        ("apiKey", third.api_key.as_str()),
        ("apiKeySecret", third.api_key_secret.as_str()),
    ];
    w.source("team", "other-keys", &changed).await;
    eventually(
        "the change after the outage",
        Duration::from_secs(30),
        || async {
            let s = w.secret("team", "other-out").await?;
            (value(&s, "apiKey")? == third.api_key).then_some(())
        },
    )
    .await;
    assert_eq!(
        value(&w.secret("team", "out").await.unwrap(), "bearerToken").unwrap(),
        rotated,
        "nothing rotated twice"
    );
    assert_eq!(w.x.bearer_invalidations(&w.app.api_key), 1);
    let metrics = w.operator.as_ref().unwrap().metrics.render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keyguard_controller_rebuilds_total ") && !l.ends_with(" 0")),
        "the controller listed afresh after the outage:\n{metrics}"
    );
}

/// X spends a refresh token when it answers; the new one exists only in
/// the operator's memory until it is written. An apiserver outage at that
/// moment must not lose it.
#[tokio::test(flavor = "multi_thread")]
async fn a_control_plane_restart_during_a_refresh_keeps_the_new_refresh_token() {
    let mut w = World::start_configured(|ctx| ctx.resync = RESYNC).await;
    // Tokens that live 15 minutes and 6 seconds, refreshed 15 minutes
    // before they expire: the next refresh comes a few seconds after the
    // first sync.
    w.x.set_user_token_lifetime(Duration::from_secs(15 * 60 + 6));
    w.namespace("team", &[]).await;
    w.source(
        "team",
        "user-keys",
        &[
            ("clientId", w.app.client_id.as_str()),
            ("clientSecret", w.app.client_secret.as_str()),
            ("refreshToken", w.app.refresh_token.as_str()),
        ],
    )
    .await;
    w.apply(
        "team",
        Credential::named("bot").environment(
            Env::new("prod")
                .source("user-keys")
                .target("out")
                .keys([UserAccessToken])
                .rotation(rotation().refresh_before("15m")),
        ),
    )
    .await;
    w.wait_condition("team", "bot", Some("prod"), "Synced", "True")
        .await;
    let refreshes = |w: &World| {
        w.x.requests()
            .iter()
            .filter(|r| r.as_str() == REFRESH)
            .count()
    };
    let before = refreshes(&w);
    // The next refresh is answered slowly; the control plane goes down
    // while the answer is on its way, so the write of the new refresh
    // token meets the outage.
    w.x.inject_at(REFRESH, Fault::Latency(Duration::from_secs(2)));
    eventually("the next refresh to be asked", WAIT, || async {
        (refreshes(&w) > before).then_some(())
    })
    .await;
    w.cp.restart(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        w.x.faulted(),
        vec![(REFRESH.to_string(), Fault::Latency(Duration::from_secs(2)))],
        "the slow answer was the refresh's"
    );
    // Two more refreshes after the outage: each needs the refresh token
    // the one before issued (the emulator refuses a spent one).
    eventually("refreshes to go on after the outage", WAIT, || async {
        (refreshes(&w) >= before + 3).then_some(())
    })
    .await;
    let status = w.status("team", "bot").await;
    assert!(
        !status.environments[0].has_condition("ReauthorizationRequired", "True"),
        "a refresh token was lost: {status:?}"
    );
    let token = value(&w.secret("team", "out").await.unwrap(), "userAccessToken").unwrap();
    let me = reqwest::Client::new()
        .get(format!("{}/2/users/me", w.x.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(me.as_u16(), 200, "the projected user token works");
}

/// X struggling for many environments at once: a burst of 429s (with a
/// reset time), of 5xx, and slow answers. The operator keeps its X API
/// calls bounded, makes few extra calls (no retry storm), shows the backoff
/// in the refusal's Warning Event, and ends with every environment synced.
#[tokio::test(flavor = "multi_thread")]
async fn a_struggling_x_api_gets_bounded_calls_and_visible_backoff() {
    const ENVS: usize = 20;
    const CONCURRENCY: usize = 4;
    let mut w = World::start().await;
    drop(w.operator.take());
    let client = w.cp.client().await.unwrap();
    w.operator = Some(
        RunningOperator::start_configured(client, &w.x, None, |ctx| {
            let x = XApiClient::new(w.x.base_url(), Duration::from_secs(5)).unwrap();
            ctx.xapi = Arc::new(x.with_concurrency(CONCURRENCY));
        })
        .await,
    );
    w.namespace("team", &[]).await;
    let mut apps = Vec::new();
    for i in 0..ENVS {
        let app = w.x.create_app(AccessLevel::Read);
        let keys = [
            ("apiKey", app.api_key.as_str()),
            ("apiKeySecret", app.api_key_secret.as_str()),
        ];
        w.source("team", &format!("keys-{i}"), &keys).await;
        apps.push(app);
    }
    let faults: Vec<Fault> = std::iter::repeat_n(Fault::RateLimited, ENVS)
        .chain(std::iter::repeat_n(Fault::ServerError(503), ENVS))
        .chain(std::iter::repeat_n(
            Fault::Latency(Duration::from_secs(2)),
            ENVS,
        ))
        .collect();
    let injected = faults.len();
    w.x.inject(faults);
    for i in 0..ENVS {
        let name = format!("bot-{i}");
        let source = format!("keys-{i}");
        w.apply("team", bearer_resource(&name, &source, &format!("out-{i}")))
            .await;
    }

    let resources: Api<TwitterCredential> = Api::namespaced(w.client.clone(), "team");
    eventually("every environment synced", WAIT * 2, || async {
        let list = resources.list(&Default::default()).await.ok()?;
        let synced = list.items.iter().filter(|tc| {
            tc.status
                .as_ref()
                .is_some_and(|s| s.ready_environments.as_deref() == Some("1/1"))
        });
        (synced.count() == ENVS).then_some(())
    })
    .await;
    for (i, app) in apps.iter().enumerate() {
        let out = w.secret("team", &format!("out-{i}")).await.unwrap();
        assert_eq!(
            value(&out, "bearerToken"),
            w.x.current_bearer(&app.api_key),
            "out-{i}"
        );
    }
    let most = w.x.max_in_flight();
    assert!(
        most <= CONCURRENCY,
        "{most} X API calls at once (allowed: {CONCURRENCY})"
    );
    let calls = w.x.requests().len();
    // Without faults each environment needs a few calls (mint, verify); each
    // fault may cost one more. A retry storm costs many times that.
    let bound = injected + 3 * ENVS;
    eprintln!(
        "{calls} X API calls for {ENVS} environments and {injected} faults; at most {most} at once"
    );
    assert!(
        calls <= bound,
        "{calls} X API calls for {ENVS} environments and {injected} faults (bound {bound}): {:?}",
        w.x.requests()
    );
    // The backoff was shown: each refusal's Warning Event carries the
    // status message of its start (kept, unlike the ~2 s the condition
    // holds), with the reset time as UTC.
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(w.client.clone(), "team")
        .list(&Default::default())
        .await
        .unwrap();
    let backoff = events
        .items
        .iter()
        .filter_map(|e| e.note.as_deref())
        .find(|n| n.contains("rate limited until 20"))
        .unwrap_or_else(|| panic!("no Event showed a rate limit's reset time: {events:?}"));
    assert!(!backoff.contains("Some("), "{backoff}");
}

/// Overload: one resource changed as fast as a client can, while twenty
/// others are created, with two reconcile slots. The flood takes one place
/// in the queue (its changes coalesce), the others all get their turn, and
/// the queue never holds more than one entry per resource.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_changes_to_one_resource_does_not_starve_the_others() {
    const QUIET: usize = 20;
    let w = World::start_configured(|ctx| {
        ctx.workers = keyguard_operator::workers::Workers::new(2);
    })
    .await;
    w.namespace("team", &[]).await;
    w.source("team", "keys", &w.full_source()).await;
    let resource = |name: &str| {
        Credential::named(name).environment(
            Env::new("prod")
                .source("keys")
                .target(&format!("{name}-out"))
                .keys([ApiKey]),
        )
    };
    w.apply("team", resource("noisy")).await;
    w.wait_condition("team", "noisy", None, "Ready", "True")
        .await;

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (client, done) = (w.client.clone(), done.clone());
        tokio::spawn(async move {
            let api: Api<TwitterCredential> = Api::namespaced(client, "team");
            let mut changes = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let patch = json!({"metadata": {"annotations": {"flood": changes.to_string()}}});
                api.patch("noisy", &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
                changes += 1;
            }
            changes
        })
    };
    let metrics = w.operator.as_ref().unwrap().metrics.clone();
    let deepest = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let sampler = {
        let (metrics, deepest, done) = (metrics.clone(), deepest.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let depth = gauge(&metrics.render(), "keyguard_reconcile_queue_depth");
                deepest.fetch_max(depth, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    for i in 0..QUIET {
        w.apply("team", resource(&format!("quiet-{i}"))).await;
    }
    for i in 0..QUIET {
        w.wait_condition("team", &format!("quiet-{i}"), None, "Ready", "True")
            .await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let changes = flood.await.unwrap();
    sampler.await.unwrap();
    let noisy = reconciles(w.operator.as_ref().unwrap(), "team", "noisy");
    eprintln!(
        "{changes} changes to one resource took {noisy} reconciles; deepest queue {}",
        deepest.load(std::sync::atomic::Ordering::SeqCst)
    );
    assert!(
        changes >= 20,
        "the flood was too slow ({changes} changes) to prove anything"
    );
    assert!(
        noisy < changes,
        "{changes} changes took {noisy} reconciles: they did not coalesce"
    );
    let deepest = deepest.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        deepest <= QUIET as i64 + 1,
        "{deepest} reconciles queued for {} resources",
        QUIET + 1
    );
}

fn gauge(metrics: &str, name: &str) -> i64 {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from the metrics"))
}

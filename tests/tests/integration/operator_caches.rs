//! The watches' caches of the operator's own objects (`caches.rs`): a
//! resync reads the target's Secret, Role, RoleBinding and namespace from
//! them instead of the apiserver, and a cache that lags behind never turns
//! into a conflict, a teardown or a needless write. The sync is called
//! directly, with caches filled by hand, so each staleness is exact.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use keyguard_operator::cache_store::{cache_store, CacheStore};
use keyguard_operator::caches::{self, Scoped, Stores};
use keyguard_operator::context::Context;
use keyguard_operator::metrics::Metrics;
use keyguard_operator::outcome::EnvOutcome;
use keyguard_operator::reads::AlreadyRead;
use keyguard_operator::resource::EnvironmentStatus;
use keyguard_operator::sync;
use keyguard_operator::xapi::XApiClient;
use keyguard_operator::TwitterCredential;
use keyguard_tests::conflicts::Conflicts;
use keyguard_tests::credential::CredentialKey::{
    AccessToken, AccessTokenSecret, ApiKey, ApiKeySecret, BearerToken,
};
use keyguard_tests::credential::{Credential, CredentialKey, Env};
use keyguard_tests::fixtures::production;
use keyguard_tests::kube_helpers::eventually;
use keyguard_tests::operator::{test_claim_key, RunningOperator};
use keyguard_tests::world::{reconciles, value, World, WAIT};
use kube::api::Api;
use kube::runtime::reflector::{store, Store};
use kube::runtime::watcher::Event;
use kube::Resource;

/// A store that has listed exactly `objects`.
fn listed<K: Resource<DynamicType = ()> + Clone + 'static>(objects: Vec<K>) -> Store<K> {
    let (reader, mut writer) = store();
    writer.apply_watcher_event(&Event::Init);
    for o in objects {
        writer.apply_watcher_event(&Event::InitApply(o));
    }
    writer.apply_watcher_event(&Event::InitDone);
    reader
}

/// A cache that has listed exactly `objects`, held as the watches hold them.
fn cached<K>(objects: Vec<K>, key: fn(&K) -> Option<String>) -> CacheStore<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static,
{
    let (reader, mut writer) = cache_store();
    let pack = |o: &K| caches::packed(o, key);
    writer.apply(&Event::Init, pack);
    for o in objects {
        writer.apply(&Event::InitApply(o), pack);
    }
    writer.apply(&Event::InitDone, pack);
    reader
}

fn stores(
    namespaces: Vec<kube::core::PartialObjectMeta<Namespace>>,
    secrets: Vec<Secret>,
    roles: Vec<Role>,
    bindings: Vec<RoleBinding>,
) -> Arc<Stores> {
    Arc::new(Stores {
        credentials: listed(Vec::new()),
        namespaces: cached(namespaces, caches::no_key),
        secrets: Scoped([(None, cached(secrets, caches::minted_from))].into()),
        roles: Scoped([(None, cached(roles, caches::no_key))].into()),
        bindings: Scoped([(None, cached(bindings, caches::no_key))].into()),
    })
}

fn synced(outcome: &EnvOutcome) -> bool {
    outcome
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == "Synced" && c.status == "True")
}

/// The uid and resourceVersion of the target's three objects.
async fn versions(w: &World) -> Vec<(String, String)> {
    let secret = w.secret("prod", "twitter-credentials").await.unwrap();
    let role = Api::<Role>::namespaced(w.client.clone(), "prod")
        .get("keyguard-read-twitter-credentials")
        .await
        .unwrap();
    let binding = Api::<RoleBinding>::namespaced(w.client.clone(), "prod")
        .get("keyguard-read-twitter-credentials")
        .await
        .unwrap();
    [secret.metadata, role.metadata, binding.metadata]
        .into_iter()
        .map(|m| (m.uid.unwrap(), m.resource_version.unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resync_reads_targets_from_the_cache_and_never_acts_on_a_stale_one() {
    let mut w = World::start().await;
    // Only the direct calls below sync: no controller races them.
    drop(w.operator.take());
    w.namespace("team", &[]).await;
    w.namespace("prod", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "bot-keys", &w.full_source()).await;
    let env = production("prod", [ApiKey, AccessToken]);
    w.apply("team", Credential::named("bot").environment(env))
        .await;
    let tc: TwitterCredential = Api::namespaced(w.client.clone(), "team")
        .get("bot")
        .await
        .unwrap();
    let reads = Conflicts::none();
    let client = reads.client(w.cp.admin_config().await.unwrap()).unwrap();
    let xapi = XApiClient::new(w.x.base_url(), Duration::from_secs(5)).unwrap();
    let ctx = Context::new(client, xapi, Metrics::default(), test_claim_key());
    let env = &tc.spec.environments[0];
    let previous = || EnvironmentStatus {
        name: env.name.clone(),
        ..Default::default()
    };
    let sync = || sync::environment(&ctx, &tc, env, previous(), None, AlreadyRead::default());

    // No caches yet: everything is read with a GET and created.
    assert!(synced(&sync().await));
    let created = versions(&w).await;
    let prod = Api::<Namespace>::all(w.client.clone())
        .get_metadata("prod")
        .await
        .unwrap();

    // A cache that listed before the creates: each create now loses with
    // AlreadyExists. Looked at again with fresh reads, they are ours and
    // current: no conflict, nothing torn down, nothing written.
    ctx.caches
        .set(Some(stores(vec![prod.clone()], vec![], vec![], vec![])));
    let outcome = sync().await;
    assert!(synced(&outcome), "{:?}", outcome.status.conditions);
    assert_eq!(versions(&w).await, created, "nothing deleted or rewritten");

    // A cache one event behind a repair: it still holds the tampered
    // version. The replace it plans loses with 409; the fresh look finds
    // the Secret current and leaves it.
    let mut tampered = w.secret("prod", "twitter-credentials").await.unwrap();
    tampered.data.as_mut().unwrap().insert(
        "apiKey".into(),
        k8s_openapi::ByteString(b"someone-elses".to_vec()),
    );
    tampered.metadata.resource_version = Some("1".into());
    ctx.caches.set(Some(stores(
        vec![prod.clone()],
        vec![tampered],
        vec![],
        vec![],
    )));
    let outcome = sync().await;
    assert!(synced(&outcome), "{:?}", outcome.status.conditions);
    assert_eq!(versions(&w).await, created, "nothing rewritten");

    // A cache that is current: the resync reads only the source; the
    // target's namespace, Secret, Role and RoleBinding come from the cache.
    let access = "keyguard-read-twitter-credentials";
    let secret = w.secret("prod", "twitter-credentials").await.unwrap();
    let role = Api::<Role>::namespaced(w.client.clone(), "prod")
        .get(access)
        .await
        .unwrap();
    let binding = Api::<RoleBinding>::namespaced(w.client.clone(), "prod")
        .get(access)
        .await
        .unwrap();
    assert!(value(&secret, "apiKey").is_some());
    ctx.caches.set(Some(stores(
        vec![prod],
        vec![secret],
        vec![role],
        vec![binding],
    )));
    reads.take_reads();
    let outcome = sync().await;
    assert!(synced(&outcome), "{:?}", outcome.status.conditions);
    assert_eq!(
        reads.take_reads(),
        vec!["/api/v1/namespaces/team/secrets/bot-keys".to_string()],
        "only the source is read"
    );
    assert_eq!(versions(&w).await, created, "nothing rewritten");
}

/// The whole reconcile, resynced: only what holds values or a rotation's
/// step is read (each source, the state record); the targets' Secrets,
/// Roles, RoleBindings and namespaces come from the caches.
#[tokio::test(flavor = "multi_thread")]
async fn a_resync_of_a_synced_resource_reads_only_sources_and_state() {
    let mut w = World::start().await;
    drop(w.operator.take());
    let reads = Conflicts::none();
    let client = reads.client(w.cp.admin_config().await.unwrap()).unwrap();
    w.operator = Some(
        RunningOperator::start_configured(client, &w.x, None, |ctx| {
            ctx.resync = Duration::from_secs(1);
        })
        .await,
    );
    w.namespace("team", &[]).await;
    w.namespace("prod", &[("keyguard.dev/allow-from-team", "true")])
        .await;
    w.source("team", "bot-keys", &w.full_source()).await;
    let env = |name: &str, namespace: &str, keys: &[CredentialKey]| {
        Env::new(name)
            .source("bot-keys")
            .target_namespace(namespace)
            .target(&format!("out-{name}"))
            .keys(keys.iter().copied())
            .service_accounts(["app"])
    };
    let environments = [
        env("production", "prod", &[BearerToken]),
        env("staging", "prod", &[ApiKey, ApiKeySecret]),
        env("development", "team", &[AccessToken, AccessTokenSecret]),
    ];
    w.apply("team", Credential::named("bot").environments(environments))
        .await;
    w.wait_condition("team", "bot", None, "Ready", "True").await;
    // A verification reads the bearer environment's state record when
    // due; it is not a resync's read. Seen, when verification also read
    // the source: the first verifications landing inside the counted
    // window (4-5 source reads in 2 resyncs).
    for env in ["production", "staging", "development"] {
        w.wait_condition("team", "bot", Some(env), "Verified", "True")
            .await;
    }
    let tc: TwitterCredential = Api::namespaced(w.client.clone(), "team")
        .get("bot")
        .await
        .unwrap();
    let state = keyguard_operator::state_record::state_name(&tc, &tc.spec.environments[0]);
    let before = reconciles(w.operator.as_ref().unwrap(), "team", "bot");
    reads.take_reads();
    // Two resyncs (each after the short resync interval), counted as they
    // happen rather than guessed from a sleep.
    let op = w.operator.as_ref().unwrap();
    let resyncs = eventually("two resyncs", WAIT, || async {
        let done = reconciles(op, "team", "bot") - before;
        (done >= 2).then_some(done)
    })
    .await;
    let gets: Vec<String> = reads
        .take_reads()
        .into_iter()
        // Lists and watches carry a query; a read of one object does not.
        .filter(|path| !path.contains('?'))
        .collect();
    assert!(resyncs >= 2, "the resource was resynced ({resyncs})");
    // A reconcile reads at its start and is counted at its end: counted
    // after the reads were taken, every read belongs to a counted
    // reconcile or to the one still in flight (under load, more than the
    // two awaited can finish between the count above and the reads).
    let resyncs = reconciles(op, "team", "bot") - before;
    let allowed = [
        "/api/v1/namespaces/team/secrets/bot-keys".to_string(),
        format!("/api/v1/namespaces/team/secrets/{state}"),
    ];
    let others: Vec<&String> = gets.iter().filter(|p| !allowed.contains(p)).collect();
    assert!(
        others.is_empty(),
        "read besides sources and state: {others:?}"
    );
    // Three environments share one source: one read of it and one of the
    // state record per resync; a reconcile still in flight when the window
    // closes adds at most one more of each.
    let source_reads = gets.iter().filter(|p| **p == allowed[0]).count() as u64;
    assert!(
        source_reads <= resyncs + 1,
        "the shared source was read {source_reads} times in {resyncs} resyncs: {gets:?}"
    );
    assert!(
        gets.len() as u64 <= 2 * (resyncs + 1),
        "{} reads in {resyncs} resyncs: {gets:?}",
        gets.len()
    );
}

//! Scenario tests of the reconcile order: one TwitterCredential reconciled
//! against an in-memory apiserver (`fake_apiserver.rs`) and the in-process
//! fake X, asserting which writes happen, in which order, and which never
//! happen when a write before them failed. They run in milliseconds; what
//! needs a real apiserver (validation, field ownership, watches, RBAC) is
//! tested in `tests/tests/integration` against kube-apiserver and etcd.

mod fake_apiserver;

use std::sync::Arc;

use fake_apiserver::FakeApiserver;
use http::Method;
use keyguard_operator::cache_store::{cache_store, CacheStore};
use keyguard_operator::caches::{self, Scoped, Stores};
use keyguard_operator::context::Context;
use keyguard_operator::labels::MANAGED_BY;
use keyguard_operator::metrics::Metrics;
use keyguard_operator::ownership::ClaimKey;
use keyguard_operator::stored_credential::StoredCredential;
use keyguard_operator::xapi::fake::FakeXApi;
use keyguard_operator::TwitterCredential;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{json, Value};

const CREDENTIAL: &str = "/apis/keyguard.dev/v1alpha1/namespaces/team/twittercredentials/bot";
const SOURCE: &str = "/api/v1/namespaces/team/secrets/bot-keys";
const TARGET: &str = "/api/v1/namespaces/team/secrets/out";
const API_KEY: &str = "scenarioApiKey0123456789a";
const API_KEY_SECRET: &str = "scenarioApiKeySecret0123456789abcdefghijklmnopqrst";
const ACCESS_TOKEN: &str = "1234567890-scenarioAccessToken0123456789abcdefghij";
const ACCESS_TOKEN_SECRET: &str = "scenarioAccessTokenSecret0123456789abcdefghij";

/// One resource `team/bot`, the apiserver and X it talks to.
struct Scenario {
    api: FakeApiserver,
    x: Arc<FakeXApi>,
    ctx: Arc<Context>,
}

impl Scenario {
    fn new() -> Scenario {
        let api = FakeApiserver::default();
        let timeline = api.clone();
        let x = Arc::new(FakeXApi::observed(move |call| timeline.note_x_call(call)));
        let claims = ClaimKey::new(b"scenario claim key, 32 bytes ok!".to_vec());
        let mut ctx = Context::new(api.client(), FakeXApi::new(), Metrics::default(), claims);
        ctx.xapi = x.clone();
        Scenario {
            api,
            x,
            ctx: Arc::new(ctx),
        }
    }

    /// The source Secret `team/bot-keys` holding the app's consumer keys
    /// and its owner's access token (which a bearer token rotation needs).
    fn with_source(self) -> Scenario {
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        self.api.seed(
            SOURCE,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bot-keys"},
                "data": {"apiKey": b64(API_KEY), "apiKeySecret": b64(API_KEY_SECRET),
                    "accessToken": b64(ACCESS_TOKEN), "accessTokenSecret": b64(ACCESS_TOKEN_SECRET)}}),
        );
        self
    }

    /// `team/bot` projecting `keys` from `bot-keys` into `team/out`, which
    /// ServiceAccount `reader` may read, with `rotation` when given, and
    /// the operator's finalizer when `finalized`.
    fn with_credential(self, keys: &[&str], rotation: Option<Value>, finalized: bool) -> Scenario {
        let mut environment = environment("prod", "out", keys);
        if let Some(rotation) = rotation {
            environment["rotation"] = rotation;
        }
        self.with_environments(vec![environment], finalized)
    }

    /// `team/bot` with `environments` as its spec lists them.
    fn with_environments(self, environments: Vec<Value>, finalized: bool) -> Scenario {
        let finalizers = match finalized {
            true => json!([keyguard_operator::labels::FINALIZER]),
            false => json!(null),
        };
        self.api.seed(
            CREDENTIAL,
            json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
                "metadata": {"name": "bot", "finalizers": finalizers},
                "spec": {"environments": environments}}),
        );
        self
    }

    fn credential(&self) -> TwitterCredential {
        serde_json::from_value(self.api.get(CREDENTIAL).expect("team/bot exists")).unwrap()
    }

    /// Reconciles `team/bot` as the apiserver holds it now, with caches
    /// that saw every object (as the watches would have by then).
    async fn reconcile(&self) {
        self.fill_caches();
        let tc = Arc::new(self.credential());
        keyguard_operator::reconcile::reconcile(tc, self.ctx.clone())
            .await
            .expect("the reconcile succeeds");
    }

    /// The operator's caches, as its watches would hold them: its own
    /// Secrets, Roles and RoleBindings (by the managed-by label) and every
    /// TwitterCredential and namespace, each slimmed as the watches do.
    fn fill_caches(&self) {
        let managed = |o: &Value| o["metadata"]["labels"][MANAGED_BY.0] == MANAGED_BY.1;
        let owned = |plural: &str| self.api.objects(plural).into_iter().filter(managed);
        let stores = Stores {
            credentials: credential_store(self.api.objects("twittercredentials")),
            namespaces: store_of(
                self.api.objects("namespaces"),
                caches::slim_namespace,
                caches::no_key,
            ),
            secrets: Scoped(
                [(
                    None,
                    store_of(owned("secrets"), caches::slim_secret, caches::minted_from),
                )]
                .into(),
            ),
            roles: Scoped(
                [(
                    None,
                    store_of(owned("roles"), caches::slim_role, caches::no_key),
                )]
                .into(),
            ),
            bindings: Scoped(
                [(
                    None,
                    store_of(owned("rolebindings"), caches::slim_binding, caches::no_key),
                )]
                .into(),
            ),
        };
        self.ctx.caches.set(Some(Arc::new(stores)));
    }

    /// The environment condition `type_` as `(status, reason)`.
    fn condition(&self, type_: &str) -> Option<(String, String)> {
        let status = serde_json::to_value(self.credential().status?).unwrap();
        let conditions = status["environments"][0]["conditions"].as_array()?.clone();
        let found = conditions.into_iter().find(|c| c["type"] == type_)?;
        Some((
            found["status"].as_str()?.to_string(),
            found["reason"].as_str()?.to_string(),
        ))
    }

    /// Where `event` (a request, or an X API call as `X METHOD path`) is on
    /// the timeline; panics with the timeline when it is not there.
    fn position(&self, event: &str) -> usize {
        let timeline = self.api.timeline();
        timeline
            .iter()
            .position(|w| w == event)
            .unwrap_or_else(|| panic!("no `{event}` on the timeline: {timeline:#?}"))
    }

    fn wrote(&self, write: &str) -> bool {
        self.api.writes().iter().any(|w| w == write)
    }

    fn wrote_starting(&self, prefix: &str) -> bool {
        self.api.writes().iter().any(|w| w.starts_with(prefix))
    }
}

/// A listed store of `objects`, each slimmed by `slim`, held compact as
/// the watches hold them.
fn store_of<K>(
    objects: impl IntoIterator<Item = Value>,
    slim: fn(&mut K),
    key: fn(&K) -> Option<String>,
) -> CacheStore<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + 'static,
{
    let (reader, mut writer) = cache_store();
    let pack = |o: &K| caches::packed(o, key);
    writer.apply(&watcher::Event::Init, pack);
    for object in objects {
        let mut object: K = serde_json::from_value(object).expect("a stored object parses");
        slim(&mut object);
        writer.apply(&watcher::Event::InitApply(object), pack);
    }
    writer.apply(&watcher::Event::InitDone, pack);
    reader
}

/// An environment projecting `keys` from `bot-keys` into `team/<target>`,
/// which ServiceAccount `reader` may read.
fn environment(name: &str, target: &str, keys: &[&str]) -> Value {
    json!({"name": name, "source": {"secretRef": {"name": "bot-keys"}},
        "target": {"secretName": target, "keys": keys},
        "access": {"permission": "read", "serviceAccounts": ["reader"]}})
}

/// A listed store of the TwitterCredentials, as the controller holds them.
fn credential_store(objects: impl IntoIterator<Item = Value>) -> Store<StoredCredential> {
    let (reader, mut writer) = reflector::store::<StoredCredential>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for object in objects {
        let object = serde_json::from_value(object).expect("a stored resource parses");
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// Asserts these requests and X API calls happened in this order (others
/// may come between).
macro_rules! assert_in_order {
    ($scenario:expr, $($write:expr),+ $(,)?) => {{
        let positions = [$($scenario.position($write)),+];
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "out of order: {:?} at {positions:?} in {:#?}",
            [$($write.to_string()),+],
            $scenario.api.timeline()
        );
    }};
}

#[tokio::test]
async fn a_new_resource_gets_its_finalizer_before_anything_is_written() {
    let s = Scenario::new()
        .with_source()
        .with_credential(&["apiKey"], None, false);
    s.reconcile().await;
    assert_eq!(
        s.api.writes(),
        vec!["PATCH twittercredentials team/bot"],
        "only the finalizer, so a deletion can never leave objects behind"
    );
    assert_eq!(
        s.credential().metadata.finalizers,
        Some(vec![keyguard_operator::labels::FINALIZER.to_string()])
    );
    assert!(s.x.calls().is_empty());
}

#[tokio::test]
async fn a_sync_creates_the_secret_then_the_access_to_it_then_status() {
    let s = Scenario::new()
        .with_source()
        .with_credential(&["apiKey", "apiKeySecret"], None, true);
    s.reconcile().await;
    assert_in_order!(
        s,
        "POST secrets team/out",
        "POST roles team/keyguard-read-out",
        "POST rolebindings team/keyguard-read-out",
        "PATCH twittercredentials team/bot/status",
    );
    let target = s.api.get(TARGET).expect("the target Secret");
    let value = |key: &str| {
        use base64::Engine;
        let text = target["data"][key].as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    };
    assert_eq!(value("apiKey"), API_KEY.as_bytes());
    assert_eq!(value("apiKeySecret"), API_KEY_SECRET.as_bytes());
    assert_eq!(s.condition("Synced").unwrap().0, "True");
}

#[tokio::test]
async fn every_environment_gets_its_credentials_before_any_is_verified() {
    let s = Scenario::new().with_source().with_environments(
        vec![
            environment("prod", "out", &["bearerToken"]),
            environment("dev", "out-dev", &["apiKey", "apiKeySecret"]),
        ],
        true,
    );
    s.reconcile().await;
    // The first environment's verification (its bearer token and the
    // source's access token checked at X) does not hold up the second
    // one's new credentials, readable once their RoleBinding exists.
    assert_in_order!(
        s,
        "POST secrets team/out",
        "POST rolebindings team/keyguard-read-out-dev",
        "X GET /1.1/application/rate_limit_status.json",
        "PATCH twittercredentials team/bot/status",
    );
    assert_in_order!(
        s,
        "POST rolebindings team/keyguard-read-out-dev",
        "X GET /1.1/account/verify_credentials.json",
    );
    assert_eq!(s.condition("Verified").unwrap().0, "True");
}

#[tokio::test]
async fn a_rotated_bearer_token_restarts_workloads_before_anything_is_verified() {
    let mut prod = environment("prod", "out", &["bearerToken"]);
    prod["rotation"] = json!({"bearerToken": {"every": "720h"}});
    prod["restartTargets"] = json!([{"kind": "Deployment", "name": "app"}]);
    let s = Scenario::new()
        .with_source()
        .with_environments(vec![prod], true);
    s.reconcile().await;
    // The workload appears; then a person asks for a rotation now.
    s.api.seed(
        "/apis/apps/v1/namespaces/team/deployments/app",
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
            "spec": {"selector": {"matchLabels": {"app": "bot"}},
                "template": {"metadata": {"labels": {"app": "bot"}},
                    "spec": {"containers": [{"name": "bot", "image": "bot"}]}}}}),
    );
    let mut tc = s.api.get(CREDENTIAL).unwrap();
    tc["metadata"]["annotations"] = json!({"keyguard.dev/rotate-now": "ticket-1"});
    s.api.seed(CREDENTIAL, tc);
    s.api.clear_log();
    s.reconcile().await;
    // The old token is dead from the invalidation until the workload
    // restarts: verification's X calls wait until after. (Rotation checks
    // the new token once before projecting it: that call comes first.)
    assert_in_order!(
        s,
        "X POST /oauth2/invalidate_token",
        "PUT secrets team/out",
        "PATCH deployments team/app",
        "X GET /1.1/account/verify_credentials.json",
    );
    let timeline = s.api.timeline();
    let checked = "X GET /1.1/application/rate_limit_status.json";
    let last_check = timeline.iter().rposition(|e| e == checked);
    assert!(
        last_check > Some(s.position("PATCH deployments team/app")),
        "the new bearer token verified after the restart: {timeline:#?}"
    );
}

#[tokio::test]
async fn a_second_reconcile_with_nothing_changed_writes_nothing() {
    let s = Scenario::new()
        .with_source()
        .with_credential(&["apiKey", "apiKeySecret"], None, true);
    s.reconcile().await;
    s.api.clear_log();
    s.reconcile().await;
    assert_eq!(s.api.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn the_controller_reads_its_cached_resource_and_reads_afresh_what_does_not_read_back() {
    use keyguard_operator::controller::reconcile_stored;
    let s = Scenario::new()
        .with_source()
        .with_credential(&["apiKey"], None, true);
    s.reconcile().await;
    let get = "GET twittercredentials team/bot";
    for (what, stored, reads) in [
        ("cached whole", StoredCredential::of(s.credential()), false),
        (
            "status does not read back",
            StoredCredential::with_unreadable_status(s.credential()),
            true,
        ),
    ] {
        s.fill_caches();
        s.api.clear_log();
        reconcile_stored(Arc::new(stored), s.ctx.clone())
            .await
            .expect("the reconcile succeeds");
        let timeline = s.api.timeline();
        assert_eq!(
            timeline.iter().any(|c| c == get),
            reads,
            "{what}: {timeline:#?}"
        );
        assert_eq!(
            s.api.writes(),
            Vec::<String>::new(),
            "{what}: nothing changed"
        );
    }
}

#[tokio::test]
async fn a_missing_source_is_a_condition_and_no_target_is_written() {
    let s = Scenario::new().with_credential(&["apiKey"], None, true);
    s.reconcile().await;
    assert!(!s.wrote("POST secrets team/out"), "{:#?}", s.api.writes());
    assert!(!s.wrote("POST roles team/keyguard-read-out"));
    let (status, reason) = s.condition("Synced").expect("a Synced condition");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SourceNotFound")
    );
    assert!(
        s.wrote_starting("POST events team/bot."),
        "a Warning Event: {:#?}",
        s.api.writes()
    );
}

#[tokio::test]
async fn a_target_that_cannot_be_written_gets_no_access_granted_to_it() {
    let s = Scenario::new()
        .with_source()
        .with_credential(&["apiKey", "apiKeySecret"], None, true);
    // A transient error is retried once within the reconcile: both fail.
    for _ in 0..2 {
        s.api.fail_next(Method::POST, "secrets team/out", 500);
    }
    s.reconcile().await;
    assert!(
        !s.wrote("POST roles team/keyguard-read-out"),
        "{:#?}",
        s.api.writes()
    );
    assert!(!s.wrote("POST rolebindings team/keyguard-read-out"));
    assert_eq!(s.condition("Synced").unwrap().0, "False");
}

#[tokio::test]
async fn a_bearer_rotation_records_each_step_before_x_takes_it() {
    let every_30_days = json!({"bearerToken": {"every": "720h"}});
    let s =
        Scenario::new()
            .with_source()
            .with_credential(&["bearerToken"], Some(every_30_days), true);
    s.reconcile().await;
    let state = {
        let tc = s.credential();
        keyguard_operator::state_record::state_name(&tc, &tc.spec.environments[0])
    };
    assert_in_order!(
        s,
        "X POST /oauth2/token",
        &format!("POST secrets team/{state}"),
        "POST secrets team/out",
    );
    assert_eq!(s.condition("Synced").unwrap().0, "True");

    // A person asks for a rotation now; the state record cannot be written.
    let mut tc = s.api.get(CREDENTIAL).unwrap();
    tc["metadata"]["annotations"] = json!({"keyguard.dev/rotate-now": "ticket-1"});
    s.api.seed(CREDENTIAL, tc);
    let record = format!("PUT secrets team/{state}");
    s.api
        .fail_next(Method::PUT, &format!("secrets team/{state}"), 500);
    s.api.clear_log();
    s.reconcile().await;
    assert!(
        !s.x.calls().contains(&"POST /oauth2/invalidate_token"),
        "X invalidated the token though recording that step failed: {:#?}",
        s.api.timeline()
    );
    assert!(!s.wrote("PUT secrets team/out"));

    // The next reconcile can write it: each step is recorded before X
    // takes it, and the new token lands after X minted it.
    s.api.clear_log();
    s.reconcile().await;
    assert_in_order!(
        s,
        &record,
        "X POST /oauth2/invalidate_token",
        "X POST /oauth2/token",
        "PUT secrets team/out",
    );
    let timeline = s.api.timeline();
    let invalidated = s.position("X POST /oauth2/invalidate_token");
    let minted = s.position("X POST /oauth2/token");
    let recorded_between = timeline[invalidated..minted].iter().any(|e| e == &record);
    assert!(
        recorded_between,
        "the minting step is recorded before the mint: {timeline:#?}"
    );
}

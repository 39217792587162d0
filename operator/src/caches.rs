//! What the watches last saw of the objects a sync compares against: the
//! operator's own Secrets, Roles and RoleBindings (selected by the
//! managed-by label, so memory grows with what the operator made, not with
//! the cluster) and the namespaces' metadata. A resync then reads them
//! without a GET.
//!
//! A cache can lag behind the apiserver by one event. Nothing is decided
//! on it alone that cannot be undone: every write still carries the
//! observed resourceVersion (a stale one loses with a 409), and a sync
//! that would refuse or tear down on cached evidence looks again with
//! fresh reads first (`sync/mod.rs`).
//!
//! Cached Secrets hold digests of their values, never the values: a sync
//! only compares them with what it would write. Cached objects are held
//! as their deflated JSON and read back on a lookup; state records carry
//! the app they mint from as a key the app-owner scan filters by
//! (`compact.rs`).
//!
//! A tenant may label any Secret of theirs as ours. Such objects are kept
//! as metadata with a marker when their content is large, and read with a
//! GET when needed, so they cannot make the operator hold their bulk.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::ByteString;
use kube::core::PartialObjectMeta;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cache_store::{cache_store, CacheStore, Found};
use crate::compact::Compact;
use crate::resource::TwitterCredential;
use crate::stored_credential::StoredCredential;

/// Content above this many bytes is not cached (see the module doc).
pub const LARGEST_CACHED: usize = 16 * 1024;

/// Marks a cached copy whose content was dropped; it is read afresh.
const TRIMMED: &str = "keyguard.dev/cache-trimmed";

/// The stores of the running controller instance, if any.
#[derive(Default)]
pub struct Caches {
    current: RwLock<Option<Arc<Stores>>>,
}

/// One controller instance's stores; they live and die with its watches.
pub struct Stores {
    /// Every TwitterCredential, as the controller sees them.
    pub credentials: kube::runtime::reflector::Store<StoredCredential>,
    pub namespaces: CacheStore<PartialObjectMeta<Namespace>>,
    pub secrets: Scoped<Secret>,
    pub roles: Scoped<Role>,
    pub bindings: Scoped<RoleBinding>,
}

/// The stores of one kind: the cluster's (key `None`), or one per
/// namespace in scope.
pub struct Scoped<K: Resource<DynamicType = ()> + 'static>(
    pub BTreeMap<Option<String>, CacheStore<K>>,
);

/// A cache's answer: `None` when it cannot tell (not listed yet, or the
/// object is out of its scope, trimmed, or does not read back),
/// `Some(None)` when the object does not exist as far as it knows.
pub type Cached<K> = Option<Option<K>>;

impl Caches {
    pub fn set(&self, stores: Option<Arc<Stores>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = stores;
    }

    pub fn get(&self) -> Option<Arc<Stores>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Stores {
    pub fn namespace(&self, name: &str) -> Cached<PartialObjectMeta<Namespace>> {
        lookup(&self.namespaces, None, name)
    }
}

impl<K> Scoped<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + 'static,
{
    pub fn get(&self, namespace: &str, name: &str) -> Cached<K> {
        let store = self
            .0
            .get(&None)
            .or_else(|| self.0.get(&Some(namespace.to_string())))?;
        lookup(store, Some(namespace), name)
    }
}

fn lookup<K>(store: &CacheStore<K>, namespace: Option<&str>, name: &str) -> Cached<K>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
{
    match store.get(namespace, name) {
        Found::Unknown => None,
        Found::Absent => Some(None),
        Found::Object(o) if o.annotations().contains_key(TRIMMED) => None,
        Found::Object(o) => Some(Some(o)),
    }
}

/// A cache of the objects `watch` reports, each slimmed by `slim` and held
/// compact with the key `key` gives it (`compact.rs`), and the objects as
/// they enter it (for triggers).
pub fn cached<K, W>(
    watch: W,
    slim: fn(&mut K),
    key: fn(&K) -> Option<String>,
) -> (
    CacheStore<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    W: Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
{
    let (reader, mut writer) = cache_store();
    let objects = watch
        .modify(slim)
        .map_ok(move |event| {
            writer.apply(&event, |o| packed(o, key));
            event
        })
        .touched_objects();
    (reader, objects)
}

/// An object's cache entry, carrying the key `key` gives it. An object
/// that does not serialize (none of the kinds cached does) is cached as
/// trimmed, so a lookup reads it afresh.
pub fn packed<K>(object: &K, key: fn(&K) -> Option<String>) -> Compact<K>
where
    K: Resource + Serialize + DeserializeOwned + Clone,
{
    compact(object).with_key(key(object))
}

/// The key of a state record, which `rotation/app_owner.rs` scans on every
/// state event: the app its bearer token is minted from.
pub fn minted_from(secret: &Secret) -> Option<String> {
    let part = secret.labels().get(crate::labels::PART);
    if part.map(String::as_str) != Some("state") {
        return None;
    }
    secret
        .annotations()
        .get(crate::labels::MINTED_FROM)
        .cloned()
}

/// For kinds no hot path scans.
pub fn no_key<K>(_: &K) -> Option<String> {
    None
}

fn compact<K: Resource + Serialize + DeserializeOwned + Clone>(object: &K) -> Compact<K> {
    Compact::of(object).unwrap_or_else(|| unreadable(object.meta()))
}

/// The entry of an object that did not serialize: its name, marked as
/// trimmed, so a lookup cannot tell and reads it afresh.
fn unreadable<K: Serialize + DeserializeOwned + Clone>(meta: &kube::api::ObjectMeta) -> Compact<K> {
    Compact::of_value(&serde_json::json!({"metadata": {
        "name": meta.name, "namespace": meta.namespace,
        "annotations": {TRIMMED: ""},
    }}))
}

/// Drops what no sync reads and what can be larger than the object itself.
pub fn slim<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
    if let Some(a) = object.meta_mut().annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

/// `slim`, and a Secret whose content exceeds [`LARGEST_CACHED`] keeps
/// only its name, labels and versions, marked as trimmed.
pub fn slim_secret(secret: &mut Secret) {
    slim(secret);
    let data: usize = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.0.len())
        .sum();
    let string_data: usize = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    trim_if(secret, data + string_data > LARGEST_CACHED, |s| {
        s.data = None;
        s.string_data = None;
    });
    if secret.annotations().contains_key(TRIMMED) {
        return;
    }
    // The operator never reads a value back from a Secret it wrote: it only
    // compares, so the cache holds digests, never values.
    if let Some(data) = secret.data.take() {
        secret.data = Some(digests(data));
        secret
            .annotations_mut()
            .insert(DIGESTED.to_string(), String::new());
    }
    // stringData is write-only: the apiserver never returns it.
    secret.string_data = None;
}

/// Marks a cached Secret whose data values are digests (`digests`).
const DIGESTED: &str = "keyguard.dev/cache-digested";

/// Pure: each value replaced by its SHA-256.
pub fn digests(data: BTreeMap<String, ByteString>) -> BTreeMap<String, ByteString> {
    data.into_iter()
        .map(|(k, v)| (k, ByteString(Sha256::digest(&v.0).to_vec())))
        .collect()
}

/// `secret` as read from the apiserver, without a digest marker that
/// someone who may write it put there.
pub fn without_digest_marker(mut secret: Secret) -> Secret {
    if let Some(a) = secret.metadata.annotations.as_mut() {
        a.remove(DIGESTED);
    }
    secret
}

/// Whether `secret` is a cached copy holding digests instead of values.
pub fn is_digested(secret: &Secret) -> bool {
    secret.annotations().contains_key(DIGESTED)
}

/// `slim`, and a Role with more rules than any the operator writes, or
/// rules larger than [`LARGEST_CACHED`] serialized (a few rules with
/// thousands of resourceNames), keeps only its metadata, marked as trimmed.
pub fn slim_role(role: &mut Role) {
    slim(role);
    let rules = role.rules.as_ref().map_or(0, Vec::len);
    let too_big = rules > 4 || serialized_len(&role.rules) > LARGEST_CACHED;
    trim_if(role, too_big, |r| r.rules = None);
}

/// `slim`, and a RoleBinding with more subjects than a cache should hold,
/// or subjects larger than [`LARGEST_CACHED`] serialized, keeps only its
/// metadata, marked as trimmed.
pub fn slim_binding(binding: &mut RoleBinding) {
    slim(binding);
    let subjects = binding.subjects.as_ref().map_or(0, Vec::len);
    let too_big = subjects > 64 || serialized_len(&binding.subjects) > LARGEST_CACHED;
    trim_if(binding, too_big, |b| b.subjects = None);
}

/// Namespaces are cached for their labels (the opt-in): annotations,
/// which nothing reads and an admin may fill, are dropped, and labels
/// larger than [`LARGEST_CACHED`] are trimmed.
pub fn slim_namespace(namespace: &mut PartialObjectMeta<Namespace>) {
    slim(namespace);
    namespace.metadata.annotations = None;
    trim_if(namespace, false, |_| {});
}

/// The longest annotation value of a TwitterCredential that is cached as
/// written; a longer `keyguard.dev/*` value is cached as its fingerprint.
pub const LONGEST_ANNOTATION: usize = 256;

/// TwitterCredentials are cached for their spec and the operator's own
/// annotations (`keyguard.dev/rotate-now`, `keyguard.dev/force-sync`):
/// other annotations are dropped, a longer value of ours is kept as its
/// fingerprint (a 250 kB request value then costs 23 bytes in memory and
/// in the state record that marks it handled), and labels larger than
/// [`LARGEST_CACHED`] are dropped. Whoever may annotate a resource cannot
/// make the operator hold their bulk.
pub fn slim_credential(tc: &mut TwitterCredential) {
    slim(tc);
    let meta = tc.meta_mut();
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|k, _| k.starts_with("keyguard.dev/"));
        for value in annotations.values_mut() {
            if value.len() > LONGEST_ANNOTATION {
                *value = keyguard_credentials::fingerprint(value.as_bytes()).to_string();
            }
        }
    }
    let labels: usize = meta
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if labels > LARGEST_CACHED {
        meta.labels = None;
    }
}

fn serialized_len<T: serde::Serialize>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

/// Drops the content, labels and annotations of an object that is
/// `too_big` or whose labels or annotations exceed [`LARGEST_CACHED`], and
/// marks it as trimmed. A trimmed Secret still triggers the resources that
/// read it as a source (by name); only triggering by owner labels is lost,
/// and none of the operator's own objects come near the limit.
fn trim_if<K: Resource>(object: &mut K, too_big: bool, drop_content: impl FnOnce(&mut K)) {
    let size = |map: &Option<std::collections::BTreeMap<String, String>>| -> usize {
        map.iter().flatten().map(|(k, v)| k.len() + v.len()).sum()
    };
    let meta = object.meta();
    if too_big || size(&meta.annotations) > LARGEST_CACHED || size(&meta.labels) > LARGEST_CACHED {
        drop_content(object);
        object.meta_mut().labels = None;
        object.meta_mut().annotations = Some([(TRIMMED.to_string(), String::new())].into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(data_bytes: usize, annotation_bytes: usize) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some("s".into());
        s.metadata.annotations = Some(
            [
                ("a".to_string(), "x".repeat(annotation_bytes)),
                (
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    "{}".into(),
                ),
            ]
            .into(),
        );
        s.data = Some([("k".to_string(), ByteString(vec![b'v'; data_bytes]))].into());
        s
    }

    #[test]
    fn secrets_keep_their_content_up_to_the_limit_and_are_trimmed_above_it() {
        // (data bytes, annotation bytes, label bytes, trimmed?)
        let cases = [
            (10, 10, 10, false),
            (LARGEST_CACHED - 100, 10, 10, false),
            (LARGEST_CACHED, 10, 10, true),
            (10, LARGEST_CACHED, 10, true),
            (10, 10, LARGEST_CACHED, true),
        ];
        for (data, annotations, labels, trimmed) in cases {
            let mut s = secret(data, annotations);
            s.metadata.labels = Some([("l".to_string(), "x".repeat(labels))].into());
            slim_secret(&mut s);
            assert_eq!(
                s.annotations().contains_key(TRIMMED),
                trimmed,
                "{data}/{annotations}"
            );
            assert_eq!(s.data.is_none(), trimmed, "{data}/{annotations}");
            if !trimmed {
                assert!(is_digested(&s));
                let cached = s.data.as_ref().unwrap()["k"].0.clone();
                assert_eq!(
                    cached,
                    Sha256::digest(vec![b'v'; data]).to_vec(),
                    "a digest, not the value"
                );
            }
            assert_eq!(s.metadata.labels.is_none(), trimmed, "{labels}");
            assert!(!s
                .annotations()
                .contains_key("kubectl.kubernetes.io/last-applied-configuration"));
            assert_eq!(s.metadata.name.as_deref(), Some("s"));
        }
    }

    #[test]
    fn roles_and_bindings_larger_than_ours_are_trimmed() {
        let rule = k8s_openapi::api::rbac::v1::PolicyRule::default();
        for (rules, trimmed) in [(1, false), (4, false), (5, true)] {
            let mut r = Role {
                rules: Some(vec![rule.clone(); rules]),
                ..Default::default()
            };
            slim_role(&mut r);
            assert_eq!(
                r.annotations().contains_key(TRIMMED),
                trimmed,
                "{rules} rules"
            );
        }
        let subject = k8s_openapi::api::rbac::v1::Subject::default();
        for (subjects, trimmed) in [(1, false), (64, false), (65, true)] {
            let mut b = RoleBinding {
                subjects: Some(vec![subject.clone(); subjects]),
                ..Default::default()
            };
            slim_binding(&mut b);
            assert_eq!(
                b.annotations().contains_key(TRIMMED),
                trimmed,
                "{subjects} subjects"
            );
        }
    }

    #[test]
    fn few_rules_or_subjects_of_great_size_are_trimmed_too() {
        let names: Vec<String> = (0..2_000).map(|i| format!("secret-{i}")).collect();
        let mut r = Role {
            rules: Some(vec![k8s_openapi::api::rbac::v1::PolicyRule {
                resource_names: Some(names.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        slim_role(&mut r);
        assert!(r.annotations().contains_key(TRIMMED));
        assert!(r.rules.is_none());
        // 64 subjects pass the count bound; 300-byte names make them 19 KiB.
        let subject = |name: &String| k8s_openapi::api::rbac::v1::Subject {
            name: format!("{name:x<300}"),
            ..Default::default()
        };
        let mut b = RoleBinding {
            subjects: Some(names[..64].iter().map(subject).collect()),
            ..Default::default()
        };
        slim_binding(&mut b);
        assert!(b.annotations().contains_key(TRIMMED));
    }

    #[test]
    fn a_credential_keeps_only_our_annotations_and_long_values_as_fingerprints() {
        let mut tc: TwitterCredential = serde_json::from_value(serde_json::json!({
            "apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": "bot", "namespace": "team",
                "labels": {"big": "x".repeat(LARGEST_CACHED)},
                "annotations": {
                    "team/notes": "n".repeat(200_000),
                    "keyguard.dev/force-sync": "1",
                    "keyguard.dev/rotate-now": "r".repeat(262_000),
                }},
            "spec": {"environments": []}
        }))
        .unwrap();
        slim_credential(&mut tc);
        let a = tc.annotations();
        assert_eq!(a.len(), 2, "{a:?}");
        assert_eq!(a["keyguard.dev/force-sync"], "1");
        let long = &a["keyguard.dev/rotate-now"];
        assert!(
            long.starts_with("sha256:") && long.len() <= LONGEST_ANNOTATION,
            "{long}"
        );
        let same = keyguard_credentials::fingerprint("r".repeat(262_000).as_bytes()).to_string();
        assert_eq!(long, &same, "the same request maps to the same value");
        assert!(tc.labels().is_empty());
    }

    #[test]
    fn namespaces_keep_labels_not_annotations() {
        let mut n: PartialObjectMeta<Namespace> = PartialObjectMeta {
            types: None,
            metadata: kube::api::ObjectMeta {
                name: Some("prod".into()),
                labels: Some(
                    [(
                        "keyguard.dev/allow-from-team".to_string(),
                        "true".to_string(),
                    )]
                    .into(),
                ),
                annotations: Some([("a".to_string(), "x".repeat(100_000))].into()),
                ..Default::default()
            },
            _phantom: Default::default(),
        };
        slim_namespace(&mut n);
        assert!(n.annotations().is_empty());
        assert_eq!(n.labels()["keyguard.dev/allow-from-team"], "true");
    }

    #[test]
    fn state_records_carry_the_app_they_mint_from_as_their_key() {
        let state = |part: &str, minted: Option<&str>| {
            let mut s = secret(1, 1);
            s.metadata.labels = Some([(crate::labels::PART.to_string(), part.into())].into());
            if let Some(app) = minted {
                s.annotations_mut()
                    .insert(crate::labels::MINTED_FROM.into(), app.into());
            }
            s
        };
        for (s, key) in [
            (state("state", Some("sha256:app")), Some("sha256:app")),
            (state("state", None), None),
            (state("other", Some("sha256:app")), None),
            (secret(1, 1), None),
        ] {
            let c = packed(&s, minted_from);
            assert_eq!(c.key(), key);
            assert_eq!(c.object(), Some(s));
        }
    }

    #[test]
    fn a_trimmed_or_unlisted_object_is_unknown_a_listed_absence_is_absent() {
        let (reader, mut writer) = cache_store::<Secret, std::hash::RandomState>();
        let scoped = Scoped([(None, reader.clone())].into());
        assert_eq!(scoped.get("ns", "s"), None, "not listed yet: unknown");
        let mut big = secret(LARGEST_CACHED, 0);
        big.metadata.namespace = Some("ns".into());
        big.metadata.name = Some("big".into());
        slim_secret(&mut big);
        let mut small = secret(1, 1);
        small.metadata.namespace = Some("ns".into());
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(big),
            watcher::Event::InitApply(small),
            watcher::Event::InitDone,
        ] {
            writer.apply(&event, |o| packed(o, no_key));
        }
        let mut broken = secret(1, 1);
        broken.metadata.namespace = Some("ns".into());
        broken.metadata.name = Some("broken".into());
        writer.apply(&watcher::Event::Apply(broken), |o| unreadable(o.meta()));
        assert_eq!(
            scoped.get("ns", "broken"),
            None,
            "did not serialize: unknown"
        );
        assert_eq!(scoped.get("ns", "big"), None, "trimmed: unknown");
        assert!(matches!(scoped.get("ns", "s"), Some(Some(_))));
        assert_eq!(scoped.get("ns", "gone"), Some(None));
        assert_eq!(scoped.get("other", "s"), Some(None));
        let per_namespace = Scoped([(Some("ns".to_string()), reader)].into());
        assert_eq!(
            per_namespace.get("other", "s"),
            None,
            "out of scope: unknown"
        );
    }
}

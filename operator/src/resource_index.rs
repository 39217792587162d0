//! What every TwitterCredential reads and holds, indexed: which resources
//! read a source Secret, and which environments hold a source credential.
//! Kept from the same watch events as the controller's cache of
//! TwitterCredentials (a relist builds a fresh index and swaps it in when
//! the list is complete, so a resource that vanished meanwhile goes too).
//!
//! Without it, each Secret event, each change of what a resource holds
//! and each reconcile's key-reuse check walked every resource of the
//! cluster: quadratic in the resources, which the growth bench measured
//! (3,000 resources took five times as long to sync as 1,000, and `perf`
//! put most of the operator's time in those walks).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::RwLock;

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;

use crate::conditions::ConditionType;
use crate::resource::TwitterCredential;

/// A source credential, as `(key, fingerprint)`.
pub type Credential = (String, String);

/// One environment's source credentials, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub namespace: String,
    pub resource: String,
    pub environment: String,
    pub credentials: Vec<Credential>,
}

/// What the index keeps of one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Indexed {
    namespace: String,
    name: String,
    /// Names of the source Secrets its environments read.
    sources: Vec<String>,
    /// Each environment's source credentials, from its status.
    environments: Vec<(String, Vec<Credential>)>,
    /// Whether an environment carries the `CredentialShared` warning.
    warned: bool,
}

impl Indexed {
    fn of(tc: &TwitterCredential) -> Indexed {
        let statuses = tc.status.iter().flat_map(|s| &s.environments);
        Indexed {
            namespace: tc.namespace().unwrap_or_default(),
            name: tc.name_any(),
            sources: tc
                .spec
                .environments
                .iter()
                .map(|e| e.source.secret_ref.name.clone())
                .collect(),
            environments: statuses
                .clone()
                .map(|e| {
                    let held = e
                        .source_credentials
                        .iter()
                        .map(|c| (c.key.clone(), c.fingerprint.clone()))
                        .collect();
                    (e.name.clone(), held)
                })
                .collect(),
            warned: statuses.into_iter().any(|e| {
                crate::conditions::is_true(&e.conditions, ConditionType::CredentialShared)
            }),
        }
    }

    fn credentials(&self) -> HashSet<&Credential> {
        self.environments.iter().flat_map(|(_, c)| c).collect()
    }

    fn holds(&self, credential: &Credential) -> bool {
        self.environments
            .iter()
            .any(|(_, held)| held.contains(credential))
    }

    fn reads(&self, namespace: &str, source: &str) -> bool {
        self.namespace == namespace && self.sources.iter().any(|s| s == source)
    }

    fn reference(&self) -> ObjectRef<TwitterCredential> {
        ObjectRef::new(&self.name).within(&self.namespace)
    }
}

/// A resource's number in a snapshot: the sets below hold these instead
/// of uids (36 bytes each, and a hash set per key: the index had cost
/// 3.5 KB per resource, docs/benchmarks.md "Memory, sixth pass").
type Slot = u64;

/// A key of the tables below: its hash under the snapshot's random key,
/// not a copy of its strings (a credential's key and fingerprint cost
/// ~150 bytes a copy; docs/benchmarks.md "Memory, seventh pass"). Every
/// answer is checked against the resource's own strings, so a collision
/// costs a look, never a wrong answer, and the random key keeps a tenant
/// from aiming one.
type Hashed = u64;

/// The resources of one complete list (and the events after it).
#[derive(Debug, Default)]
struct Snapshot<S = RandomState> {
    slots: HashMap<Box<str>, Slot>,
    resources: HashMap<Slot, Indexed>,
    /// By `(namespace, source Secret)`.
    readers: HashMap<Hashed, Vec<Slot>>,
    /// By credential.
    holders: HashMap<Hashed, Vec<Slot>>,
    next: Slot,
    keys: S,
}

impl<S: BuildHasher> Snapshot<S> {
    fn insert(&mut self, uid: &str, indexed: Indexed) {
        self.remove(uid);
        let slot = self.next;
        self.next += 1;
        for source in &indexed.sources {
            let key = self.reader_key(&indexed.namespace, source);
            remember(&mut self.readers, key, slot);
        }
        for credential in indexed.credentials() {
            let key = self.keys.hash_one(credential);
            remember(&mut self.holders, key, slot);
        }
        self.slots.insert(uid.into(), slot);
        self.resources.insert(slot, indexed);
    }

    fn remove(&mut self, uid: &str) {
        let Some(slot) = self.slots.remove(uid) else {
            return;
        };
        let Some(old) = self.resources.remove(&slot) else {
            return;
        };
        for source in &old.sources {
            let key = self.reader_key(&old.namespace, source);
            forget(&mut self.readers, key, slot);
        }
        for credential in old.credentials() {
            forget(&mut self.holders, self.keys.hash_one(credential), slot);
        }
    }

    fn reader_key(&self, namespace: &str, source: &str) -> Hashed {
        self.keys.hash_one((namespace, source))
    }

    /// The slots under `key` in `table` (a superset, on a collision).
    fn under<'a>(
        &'a self,
        table: &'a HashMap<Hashed, Vec<Slot>>,
        key: Hashed,
    ) -> impl Iterator<Item = (Slot, &'a Indexed)> + 'a {
        table
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|slot| Some((*slot, self.resources.get(slot)?)))
    }

    /// The resources holding `credential`, but the one in `except`.
    fn holders_of<'a>(
        &'a self,
        credential: &'a Credential,
        except: Option<Slot>,
    ) -> impl Iterator<Item = (Slot, &'a Indexed)> + 'a {
        self.under(&self.holders, self.keys.hash_one(credential))
            .filter(move |(slot, r)| Some(*slot) != except && r.holds(credential))
    }

    /// The slot of `uid`, if indexed.
    fn slot(&self, uid: &str) -> Option<Slot> {
        self.slots.get(uid).copied()
    }
}

fn remember<K: Hash + Eq>(map: &mut HashMap<K, Vec<Slot>>, key: K, slot: Slot) {
    let slots = map.entry(key).or_default();
    if !slots.contains(&slot) {
        slots.push(slot);
    }
}

fn forget<K: Hash + Eq>(map: &mut HashMap<K, Vec<Slot>>, key: K, slot: Slot) {
    if let Some(slots) = map.get_mut(&key) {
        slots.retain(|s| *s != slot);
        if slots.is_empty() {
            map.remove(&key);
        }
    }
}

#[derive(Debug, Default)]
struct Indexes<S> {
    live: Snapshot<S>,
    /// A relist in progress.
    listing: Snapshot<S>,
}

/// The index; cheap to query, updated by [`Index::observe`].
pub type ResourceIndex = Index<RandomState>;

/// The index, its keys hashed by `S`: random keys but in tests.
#[derive(Debug, Default)]
pub struct Index<S> {
    inner: RwLock<Indexes<S>>,
}

impl<S: BuildHasher + Default> Index<S> {
    /// Takes in one event of the controller's watch of TwitterCredentials.
    pub fn observe(&self, event: &watcher::Event<TwitterCredential>) {
        let uid = |tc: &TwitterCredential| tc.uid().unwrap_or_default();
        let mut i = self.inner.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Init => i.listing = Snapshot::default(),
            watcher::Event::InitApply(tc) => i.listing.insert(&uid(tc), Indexed::of(tc)),
            watcher::Event::InitDone => i.live = std::mem::take(&mut i.listing),
            watcher::Event::Apply(tc) => i.live.insert(&uid(tc), Indexed::of(tc)),
            watcher::Event::Delete(tc) => i.live.remove(&uid(tc)),
        }
    }

    /// What the resource with `uid` holds as of the last complete list
    /// and the events since; empty when it is not indexed.
    pub fn held_by(&self, uid: &str) -> HashSet<Credential> {
        let i = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let held = i
            .live
            .slot(uid)
            .and_then(|slot| i.live.resources.get(&slot));
        held.map(|r| r.credentials().into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Resources with an environment reading Secret `name` in `namespace`.
    pub fn reading(&self, namespace: &str, name: &str) -> Vec<ObjectRef<TwitterCredential>> {
        let i = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let key = i.live.reader_key(namespace, name);
        i.live
            .under(&i.live.readers, key)
            .filter(|(_, r)| r.reads(namespace, name))
            .map(|(_, r)| r.reference())
            .collect()
    }

    /// The environments of resources other than `except` (a uid) holding
    /// one of `credentials`.
    pub fn holding(&self, credentials: &HashSet<Credential>, except: &str) -> Vec<Holder> {
        let i = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let except = i.live.slot(except);
        let holders: HashMap<Slot, &Indexed> = credentials
            .iter()
            .flat_map(|c| i.live.holders_of(c, except))
            .collect();
        let mut found = Vec::new();
        for r in holders.into_values() {
            for (environment, held) in &r.environments {
                if held.iter().any(|c| credentials.contains(c)) {
                    found.push(Holder {
                        namespace: r.namespace.clone(),
                        resource: r.name.clone(),
                        environment: environment.clone(),
                        credentials: held.clone(),
                    });
                }
            }
        }
        found
    }

    /// Other resources whose `CredentialShared` a change of `changed`
    /// (which held `before` and holds `now`) turns; see [`turned`].
    pub fn turned_by(
        &self,
        changed: &str,
        now: &HashSet<Credential>,
        before: &HashSet<Credential>,
    ) -> Vec<ObjectRef<TwitterCredential>> {
        let i = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let changed = i.live.slot(changed);
        // `turned` asks only whether more than one holds it: two suffice.
        let others_holding = |c: &Credential| i.live.holders_of(c, changed).take(2).count();
        let candidates: HashMap<Slot, &Indexed> = now
            .iter()
            .chain(before)
            .flat_map(|c| i.live.holders_of(c, changed))
            .collect();
        candidates
            .into_values()
            .filter(|r| turned(&r.credentials(), r.warned, now, before, &others_holding))
            .map(Indexed::reference)
            .collect()
    }
}

/// Pure: whether another resource holding `theirs` (warned or not) must be
/// reconciled after a resource changed from `before` to `now`: one not
/// warned that has come to share one of its credentials (newly held), and
/// one warned that shared one it no longer holds and shares nothing with
/// anyone else (`others_holding` counts the holders of a credential other
/// than the changed resource, or at least two of them). Not the others,
/// whose condition stays (their message's examples are brought up to date
/// at their next reconcile): with one key shared by a thousand resources,
/// a change of one must not reconcile all of them, nor may a resource that
/// keeps changing something else (a token it rotates, its labels while a
/// finalizer holds its deletion) reconcile those that share on purpose.
pub fn turned(
    theirs: &HashSet<&Credential>,
    warned: bool,
    now: &HashSet<Credential>,
    before: &HashSet<Credential>,
    others_holding: &dyn Fn(&Credential) -> usize,
) -> bool {
    let shares_now = theirs.iter().any(|c| now.contains(*c));
    if !warned {
        return theirs
            .iter()
            .any(|c| now.contains(*c) && !before.contains(*c));
    }
    let lost = theirs
        .iter()
        .any(|c| before.contains(*c) && !now.contains(*c));
    let still = shares_now || theirs.iter().any(|c| others_holding(c) > 1);
    lost && !still
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name` in `team`, reading Secret `source`, its environment `prod`
    /// holding `apiKey` with `fingerprint`, warned or not.
    fn resource(
        name: &str,
        source: &str,
        fingerprint: Option<&str>,
        warned: bool,
    ) -> TwitterCredential {
        let mut v = serde_json::json!({"apiVersion": "keyguard.dev/v1alpha1", "kind": "TwitterCredential",
            "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}")},
            "spec": {"environments": [{"name": "prod", "source": {"secretRef": {"name": source}},
                "target": {"secretName": "out", "keys": ["apiKey"]}}]}});
        if let Some(f) = fingerprint {
            let status = if warned { "True" } else { "False" };
            v["status"] = serde_json::json!({"environments": [{"name": "prod", "revision": 1,
                "conditions": [{"type": "CredentialShared", "status": status, "reason": "x", "message": "",
                    "lastTransitionTime": "2026-12-04T00:00:00Z"}],
                "sourceCredentials": [{"key": "apiKey", "fingerprint": f, "since": "2026-12-04T00:00:00Z"}]}]});
        }
        serde_json::from_value(v).unwrap()
    }

    fn names(refs: Vec<ObjectRef<TwitterCredential>>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    fn key(fingerprint: &str) -> HashSet<Credential> {
        HashSet::from([("apiKey".to_string(), fingerprint.to_string())])
    }

    #[test]
    fn readers_follow_applies_deletes_and_relists() {
        use watcher::Event::*;
        let index = ResourceIndex::default();
        index.observe(&Apply(resource("a", "keys", None, false)));
        index.observe(&Apply(resource("b", "keys", None, false)));
        index.observe(&Apply(resource("c", "other", None, false)));
        assert_eq!(names(index.reading("team", "keys")), ["a", "b"]);
        assert!(
            index.reading("elsewhere", "keys").is_empty(),
            "by namespace"
        );
        index.observe(&Apply(resource("a", "moved", None, false)));
        assert_eq!(
            names(index.reading("team", "keys")),
            ["b"],
            "a changed source"
        );
        index.observe(&Delete(resource("b", "keys", None, false)));
        assert!(index.reading("team", "keys").is_empty());
        // A relist in which "c" vanished: until it completes, the old answer.
        index.observe(&Init);
        index.observe(&InitApply(resource("a", "moved", None, false)));
        assert_eq!(names(index.reading("team", "other")), ["c"]);
        index.observe(&InitDone);
        assert!(
            index.reading("team", "other").is_empty(),
            "vanished during the relist"
        );
        assert_eq!(names(index.reading("team", "moved")), ["a"]);
    }

    #[test]
    fn holders_are_the_environments_of_others_holding_a_credential() {
        use watcher::Event::*;
        let index = ResourceIndex::default();
        for (name, f) in [("a", "sha256:1"), ("b", "sha256:1"), ("c", "sha256:2")] {
            index.observe(&Apply(resource(name, "keys", Some(f), false)));
        }
        let holders = index.holding(&key("sha256:1"), "uid-a");
        assert_eq!(
            holders,
            [Holder {
                namespace: "team".into(),
                resource: "b".into(),
                environment: "prod".into(),
                credentials: vec![("apiKey".into(), "sha256:1".into())],
            }]
        );
        assert!(index.holding(&key("sha256:9"), "uid-a").is_empty());
        index.observe(&Apply(resource("b", "keys", Some("sha256:2"), false)));
        assert!(
            index.holding(&key("sha256:1"), "uid-a").is_empty(),
            "b's key changed"
        );
    }

    #[test]
    fn colliding_keys_never_change_an_answer() {
        use watcher::Event::*;
        // Every key hashes alike: each table holds one entry, and every
        // answer rests on the check against the strings.
        let index = Index::<crate::cache_store::Colliding>::default();
        for (name, source, f, warned) in [
            ("a", "keys", "sha256:1", false),
            ("b", "keys", "sha256:1", true),
            ("c", "other", "sha256:2", true),
        ] {
            index.observe(&Apply(resource(name, source, Some(f), warned)));
        }
        assert_eq!(names(index.reading("team", "keys")), ["a", "b"]);
        assert_eq!(names(index.reading("team", "other")), ["c"]);
        assert!(index.reading("team", "none").is_empty());
        let holders = index.holding(&key("sha256:1"), "uid-a");
        assert_eq!(holders.len(), 1, "{holders:?}");
        assert_eq!(holders[0].resource, "b");
        assert!(index.holding(&key("sha256:9"), "uid-a").is_empty());
        // c alone holds sha256:2 and b shares sha256:1 with a: a change
        // of a to sha256:3 leaves b sharing nothing, so b turns; c, which
        // only collides, does not.
        let turned = index.turned_by("uid-a", &key("sha256:3"), &key("sha256:1"));
        assert_eq!(names(turned), ["b"]);
    }

    #[test]
    fn a_changed_key_reconciles_only_those_whose_warning_it_turns() {
        use watcher::Event::*;
        let index = ResourceIndex::default();
        for (name, f, warned) in [
            // Still shares sha256:a with "also-a": stays warned.
            ("still-shared", "sha256:a", true),
            ("also-a", "sha256:a", true),
            // Now shares sha256:b: warns.
            ("newly-shared", "sha256:b", false),
            ("unrelated", "sha256:z", false),
            ("changed", "sha256:b", true),
        ] {
            index.observe(&Apply(resource(name, "keys", Some(f), warned)));
        }
        let turned = index.turned_by("uid-changed", &key("sha256:b"), &key("sha256:a"));
        assert_eq!(names(turned), ["newly-shared"]);
        // The last of two holders of sha256:a changes its key: the other clears.
        index.observe(&Delete(resource("still-shared", "keys", None, false)));
        index.observe(&Apply(resource("also-a", "keys", Some("sha256:a"), true)));
        index.observe(&Delete(resource("newly-shared", "keys", None, false)));
        let turned = index.turned_by("uid-changed", &key("sha256:b"), &key("sha256:a"));
        assert_eq!(names(turned), ["also-a"]);
    }
}

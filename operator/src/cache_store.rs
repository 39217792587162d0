//! The table behind each cache of `caches.rs`: compact objects
//! (`compact.rs`) by namespace and name, filled from one watch. It keeps
//! the reflector store's promises (a relist is built aside and swapped in
//! whole; a reader can tell whether the first list is done) at a fraction
//! of its memory per entry. kube-runtime's store keys each object by an
//! owned `ObjectRef` (two strings and four `Option`s, ~100 bytes a slot,
//! plus their heap) and holds it behind an `Arc`, ~300 bytes before the
//! object itself (docs/benchmarks.md, "Memory, eighth pass"); here a slot
//! is a 64-bit hash of namespace and name under the table's random key,
//! a second hash under another, and the object.
//!
//! Two names whose first hashes meet make their slot "collided": it
//! answers "cannot tell" (a GET follows) until the next relist draws new
//! keys. Every object read back is checked against the name asked for, so
//! a hash can only cost a read, never give the wrong object.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

use kube::runtime::watcher;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::compact::Compact;

/// The reading side; clones share the table. `S` draws the hash keys
/// (tests use one that makes names collide).
pub struct CacheStore<K, S = RandomState> {
    table: Arc<RwLock<Option<Table<K, S>>>>,
}

/// The writing side, fed the watch's events in order.
pub struct CacheWriter<K, S = RandomState> {
    table: Arc<RwLock<Option<Table<K, S>>>>,
    /// A relist in progress, swapped in at its end.
    listing: Option<Table<K, S>>,
}

/// A new, empty cache: not ready until the watch's first list is done.
pub fn cache_store<K, S>() -> (CacheStore<K, S>, CacheWriter<K, S>) {
    let table = Arc::new(RwLock::new(None));
    let writer = CacheWriter {
        table: table.clone(),
        listing: None,
    };
    (CacheStore { table }, writer)
}

struct Table<K, S> {
    slots: HashMap<u64, Slot<K>>,
    keys: (S, S),
    collided: usize,
}

enum Slot<K> {
    Object { check: u64, object: Compact<K> },
    Collided,
}

/// What the cache knows of one object.
#[derive(Debug, PartialEq)]
pub enum Found<K> {
    /// The first list is not done, or the slot collided, or the entry
    /// does not read back as the object asked for.
    Unknown,
    Absent,
    Object(K),
}

impl<K, S> Clone for CacheStore<K, S> {
    fn clone(&self) -> Self {
        CacheStore {
            table: self.table.clone(),
        }
    }
}

impl<K, S: BuildHasher + Default> Table<K, S> {
    fn new() -> Self {
        Table {
            slots: HashMap::new(),
            keys: (S::default(), S::default()),
            collided: 0,
        }
    }

    /// `None` when it cannot tell; `Some(None)` when absent.
    fn entry(&self, namespace: Option<&str>, name: &str) -> Option<Option<&Compact<K>>> {
        let slot = self.hashes(namespace, name);
        match self.slots.get(&slot.0) {
            None => Some(None),
            Some(Slot::Object { check, object }) if *check == slot.1 => Some(Some(object)),
            Some(_) => None,
        }
    }

    fn hashes(&self, namespace: Option<&str>, name: &str) -> (u64, u64) {
        let id = (namespace.unwrap_or_default(), name);
        (self.keys.0.hash_one(id), self.keys.1.hash_one(id))
    }

    fn insert(&mut self, (slot, check): (u64, u64), object: Compact<K>) {
        match self.slots.get_mut(&slot) {
            None => {
                self.slots.insert(slot, Slot::Object { check, object });
            }
            Some(Slot::Object { check: held, .. }) if *held != check => {
                self.slots.insert(slot, Slot::Collided);
                self.collided += 1;
            }
            Some(Slot::Object { object: held, .. }) => *held = object,
            Some(Slot::Collided) => {}
        }
    }

    fn remove(&mut self, (slot, check): (u64, u64)) {
        if let Some(Slot::Object { check: held, .. }) = self.slots.get(&slot) {
            if *held == check {
                self.slots.remove(&slot);
            }
        }
    }
}

impl<K, S> CacheStore<K, S>
where
    K: Resource + Serialize + DeserializeOwned,
    S: BuildHasher + Default,
{
    /// Whether the watch's first list is done.
    pub fn is_ready(&self) -> bool {
        self.read(|table| table.is_some())
    }

    /// The object `namespace`/`name` as the cache last saw it.
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Found<K> {
        let entry = self.read(|table| {
            let found = table.as_ref()?.entry(namespace, name)?;
            Some(found.cloned())
        });
        match entry {
            None => Found::Unknown,
            Some(None) => Found::Absent,
            Some(Some(compact)) => match compact.object() {
                Some(o) if is(&o, namespace, name) => Found::Object(o),
                _ => Found::Unknown,
            },
        }
    }

    /// Every entry carrying `key` (`Compact::with_key`); `None` while the
    /// cache cannot tell them all (not listed yet, or a slot collided).
    pub fn keyed(&self, key: &str) -> Option<Vec<Compact<K>>> {
        self.read(|table| {
            let table = table.as_ref().filter(|t| t.collided == 0)?;
            let matching = table.slots.values().filter_map(|slot| match slot {
                Slot::Object { object, .. } if object.key() == Some(key) => Some(object.clone()),
                _ => None,
            });
            Some(matching.collect())
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Option<Table<K, S>>) -> T) -> T {
        f(&self.table.read().unwrap_or_else(|p| p.into_inner()))
    }
}

fn is<K: Resource>(object: &K, namespace: Option<&str>, name: &str) -> bool {
    let meta = object.meta();
    meta.name.as_deref() == Some(name) && meta.namespace.as_deref() == namespace
}

impl<K: Resource, S: BuildHasher + Default> CacheWriter<K, S> {
    /// Takes in one watch event; `pack` makes an object's entry.
    pub fn apply(&mut self, event: &watcher::Event<K>, pack: impl Fn(&K) -> Compact<K>) {
        use watcher::Event;
        match event {
            Event::Init => self.listing = Some(Table::new()),
            Event::InitApply(o) => {
                let listing = self.listing.get_or_insert_with(Table::new);
                listing.insert(hashes(listing, o), pack(o));
            }
            Event::InitDone => {
                let listing = self.listing.take().unwrap_or_else(Table::new);
                *self.write() = Some(listing);
            }
            Event::Apply(o) => {
                let packed = pack(o);
                self.change(|t| t.insert(hashes(t, o), packed.clone()));
            }
            Event::Delete(o) => self.change(|t| t.remove(hashes(t, o))),
        }
    }

    /// Changes the live table (and a relist in progress, which a change
    /// seen during it must not be lost from; kube's watcher sends none
    /// then, so this is belt and braces).
    fn change(&mut self, mut f: impl FnMut(&mut Table<K, S>)) {
        if let Some(listing) = self.listing.as_mut() {
            f(listing);
        }
        if let Some(table) = self.write().as_mut() {
            f(table);
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Table<K, S>>> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn hashes<K: Resource, T, S: BuildHasher + Default>(table: &Table<T, S>, object: &K) -> (u64, u64) {
    let meta = object.meta();
    table.hashes(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Hash keys under which every key hashes alike (for tests of what a
/// collision does).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Colliding;

#[cfg(test)]
impl BuildHasher for Colliding {
    type Hasher = Constant;
    fn build_hasher(&self) -> Constant {
        Constant
    }
}

#[cfg(test)]
pub(crate) struct Constant;

#[cfg(test)]
impl std::hash::Hasher for Constant {
    fn finish(&self) -> u64 {
        7
    }
    fn write(&mut self, _: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    fn secret(namespace: &str, name: &str, value: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some(namespace.into());
        s.metadata.name = Some(name.into());
        s.metadata.labels = Some([("v".to_string(), value.to_string())].into());
        s
    }

    fn pack(s: &Secret) -> Compact<Secret> {
        let key = s.metadata.labels.as_ref().map(|l| l["v"].clone());
        Compact::of(s).unwrap().with_key(key)
    }

    fn listed(objects: &[Secret]) -> (CacheStore<Secret>, CacheWriter<Secret>) {
        let (store, mut writer) = cache_store();
        writer.apply(&watcher::Event::Init, pack);
        for o in objects {
            writer.apply(&watcher::Event::InitApply(o.clone()), pack);
        }
        writer.apply(&watcher::Event::InitDone, pack);
        (store, writer)
    }

    #[test]
    fn nothing_is_known_before_the_first_list_is_done() {
        let (store, mut writer) = cache_store::<Secret, RandomState>();
        writer.apply(&watcher::Event::Init, pack);
        writer.apply(&watcher::Event::InitApply(secret("a", "s", "1")), pack);
        assert!(!store.is_ready());
        assert_eq!(store.get(Some("a"), "s"), Found::Unknown);
        assert!(store.keyed("1").is_none());
        writer.apply(&watcher::Event::InitDone, pack);
        assert!(store.is_ready());
        assert_eq!(
            store.get(Some("a"), "s"),
            Found::Object(secret("a", "s", "1"))
        );
    }

    #[test]
    fn objects_are_found_by_namespace_and_name_and_deleted() {
        let (store, mut writer) = listed(&[secret("a", "s", "1"), secret("b", "s", "2")]);
        writer.apply(&watcher::Event::Apply(secret("a", "s", "3")), pack);
        writer.apply(&watcher::Event::Delete(secret("b", "s", "2")), pack);
        assert_eq!(
            store.get(Some("a"), "s"),
            Found::Object(secret("a", "s", "3"))
        );
        assert_eq!(store.get(Some("b"), "s"), Found::Absent);
        assert_eq!(store.get(None, "s"), Found::Absent);
        assert_eq!(store.get(Some("a"), "t"), Found::Absent);
    }

    #[test]
    fn a_relist_replaces_the_table_whole_and_keeps_changes_seen_during_it() {
        let (store, mut writer) = listed(&[secret("a", "gone", "1"), secret("a", "s", "1")]);
        writer.apply(&watcher::Event::Init, pack);
        writer.apply(&watcher::Event::InitApply(secret("a", "s", "2")), pack);
        assert_eq!(
            store.get(Some("a"), "gone"),
            Found::Object(secret("a", "gone", "1")),
            "the old table answers until the relist is done"
        );
        writer.apply(&watcher::Event::Apply(secret("a", "new", "3")), pack);
        writer.apply(&watcher::Event::InitDone, pack);
        assert_eq!(store.get(Some("a"), "gone"), Found::Absent);
        assert_eq!(
            store.get(Some("a"), "s"),
            Found::Object(secret("a", "s", "2"))
        );
        assert_eq!(
            store.get(Some("a"), "new"),
            Found::Object(secret("a", "new", "3"))
        );
    }

    #[test]
    fn entries_are_found_by_their_key() {
        let (store, _) = listed(&[
            secret("a", "s", "app"),
            secret("b", "t", "app"),
            secret("a", "u", "other"),
        ]);
        let mut names: Vec<String> = store
            .keyed("app")
            .unwrap()
            .iter()
            .map(|c| c.object().unwrap().metadata.name.unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["s", "t"]);
    }

    #[test]
    fn names_whose_hashes_meet_are_unknown_never_another_object() {
        // Both hashes equal: the entry reads back as the other object.
        let (store, mut writer) = cache_store::<Secret, Colliding>();
        writer.apply(&watcher::Event::Init, pack);
        writer.apply(&watcher::Event::InitApply(secret("a", "s", "1")), pack);
        writer.apply(&watcher::Event::InitDone, pack);
        assert_eq!(store.get(Some("b"), "t"), Found::Unknown);
        assert_eq!(
            store.get(Some("a"), "s"),
            Found::Object(secret("a", "s", "1"))
        );
        // Only the first hash equal: the slot collides and stays so.
        let mut table = Table::<Secret, RandomState>::new();
        table.insert((7, 1), pack(&secret("a", "s", "1")));
        table.insert((7, 2), pack(&secret("b", "t", "2")));
        assert!(matches!(table.slots.get(&7), Some(Slot::Collided)));
        table.remove((7, 1));
        assert!(
            matches!(table.slots.get(&7), Some(Slot::Collided)),
            "a delete of one of them does not make the other absent"
        );
        table.insert((7, 1), pack(&secret("a", "s", "1")));
        assert!(matches!(table.slots.get(&7), Some(Slot::Collided)));
        assert_eq!(table.collided, 1);
    }

    #[test]
    fn a_collided_table_cannot_tell_which_entries_carry_a_key() {
        let (store, writer) = listed(&[secret("a", "s", "app")]);
        writer.write().as_mut().unwrap().collided = 1;
        assert_eq!(store.keyed("app").map(|v| v.len()), None);
    }
}

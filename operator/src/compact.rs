//! A cached object kept as the deflated JSON of its slimmed self.
//! k8s-openapi's types spend most of a small object's memory on empty
//! option fields, string headers and `BTreeMap` nodes (a label map of one
//! entry holds a node of eleven); the same Role as JSON is ~700 bytes,
//! deflated ~400 (docs/benchmarks.md, "Memory, fifth pass"). The caches
//! hold these and read them back whole, so every reader sees exactly the
//! object it saw before, and an entry that does not read back is one the
//! cache cannot tell about (a GET follows), never a guess.
//!
//! A hot path that scans a cache by the dozen on every event (the state
//! records that `rotation/app_owner.rs` compares by the app they mint
//! from) filters by a key each entry carries, and reads back only the
//! entries whose key matches.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An object of kind `K` as deflated JSON, with an optional key (see the
/// module doc).
pub struct Compact<K> {
    json: Box<[u8]>,
    key: Option<Box<str>>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Serialize + DeserializeOwned> Compact<K> {
    /// `object` as deflated JSON; `None` only if it does not serialize.
    pub fn of(object: &K) -> Option<Self> {
        Some(Self::packed(deflate(&serde_json::to_vec(object).ok()?)?))
    }

    /// An object of kind `K` known only by `value`, which should read back
    /// as a `K` the cache marks as one it cannot tell about (`caches.rs`).
    pub fn of_value(value: &serde_json::Value) -> Self {
        Self::packed(deflate(value.to_string().as_bytes()).unwrap_or_default())
    }

    fn packed(json: Box<[u8]>) -> Self {
        Compact {
            json,
            key: None,
            kind: PhantomData,
        }
    }

    /// The same, carrying `key`.
    pub fn with_key(self, key: Option<String>) -> Self {
        let key = key.map(String::into_boxed_str);
        Compact { key, ..self }
    }

    /// The key it carries, read without reading the object back.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The object back; `None` if it does not read back.
    pub fn object(&self) -> Option<K> {
        serde_json::from_slice(&inflate(&self.json)?).ok()
    }
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Compact {
            json: self.json.clone(),
            key: self.key.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Compact<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cached Secrets hold digests, but a Debug of them has no use.
        write!(f, "Compact({} bytes)", self.json.len())
    }
}

/// What the deflate stream starts from: JSON of one object of each kind
/// the caches hold and of a TwitterCredential's status, in the shapes the
/// operator writes, every value made up. An object of a few hundred bytes
/// gives deflate too little to find repeats in itself; against these its
/// field names, labels and annotation keys cost a few bytes each
/// (docs/benchmarks.md, "Memory, sixth pass").
static DICTIONARY: &[u8] = include_bytes!("compact/dictionary.json");

/// `bytes` deflated against `DICTIONARY` (raw, no header); `None` only
/// if the encoder fails, which writing to memory does not.
pub fn deflate(bytes: &[u8]) -> Option<Box<[u8]>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    let mut encoder = Compress::new(Compression::new(LEVEL), false);
    encoder.set_dictionary(DICTIONARY).ok()?;
    let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
    loop {
        let read = encoder.total_in() as usize;
        match encoder.compress_vec(&bytes[read..], &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => return Some(out.into_boxed_slice()),
            Ok(_) => out.reserve(out.capacity()),
            Err(_) => return None,
        }
    }
}

/// Deflate's level: the objects are small, so the dictionary's setup, not
/// the level, sets the time; the level still buys bytes.
const LEVEL: u32 = 6;

/// What [`deflate`] made, back; `None` if `bytes` is not such a stream
/// (or is cut short).
pub fn inflate(bytes: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut decoder = Decompress::new(false);
    decoder.set_dictionary(DICTIONARY).ok()?;
    let mut out = Vec::with_capacity(bytes.len() * 4 + 64);
    loop {
        let (read, written) = (decoder.total_in(), decoder.total_out());
        let rest = &bytes[read as usize..];
        match decoder.decompress_vec(rest, &mut out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) => return Some(out),
            Ok(_) if out.len() == out.capacity() => out.reserve(out.capacity()),
            Ok(_) if (read, written) == (decoder.total_in(), decoder.total_out()) => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// A watch event about `A` as one about `f` of its object (the caches
/// store compact forms of what the watches see).
pub fn map_event<A, B>(
    event: kube::runtime::watcher::Event<A>,
    mut f: impl FnMut(A) -> B,
) -> kube::runtime::watcher::Event<B> {
    use kube::runtime::watcher::Event;
    match event {
        Event::Apply(o) => Event::Apply(f(o)),
        Event::Delete(o) => Event::Delete(f(o)),
        Event::Init => Event::Init,
        Event::InitApply(o) => Event::InitApply(f(o)),
        Event::InitDone => Event::InitDone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;

    fn secret(name: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "team", "uid": "u-1", "resourceVersion": "7",
                "labels": {"app.kubernetes.io/managed-by": "twitter-keyguard"},
                "annotations": {"keyguard.dev/minted-from": "app \"one\"\n"}},
            "data": {"api_key": "ZGlnZXN0"},
            "type": "Opaque"
        }))
        .unwrap()
    }

    #[test]
    fn an_object_reads_back_as_it_was() {
        let s = secret("s");
        let back = Compact::of(&s).unwrap().object().unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_keyed_object_reads_back_the_same_and_its_key_is_read_alone() {
        let keyed = Compact::of(&secret("w"))
            .unwrap()
            .with_key(Some("app".into()));
        assert_eq!(keyed.key(), Some("app"));
        assert_eq!(keyed.object(), Some(secret("w")));
        assert_eq!(Compact::of(&secret("w")).unwrap().key(), None);
    }

    fn role() -> k8s_openapi::api::rbac::v1::Role {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "keyguard-read-out-7-staging", "namespace": "payments",
                "uid": "9b1f0c2e-5d4a-4f6b-8e3c-7a2d1f0b9c8e", "resourceVersion": "48213",
                "creationTimestamp": "2026-12-05T19:41:57Z",
                "labels": {"app.kubernetes.io/managed-by": "keyguard-operator",
                    "keyguard.dev/environment": "staging",
                    "keyguard.dev/owner-uid": "e01501f5-0b05-4e07-91ba-07024f48d343"},
                "annotations": {"keyguard.dev/owner": "payments/bot-7",
                    "keyguard.dev/claim": "d9629f74ca9fd150e8ed9d4cc1badfc8ef206cb82b3e22fa80868d8b2b3f17b4"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"],
                "resourceNames": ["out-7-staging"], "verbs": ["get"]}]
        }))
        .unwrap()
    }

    #[test]
    fn the_dictionary_packs_a_small_object_to_a_fraction_of_deflate_alone() {
        // Not a timing: the size is what the cache holds per object.
        let json = serde_json::to_vec(&role()).unwrap();
        let mut alone = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut alone, &json).unwrap();
        let alone = alone.finish().unwrap().len();
        let packed = deflate(&json).unwrap();
        assert!(
            packed.len() * 2 < alone,
            "{} bytes, {alone} alone, {} JSON",
            packed.len(),
            json.len()
        );
        assert_eq!(inflate(&packed).unwrap(), json);
    }

    #[test]
    fn a_stream_cut_short_reads_back_as_nothing() {
        let packed = deflate(&serde_json::to_vec(&role()).unwrap()).unwrap();
        for cut in [1, packed.len() / 2, packed.len() - 1] {
            assert_eq!(inflate(&packed[..cut]), None, "cut at {cut}");
        }
        assert!(inflate(&packed).is_some());
    }

    #[test]
    fn bytes_that_are_not_deflate_read_back_as_nothing() {
        let compact = Compact::<Secret>::packed(b"{\"not\": \"deflated\"}".to_vec().into());
        assert_eq!(compact.object(), None);
    }
}

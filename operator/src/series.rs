//! Which metric series to drop, so that an alert never fires for what no
//! longer exists: the series of a resource that vanished while the watch
//! was relisting (no Delete event ever comes for it), and of an
//! environment removed from a spec. The orphan watcher (`orphans.rs`)
//! keeps what it last saw of each resource and asks here what went.

use std::collections::HashMap;

use kube::ResourceExt;

use crate::resource::TwitterCredential;

/// What the watch last saw of a resource: enough to name its series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub namespace: String,
    pub name: String,
    pub environments: Vec<String>,
}

impl Seen {
    pub fn of(tc: &TwitterCredential) -> Seen {
        Seen {
            namespace: tc.namespace().unwrap_or_default(),
            name: tc.name_any(),
            environments: tc
                .spec
                .environments
                .iter()
                .map(|e| e.name.clone())
                .collect(),
        }
    }
}

/// Series to drop: whole resources, or some environments of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    Resource(Seen),
    Environments(Seen),
}

/// Pure: what went between what was seen (`before`, by uid) and what is
/// seen now (`now`, by uid; after a relist, everything listed).
pub fn gone(before: &HashMap<String, Seen>, now: &HashMap<String, Seen>) -> Vec<Gone> {
    let mut out = Vec::new();
    for (uid, old) in before {
        match now.get(uid) {
            None => out.push(Gone::Resource(old.clone())),
            Some(new) => out.extend(dropped_environments(old, new).map(Gone::Environments)),
        }
    }
    out
}

/// Pure: the environments `old` had and `new` no longer has.
pub fn dropped_environments(old: &Seen, new: &Seen) -> Option<Seen> {
    let dropped: Vec<String> = old
        .environments
        .iter()
        .filter(|e| !new.environments.contains(e))
        .cloned()
        .collect();
    (!dropped.is_empty()).then(|| Seen {
        environments: dropped,
        ..old.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, envs: &[&str]) -> Seen {
        Seen {
            namespace: "team".into(),
            name: name.into(),
            environments: envs.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_relist_forgets_what_vanished_and_environments_removed_from_a_spec() {
        let by_uid = |pairs: &[(&str, Seen)]| -> HashMap<String, Seen> {
            pairs
                .iter()
                .map(|(u, s)| (u.to_string(), s.clone()))
                .collect()
        };
        let cases = [
            (
                "nothing changed",
                by_uid(&[("1", seen("a", &["prod"]))]),
                by_uid(&[("1", seen("a", &["prod"]))]),
                vec![],
            ),
            (
                "deleted while the watch relisted",
                by_uid(&[("1", seen("a", &["prod"])), ("2", seen("b", &["prod"]))]),
                by_uid(&[("2", seen("b", &["prod"]))]),
                vec![Gone::Resource(seen("a", &["prod"]))],
            ),
            (
                "recreated under the same name: a new uid, the old one's series go",
                by_uid(&[("1", seen("a", &["prod"]))]),
                by_uid(&[("3", seen("a", &["prod"]))]),
                vec![Gone::Resource(seen("a", &["prod"]))],
            ),
            (
                "an environment removed from the spec",
                by_uid(&[("1", seen("a", &["prod", "staging"]))]),
                by_uid(&[("1", seen("a", &["prod"]))]),
                vec![Gone::Environments(seen("a", &["staging"]))],
            ),
            (
                "a new resource",
                by_uid(&[]),
                by_uid(&[("1", seen("a", &["prod"]))]),
                vec![],
            ),
        ];
        for (what, before, now, want) in cases {
            assert_eq!(gone(&before, &now), want, "{what}");
        }
    }
}

//! `--known FILE`: fingerprints of live credentials (never values), from a
//! plain list or from `kubectl get twcred -A -o json` (the operator's status
//! lists every source credential's fingerprint). Every occurrence of those
//! exact values is reported, in any encoding the decoders read, even where
//! no rule fires, naming the resource and environment it belongs to: no
//! false positive is possible, since only a value with that SHA-256 prefix
//! matches.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use keyguard_credentials::{fingerprint, CredentialKey};
use regex::bytes::Regex;

use crate::Error;

/// Whose a known credential is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: Option<CredentialKey>,
    /// e.g. `team/bot, environment prod, apiKey`.
    pub owner: Arc<str>,
}

#[derive(Debug)]
pub struct Known {
    by_fingerprint: HashMap<String, Label>,
    candidate: Regex,
}

/// A known value found in a buffer.
#[derive(Debug)]
pub struct Hit<'k> {
    pub start: usize,
    pub end: usize,
    pub value: Vec<u8>,
    pub label: &'k Label,
}

fn key_named(name: &str) -> Option<CredentialKey> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

impl Known {
    pub fn load(path: &Path) -> Result<Known, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: format!("reading known fingerprints {}", path.display()),
            source,
        })?;
        Self::parse(&text).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))
    }

    /// A JSON document with `fingerprint` fields, or lines of
    /// `sha256:… [key] [owner…]` (`#` comments).
    pub fn parse(text: &str) -> Result<Known, String> {
        let mut by_fingerprint = HashMap::new();
        if text.trim_start().starts_with(['{', '[']) {
            let doc: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
            walk(&doc, &[], &mut by_fingerprint);
        } else {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut words = line.split_whitespace();
                let fp = words.next().unwrap_or_default();
                if !is_fingerprint(fp) {
                    return Err(format!(
                        "line {}: {fp:?} is not a fingerprint (sha256:<16 hex>)",
                        n + 1
                    ));
                }
                let rest: Vec<&str> = words.collect();
                let key = rest.first().and_then(|k| key_named(k));
                let owner = if rest.is_empty() {
                    "a known credential".to_string()
                } else {
                    rest.join(" ")
                };
                by_fingerprint.insert(
                    fp.to_string(),
                    Label {
                        key,
                        owner: owner.into(),
                    },
                );
            }
        }
        if by_fingerprint.is_empty() {
            return Err("no fingerprints in it".into());
        }
        Ok(Known {
            by_fingerprint,
            candidate: Regex::new(r"[A-Za-z0-9%+/_\-]{16,300}={0,2}").unwrap(),
        })
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// Every run of credential characters in `buf` whose value (or its
    /// percent-decoded form) has a known fingerprint.
    pub fn find<'k>(&'k self, buf: &[u8], out: &mut Vec<Hit<'k>>) {
        for m in self.candidate.find_iter(buf) {
            let raw = m.as_bytes();
            let decoded: Option<Vec<u8>> = raw
                .contains(&b'%')
                .then(|| percent_encoding::percent_decode(raw).collect());
            for value in std::iter::once(raw).chain(decoded.as_deref()) {
                if let Some(label) = self.by_fingerprint.get(fingerprint(value).as_str()) {
                    out.push(Hit {
                        start: m.start(),
                        end: m.end(),
                        value: value.to_vec(),
                        label,
                    });
                    break;
                }
            }
        }
    }
}

fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Collects `{key, fingerprint}` objects, naming them from the resource
/// (`metadata`) and environment (`name`) they sit in.
fn walk(v: &serde_json::Value, context: &[String], out: &mut HashMap<String, Label>) {
    match v {
        serde_json::Value::Object(map) => {
            let mut context = context.to_vec();
            if let Some(meta) = map.get("metadata") {
                let ns = meta["namespace"].as_str().unwrap_or_default();
                let name = meta["name"].as_str().unwrap_or_default();
                context = vec![format!("{ns}/{name}")];
            } else if let (Some(name), true) = (
                map.get("name").and_then(|n| n.as_str()),
                map.contains_key("sourceCredentials"),
            ) {
                context.push(format!("environment {name}"));
            }
            if let Some(fp) = map
                .get("fingerprint")
                .and_then(|f| f.as_str())
                .filter(|f| is_fingerprint(f))
            {
                let key_name = map.get("key").and_then(|k| k.as_str());
                let mut owner = context.clone();
                owner.extend(key_name.map(str::to_string));
                let owner = if owner.is_empty() {
                    "a known credential".to_string()
                } else {
                    owner.join(", ")
                };
                out.insert(
                    fp.to_string(),
                    Label {
                        key: key_name.and_then(key_named),
                        owner: owner.into(),
                    },
                );
            }
            for child in map.values() {
                walk(child, &context, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, context, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_come_from_lists_and_from_the_operator_s_status() {
        let fp = fingerprint(b"some-live-value-123456").to_string();
        let list = Known::parse(&format!("# exported\n{fp} apiKey team/bot prod\n")).unwrap();
        let label = &list.by_fingerprint[&fp];
        assert_eq!(label.key, Some(CredentialKey::ApiKey));
        assert_eq!(&*label.owner, "apiKey team/bot prod");

        let status = serde_json::json!({"items": [{
            "metadata": {"namespace": "team", "name": "bot"},
            "status": {"environments": [{"name": "prod", "sourceCredentials": [
                {"key": "apiKeySecret", "fingerprint": fp, "since": "2026-01-01T00:00:00Z"}
            ]}]}
        }]});
        let from_status = Known::parse(&status.to_string()).unwrap();
        let label = &from_status.by_fingerprint[&fp];
        assert_eq!(label.key, Some(CredentialKey::ApiKeySecret));
        assert_eq!(&*label.owner, "team/bot, environment prod, apiKeySecret");

        let mut hits = Vec::new();
        from_status.find(
            b"x = 'some-live-value-123456'; y = 'some-other-value-1234'",
            &mut hits,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].value, b"some-live-value-123456");

        for bad in ["", "# nothing\n", "sha256:xyz\n", "{\"items\": []}"] {
            assert!(Known::parse(bad).is_err(), "{bad:?}");
        }
    }
}

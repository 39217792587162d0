//! `--known FILE`: fingerprints of live credentials (never values), from a
//! plain list or from `kubectl get twcred -A -o json` (the operator's status
//! lists every source credential's fingerprint). Every occurrence of those
//! exact values is reported, in any encoding the decoders read and at any
//! token boundary (a URL path, `Bearer%20…`, base64, split literals), even
//! where no rule fires, naming the resource and environment it belongs to: no
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
    joined: Regex,
    literal: Regex,
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
        let literal = r#"(?:"[A-Za-z0-9%+/=_\-]{2,200}"|'[A-Za-z0-9%+/=_\-]{2,200}')"#;
        let glue = r"[ \t]*(?:\+|\.\.?|&|\|\|)?[ \t]*(?:\\?\r?\n[ \t]*(?:\+|\.\.?|&|\|\|)?[ \t]*)?";
        Ok(Known {
            by_fingerprint,
            candidate: Regex::new(r"[A-Za-z0-9%+/_\-]{16,300}={0,2}").unwrap(),
            joined: Regex::new(&format!("{literal}(?:{glue}{literal})+")).unwrap(),
            literal: Regex::new(literal).unwrap(),
        })
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// Every known value in `buf`: in a run of credential characters,
    /// whole or between any two token boundaries in it (`/`, `-`, `_`,
    /// `+`, `=`, a `%XX` escape: a URL path, `Bearer%20…`, `name-…`),
    /// as written or percent-decoded; a run that is base64 of text,
    /// decoded; and string literals joined by `+`, `.` or nothing.
    pub fn find<'k>(&'k self, buf: &[u8], out: &mut Vec<Hit<'k>>) {
        for m in self.candidate.find_iter(buf) {
            if let Some(hit) = self.find_in_run(m.as_bytes(), m.start()) {
                out.push(hit);
            }
        }
        for (value, (start, end)) in self.joined_literals(buf) {
            if let Some(label) = self.by_fingerprint.get(fingerprint(&value).as_str()) {
                if !out.iter().any(|h| h.start < end && start < h.end) {
                    out.push(Hit {
                        start,
                        end,
                        value,
                        label,
                    });
                }
            }
        }
    }

    /// The first known value in one run, reported at the run.
    fn find_in_run<'k>(&'k self, run: &[u8], at: usize) -> Option<Hit<'k>> {
        let decoded = decode_base64(run).filter(|d| d.iter().all(|b| b.is_ascii_graphic()));
        for (text, from_base64) in [(run, false)]
            .into_iter()
            .chain(decoded.as_deref().map(|d| (d, true)))
        {
            for (s, e) in token_spans(text) {
                let piece = &text[s..e];
                let unescaped: Option<Vec<u8>> = piece
                    .contains(&b'%')
                    .then(|| percent_encoding::percent_decode(piece).collect());
                for value in std::iter::once(piece).chain(unescaped.as_deref()) {
                    if let Some(label) = self.by_fingerprint.get(fingerprint(value).as_str()) {
                        let (start, end) = if from_base64 {
                            (at, at + run.len())
                        } else {
                            (at + s, at + e)
                        };
                        return Some(Hit {
                            start,
                            end,
                            value: value.to_vec(),
                            label,
                        });
                    }
                }
            }
        }
        None
    }

    /// Values split over adjacent string literals, joined, with the span
    /// of the literals.
    fn joined_literals(&self, buf: &[u8]) -> Vec<(Vec<u8>, (usize, usize))> {
        if !buf.contains(&b'"') && !buf.contains(&b'\'') {
            return Vec::new();
        }
        self.joined
            .find_iter(buf)
            .map(|m| {
                let value = self
                    .literal
                    .find_iter(m.as_bytes())
                    .flat_map(|l| l.as_bytes()[1..l.len() - 1].to_vec())
                    .collect();
                (value, (m.start(), m.end()))
            })
            .collect()
    }
}

/// The shortest value `--known` looks for; every X credential is longer.
const MIN_VALUE: usize = 16;
/// Boundaries tried per run: enough for a URL or a header, bounded so a
/// long run of delimiters costs little.
const MAX_BOUNDARIES: usize = 24;

/// Pure: spans of `run` between two token boundaries (its ends, and both
/// sides of each delimiter or `%XX` escape) at least `MIN_VALUE` long,
/// the whole run first.
fn token_spans(run: &[u8]) -> Vec<(usize, usize)> {
    let mut cuts = vec![0];
    let mut i = 0;
    while i < run.len() && cuts.len() < MAX_BOUNDARIES {
        let width = match run[i] {
            b'%' if i + 2 < run.len()
                && run[i + 1].is_ascii_hexdigit()
                && run[i + 2].is_ascii_hexdigit() =>
            {
                3
            }
            b'/' | b'-' | b'_' | b'+' | b'=' => 1,
            _ => 0,
        };
        if width > 0 {
            cuts.push(i);
            cuts.push(i + width);
            i += width;
        } else {
            i += 1;
        }
    }
    cuts.push(run.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut spans = vec![(0, run.len())];
    for (a, &s) in cuts.iter().enumerate() {
        for &e in &cuts[a + 1..] {
            if e - s >= MIN_VALUE && (s, e) != (0, run.len()) {
                spans.push((s, e));
            }
        }
    }
    spans
}

fn decode_base64(run: &[u8]) -> Option<Vec<u8>> {
    crate::decode::decode_base64(run)
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

    #[test]
    fn a_known_value_is_found_at_any_token_boundary_and_in_any_form() {
        let value = "370773112-dUStPKR0CsTy4Qwb8DwkNhFdnXsiVpzz63FfkCzJ"; // keyguard:allow
        let bearer = "AAAAAAAAAAAAAAAAAAAAAGzvAmwufUxAAAAAAAbvJDCTbyvHNsG9eh6Yo4%2Bgfqrc5Xl%3DrWi0B26R08qzjI6GKFSufrdZSlB5er8bOfZqfM2oeq3hDavJA7"; // keyguard:allow
        let known = Known::parse(&format!(
            "{} accessToken a\n{} bearerToken b\n",
            fingerprint(value.as_bytes()),
            fingerprint(bearer.as_bytes())
        ))
        .unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, value);
        let cases = [
            ("whole", format!("token: {value}")),
            ("in a URL path", format!("GET /hook/{value}/send HTTP/1.1")),
            ("after a name and a dash", format!("bot-{value}")),
            ("after Bearer%20", format!("auth=Bearer%20{bearer}&x=1")),
            ("base64", format!("blob: {b64}")),
            (
                "split over literals",
                format!("t = \"{}\" +\n  \"{}\"", &value[..20], &value[20..]),
            ),
        ];
        for (what, text) in cases {
            let mut hits = Vec::new();
            known.find(text.as_bytes(), &mut hits);
            assert_eq!(hits.len(), 1, "{what}: {text}");
        }
        let mut hits = Vec::new();
        known.find(
            b"token: 370773112-dUStPKR0CsTy4Qwb8DwkNhFdnXsiVpzz63FfkCz",
            &mut hits,
        ); // keyguard:allow
        assert!(hits.is_empty(), "a value cut short is not the known value");
    }

    #[test]
    fn token_spans_are_between_boundaries_whole_run_first() {
        let spans = token_spans(b"hook/0123456789abcdefgh/send");
        assert_eq!(spans[0], (0, 28));
        assert!(spans.contains(&(5, 23)), "{spans:?}");
        assert!(spans.iter().all(|(s, e)| e - s >= MIN_VALUE));
    }
}

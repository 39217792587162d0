//! Looking for credential values in text a person or a log can see, in
//! every form they travel in: raw, base64 (as in a Secret's `data`),
//! URL-encoded, JSON-escaped (including `\u002B`-style escapes), and the
//! `Basic base64(key:secret)` header of each key pair.

use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every form of `value` worth searching for, named.
pub fn forms(value: &str) -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let decoded = percent_decode_str(value).decode_utf8_lossy().into_owned();
    let mut out = vec![
        ("raw", value.to_string()),
        ("percent-decoded", decoded.clone()),
        (
            "URL-encoded",
            utf8_percent_encode(&decoded, UNRESERVED).to_string(),
        ),
        (
            "URL-encoded twice",
            utf8_percent_encode(
                &utf8_percent_encode(&decoded, UNRESERVED).to_string(),
                UNRESERVED,
            )
            .to_string(),
        ),
        ("base64", b64.encode(value)),
        ("base64 of the decoded form", b64.encode(&decoded)),
        (
            "base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        ),
        (
            "base64 without padding",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(value),
        ),
        (
            "JSON-escaped",
            serde_json::to_string(&decoded)
                .unwrap()
                .trim_matches('"')
                .to_string(),
        ),
        ("JSON \\u-escaped", unicode_escaped(&decoded)),
        ("raw, lower-case %xx", lower_escapes(value)),
        (
            "URL-encoded, lower-case %xx",
            lower_escapes(&utf8_percent_encode(&decoded, UNRESERVED).to_string()),
        ),
    ];
    for k in 1..3 {
        out.push((
            "base64, inside a larger blob",
            inside_base64(value, k, &b64),
        ));
        out.push((
            "base64url, inside a larger blob",
            inside_base64(value, k, &base64::engine::general_purpose::URL_SAFE_NO_PAD),
        ));
    }
    out.push((
        "base64, inside a larger blob",
        inside_base64(value, 0, &b64),
    ));
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// What base64 of a larger blob holds for `value` when it starts `offset`
/// bytes (mod 3) into it: only the groups made of the value's bytes alone
/// (the groups it shares with the bytes around it differ from blob to blob).
fn inside_base64(value: &str, offset: usize, engine: &impl Engine) -> String {
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(value.as_bytes());
    let encoded = engine.encode(&bytes);
    let start = if offset == 0 { 0 } else { 4 };
    let end = (bytes.len() / 3) * 4;
    encoded
        .get(start..end.max(start))
        .unwrap_or_default()
        .to_string()
}

/// `%2B` as some encoders write it: `%2b`.
fn lower_escapes(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// .NET and Gson write `+`, `=`, `/` and friends as `\u002B` and `\u003d`.
fn unicode_escaped(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\u{:04X}", c as u32)
            }
        })
        .collect()
}

/// The values to look for, and the key pairs whose Basic header counts too.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    pub values: Vec<String>,
    pub pairs: Vec<(String, String)>,
}

impl Secrets {
    pub fn new(values: impl IntoIterator<Item = impl Into<String>>) -> Secrets {
        Secrets {
            values: values.into_iter().map(Into::into).collect(),
            pairs: Vec::new(),
        }
    }

    pub fn pair(mut self, id: &str, secret: &str) -> Secrets {
        self.pairs.push((id.into(), secret.into()));
        self
    }

    /// Every (what, needle) to search for.
    pub fn needles(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for v in &self.values {
            for (form, needle) in forms(v) {
                out.push((format!("a credential value ({form})"), needle));
            }
        }
        for (id, secret) in &self.pairs {
            let header =
                keyguard_credentials::basic_authorization(id.as_bytes(), secret.as_bytes());
            let encoded = header.trim_start_matches("Basic ").to_string();
            out.push(("a Basic authorization header of a key pair".into(), encoded));
        }
        out
    }
}

/// Panics, naming the form and where, if any secret appears in `haystack`.
/// The message never contains the value itself.
pub fn assert_no_leak(where_: &str, haystack: &str, secrets: &Secrets) {
    assert!(
        !secrets.values.is_empty(),
        "assert_no_leak was given no values to look for"
    );
    for (what, needle) in secrets.needles() {
        assert!(
            needle.len() >= 8,
            "a test secret is too short to search for meaningfully"
        );
        if let Some(at) = haystack.find(&needle) {
            panic!("{what} appears in {where_} at byte {at}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_form_and_names_none() {
        let v = "AAAAAAAAAAAAAAAAAAAAAabc%2Bdef%3Dghijklmnop";
        let decoded = "AAAAAAAAAAAAAAAAAAAAAabc+def=ghijklmnop";
        let secrets = Secrets::new([v]).pair("consumerKey123", "consumerSecret456");
        let b64 = base64::engine::general_purpose::STANDARD;
        let cases = [
            format!("log: {v}"),
            format!("log: {decoded}"),
            format!("data: {}", b64.encode(v)),
            format!("data: {}", b64.encode(decoded)),
            "json: AAAAAAAAAAAAAAAAAAAAAabc\\u002Bdef\\u003Dghijklmnop".to_string(),
            format!(
                "hdr: {}",
                keyguard_credentials::basic_authorization(b"consumerKey123", b"consumerSecret456")
            ),
            "log: AAAAAAAAAAAAAAAAAAAAAabc%2bdef%3dghijklmnop".to_string(),
        ];
        // The value in the middle of a larger base64 blob, at each of the
        // three alignments.
        let cases: Vec<String> = cases
            .into_iter()
            .chain((0..3).map(|k| {
                let blob = format!("{}{v}{}", "x".repeat(7 + k), "y".repeat(5));
                format!("data: {}", b64.encode(blob))
            }))
            .collect();
        for text in cases {
            let caught = std::panic::catch_unwind(|| assert_no_leak("text", &text, &secrets));
            let message = caught.expect_err(&text);
            let message = message.downcast_ref::<String>().unwrap();
            assert!(
                !message.contains("ghijklmnop") && !message.contains("consumerSecret"),
                "{message}"
            );
        }
        assert_no_leak(
            "clean text",
            "nothing to see: sha256:0123456789abcdef",
            &secrets,
        );
    }
}

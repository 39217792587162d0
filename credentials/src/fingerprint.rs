//! Naming a credential without showing it.
//!
//! A fingerprint is a short prefix of the value's SHA-256: enough to tell two
//! values apart in a status field or a report, far too little to recover one.

use std::fmt;

use sha2::{Digest, Sha256};

/// Hex characters of the SHA-256 kept in a fingerprint (64 bits).
const FINGERPRINT_HEX_LEN: usize = 16;

/// A short, stable, non-reversible name for a credential value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint as text, e.g. `sha256:1f3a5c7e9b0d2f4a`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fingerprint of a credential value.
pub fn fingerprint(value: &[u8]) -> Fingerprint {
    let digest = Sha256::digest(value);
    let mut hex = hex::encode(digest);
    hex.truncate(FINGERPRINT_HEX_LEN);
    Fingerprint(format!("sha256:{hex}"))
}

/// A redacted rendering for people: a few leading characters (never more than
/// a quarter of the value, at most four), the length, and the fingerprint.
///
/// The leading characters of X credentials are not secret (`AAAA` for every
/// bearer token, a public user id for access tokens) and help a person find
/// the line; the rest never leaves this function.
pub fn redact(value: &[u8]) -> String {
    let shown = (value.len() / 4).min(4);
    let prefix: String = value[..shown]
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect();
    format!("{prefix}…[{} chars, {}]", value.len(), fingerprint(value))
}

/// A credential value held in memory.
///
/// `Debug` and `Display` print only the fingerprint, so a value that reaches
/// a log line, an error or an Event by mistake is still not disclosed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The value itself, for the few places that must send or store it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({})", self.fingerprint())
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // X's own documented example access token. keyguard:allow
    const VALUE: &str = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"; // keyguard:allow

    #[test]
    fn fingerprint_is_the_sha256_prefix_and_distinct() {
        // `printf %s VALUE | sha256sum` starts 0e04efa6bc7d2d51.
        let a = fingerprint(VALUE.as_bytes());
        assert_eq!(a.as_str(), "sha256:0e04efa6bc7d2d51");
        assert_eq!(a.as_str().len(), "sha256:".len() + FINGERPRINT_HEX_LEN);
        assert_ne!(a, fingerprint(b"something else"));
    }

    #[test]
    fn redaction_never_shows_more_than_four_characters() {
        let shown = redact(VALUE.as_bytes());
        assert!(shown.starts_with("3707…"), "{shown}");
        assert!(shown.contains("[50 chars, sha256:"), "{shown}");
        assert!(!shown.contains("73112"), "{shown}");
        // Short values show proportionally less.
        assert!(redact(b"abc").starts_with("…"));
    }

    #[test]
    fn secret_value_debug_and_display_hide_the_value() {
        let v = SecretValue::new(VALUE);
        assert!(!format!("{v:?}").contains("GmHx"));
        assert!(!format!("{v}").contains("GmHx"));
        assert_eq!(format!("{v}"), fingerprint(VALUE.as_bytes()).to_string());
    }
}

//! What each X credential looks like, as data.
//!
//! Lengths cover both the shapes X documents in its examples (22-character
//! API keys, 41-character secrets) and the ones it issues today (25 and 50).
//! The scanner builds its rules from these shapes and the operator uses them
//! to tell a person that a staged value cannot be the credential it claims
//! to be, so the two never disagree.

use base64::Engine;

use crate::CredentialKey;

/// Every app-only bearer token starts with this run of `A`s (the base64 of a
/// zero-filled header), in both the raw and the URL-encoded form.
pub const BEARER_TOKEN_PREFIX: &str = "AAAAAAAAAAAAAAAAAAAAA";

/// The shape of one credential's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub key: CredentialKey,
    /// A regular expression (no anchors, no captures) matching exactly the
    /// value, for use inside larger expressions.
    pub pattern: &'static str,
    /// For base64 tokens: the text their decoded form ends with.
    pub decoded_suffix: Option<&'static str>,
}

static SHAPES: [Shape; 9] = [
    Shape {
        key: CredentialKey::ApiKey,
        pattern: "[A-Za-z0-9]{20,25}",
        decoded_suffix: None,
    },
    Shape {
        key: CredentialKey::ApiKeySecret,
        pattern: "[A-Za-z0-9]{35,50}",
        decoded_suffix: None,
    },
    Shape {
        key: CredentialKey::AccessToken,
        pattern: "[0-9]{1,20}-[A-Za-z0-9]{25,50}",
        decoded_suffix: None,
    },
    Shape {
        key: CredentialKey::AccessTokenSecret,
        pattern: "[A-Za-z0-9]{35,50}",
        decoded_suffix: None,
    },
    Shape {
        key: CredentialKey::ClientId,
        pattern: "[A-Za-z0-9_-]{20,60}",
        decoded_suffix: Some(":1:ci"),
    },
    Shape {
        key: CredentialKey::ClientSecret,
        pattern: "[A-Za-z0-9_-]{45,55}",
        decoded_suffix: None,
    },
    Shape {
        key: CredentialKey::RefreshToken,
        pattern: "[A-Za-z0-9_-]{40,160}",
        decoded_suffix: Some(":rt:1"),
    },
    // 21 `A`s, then base64 with `+`, `/`, `=` raw or `%2B`, `%2F`, `%3D`
    // URL-encoded; the non-`A` part is never shorter than the header.
    Shape {
        key: CredentialKey::BearerToken,
        pattern: "AAAAAAAAAAAAAAAAAAAAA(?:[A-Za-z0-9+/=]|%2[BbFf]|%3[Dd]){30,200}",
        decoded_suffix: None,
    },
    Shape {
        key: CredentialKey::UserAccessToken,
        pattern: "[A-Za-z0-9_-]{40,160}",
        decoded_suffix: Some(":at:1"),
    },
];

impl Shape {
    pub fn of(key: CredentialKey) -> &'static Shape {
        SHAPES
            .iter()
            .find(|s| s.key == key)
            .expect("every CredentialKey has a shape")
    }
}

/// The runs of base64 text that appear wherever `marker` appears in the
/// decoded text, one per alignment of the marker within a 3-byte group, in
/// the standard and the URL-safe alphabets (duplicates removed).
///
/// Base64 of `...:1:ci` contains one of these whatever came before the
/// marker, which makes structural tokens findable by a plain substring search
/// before anything is decoded.
pub fn base64_marker_variants(marker: &str) -> Vec<String> {
    let m = marker.as_bytes();
    let mut out = Vec::new();
    for offset in 0..3 {
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(m);
        while buf.len() % 3 != 0 {
            buf.push(0);
        }
        let inside = |b: usize| b >= offset && b < offset + m.len();
        for engine in [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&buf);
            // Keep the characters whose input bits come only from the marker.
            let kept: String = encoded
                .char_indices()
                .filter(|&(p, _)| {
                    let g = 3 * (p / 4);
                    match p % 4 {
                        0 => inside(g),
                        1 => inside(g) && inside(g + 1),
                        2 => inside(g + 1) && inside(g + 2),
                        _ => inside(g + 2),
                    }
                })
                .map(|(_, c)| c)
                .collect();
            if !out.contains(&kept) {
                out.push(kept);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn every_key_has_one_shape() {
        for key in CredentialKey::ALL {
            assert_eq!(Shape::of(key).key, key);
        }
    }

    #[test]
    fn marker_variants_are_found_in_real_encodings_at_every_offset() {
        for marker in [":1:ci", ":at:1", ":rt:1"] {
            let variants = base64_marker_variants(marker);
            for prefix in ["a", "ab", "abc", "prefix-of-some-length"] {
                let encoded = URL_SAFE_NO_PAD.encode(format!("{prefix}{marker}"));
                assert!(
                    variants.iter().any(|v| encoded.contains(v.as_str())),
                    "{marker} after {prefix:?}: {encoded} contains none of {variants:?}"
                );
            }
            assert!(variants.iter().all(|v| v.len() >= 4), "{variants:?}");
        }
    }
}

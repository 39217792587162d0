//! OAuth 1.0a request signing (RFC 5849, HMAC-SHA1), for the read-only
//! `verify_credentials` call that tells an access token's permission level.

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The four secrets of a user-context request.
pub struct OAuth1Keys<'a> {
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub token: &'a str,
    pub token_secret: &'a str,
}

/// The `Authorization` header for `method url` with `params` (query and
/// form parameters), given a nonce and a timestamp.
pub fn oauth1_authorization(
    keys: &OAuth1Keys<'_>,
    method: &str,
    url: &str,
    params: &[(&str, &str)],
    nonce: &str,
    timestamp: u64,
) -> String {
    let timestamp = timestamp.to_string();
    let oauth = [
        ("oauth_consumer_key", keys.consumer_key),
        ("oauth_nonce", nonce),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", timestamp.as_str()),
        ("oauth_token", keys.token),
        ("oauth_version", "1.0"),
    ];
    let mut all: Vec<(String, String)> = oauth
        .iter()
        .chain(params.iter())
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    all.sort();
    let joined = all
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        enc(url),
        enc(&joined)
    );
    let key = format!("{}&{}", enc(keys.consumer_secret), enc(keys.token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(base.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut header: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{}=\"{}\"", enc(k), enc(v)))
        .collect();
    header.push(format!("oauth_signature=\"{}\"", enc(&signature)));
    format!("OAuth {}", header.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X's documentation example ("Creating a signature"). keyguard:allow
    #[test]
    fn signs_the_documented_example() {
        let keys = OAuth1Keys {
            consumer_key: "xvz1evFS4wEEPTGEFPHBog", // keyguard:allow
            consumer_secret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw", // keyguard:allow
            token: "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb", // keyguard:allow
            token_secret: "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE", // keyguard:allow
        };
        let header = oauth1_authorization(
            &keys,
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &[
                ("include_entities", "true"),
                (
                    "status",
                    "Hello Ladies + Gentlemen, a signed OAuth request!",
                ),
            ],
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            1318622958,
        );
        let expected_start = format!("OAuth oauth_consumer_key=\"{}\"", keys.consumer_key);
        assert!(header.starts_with(&expected_start), "{header}");
        assert!(
            header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""),
            "{header}"
        );
    }
}

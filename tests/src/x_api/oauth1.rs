//! OAuth 1.0a signature checking (RFC 5849 section 3.4), written here
//! independently of the operator's signer so that a shared mistake cannot
//! pass both; tested against the X documentation's worked example.

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

/// RFC 3986 unreserved characters stay; everything else is encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

/// The signature base string: method, base URL, and the sorted,
/// encoded parameters (query, form body and oauth_* except the signature).
pub fn signature_base_string(method: &str, base_url: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .map(|(k, v)| (enc(k), enc(v)))
        .collect();
    encoded.sort();
    let joined = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        enc(base_url),
        enc(&joined)
    )
}

/// HMAC-SHA1 signature, base64.
pub fn sign(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", enc(consumer_secret), enc(token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is right for the request.
pub fn verify_signature(
    method: &str,
    base_url: &str,
    params: &[(String, String)],
    consumer_secret: &str,
    token_secret: &str,
    signature: &str,
) -> bool {
    let expected = sign(
        &signature_base_string(method, base_url, params),
        consumer_secret,
        token_secret,
    );
    // Constant-time enough for an emulator; compare full strings.
    expected == signature
}

/// Parses `Authorization: OAuth k="v", ...` into decoded pairs.
pub fn parse_authorization(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim().strip_prefix("OAuth ")?;
    rest.split(',')
        .map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            let v = v.trim().trim_matches('"');
            Some((
                percent_encoding::percent_decode_str(k.trim())
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .ok()?
                    .into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // X's documentation example ("Creating a signature"), public values.
    const KEY: &str = "xvz1evFS4wEEPTGEFPHBog"; // keyguard:allow
    const KEY_SECRET: &str = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"; // keyguard:allow
    const TOKEN: &str = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"; // keyguard:allow
    const TOKEN_SECRET: &str = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"; // keyguard:allow
    const URL: &str = "https://api.twitter.com/1.1/statuses/update.json";

    #[test]
    fn documented_example_signature_verifies() {
        let p = |k: &str, v: &str| (k.to_string(), v.to_string());
        let params = vec![
            p(
                "status",
                "Hello Ladies + Gentlemen, a signed OAuth request!",
            ),
            p("include_entities", "true"),
            p("oauth_consumer_key", KEY),
            p("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            p("oauth_signature_method", "HMAC-SHA1"),
            p("oauth_timestamp", "1318622958"),
            p("oauth_token", TOKEN),
            p("oauth_version", "1.0"),
        ];
        let base = signature_base_string("POST", URL, &params);
        assert!(base.starts_with(
            "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key"
        ));
        let documented = "hCtSmYh+iHYCEqBWrE7C7hYmtUk=";
        assert!(verify_signature(
            "POST",
            URL,
            &params,
            KEY_SECRET,
            TOKEN_SECRET,
            documented
        ));
        assert!(!verify_signature(
            "POST",
            URL,
            &params,
            "wrong",
            TOKEN_SECRET,
            documented
        ));
        assert!(!verify_signature(
            "GET",
            URL,
            &params,
            KEY_SECRET,
            TOKEN_SECRET,
            documented
        ));
    }

    /// The same example as it travels: an `Authorization` header and a
    /// form body, parsed the way the emulator parses requests.
    #[test]
    fn documented_example_verifies_through_header_parsing() {
        let header = format!(
            "OAuth oauth_consumer_key=\"{KEY}\", oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
             oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"1318622958\", oauth_token=\"{TOKEN}\", oauth_version=\"1.0\""
        );
        let body = "status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21";
        let mut params = parse_authorization(&header).expect("a well-formed header");
        let signature = params
            .iter()
            .find(|(k, _)| k == "oauth_signature")
            .unwrap()
            .1
            .clone();
        assert_eq!(signature, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
        params.push(("include_entities".into(), "true".into()));
        for pair in body.split('&') {
            let (k, v) = pair.split_once('=').unwrap();
            let d = |x: &str| {
                percent_encoding::percent_decode_str(x)
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            params.push((d(k), d(v)));
        }
        assert!(verify_signature(
            "POST",
            URL,
            &params,
            KEY_SECRET,
            TOKEN_SECRET,
            &signature
        ));
        params.retain(|(k, _)| k != "include_entities");
        assert!(
            !verify_signature("POST", URL, &params, KEY_SECRET, TOKEN_SECRET, &signature),
            "every parameter is signed"
        );
    }
}

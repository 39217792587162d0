//! How credentials travel in X API requests, written once for the
//! operator's X client and the scanner's `--verify`.

use base64::Engine;
use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay; everything else is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `Authorization` value of the token endpoints: `Basic` and the base64
/// of the URL-encoded id (API key or client id), `:`, and its secret.
pub fn basic_authorization(id: &[u8], secret: &[u8]) -> String {
    let pair = format!(
        "{}:{}",
        percent_encode(id, UNRESERVED),
        percent_encode(secret, UNRESERVED)
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A bearer token as sent after `Bearer `: X hands tokens out URL-encoded
/// (`%2B`, `%2F`, `%3D`) and expects them decoded in the header.
pub fn bearer_for_header(token: &[u8]) -> String {
    percent_decode(token).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X's documentation example ("Application-only authentication"). keyguard:allow
    #[test]
    fn basic_authorization_matches_the_documented_example() {
        let key = b"xvz1evFS4wEEPTGEFPHBog"; // keyguard:allow
        let secret = b"L8qq9PZyRg6ieKGEKhZolGC0vJWLw8iEJ88DRdyOg"; // keyguard:allow
        assert_eq!(
            basic_authorization(key, secret),
            "Basic eHZ6MWV2RlM0d0VFUFRHRUZQSEJvZzpMOHFxOVBaeVJnNmllS0dFS2hab2xHQzB2SldMdzhpRUo4OERSZHlPZw=="
        );
        // Reserved characters are URL-encoded before base64.
        assert_eq!(
            basic_authorization(b"a+b", b"c d"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("a%2Bb:c%20d")
            )
        );
    }

    #[test]
    fn bearer_tokens_are_decoded_for_the_header() {
        assert_eq!(bearer_for_header(b"AAAA%2Bb%2Fc%3D"), "AAAA+b/c=");
        assert_eq!(bearer_for_header(b"100%"), "100%");
    }
}

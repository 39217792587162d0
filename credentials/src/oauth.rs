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

/// Text from a server (an X API error `message` or `detail`) made fit to
/// store in a condition or an Event: anything shaped like a credential (a
/// run of 16 or more token characters with digits or mixed case; a server
/// may echo a request parameter) becomes `[redacted]`, and the whole is cut
/// to `max` bytes.
pub fn scrub_server_text(text: &str, max: usize) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "%+/=_-.~".contains(c);
    // Words such as `unauthorized_client` are long too, but credentials mix
    // cases or digits.
    let looks_random = |run: &str| {
        run.len() >= 16
            && (run.chars().any(|c| c.is_ascii_digit())
                || (run.chars().any(|c| c.is_ascii_uppercase())
                    && run.chars().any(|c| c.is_ascii_lowercase())))
    };
    let mut out = String::with_capacity(text.len().min(max));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if looks_random(run) {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut run, &mut out);
    if out.len() <= max {
        return out;
    }
    let mut end = max.saturating_sub(3);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &out[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_keeps_words_and_loses_anything_credential_shaped() {
        let cases = [
            ("Invalid or expired token.", "Invalid or expired token."),
            (
                "Unable to verify your credentials",
                "Unable to verify your credentials",
            ),
            (
                "Value passed for the token was invalid: dGhpc2lzYXJlZnJlc2h0b2tlbjox OK",
                "Value passed for the token was invalid: [redacted] OK",
            ),
            (
                "bad token \"AAAAAAAAAAAAAAAAAAAAAabc%2Bdef%3Dghi\", again",
                "bad token \"[redacted]\", again",
            ),
            ("line\nbreak", "line break"),
            (
                "unauthorized_client: Missing valid authorization header",
                "unauthorized_client: Missing valid authorization header",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(scrub_server_text(input, 200), want, "{input}");
        }
        assert!(scrub_server_text(&"word ".repeat(100), 50).len() <= 50);
    }

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

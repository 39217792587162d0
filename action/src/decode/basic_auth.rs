//! HTTP Basic credentials: `Authorization: Basic base64(id:secret)` (how
//! the bearer-token and confidential OAuth 2.0 client calls authenticate)
//! and `curl -u 'id:secret'`. The pair is rewritten as two assignments the
//! rules know; whether they count still depends on X being mentioned near
//! the header or in the path, as for any generic name.

use regex::bytes::Regex;

use super::view::decode_base64;
use super::view::View;

pub const ID: &str = "basic-auth";

#[derive(Debug)]
pub struct BasicAuth {
    header: Regex,
    curl: Regex,
}

impl BasicAuth {
    pub fn new() -> Self {
        BasicAuth {
            header: crate::ascii_regex::new(r"(?i)\bbasic[ \t]+(?P<b64>[A-Za-z0-9+/]{20,400}={0,2})").unwrap(),
            curl: crate::ascii_regex::new(
                r#"(?:^|[\s'"\x80-\xFF])(?:-u|--user)(?:[ \t]+|=)?["']?(?P<pair>[A-Za-z0-9_\-]{10,100}:[A-Za-z0-9_\-]{10,120})["']?(?:[\s'"\\\x80-\xFF]|$)"#,
            )
            .unwrap(),
        }
    }

    pub fn views(&self, buf: &[u8], out: &mut Vec<View>) {
        for c in self.header.captures_iter(buf) {
            let b64 = c.name("b64").unwrap();
            if let Some(pair) = decode_base64(b64.as_bytes()) {
                push(&pair, (b64.start(), b64.end()), out);
            }
        }
        // The expression has no literal to search for; most windows have
        // no `-u` at all.
        if memchr::memmem::find(buf, b"-u").is_none() {
            return;
        }
        for c in self.curl.captures_iter(buf) {
            let pair = c.name("pair").unwrap();
            push(pair.as_bytes(), (pair.start(), pair.end()), out);
        }
    }
}

/// `id:secret` as assignments; a client id (base64 of `…:1:ci`) pairs
/// with a client secret, anything else with an API key secret.
fn push(pair: &[u8], origin: (usize, usize), out: &mut Vec<View>) {
    let Some(colon) = memchr::memchr(b':', pair) else {
        return;
    };
    let (id, secret) = (&pair[..colon], &pair[colon + 1..]);
    if id.is_empty() || secret.is_empty() || !super::view::is_text(pair) {
        return;
    }
    let is_client = decode_base64(id).is_some_and(|d| d.ends_with(b":1:ci"));
    let (id_name, secret_name) = match is_client {
        true => ("client_id", "client_secret"),
        false => ("api_key", "api_key_secret"),
    };
    let mut text = Vec::with_capacity(pair.len() + 40);
    for (name, value) in [(id_name, id), (secret_name, secret)] {
        text.extend_from_slice(name.as_bytes());
        text.extend_from_slice(b" = \"");
        text.extend_from_slice(value);
        text.extend_from_slice(b"\"\n");
    }
    out.push(View {
        decoder: ID,
        text,
        origin,
    });
}

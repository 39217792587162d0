//! Credentials printed as a tuple or list with no names, as a notebook's
//! output cell shows `print((consumer_key, consumer_secret))`:
//! `('…', '…')` or `['…', '…', '…', '…']`, and a positional struct
//! literal written one item a line (Go's `credentials{ "…", "…", … }`). Only the shapes X issues, in
//! X's order (key, secret, then token, token secret), count, and only near
//! a mention of X.

use regex::bytes::Regex;

use super::view::View;

pub const ID: &str = "credential-tuples";

#[derive(Debug)]
pub struct Tuples {
    tuple: Regex,
}

impl Tuples {
    pub fn new() -> Self {
        use keyguard_credentials::{CredentialKey as K, Shape};
        let q = r#"\\?["']"#;
        // Every item must have its credential's shape: a pair of strings
        // that merely looks like a name and a value is no finding.
        let item = |group: &str, key: K| format!(r"{q}(?P<{group}>{}){q}", Shape::of(key).pattern);
        // One line or one item a line, as a formatter writes a struct or
        // array literal (`credentials{\n\t"…",\n\t"…",\n}` in Go).
        let sep = r"[ \t]*,[ \t]*\r?\n?[ \t]*";
        let close = r"[ \t]*,?[ \t]*\r?\n?[ \t]*[)\]}]";
        Tuples {
            tuple: crate::ascii_regex::new(&format!(
                r"[(\[{{][ \t]*\r?\n?[ \t]*{}{sep}{}(?:{sep}{}{sep}{})?{close}",
                item("key", K::ApiKey),
                item("secret", K::ApiKeySecret),
                item("token", K::AccessToken),
                item("token_secret", K::AccessTokenSecret),
            ))
            .unwrap(),
        }
    }

    pub fn views(&self, window: &[u8], out: &mut Vec<View>) {
        for c in self.tuple.captures_iter(window) {
            let mut text = Vec::new();
            for (group, name) in [
                ("key", "twitter_consumer_key"),
                ("secret", "twitter_consumer_secret"),
                ("token", "twitter_access_token"),
                ("token_secret", "twitter_access_token_secret"),
            ] {
                if let Some(v) = c.name(group) {
                    text.extend_from_slice(name.as_bytes());
                    text.extend_from_slice(b" = \"");
                    text.extend_from_slice(v.as_bytes());
                    text.extend_from_slice(b"\"\n");
                }
            }
            let whole = c.get(0).unwrap();
            out.push(View {
                decoder: ID,
                text,
                origin: (whole.start(), whole.end()),
            });
        }
    }
}

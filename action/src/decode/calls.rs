//! Positional arguments of well-known X client constructors and calls
//! (`tweepy.OAuth1UserHandler("…", "…")`, `twitter.Api(…)`,
//! `oauth1.NewConfig(…)`, `new TwitterApi("…")`): which credential each
//! position holds is data (`calls:` in the rules file). A string literal
//! in a known position is named for its credential.

use keyguard_credentials::CredentialKey;
use regex::bytes::Regex;
use serde::Deserialize;

use super::view::View;

/// A well-known X client call and the credential each positional
/// argument holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// A regular expression for the callee, e.g. `tweepy\.Client`.
    pub call: String,
    pub args: Vec<CredentialKey>,
}

pub const ID: &str = "call-arguments";

#[derive(Debug)]
pub struct Calls {
    /// Any of the calls: one search per window.
    any: Option<Regex>,
    calls: Vec<(Regex, Vec<CredentialKey>)>,
}

/// The name a credential is given in a view (mentions X, so no other
/// context is needed: the call itself is an X client's).
fn name_of(key: CredentialKey) -> &'static str {
    match key {
        CredentialKey::ApiKey => "twitter_consumer_key",
        CredentialKey::ApiKeySecret => "twitter_consumer_secret",
        CredentialKey::AccessToken => "twitter_access_token",
        CredentialKey::AccessTokenSecret => "twitter_access_token_secret",
        CredentialKey::BearerToken => "twitter_bearer_token",
        CredentialKey::ClientId => "twitter_client_id",
        CredentialKey::ClientSecret => "twitter_client_secret",
        CredentialKey::RefreshToken => "twitter_refresh_token",
        CredentialKey::UserAccessToken => "twitter_user_access_token",
    }
}

/// Top-level arguments of a call whose `(` is at `open`: spans of the
/// string literals' contents, `None` for other arguments.
fn arguments(buf: &[u8], open: usize) -> Vec<Option<(usize, usize)>> {
    let mut args = Vec::new();
    let (mut depth, mut i, mut literal, mut other) = (0usize, open + 1, None, false);
    let limit = (open + 2048).min(buf.len());
    while i < limit {
        match buf[i] {
            q @ (b'"' | b'\'') => {
                let start = i + 1;
                let mut j = start;
                while j < limit && buf[j] != q && buf[j] != b'\n' {
                    j += if buf[j] == b'\\' { 2 } else { 1 };
                }
                if depth == 0 && literal.is_none() && !other {
                    literal = Some((start, j.min(limit)));
                } else {
                    other = true;
                }
                i = j + 1;
                continue;
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                other = true;
            }
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b')' | b',' if depth == 0 => {
                args.push(if other { None } else { literal });
                literal = None;
                other = false;
                if buf[i] == b')' {
                    return args;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => other = true,
        }
        i += 1;
    }
    args
}

impl Calls {
    pub fn new(specs: &[CallSpec]) -> Self {
        let any = (!specs.is_empty()).then(|| {
            let all: Vec<String> = specs.iter().map(|c| format!("(?:{})", c.call)).collect();
            crate::ascii_regex::new(&format!(r"(?:{})[ \t]*\(", all.join("|")))
                .expect("call patterns are checked when the rules load")
        });
        Calls {
            any,
            calls: specs
                .iter()
                .map(|c| {
                    let re = crate::ascii_regex::new(&format!(r"(?:{})[ \t]*\(", c.call))
                        .expect("call patterns are checked when the rules load");
                    (re, c.args.clone())
                })
                .collect(),
        }
    }

    pub fn views(&self, window: &[u8], out: &mut Vec<View>) {
        let Some(any) = &self.any else { return };
        for hit in any.find_iter(window) {
            let Some((keys, m)) = self.calls.iter().find_map(|(re, keys)| {
                let m = re.find_at(window, hit.start())?;
                (m.start() == hit.start()).then_some((keys, m))
            }) else {
                continue;
            };
            {
                let args = arguments(window, m.end() - 1);
                for (key, arg) in keys.iter().zip(args) {
                    let Some((s, e)) = arg.filter(|(s, e)| e > s) else {
                        continue;
                    };
                    let mut text = name_of(*key).as_bytes().to_vec();
                    text.extend_from_slice(b" = \"");
                    text.extend_from_slice(&window[s..e]);
                    text.extend_from_slice(b"\"\n");
                    out.push(View {
                        decoder: ID,
                        text,
                        origin: (s, e),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_split_at_the_top_level() {
        let text = br#"f("a", x, g(1, 2), "b,c", 'd')"#;
        let spans: Vec<Option<String>> = arguments(text, 1)
            .into_iter()
            .map(|a| a.map(|(s, e)| String::from_utf8_lossy(&text[s..e]).into_owned()))
            .collect();
        assert_eq!(
            spans,
            vec![
                Some("a".into()),
                None,
                None,
                Some("b,c".into()),
                Some("d".into())
            ]
        );
    }
}

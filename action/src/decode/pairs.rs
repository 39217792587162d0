//! A name and its value in sibling JSON fields, as Postman collections
//! (`{"key": "consumer_key", "value": "…"}`), HAR files and many APIs'
//! settings lists (`{"name": "TWITTER_BEARER_TOKEN", "value": "…"}`) hold
//! them: rewritten as `name = "value"` for the rules. Postman's Basic
//! auth block (`"basic": [{"key": "username", …}, {"key": "password", …}]`)
//! names the API key and its secret when the request goes to X's token
//! endpoint: the rules' X context requirement decides that.

use regex::bytes::Regex;

use super::view::View;

pub const ID: &str = "name-value-fields";

#[derive(Debug)]
pub struct NameValueFields {
    name_first: Regex,
    value_first: Regex,
}

impl NameValueFields {
    pub fn new() -> Self {
        let name = r#""(?:key|name|variable|id)"[ \t]*:[ \t]*"(?P<name>[A-Za-z0-9_.\- ]{1,100})""#;
        let value = r#""value"[ \t]*:[ \t]*"(?P<value>[^"\\\r\n]{8,600})""#;
        // The regexes count bytes (`ascii_regex.rs`): 400 bytes keep room
        // for a 100-character description in any script between the two.
        let between = r#"[ \t]*,[ \t\r\n]*(?:"[a-z]+"[ \t]*:[ \t]*(?:"[^"\r\n]{0,400}"|true|false|null|[0-9]+)[ \t]*,[ \t\r\n]*)?"#;
        NameValueFields {
            name_first: crate::ascii_regex::new(&format!("{name}{between}{value}")).unwrap(),
            value_first: crate::ascii_regex::new(&format!("{value}{between}{name}")).unwrap(),
        }
    }

    pub fn views(&self, buf: &[u8], out: &mut Vec<View>) {
        if memchr::memmem::find(buf, b"\"value\"").is_none() {
            return;
        }
        for re in [&self.name_first, &self.value_first] {
            for c in re.captures_iter(buf) {
                let (name, value) = (c.name("name").unwrap(), c.name("value").unwrap());
                let whole = c.get(0).unwrap();
                let name = basic_auth_name(buf, whole.start(), name.as_bytes());
                let mut text = name.to_vec();
                text.extend_from_slice(b" = \"");
                text.extend_from_slice(value.as_bytes());
                text.extend_from_slice(b"\"\n");
                out.push(View {
                    decoder: ID,
                    text,
                    origin: (value.start(), value.end()),
                });
            }
        }
    }
}

/// How far before a field Postman's `"basic"` auth type is looked for.
const BASIC_AUTH_REACH: usize = 400;

/// In a Basic auth block, `username` and `password` are what X's token
/// endpoint takes as the API key and its secret; elsewhere names stay.
fn basic_auth_name<'a>(buf: &[u8], field_start: usize, name: &'a [u8]) -> &'a [u8] {
    let renamed: &'a [u8] = match name {
        b"username" => b"api_key",
        b"password" => b"api_key_secret",
        _ => return name,
    };
    let from = field_start.saturating_sub(BASIC_AUTH_REACH);
    if memchr::memmem::find(&buf[from..field_start], b"\"basic\"").is_some() {
        renamed
    } else {
        name
    }
}

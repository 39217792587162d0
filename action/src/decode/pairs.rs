//! A name and its value in sibling JSON fields, as Postman collections
//! (`{"key": "consumer_key", "value": "…"}`), HAR files and many APIs'
//! settings lists (`{"name": "TWITTER_BEARER_TOKEN", "value": "…"}`) hold
//! them: rewritten as `name = "value"` for the rules.

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
        let between = r#"[ \t]*,[ \t\r\n]*(?:"[a-z]+"[ \t]*:[ \t]*(?:"[^"\r\n]{0,100}"|true|false|null|[0-9]+)[ \t]*,[ \t\r\n]*)?"#;
        NameValueFields {
            name_first: Regex::new(&format!("{name}{between}{value}")).unwrap(),
            value_first: Regex::new(&format!("{value}{between}{name}")).unwrap(),
        }
    }

    pub fn views(&self, buf: &[u8], out: &mut Vec<View>) {
        if memchr::memmem::find(buf, b"\"value\"").is_none() {
            return;
        }
        for re in [&self.name_first, &self.value_first] {
            for c in re.captures_iter(buf) {
                let (name, value) = (c.name("name").unwrap(), c.name("value").unwrap());
                let mut text = name.as_bytes().to_vec();
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

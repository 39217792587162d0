//! A value split over adjacent string literals, as people do to get past
//! a line-length limit or a naive scanner: `"AAAA" + "BBBB"` (Java, JS,
//! Python, Go, C#), `"AAAA" "BBBB"` (Python, C), `'AAAA' . 'BBBB'` (PHP,
//! Perl), `"AAAA" & "BBBB"` (VB), `'AAAA' || 'BBBB'` (SQL), `..` (Lua),
//! also across lines. The literals are joined in a view of the line.

use regex::bytes::Regex;

use super::view::{line_around, View};

pub const ID: &str = "concatenation";

#[derive(Debug)]
pub struct Concatenation {
    joined: Regex,
    literal: Regex,
}

const LITERAL: &str = r#"(?:"[A-Za-z0-9%+/=_\-]{2,200}"|'[A-Za-z0-9%+/=_\-]{2,200}')"#;

impl Concatenation {
    pub fn new() -> Self {
        let glue = r"[ \t]*(?:\+|\.\.?|&|\|\|)?[ \t]*(?:\\?\r?\n[ \t]*(?:\+|\.\.?|&|\|\|)?[ \t]*)?";
        Concatenation {
            joined: Regex::new(&format!("{LITERAL}(?:{glue}{LITERAL})+")).unwrap(),
            literal: Regex::new(LITERAL).unwrap(),
        }
    }

    pub fn views(&self, buf: &[u8], out: &mut Vec<View>) {
        for m in self.joined.find_iter(buf) {
            let (line_start, _) = line_around(buf, m.start(), m.start(), 512);
            let (_, line_end) = line_around(buf, m.end(), m.end(), 512);
            // `x = ("AAAA"\n "BBBB")`: the parenthesis only groups.
            let mut prefix = &buf[line_start..m.start()];
            while let [rest @ .., b' ' | b'\t' | b'('] = prefix {
                prefix = rest;
            }
            let mut text = prefix.to_vec();
            text.push(b' ');
            text.push(b'"');
            for lit in self.literal.find_iter(m.as_bytes()) {
                let l = lit.as_bytes();
                text.extend_from_slice(&l[1..l.len() - 1]);
            }
            text.push(b'"');
            text.extend_from_slice(&buf[m.end()..line_end]);
            out.push(View {
                decoder: ID,
                text,
                origin: (m.start(), m.end()),
            });
        }
    }
}

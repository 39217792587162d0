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

/// One quoted literal of credential characters.
pub const LITERAL: &str = r#"(?:"[A-Za-z0-9%+/=_\-]{2,200}"|'[A-Za-z0-9%+/=_\-]{2,200}')"#;
/// What may stand between two joined literals (an operator, a line break).
pub const GLUE: &str =
    r"[ \t]*(?:\+|\.\.?|&|\|\|)?[ \t]*(?:\\?\r?\n[ \t]*(?:\+|\.\.?|&|\|\|)?[ \t]*)?";

impl Concatenation {
    pub fn new() -> Self {
        Concatenation {
            joined: crate::ascii_regex::new(&format!("{LITERAL}(?:{GLUE}{LITERAL})+")).unwrap(),
            literal: crate::ascii_regex::new(LITERAL).unwrap(),
        }
    }

    pub fn views(&self, buf: &[u8], out: &mut Vec<View>) {
        for m in self.joined.find_iter(buf) {
            let (_, line_end) = line_around(buf, m.end(), m.end(), 512);
            let prefix = name_before(buf, m.start());
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

/// The text before a joined literal that names it: its own line up to
/// the first literal, or, when that holds nothing but the literal's
/// indentation, the line above too (`const SECRET =\n  'AAAA' +\n …`).
/// A grouping parenthesis (`x = ("AAAA"\n "BBBB")`) is dropped.
fn name_before(buf: &[u8], literal_start: usize) -> &[u8] {
    let (line_start, _) = line_around(buf, literal_start, literal_start, 512);
    let own = trim(&buf[line_start..literal_start]);
    if !own.is_empty() || line_start == 0 {
        return own;
    }
    let (above, _) = line_around(buf, line_start - 1, line_start - 1, 512);
    trim(&buf[above..literal_start])
}

fn trim(mut text: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n' | b'('] = text {
        text = rest;
    }
    text
}

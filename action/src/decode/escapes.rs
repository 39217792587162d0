//! Escapes that hide a value from a plain search: JSON `\uXXXX` (.NET
//! writes `+` as `\u002B`, Gson `=` as `\u003d`) and percent-encoding
//! applied twice (`%252B`). The line holding them is decoded once; the
//! detector decodes its view again if it needs more.

use memchr::memmem;

use super::view::{line_around, View};

pub const JSON_ID: &str = "json-unicode";
pub const PERCENT_ID: &str = "percent-twice";
/// Lines longer than this are decoded only this far around the escape.
const RADIUS: usize = 4096;

#[derive(Debug)]
pub struct Escapes {
    unicode: memmem::Finder<'static>,
    percent: memmem::Finder<'static>,
}

impl Escapes {
    pub fn new() -> Self {
        Escapes {
            unicode: memmem::Finder::new(b"\\u00"),
            percent: memmem::Finder::new(b"%25"),
        }
    }

    /// Views of the lines with escapes inside `windows`.
    pub fn views(&self, buf: &[u8], windows: &[(usize, usize)], out: &mut Vec<View>) {
        for &(s, e) in windows {
            let within = |f: &memmem::Finder<'static>| -> Vec<usize> {
                f.find_iter(&buf[s..e]).map(|at| s + at).collect()
            };
            let unicode = within(&self.unicode);
            lines_with(buf, unicode.into_iter(), JSON_ID, unescape_json, out);
            let percent = within(&self.percent);
            lines_with(buf, percent.into_iter(), PERCENT_ID, percent_decode, out);
        }
    }
}

/// One view per line that holds a trigger, decoded by `decode`.
fn lines_with(
    buf: &[u8],
    hits: impl Iterator<Item = usize>,
    decoder: &'static str,
    decode: fn(&[u8]) -> Vec<u8>,
    out: &mut Vec<View>,
) {
    let mut done_until = 0;
    for at in hits {
        if at < done_until {
            continue;
        }
        let (s, e) = line_around(buf, at, at, RADIUS);
        done_until = e;
        let text = decode(&buf[s..e]);
        if text != buf[s..e] {
            out.push(View {
                decoder,
                text,
                origin: (s, e),
            });
        }
    }
}

/// Pure: `\uXXXX` escapes of ASCII characters decoded, the rest kept.
pub fn unescape_json(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' && line.get(i + 1) == Some(&b'u') && i + 6 <= line.len() {
            let hex = std::str::from_utf8(&line[i + 2..i + 6]).ok();
            if let Some(c) = hex.and_then(|h| {
                u8::from_str_radix(h, 16)
                    .ok()
                    .filter(|_| h.starts_with("00"))
            }) {
                if c.is_ascii() {
                    out.push(c);
                    i += 6;
                    continue;
                }
            }
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

/// Pure: one level of percent-decoding.
pub fn percent_decode(line: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_undone_once() {
        type Decode = fn(&[u8]) -> Vec<u8>;
        let cases: [(&str, Decode, &str, &str); 5] = [
            ("a .NET plus", unescape_json, r"abc\u002Bdef", "abc+def"),
            ("a Gson equals", unescape_json, r"abc\u003ddef", "abc=def"),
            ("non-ASCII kept", unescape_json, r"caf\u00e9", r"caf\u00e9"),
            (
                "a cut-off escape kept",
                unescape_json,
                r"abc\u00",
                r"abc\u00",
            ),
            (
                "twice encoded, once decoded",
                percent_decode,
                "a%252Bb",
                "a%2Bb",
            ),
        ];
        for (what, decode, input, want) in cases {
            assert_eq!(
                String::from_utf8(decode(input.as_bytes())).unwrap(),
                want,
                "{what}"
            );
        }
    }
}

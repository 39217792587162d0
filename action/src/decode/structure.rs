//! Names that are not right next to their value: nested keys in YAML,
//! JSON, JavaScript objects and HCL blocks (`twitter: {consumer: {key: …}}`,
//! `variable "twitter_api_key" { default = "…" }`). The path of keys down
//! to a value is joined into one name (`twitter_consumer_key = "…"`), which
//! the rules then read like any assignment.

use super::view::View;

pub const ID: &str = "nested-keys";

/// Values longer than this are not credentials.
const MAX_VALUE: usize = 512;

/// Finds nested names in a window of text.
#[derive(Debug, Default)]
pub struct NestedKeys;

impl NestedKeys {
    pub fn views(&self, window: &[u8], out: &mut Vec<View>) {
        braces(window, out);
        indentation(window, out);
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

/// The path joined with the leaf name as one identifier.
fn push(path: &[Vec<u8>], leaf: &[u8], value: (usize, usize), window: &[u8], out: &mut Vec<View>) {
    if path.is_empty() || value.1 - value.0 > MAX_VALUE || value.1 <= value.0 {
        return;
    }
    let mut text = Vec::new();
    for p in path.iter().map(|p| p.as_slice()).chain([leaf]) {
        if !text.is_empty() {
            text.push(b'_');
        }
        text.extend(p.iter().map(|&b| if is_ident(b) { b } else { b'_' }));
    }
    text.extend_from_slice(b" = \"");
    text.extend_from_slice(&window[value.0..value.1]);
    text.extend_from_slice(b"\"\n");
    out.push(View {
        decoder: ID,
        text,
        origin: value,
    });
}

/// A token of brace-structured text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A quoted string or a bare word: its content's span.
    Word(usize, usize),
    Open,
    Close,
    /// `:` or `=`.
    Assign,
    Other,
}

fn tokens(w: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < w.len() {
        let b = w[i];
        match b {
            b'"' | b'\'' | b'`' => {
                let start = i + 1;
                let mut j = start;
                while j < w.len() && w[j] != b && w[j] != b'\n' {
                    j += if w[j] == b'\\' { 2 } else { 1 };
                }
                out.push(Token::Word(start, j.min(w.len())));
                i = j + 1;
            }
            b'{' => {
                out.push(Token::Open);
                i += 1;
            }
            b'}' => {
                out.push(Token::Close);
                i += 1;
            }
            b':' | b'=' => {
                out.push(Token::Assign);
                i += if w.get(i + 1) == Some(&b'>') { 2 } else { 1 };
            }
            b if is_ident(b) => {
                let start = i;
                while i < w.len() && is_ident(w[i]) {
                    i += 1;
                }
                out.push(Token::Word(start, i));
            }
            b' ' | b'\t' | b'\r' | b'\n' | b',' | b';' => i += 1,
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
}

/// `{` opens a level named by the key before it (`key: {`, `key = {`) or
/// by a block's last label (`variable "name" {`).
fn braces(w: &[u8], out: &mut Vec<View>) {
    let toks = tokens(w);
    let mut path: Vec<Vec<u8>> = Vec::new();
    // How many names each open brace pushed (0 for an unnamed one).
    let mut pushed: Vec<bool> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t {
            Token::Open => {
                let name = match (
                    i.checked_sub(2).map(|p| toks[p]),
                    i.checked_sub(1).map(|p| toks[p]),
                ) {
                    (Some(Token::Word(s, e)), Some(Token::Assign)) => Some((s, e)),
                    (_, Some(Token::Word(s, e))) => Some((s, e)),
                    _ => None,
                };
                pushed.push(name.is_some());
                if let Some((s, e)) = name {
                    path.push(w[s..e].to_vec());
                }
            }
            // The guard pops either way; only a named level has a name to drop.
            Token::Close if pushed.pop() == Some(true) => {
                path.pop();
            }
            Token::Assign => {
                if let (Some(Token::Word(ks, ke)), Some(Token::Word(vs, ve))) =
                    (i.checked_sub(1).map(|p| toks[p]), toks.get(i + 1).copied())
                {
                    let followed_by_open = toks.get(i + 2) == Some(&Token::Open);
                    if !followed_by_open {
                        push(&path, &w[ks..ke], (vs, ve), w, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// YAML's block style: a key whose value is indented below it.
fn indentation(w: &[u8], out: &mut Vec<View>) {
    let mut path: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut at = 0;
    for line in w.split(|&b| b == b'\n') {
        let start = at;
        at += line.len() + 1;
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let rest = &line[indent..];
        let rest = rest.strip_prefix(b"- ").unwrap_or(rest);
        let Some(colon) = memchr::memchr(b':', rest) else {
            continue;
        };
        let key = &rest[..colon];
        if key.is_empty() || !key.iter().all(|&b| is_ident(b) || b == b'"' || b == b'\'') {
            continue;
        }
        let key: Vec<u8> = key
            .iter()
            .copied()
            .filter(|&b| b != b'"' && b != b'\'')
            .collect();
        while path.last().is_some_and(|(i, _)| *i >= indent) {
            path.pop();
        }
        let value = rest[colon + 1..].trim_ascii();
        if value.is_empty() {
            path.push((indent, key));
            continue;
        }
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .or_else(|| value.strip_prefix(b"'").and_then(|v| v.strip_suffix(b"'")))
            .unwrap_or(value);
        if value.starts_with(b"{") || value.starts_with(b"[") {
            continue;
        }
        let offset = start + (value.as_ptr() as usize - line.as_ptr() as usize);
        let names: Vec<Vec<u8>> = path.iter().map(|(_, k)| k.clone()).collect();
        push(&names, &key, (offset, offset + value.len()), w, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        NestedKeys.views(text.as_bytes(), &mut out);
        out.iter()
            .map(|v| String::from_utf8_lossy(&v.text).trim().to_string())
            .collect()
    }

    #[test]
    fn nested_names_are_joined_down_to_the_value() {
        let cases: [(&str, &str, &[&str]); 6] = [
            (
                "yaml blocks",
                "twitter:\n  consumer:\n    key: abc123\n",
                &["twitter_consumer_key = \"abc123\""],
            ),
            (
                "yaml siblings",
                "x:\n  a: 1\ny:\n  b: 'two'\n",
                &["x_a = \"1\"", "y_b = \"two\""],
            ),
            (
                "json",
                r#"{"twitter": {"consumer": {"key": "abc123"}}}"#,
                &["twitter_consumer_key = \"abc123\""],
            ),
            (
                "js object",
                "const c = {twitter: {consumerKey: 'abc'}}",
                &["c_twitter_consumerKey = \"abc\""],
            ),
            (
                "hcl block",
                "variable \"twitter_api_key\" {\n  default = \"abc\"\n}",
                &["twitter_api_key_default = \"abc\""],
            ),
            ("flat is left to the rules", "key: abc\n", &[]),
        ];
        for (what, text, want) in cases {
            assert_eq!(names(text), want, "{what}");
        }
    }
}

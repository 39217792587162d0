//! Base64 blobs that hold text with credentials in it: an env file or a
//! JSON config encoded into a CI variable, a Helm value, a notebook. Found
//! by the base64 forms (all three alignments) of words such text always
//! has (`base64_words` in the rules file: every marker costs keyword-search
//! speed on every file, so they are few), widened to the whole run of base64, decoded, and kept only when
//! the result reads as text; the detector decodes views again up to
//! `MAX_DEPTH` (base64 in base64).

use aho_corasick::AhoCorasick;
use keyguard_credentials::base64_marker_variants;
use serde::Deserialize;

use super::view::decode_base64;
use super::view::{is_text, View, MAX_DEPTH, MAX_VIEW_BYTES};

pub const ID: &str = "base64";

/// Words looked for in their base64 forms (`base64_words` in the rules
/// file).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base64Words {
    pub once: Vec<String>,
    #[serde(default)]
    pub nested: Vec<String>,
}

/// The base64 forms of the rules file's `base64_words`: `once` words
/// encoded once, `nested` ones also encoded again at each depth the
/// detector decodes (`MAX_DEPTH`), so base64 in base64 in base64 is found.
pub fn markers(words: &Base64Words) -> Vec<String> {
    let encode = |words: &[String], min_len: usize| -> Vec<String> {
        words
            .iter()
            .flat_map(|w| base64_marker_variants(w))
            .filter(|m| m.len() >= min_len)
            .collect()
    };
    let mut markers = encode(&words.once, 6);
    let mut nested = words.nested.clone();
    for depth in 1..MAX_DEPTH {
        nested = encode(&nested, 6 + 2 * depth as usize);
        markers.extend(encode(&nested, 8));
    }
    markers.sort();
    markers.dedup();
    markers
}

#[derive(Debug)]
pub struct Base64Blobs {
    markers: AhoCorasick,
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

impl Base64Blobs {
    pub fn new(words: &Base64Words) -> Self {
        Base64Blobs {
            markers: AhoCorasick::new(markers(words)).expect("markers form an automaton"),
        }
    }

    /// Views of the base64 runs that hold a marker inside `windows`,
    /// widened over the whole buffer.
    pub fn views(&self, buf: &[u8], windows: &[(usize, usize)], out: &mut Vec<View>) {
        let mut done_until = 0;
        for &(ws, we) in windows {
            for hit in self.markers.find_iter(&buf[ws..we]) {
                let (hs, he) = (ws + hit.start(), ws + hit.end());
                if hs < done_until {
                    continue;
                }
                let mut start = hs;
                while start > 0 && is_b64(buf[start - 1]) {
                    start -= 1;
                }
                let mut end = he;
                while end < buf.len() && is_b64(buf[end]) {
                    end += 1;
                }
                while end < buf.len() && buf[end] == b'=' {
                    end += 1;
                }
                done_until = end;
                if end - start < 16 || end - start > MAX_VIEW_BYTES {
                    continue;
                }
                if let Some(text) = decode_base64(&buf[start..end]).filter(|t| is_text(t)) {
                    out.push(View {
                        decoder: ID,
                        text,
                        origin: (start, end),
                    });
                }
            }
        }
    }
}

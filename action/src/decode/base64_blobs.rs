//! Base64 blobs that hold text with credentials in it: an env file or a
//! JSON config encoded into a CI variable, a Helm value, a notebook. Found
//! by the base64 forms (all three alignments) of words such text always
//! has, widened to the whole run of base64, decoded, and kept only when
//! the result reads as text; the detector decodes views again up to
//! `MAX_DEPTH` (base64 in base64).

use aho_corasick::AhoCorasick;
use keyguard_credentials::base64_marker_variants;

use super::view::decode_base64;
use super::view::{is_text, View, MAX_VIEW_BYTES};

pub const ID: &str = "base64";

/// Words text around an X credential has, in the cases people write
/// (an env file's `TWITTER_…`, a JSON config's `"twitter"`): few, since
/// every marker costs keyword-search speed on every file.
const WORDS: [&str; 5] = ["twitter", "TWITTER", "consumer", "CONSUMER", "bearer"];
/// Base64 of base64 is looked for only by its most common word.
const TWICE: [&str; 1] = ["TWITTER"];

/// The base64 forms of `WORDS` (and of `TWICE`'s base64 forms).
pub fn markers() -> Vec<String> {
    let once = |words: &[&str]| -> Vec<String> {
        words
            .iter()
            .flat_map(|w| base64_marker_variants(w))
            .filter(|m| m.len() >= 6)
            .collect()
    };
    // Base64 of base64 (a CI variable holding an encoded env file).
    let twice: Vec<String> = once(&TWICE)
        .iter()
        .flat_map(|m| base64_marker_variants(m))
        .filter(|m| m.len() >= 8)
        .collect();
    let mut markers: Vec<String> = once(&WORDS).into_iter().chain(twice).collect();
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
    pub fn new() -> Self {
        Base64Blobs {
            markers: AhoCorasick::new(markers()).expect("markers form an automaton"),
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

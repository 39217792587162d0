//! The keyword prefilter: where in a buffer any rule could match, found
//! with SIMD literal search (Teddy) so the bytes between hits cost almost
//! nothing.
//!
//! One automaton with ASCII case folding was the scanner's single largest
//! cost (60% of a tree scan's CPU in `perf`): case folding turns off
//! aho-corasick's packed searchers, so it stepped a DFA over every byte.
//! Here the keywords are matched case-sensitively against an ASCII
//! lowercase copy of the buffer (the same matches as folding, positions
//! unchanged), and the base64 markers, which must match exactly, against
//! the buffer itself, in groups small enough for Teddy.

use std::cell::RefCell;

use aho_corasick::packed::{Config, MatchKind, Searcher};

/// How many patterns one Teddy searcher takes before it falls back to a
/// slower algorithm.
const PER_SEARCHER: usize = 64;

/// A lowercase copy larger than this (a buffer past the scanner's 4 MiB
/// chunks) is freed after use rather than kept for the thread's life.
const KEEP_COPY: usize = 8 << 20;

#[derive(Debug)]
pub struct Prefilter {
    /// Lowercase keywords, run over a lowercase copy.
    words: Option<Searcher>,
    /// Case-sensitive markers, run over the buffer.
    markers: Vec<Searcher>,
}

thread_local! {
    /// The lowercase copy, reused so a scan allocates it once per thread.
    static LOWERCASE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Prefilter {
    pub fn new(keywords: &[String], markers: &[String]) -> Self {
        let words = searcher(keywords.iter().map(|w| w.to_ascii_lowercase()));
        let markers = markers
            .chunks(PER_SEARCHER)
            .filter_map(|group| searcher(group.iter().cloned()))
            .collect();
        Prefilter { words, markers }
    }

    /// Every hit in `buf` as `(start, end)`, ordered by start.
    pub fn hits(&self, buf: &[u8]) -> Vec<(usize, usize)> {
        let mut hits = Vec::new();
        if let Some(words) = &self.words {
            LOWERCASE.with_borrow_mut(|lower| {
                lower.clear();
                lower.extend_from_slice(buf);
                lower.make_ascii_lowercase();
                hits.extend(words.find_iter(&lower[..]).map(|m| (m.start(), m.end())));
                if lower.capacity() > KEEP_COPY {
                    *lower = Vec::new();
                }
            });
        }
        for markers in &self.markers {
            hits.extend(markers.find_iter(buf).map(|m| (m.start(), m.end())));
        }
        if !self.markers.is_empty() {
            hits.sort_unstable();
        }
        hits
    }
}

fn searcher(patterns: impl Iterator<Item = String>) -> Option<Searcher> {
    let mut builder = Config::new().match_kind(MatchKind::LeftmostFirst).builder();
    let mut any = false;
    for p in patterns.filter(|p| !p.is_empty()) {
        builder.add(p);
        any = true;
    }
    match any {
        true => Some(builder.build().expect("a packed searcher for the keywords")),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(words: &[&str], markers: &[&str], text: &str) -> Vec<String> {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Prefilter::new(&own(words), &own(markers))
            .hits(text.as_bytes())
            .into_iter()
            .map(|(s, e)| text[s..e].to_string())
            .collect()
    }

    #[test]
    fn keywords_match_in_any_case_and_markers_only_exactly() {
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            &'a str,
            &'a [&'a str],
        );
        let cases: [Case; 5] = [
            (
                "any case",
                &["token"],
                &[],
                "TOKEN Token tOkEn",
                &["TOKEN", "Token", "tOkEn"],
            ),
            (
                "a keyword given in upper case",
                &["AAAA"],
                &[],
                "xaaaa",
                &["aaaa"],
            ),
            (
                "a marker exactly",
                &[],
                &["dHdpdHRlc"],
                "=dHdpdHRlc=",
                &["dHdpdHRlc"],
            ),
            (
                "a marker in another case is not one",
                &[],
                &["dHdpdHRlc"],
                "DHDPDHRLC",
                &[],
            ),
            ("nothing", &["token"], &["dHdpdHRlc"], "nothing here", &[]),
        ];
        for (what, words, markers, text, want) in cases {
            assert_eq!(hits(words, markers, text), want.to_vec(), "{what}");
        }
    }

    #[test]
    fn hits_of_both_kinds_come_in_order() {
        let markers: Vec<String> = (0..150).map(|i| format!("M{i:03}x")).collect();
        let words = vec!["secret".to_string()];
        let text = "M149x SECRET M000x secret M070x";
        let found: Vec<&str> = Prefilter::new(&words, &markers)
            .hits(text.as_bytes())
            .into_iter()
            .map(|(s, e)| &text[s..e])
            .collect();
        assert_eq!(found, ["M149x", "SECRET", "M000x", "secret", "M070x"]);
    }
}

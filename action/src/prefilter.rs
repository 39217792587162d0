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

use aho_corasick::packed::{Config, MatchKind};
use aho_corasick::AhoCorasick;

/// How many patterns one Teddy searcher takes before it falls back to a
/// slower algorithm.
const PER_SEARCHER: usize = 64;

/// A lowercase copy larger than this (a buffer past the scanner's 4 MiB
/// chunks) is freed after use rather than kept for the thread's life.
const KEEP_COPY: usize = 8 << 20;

#[derive(Debug)]
pub struct Prefilter {
    /// Lowercase keywords, run over a lowercase copy.
    words: Vec<Searcher>,
    /// Case-sensitive markers, run over the buffer.
    markers: Vec<Searcher>,
}

thread_local! {
    /// The lowercase copy, reused so a scan allocates it once per thread.
    static LOWERCASE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Prefilter {
    pub fn new(keywords: &[String], markers: &[String]) -> Self {
        let lowercase: Vec<String> = keywords.iter().map(|w| w.to_ascii_lowercase()).collect();
        let words = lowercase
            .chunks(PER_SEARCHER)
            .filter_map(|group| searcher(group.iter().cloned()))
            .collect();
        let markers = markers
            .chunks(PER_SEARCHER)
            .filter_map(|group| searcher(group.iter().cloned()))
            .collect();
        Prefilter { words, markers }
    }

    /// Every hit in `buf` as `(start, end)`, ordered by start.
    pub fn hits(&self, buf: &[u8]) -> Vec<(usize, usize)> {
        let mut hits = Vec::new();
        if !self.words.is_empty() {
            LOWERCASE.with_borrow_mut(|lower| {
                lower.clear();
                lower.extend_from_slice(buf);
                lower.make_ascii_lowercase();
                for words in &self.words {
                    words.find_each(&lower[..], &mut hits);
                }
                if lower.capacity() > KEEP_COPY {
                    *lower = Vec::new();
                }
            });
        }
        for markers in &self.markers {
            markers.find_each(buf, &mut hits);
        }
        if self.words.len() + self.markers.len() > 1 {
            hits.sort_unstable();
        }
        hits
    }
}

/// One group of literals: Teddy where this CPU and target have it (x86_64
/// with SSSE3, aarch64), aho-corasick without case folding anywhere else,
/// so a scan never depends on the machine having SIMD.
#[derive(Debug)]
enum Searcher {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl Searcher {
    fn find_each(&self, haystack: &[u8], hits: &mut Vec<(usize, usize)>) {
        match self {
            Searcher::Packed(s) => hits.extend(s.find_iter(haystack).map(|m| (m.start(), m.end()))),
            Searcher::Automaton(a) => {
                hits.extend(a.find_iter(haystack).map(|m| (m.start(), m.end())))
            }
        }
    }
}

fn searcher(patterns: impl Iterator<Item = String>) -> Option<Searcher> {
    let patterns: Vec<String> = patterns.filter(|p| !p.is_empty()).collect();
    if patterns.is_empty() {
        return None;
    }
    let mut builder = Config::new().match_kind(MatchKind::LeftmostFirst).builder();
    builder.extend(&patterns);
    if let Some(packed) = builder.build() {
        return Some(Searcher::Packed(packed));
    }
    let automaton = AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(&patterns)
        .expect("literal patterns always form an automaton");
    Some(Searcher::Automaton(automaton))
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
    fn patterns_teddy_cannot_take_are_still_found() {
        // A 1-byte pattern among more than 16 and more than 64 keywords:
        // Teddy refuses both; the automaton takes them.
        let mut words: Vec<String> = (0..100).map(|i| format!("kw{i:03}")).collect();
        words.push("z".to_string());
        let found = Prefilter::new(&words, &[]).hits(b"KW099 z kw000");
        assert_eq!(found, [(0, 5), (6, 7), (8, 13)]);
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

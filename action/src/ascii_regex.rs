//! Byte regexes with ASCII semantics, the only kind the scanner builds.
//!
//! Every credential, name and separator the rules describe is ASCII. With
//! Unicode on (the regex crate's default), `(?i)`, `\b`, `\w` and `\s`
//! compile to UTF-8 automata for all of Unicode: compiling the rules was
//! most of the 48 ms every `keyguard scan` spent before reading a byte,
//! which a pre-commit hook pays on every commit. ASCII classes also keep
//! a non-ASCII letter (a Kelvin sign for `k`, a long s for `s`) from
//! passing for a letter of an X credential's name.

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// One pattern, ASCII semantics.
pub fn new(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern).unicode(false).build()
}

/// Several patterns matched together, ASCII semantics.
pub fn set<I, S>(patterns: I) -> Result<RegexSet, regex::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    RegexSetBuilder::new(patterns).unicode(false).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_case_folding_are_ascii() {
        let cases = [
            (r"(?i)consumer_key", "CONSUMER_KEY", true),
            (r"(?i)consumer_key", "consumer_\u{212a}ey", false),
            (r"\bkey\b", "a key here", true),
            (r"\bkey\b", "\u{e9}key\u{e9}", true),
            (r"^\s+$", " \t", true),
            (r"^\s+$", "\u{a0}", false),
            (r"[^\x22]+", "\u{e9}t\u{e9}", true),
        ];
        for (pattern, text, want) in cases {
            let re = new(pattern).unwrap();
            assert_eq!(re.is_match(text.as_bytes()), want, "{pattern} on {text:?}");
        }
    }
}

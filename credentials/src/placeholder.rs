//! Words that mark documentation and templates rather than credentials.
//! The scanner ignores values containing them; test generators must never
//! produce them, or a generated credential would go unnoticed.

/// Lower-case words; a value containing any of them is a placeholder.
pub const PLACEHOLDER_WORDS: &[&str] = &[
    "your",
    "here",
    "example",
    "sample",
    "placeholder",
    "dummy",
    "changeme",
    "change_me",
    "replace",
    "insert",
    "redacted",
    "xxxx",
    "consumer",
    "secret",
    "token",
    "apikey",
    "api_key",
    "fake",
    "mock",
    "abcdef",
    "123456",
    "qwerty",
    "lorem",
    "default",
    "value",
    "todo",
    "fixme",
];

pub fn looks_like_placeholder(value: &[u8]) -> bool {
    let lower = value.to_ascii_lowercase();
    PLACEHOLDER_WORDS
        .iter()
        .any(|w| lower.windows(w.len()).any(|window| window == w.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_case_insensitively() {
        for (value, want) in [
            ("YOUR_API_KEY_HERE", true),
            ("xvz1evFS4wEEPTGEFPHBog", false),
            ("AbcDefGhi", true),
            ("q8Xw2LmN5pR7tY0uV3zK", false),
        ] {
            assert_eq!(looks_like_placeholder(value.as_bytes()), want, "{value}");
        }
    }
}

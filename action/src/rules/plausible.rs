//! Is a matched value plausibly a real credential, or a placeholder, a
//! hash, a word, an environment lookup?

use keyguard_credentials::{CredentialKey, BEARER_TOKEN_PREFIX};

/// Words that mark documentation and templates, not credentials: shared
/// with the test generators, which must never produce them.
pub use keyguard_credentials::looks_like_placeholder;

/// Shannon entropy in bits per byte.
fn entropy(value: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in value {
        counts[b as usize] += 1;
    }
    let n = value.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn longest_run(value: &[u8]) -> usize {
    let (mut best, mut run) = (0, 0);
    for (i, b) in value.iter().enumerate() {
        run = if i > 0 && value[i - 1] == *b {
            run + 1
        } else {
            1
        };
        best = best.max(run);
    }
    best
}

/// Random-looking: not a word, not a hash, not a run of one character.
fn random_looking(value: &[u8]) -> bool {
    let has = |f: fn(&u8) -> bool| value.iter().any(f);
    let classes = [
        has(u8::is_ascii_uppercase),
        has(u8::is_ascii_lowercase),
        has(u8::is_ascii_digit),
    ]
    .iter()
    .filter(|&&c| c)
    .count();
    let hex_only = value.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-');
    // Random alphanumerics of 32+ characters have all three classes but
    // for a vanishing few; words, slugs and hashes usually lack one.
    let needed = if value.len() >= 32 { 3 } else { 2 };
    classes >= needed
        && !(hex_only && value.len() >= 16)
        && longest_run(value) < 5
        && entropy(value) >= 3.3
        && !looks_like_placeholder(value)
}

/// Whether `value` matched for `key` is plausibly a real credential.
pub fn is_plausible(key: CredentialKey, value: &[u8]) -> bool {
    match key {
        CredentialKey::BearerToken => {
            let Some(tail) = value.strip_prefix(BEARER_TOKEN_PREFIX.as_bytes()) else {
                return random_looking(value);
            };
            let tail: Vec<u8> = tail.iter().copied().filter(|&b| b != b'A').collect();
            tail.len() >= 40 && random_looking_loose(&tail)
        }
        CredentialKey::AccessToken => {
            let Some(dash) = value.iter().position(|&b| b == b'-') else {
                return random_looking(value);
            };
            random_looking(&value[dash + 1..])
        }
        _ => random_looking(value),
    }
}

/// As random_looking, but for text with URL escapes and base64 punctuation.
fn random_looking_loose(value: &[u8]) -> bool {
    let alnum: Vec<u8> = value
        .iter()
        .copied()
        .filter(u8::is_ascii_alphanumeric)
        .collect();
    random_looking(&alnum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_hashes_and_runs_are_not_credentials() {
        assert!(!random_looking(b"YourConsumerKeyGoesHere"));
        assert!(!random_looking(b"da39a3ee5e6b4b0d3255bfef95601890afd80709"));
        assert!(!random_looking(b"xxxxxxxxxxxxxxxxxxxxxx"));
        assert!(!random_looking(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        assert!(random_looking(b"u8jzPde0IgxLd6GncfBAep"));
        assert!(random_looking(
            b"fKtHF4vUCsMehGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rESQe"
        ));
    }
}

//! Refresh tokens X refused, remembered by fingerprint (with the client's
//! id and secret), so that a spent token (its answer lost, or used
//! elsewhere) is not sent to X again on every reconcile: only a different
//! token, a person's new one, or other client values are tried. Only X's
//! "this token is no good" answers are remembered, never a client that
//! failed to authenticate.
//! Kept in memory: a restarted operator tries a refused token once more,
//! and X refuses it again.

use std::collections::HashMap;
use std::sync::Mutex;

/// Fingerprints remembered at most; past it the memory starts afresh
/// (each forgotten token costs one more refused call).
const REMEMBERED_AT_MOST: usize = 10_000;

#[derive(Debug, Default)]
pub struct RefusedTokens {
    /// Fingerprint → X's answer, as the refusal quoted it.
    refused: Mutex<HashMap<String, String>>,
}

impl RefusedTokens {
    /// X's answer when it refused the token with this fingerprint.
    pub fn answer_for(&self, fingerprint: &str) -> Option<String> {
        self.refused.lock().unwrap().get(fingerprint).cloned()
    }

    pub fn remember(&self, fingerprint: String, answer: String) {
        let mut refused = self.refused.lock().unwrap();
        if refused.len() >= REMEMBERED_AT_MOST {
            refused.clear();
        }
        refused.insert(fingerprint, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_is_remembered_and_the_memory_stays_bounded() {
        let tokens = RefusedTokens::default();
        assert_eq!(tokens.answer_for("a"), None);
        tokens.remember("a".into(), "400 invalid_request".into());
        assert_eq!(
            tokens.answer_for("a").as_deref(),
            Some("400 invalid_request")
        );
        for i in 0..REMEMBERED_AT_MOST {
            tokens.remember(format!("t{i}"), String::new());
        }
        assert!(tokens.refused.lock().unwrap().len() <= REMEMBERED_AT_MOST);
    }
}
